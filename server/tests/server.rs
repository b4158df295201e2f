//! The server against blocking WebSocket clients: TinyBase's relay rules, the server store,
//! rooms on disk, multiplexing, fragments, limits, auth and shutdown.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;
use tinybase::MergeableStore;
use tinybase_server::{Access, ServerOptions};

const GET_HASHES: &str = "[\"tx.0001\",1,\"\"]";
const DIFF: &str = "[\"tx2\",3,[[{\"pets\":[{\"fido\":[{\"species\":[\"dog\",\"P7o4uYi----7JQY8\"]}]}]}],[{}],1]]";
const DIFF_BODY: &str = "[[{\"pets\":[{\"fido\":[{\"species\":[\"dog\",\"P7o4uYi----7JQY8\"]}]}]}],[{}],1]";

fn relay_only() -> ServerOptions {
    ServerOptions { server_store: false, ..options() }
}

/// Three clients of a pure-relay room, with the ids the others see them by.
fn three(server: &TestServer, path: &str) -> (Client, Client, Client, String, String) {
    let (mut a, mut b, mut c) = (server.connect(path), server.connect(path), server.connect(path));
    server.wait_clients(&tinybase::sync::ws::codec::path_of_request_uri(path), 3);
    a.send(&format!("\n{GET_HASHES}"));
    let at_b = b.text();
    assert_eq!(at_b, c.text());
    let a_id = sender(&at_b);
    b.send(&format!("\n{GET_HASHES}"));
    let b_id = sender(&a.text());
    assert_eq!(sender(&c.text()), b_id);
    (a, b, c, a_id, b_id)
}

#[test]
fn relays_broadcast_addressed_and_self_addressed() {
    let server = TestServer::start(relay_only());
    let (mut a, mut b, mut c, a_id, b_id) = three(&server, "/room1?x=1");
    assert_eq!(a_id.len(), 24, "client ids are 24-char base64");
    assert_ne!(a_id, b_id);
    // Broadcast: every other client, prefixed with the sender, the remainder byte for byte.
    a.send("\n[\"x\" , 1 ,\"\"]");
    assert_eq!(b.text(), format!("{a_id}\n[\"x\" , 1 ,\"\"]"));
    assert_eq!(c.text(), format!("{a_id}\n[\"x\" , 1 ,\"\"]"));
    a.nothing(false);
    // Addressed: only that client.
    b.send(&format!("{a_id}\n[\"tx.0001\",0,[1,2]]"));
    assert_eq!(a.text(), format!("{b_id}\n[\"tx.0001\",0,[1,2]]"));
    c.nothing(false);
    // Self-addressed: back to the sender.
    a.send(&format!("{a_id}\n{GET_HASHES}"));
    assert_eq!(a.text(), format!("{a_id}\n{GET_HASHES}"));
    // Unknown recipient, and S without a server store: dropped.
    a.send(&format!("nobody\n{GET_HASHES}"));
    a.send(&format!("S\n{GET_HASHES}"));
    b.nothing(false);
    c.nothing(false);
    a.nothing(false);
    // Another room hears nothing.
    let mut other = server.connect("/room2");
    server.wait_clients("room2", 1);
    a.send(&format!("\n{GET_HASHES}"));
    other.nothing(false);
    assert_eq!(server.handle().get_client_ids("room1").len(), 3);
    let mut paths = server.handle().get_path_ids();
    paths.sort();
    assert_eq!(paths, vec!["room1", "room2"]);
    assert_eq!(server.handle().get_stats(), tinybase_server::ServerStats { paths: 2, clients: 4 });
}

#[test]
fn server_store_answers_and_survives_its_clients() {
    let dir = temp_dir("store");
    let expected = MergeableStore::new(None);
    expected.apply_mergeable_changes_json(DIFF_BODY).unwrap();
    let (t, v) = expected.get_mergeable_content_hashes();
    {
        let server = TestServer::start(ServerOptions { data_dir: Some(dir.clone()), ..options() });
        let mut a = server.connect("/shop/pets");
        // The server store starts syncing: GetContentHashes then ContentHashes, from S.
        let first = a.text();
        assert!(first.starts_with("S\n[\"") && first.ends_with(",1,\"\"]"), "{first}");
        let request_id = first[3..].split('"').next().unwrap().to_string();
        a.send(&format!("S\n[\"{request_id}\",0,[0,0]]"));
        let second = a.text();
        assert!(second.starts_with("S\n[") && second.ends_with(",2,[0,0]]"), "{second}");
        a.send(&format!("\n{DIFF}"));
        a.send(&format!("S\n{GET_HASHES}"));
        assert_eq!(a.text(), format!("S\n[\"tx.0001\",0,[{t},{v}]]"));
        drop(a);
    }
    // Beside it, the persister's `.lock` file (which keeps two processes from writing it at once).
    let names: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    let rooms: Vec<_> = names.iter().filter_map(|n| tinybase_server::files::room_of_file_name(n)).collect();
    assert_eq!(rooms, ["shop/pets"], "one room file: {names:?}");
    let server = TestServer::start(ServerOptions { data_dir: Some(dir.clone()), ..options() });
    let mut b = server.connect("/shop/pets");
    b.send(&format!("S\n{GET_HASHES}"));
    let answer = (0..5).map(|_| b.text()).find(|f| f.contains("tx.0001")).expect("an answer");
    assert_eq!(answer, format!("S\n[\"tx.0001\",0,[{t},{v}]]"), "the room came back from its file");
    assert_eq!(server.handle().get_room_content_json("shop/pets").unwrap(), expected.get_encoded_mergeable_content_json());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unreadable_room_file_is_never_overwritten() {
    let dir = temp_dir("bad");
    let file = dir.join(tinybase_server::files::room_file_name("r"));
    std::fs::write(&file, "[[{},\"\",1],[{},\"\",2]]").unwrap();
    let mut server = TestServer::start(ServerOptions { data_dir: Some(dir.clone()), save_delay: Duration::from_millis(20), ..options() });
    let mut a = server.connect("/r");
    a.send(&format!("\n{DIFF}"));
    a.send(&format!("S\n{GET_HASHES}"));
    while !a.text().contains("tx.0001") {}
    std::thread::sleep(Duration::from_millis(200));
    server.shutdown();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "[[{},\"\",1],[{},\"\",2]]");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn idle_rooms_stay_loaded_then_unload() {
    let dir = temp_dir("idle");
    let server = TestServer::start(ServerOptions { data_dir: Some(dir.clone()), room_idle: Duration::from_millis(400), ..options() });
    let events = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let e = events.clone();
    server.handle().add_path_ids_listener(move |p, c| e.lock().push(format!("{p}{c:+}")));
    let mut a = server.connect("/idle");
    a.send(&format!("\n{DIFF}"));
    a.send(&format!("S\n{GET_HASHES}"));
    while !a.text().contains("tx.0001") {}
    a.ws.close(None).unwrap();
    let _ = a.closed();
    let left = Instant::now();
    while !server.handle().get_path_ids().is_empty() {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(server.handle().is_room_loaded("idle"), "kept after its last client left");
    while server.handle().is_room_loaded("idle") {
        assert!(left.elapsed() < Duration::from_secs(5), "unloaded in time");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(left.elapsed() >= Duration::from_millis(380), "{:?}", left.elapsed());
    assert_eq!(*events.lock(), vec!["idle+1", "idle-1"]);
    let file = dir.join(tinybase_server::files::room_file_name("idle"));
    assert!(std::fs::read_to_string(file).unwrap().contains("dog"), "saved before unloading");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn multiplexed_and_legacy_clients_share_rooms() {
    let server = TestServer::start(relay_only());
    let mut m = server.connect_mux("/shop");
    // Data before subscribing... after the channel is set up: the echo, then the relay.
    m.send("S\n[\"sub0000000000000\",-1,[1,\"pets\"]]");
    assert_eq!(m.text(), "S\n[\"sub0000000000000\",-1,[1,\"pets\"]]");
    let mut l = server.connect("/shop/pets");
    server.wait_clients("shop/pets", 2);
    l.send(&format!("\n{GET_HASHES}"));
    let at_m = m.text();
    let l_id = at_m.split('\n').nth(2).unwrap().to_string();
    assert_eq!(at_m, format!("M\npets\n{l_id}\n{GET_HASHES}"));
    m.send(&format!("M\npets\n{l_id}\n[\"r\",0,[1,2]]"));
    let at_l = l.text();
    assert!(at_l.ends_with("\n[\"r\",0,[1,2]]"), "{at_l}");
    // Unsubscribe: no reply, and nothing relayed to it any more.
    m.send("S\n[null,-1,[2,\"pets\"]]");
    std::thread::sleep(Duration::from_millis(100));
    l.send(&format!("\n{GET_HASHES}"));
    m.nothing(false);
    // Data for a channel it left: malformed.
    m.send(&format!("M\npets\n\n{GET_HASHES}"));
    assert_eq!(m.closed(), (1007, "tinybase:14".to_string()));
}

#[test]
fn multiplexing_rules() {
    let server = TestServer::start(relay_only());
    // Subscribe before Hello is ignored; data before Hello is malformed.
    let mut c = Client::connect(server.addr, "/", Some("tinybase"), &[]).unwrap();
    c.send("S\n[\"sub0000000000000\",-1,[1,\"a\"]]");
    c.nothing(false);
    c.send(&format!("M\na\n\n{GET_HASHES}"));
    assert_eq!(c.closed(), (1007, "tinybase:14".to_string()));
    // A Hello with another version is malformed.
    let mut c = Client::connect(server.addr, "/", Some("tinybase"), &[]).unwrap();
    c.send("S\n[\"h\",-1,[0,2]]");
    assert_eq!(c.closed().0, 1007);
    // At most 100 channels.
    let mut c = server.connect_mux("/");
    for i in 0..100 {
        c.send(&format!("S\n[\"s{i}\",-1,[1,\"ch{i}\"]]"));
        assert_eq!(c.text(), format!("S\n[\"s{i}\",-1,[1,\"ch{i}\"]]"));
    }
    c.send("S\n[\"s100\",-1,[1,\"ch100\"]]");
    assert_eq!(c.closed(), (1013, "tinybase:15:channels".to_string()));
    // An invalid channel id is malformed.
    let mut c = server.connect_mux("/");
    c.send("S\n[\"s\",-1,[1,\"a/../b\"]]");
    assert_eq!(c.closed().0, 1007);
}

#[test]
fn fragments_are_relayed_as_they_came_once_complete() {
    let server = TestServer::start(relay_only());
    let (mut a, mut b, _c, a_id, _) = three(&server, "/frag");
    let pieces = ["[\"tx2\",3,[[{\"pets\":[{\"fido\":[{\"spec", "ies\":[\"dog\",\"P7o4uYi----7JQY8\"]}]}]}]", ",[{}],1]]"];
    let id = "AAAAAAAAAAAAAAAA";
    a.send(&format!("\n{id}\n2\n3\n{}", pieces[2]));
    a.send(&format!("\n{id}\n0\n3\n{}", pieces[0]));
    b.nothing(false);
    a.send(&format!("\n{id}\n1\n3\n{}", pieces[1]));
    for (i, piece) in pieces.iter().enumerate() {
        assert_eq!(b.text(), format!("{a_id}\n{id}\n{i}\n3\n{piece}"));
    }
    // A complete message that is not a valid payload closes its sender only.
    a.send("\nBBBBBBBBBBBBBBBB\n0\n2\n[1,");
    a.send("\nBBBBBBBBBBBBBBBB\n1\n2\n2]");
    assert_eq!(a.closed(), (1007, "tinybase:14".to_string()));
    b.nothing(false);
}

#[test]
fn malformed_traffic_closes_only_its_socket() {
    let server = TestServer::start(relay_only());
    let (mut a, mut b, mut c, _, b_id) = three(&server, "/bad");
    for bad in ["no newline", "\n[1,2,3]", "\n[\"x\",1,\"a\"]", "\nnot json"] {
        let mut x = server.connect("/bad");
        x.send(bad);
        assert_eq!(x.closed(), (1007, "tinybase:14".to_string()), "{bad:?}");
    }
    a.send("\n[\"x\",9,\"\"]");
    assert_eq!(a.closed(), (1007, "tinybase:14".to_string()));
    b.send(&format!("\n{GET_HASHES}"));
    assert_eq!(c.text(), format!("{b_id}\n{GET_HASHES}"));
}

#[test]
fn oversized_messages_close_1013() {
    let server = TestServer::start(ServerOptions { max_message_bytes: 1000, ..relay_only() });
    let mut a = server.connect("/big");
    let mut b = server.connect("/big");
    server.wait_clients("big", 2);
    a.send(&format!("\n[\"{}\",1,\"\"]", "x".repeat(2000)));
    assert_eq!(a.closed(), (1013, "tinybase:15:socket".to_string()));
    b.nothing(false);
}

#[test]
fn slow_readers_are_closed_not_buffered_forever() {
    let server = TestServer::start(ServerOptions { max_message_bytes: 64 * 1024, ..relay_only() });
    let mut a = server.connect("/slow");
    let mut slow = server.connect("/slow");
    server.wait_clients("slow", 2);
    let body = format!("\n[\"{}\",1,\"\"]", "x".repeat(60 * 1024));
    // The slow client reads nothing while tens of megabytes are sent to it.
    let start = Instant::now();
    for _ in 0..600 {
        a.send(&body);
    }
    let _ = a.recv_within(Duration::from_millis(10));
    let mut closed = None;
    while closed.is_none() && start.elapsed() < Duration::from_secs(20) {
        if let Got::Closed(code, reason) = slow.recv_within(Duration::from_millis(100)) {
            closed = Some((code, reason));
        }
    }
    assert_eq!(closed, Some((1013, "tinybase:15:socket".to_string())));
}

#[test]
fn read_only_clients_pull_but_change_nobody() {
    let auth: tinybase_server::AuthHook = Arc::new(|r: &tinybase_server::AuthRequest| match r.query {
        Some("ro") => Access::ReadOnly,
        Some("no") => Access::Refuse,
        _ => Access::ReadWrite,
    });
    let server = TestServer::start(ServerOptions { auth: Some(auth), ..options() });
    let mut w = server.connect("/room");
    w.send(&format!("\n{DIFF}"));
    w.send("S\n[\"w\",1,\"\"]");
    while !w.text().contains("\"w\"") {}
    let mut ro = server.connect("/room?ro");
    server.wait_clients("room", 2);
    // Its request reaches the others, and their answer reaches it.
    ro.send(&format!("\n{GET_HASHES}"));
    let at_w = w.text_not_from_s();
    let ro_id = sender(&at_w);
    w.send(&format!("{ro_id}\n[\"tx.0001\",0,[5,6]]"));
    assert!(ro.text_not_from_s().ends_with("\n[\"tx.0001\",0,[5,6]]"), "{at_w}");
    // The server store answers it too.
    ro.send("S\n[\"q\",1,\"\"]");
    let (t, v) = {
        let s = MergeableStore::new(None);
        s.apply_mergeable_changes_json(DIFF_BODY).unwrap();
        s.get_mergeable_content_hashes()
    };
    let answer = (0..6).map(|_| ro.text()).find(|f| f.contains("\"q\"")).unwrap();
    assert_eq!(answer, format!("S\n[\"q\",0,[{t},{v}]]"));
    // Its changes reach nobody: neither the other client nor the room's store.
    ro.send("\n[\"tx3\",3,[[{\"pets\":[{\"rex\":[{\"species\":[\"cat\",\"P7o4uYj----7JQY8\"]}]}]}],[{}],1]]");
    ro.send("\n[\"tx4\",2,[1,2]]");
    w.nothing(true);
    std::thread::sleep(Duration::from_millis(100));
    let content = server.handle().get_room_content_json("room").unwrap();
    assert!(!content.contains("rex"), "{content}");
    // Refused: HTTP 401, no upgrade.
    assert_eq!(Client::connect(server.addr, "/room?no", None, &[]).err(), Some(401));
}

#[test]
fn connection_limits_refuse_the_upgrade() {
    let server = TestServer::start(ServerOptions { max_clients: 2, ..relay_only() });
    let _a = server.connect("/a");
    let b = server.connect("/b");
    assert_eq!(Client::connect(server.addr, "/c", None, &[]).err(), Some(503));
    drop(b);
    let end = Instant::now() + Duration::from_secs(5);
    while Client::connect(server.addr, "/c", None, &[]).is_err() {
        assert!(Instant::now() < end, "a slot frees up when a client leaves");
        std::thread::sleep(Duration::from_millis(20));
    }
    let server = TestServer::start(ServerOptions { max_connections_per_ip: 1, ..relay_only() });
    let _a = server.connect("/a");
    assert_eq!(Client::connect(server.addr, "/a", None, &[]).err(), Some(429));
    let server = TestServer::start(ServerOptions { max_rooms: 1, ..relay_only() });
    let _a = server.connect("/a");
    let _b = server.connect("/a");
    assert_eq!(Client::connect(server.addr, "/other", None, &[]).err(), Some(503));
}

#[test]
fn http_health_and_metrics() {
    use std::io::{Read, Write};
    let server = TestServer::start(relay_only());
    let get = |path: &str| {
        let mut s = std::net::TcpStream::connect(server.addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    assert!(get("/healthz").starts_with("HTTP/1.1 200"));
    let _a = server.connect("/healthz");
    server.wait_clients("healthz", 1);
    assert_eq!(server.handle().get_path_ids(), vec!["healthz"], "with upgrade headers any path is a room");
    assert!(get("/metrics").contains("tinybase_connections 1"));
}

#[test]
fn shutdown_saves_and_closes_1001() {
    let dir = temp_dir("shutdown");
    let mut server = TestServer::start(ServerOptions { data_dir: Some(dir.clone()), save_delay: Duration::from_secs(60), ..options() });
    let mut a = server.connect("/s");
    let mut m = server.connect_mux("/");
    m.send("S\n[\"sub0000000000000\",-1,[1,\"s\"]]");
    assert_eq!(m.text(), "S\n[\"sub0000000000000\",-1,[1,\"s\"]]");
    a.send(&format!("\n{DIFF}"));
    a.send(&format!("S\n{GET_HASHES}"));
    while !a.text().contains("tx.0001") {}
    server.shutdown();
    assert_eq!(a.closed().0, 1001);
    assert_eq!(m.closed().0, 1001);
    let file = dir.join(tinybase_server::files::room_file_name("s"));
    assert!(std::fs::read_to_string(file).unwrap().contains("dog"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn refused_subscribes_are_not_acknowledged() {
    let auth: tinybase_server::AuthHook = Arc::new(|r: &tinybase_server::AuthRequest| match (r.kind, r.path) {
        (tinybase_server::AuthKind::Subscribe, "base/secret") => Access::Refuse,
        _ => Access::ReadWrite,
    });
    let server = TestServer::start(ServerOptions { auth: Some(auth), ..relay_only() });
    let mut m = server.connect_mux("/base");
    m.send("S\n[\"s1\",-1,[1,\"secret\"]]");
    m.nothing(false);
    m.send("S\n[\"s2\",-1,[1,\"open\"]]");
    assert_eq!(m.text(), "S\n[\"s2\",-1,[1,\"open\"]]", "the socket's other channels go on");
    assert_eq!(server.handle().get_path_ids(), vec!["base/open"]);
    assert_eq!(server.handle().metrics().refusals(tinybase_server::metrics::Refusal::Auth), 1);
}

#[test]
fn the_server_store_fragments_what_it_sends() {
    let server = TestServer::start(ServerOptions { fragment_size: Some(8), ..options() });
    let mut a = server.connect("/f");
    let mut pieces = Vec::new();
    loop {
        let frame = a.text();
        let parts: Vec<&str> = frame.splitn(5, '\n').collect();
        assert_eq!(parts.len(), 5, "a fragment: {frame:?}");
        assert_eq!((parts[0], parts[1].len()), ("S", 16));
        assert_eq!(parts[2], pieces.len().to_string());
        assert!(parts[4].len() <= 8);
        pieces.push(parts[4].to_string());
        if parts[2].parse::<usize>().unwrap() + 1 == parts[3].parse::<usize>().unwrap() {
            break;
        }
    }
    let whole = pieces.concat();
    assert!(whole.starts_with("[\"") && whole.ends_with("\",1,\"\"]"), "the GetContentHashes of 8.2: {whole}");
}

#[test]
fn rooms_are_saved_soon_after_changes_even_while_they_go_on() {
    let dir = temp_dir("debounce");
    let server = TestServer::start(ServerOptions { data_dir: Some(dir.clone()), save_delay: Duration::from_millis(100), ..options() });
    let file = dir.join(tinybase_server::files::room_file_name("d"));
    let mut a = server.connect("/d");
    let start = Instant::now();
    // A change every 20 ms for 1.5 s: never a 100 ms pause, yet the file follows.
    let mut first_save = None;
    for i in 0..75 {
        a.send(&format!("\n[\"t{i}\",3,[[{{\"t\":[{{\"r\":[{{\"c{i}\":[{i},\"P7o4uYi----7JQY8\"]}}]}}]}}],[{{}}],1]]"));
        std::thread::sleep(Duration::from_millis(20));
        if first_save.is_none() && file.exists() {
            first_save = Some(start.elapsed());
        }
    }
    let first_save = first_save.expect("saved while changes went on");
    assert!(first_save < Duration::from_millis(1000), "{first_save:?}");
    // After the changes stop, the file catches up within a few delays.
    let end = Instant::now() + Duration::from_secs(3);
    while !std::fs::read_to_string(&file).unwrap().contains("\"c74\"") {
        assert!(Instant::now() < end, "the last change reached the file");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn anti_entropy_makes_the_room_store_pull_again() {
    let server = TestServer::start(ServerOptions { anti_entropy: Some(Duration::from_millis(200)), ..options() });
    let mut a = server.connect("/ae");
    // Without anything sent by this client, the store keeps asking (GetContentHashes) and
    // announcing (ContentHashes).
    let end = Instant::now() + Duration::from_secs(3);
    let (mut asks, mut announces) = (0, 0);
    while Instant::now() < end && (asks < 3 || announces < 3) {
        if let Got::Text(t) = a.recv_within(Duration::from_millis(100)) {
            asks += usize::from(t.starts_with("S\n") && t.ends_with(",1,\"\"]"));
            announces += usize::from(t.starts_with("S\n") && t.contains(",2,["));
        }
    }
    assert!(asks >= 3 && announces >= 3, "{asks} GetContentHashes, {announces} ContentHashes");
}

#[test]
fn client_listeners_see_joins_and_leaves() {
    let server = TestServer::start(relay_only());
    let events = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let (e1, e2) = (events.clone(), events.clone());
    let only_a = server.handle().add_client_ids_listener(Some("a"), move |p, c, n| e1.lock().push(format!("{p} {} {n:+}", c.len())));
    server.handle().add_client_ids_listener(None, move |p, _, n| e2.lock().push(format!("any {p} {n:+}")));
    let a = server.connect("/a");
    server.wait_clients("a", 1);
    let mut m = server.connect_mux("/");
    m.send("S\n[\"sub0000000000000\",-1,[1,\"b\"]]");
    assert_eq!(m.text(), "S\n[\"sub0000000000000\",-1,[1,\"b\"]]");
    server.handle().del_listener(only_a);
    drop(a);
    let end = Instant::now() + Duration::from_secs(5);
    while events.lock().len() < 4 {
        assert!(Instant::now() < end, "{:?}", events.lock());
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(*events.lock(), vec!["a 24 +1", "any a +1", "any b +1", "any a -1"]);
}

#[test]
fn idle_rooms_make_way_for_new_ones_at_the_room_limit() {
    let server = TestServer::start(ServerOptions { max_rooms: 1, room_idle: Duration::from_secs(60), ..options() });
    let mut a = server.connect("/a");
    server.wait_clients("a", 1);
    a.ws.close(None).unwrap();
    let _ = a.closed();
    while !server.handle().get_path_ids().is_empty() {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(server.handle().is_room_loaded("a"));
    assert_eq!(Client::connect(server.addr, "/b", None, &[]).err(), Some(503), "the idle room still counts");
    let end = Instant::now() + Duration::from_secs(5);
    while Client::connect(server.addr, "/b", None, &[]).is_err() {
        assert!(Instant::now() < end, "the idle room was unloaded to make way");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!server.handle().is_room_loaded("a"));
}

#[test]
fn a_client_is_in_its_room_as_soon_as_its_handshake_completes() {
    // TinyBase's server adds a client before the client can see the socket open: a broadcast
    // sent right after another client's handshake completes reaches it (no waiting).
    let server = TestServer::start(relay_only());
    let mut a = server.connect("/join");
    server.wait_clients("join", 1);
    let mut clients = Vec::new();
    for i in 0..200 {
        let mut b = server.connect("/join");
        assert_eq!(server.handle().get_client_ids("join").len(), i + 2, "round {i}: b is in the room");
        let m = server.connect_mux("/");
        a.send(&format!("\n[\"j{i}\",1,\"\"]"));
        let got = b.text();
        assert!(got.ends_with(&format!("\n[\"j{i}\",1,\"\"]")), "round {i}: {got}");
        clients.push((b, m));
    }
}

#[test]
fn a_freed_connection_slot_shows_in_the_gauge_no_earlier() {
    // Once `tinybase_connections` says a connection is gone, its slot is free: a client
    // watching the gauge can connect at once.
    let server = TestServer::start(ServerOptions { max_clients: 1, ..relay_only() });
    let metrics = server.handle().metrics();
    let gauge = || metrics.connections.load(std::sync::atomic::Ordering::Acquire);
    for i in 0..100 {
        let mut c = Client::connect(server.addr, "/g", None, &[]).unwrap_or_else(|s| panic!("round {i}: HTTP {s}"));
        let end = Instant::now() + Duration::from_secs(5);
        while gauge() != 1 {
            assert!(Instant::now() < end, "the gauge counts the connection");
            std::thread::yield_now();
        }
        c.ws.close(None).unwrap();
        let _ = c.closed();
        while gauge() != 0 {
            assert!(Instant::now() < end, "the gauge counts the close");
            std::thread::yield_now();
        }
    }
}
