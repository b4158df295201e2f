//! Our WebSocket client and server against TinyBase 10.0.1's (node, the pinned `ws` package):
//! the Proof of issue 8. Every test starts its servers on free ports of 127.0.0.1, drives
//! TinyBase's clients through tests/interop/ws/tb_client.mjs and ours in this process, and
//! requires everybody's content hashes (and contents) to end equal.
//!
//! - `tinybase_server_*`: our clients with TinyBase clients in rooms of TinyBase's WsServer
//!   (file-persisted server stores, whose hashes must agree too): legacy, multiplexed (several
//!   stores over one socket) and mixed with fragments (payloads over 1 MiB).
//! - `our_server_*`: the same rooms on tinybase-server; a room surviving SIGTERM and SIGKILL;
//!   JWT auth refusing what it should; a server killed and restarted while everybody edits.
//! - `load_*`: many of our clients in many rooms on tinybase-server (sizes by environment).
//!
//! `cargo test --release -p tinybase-server --test tinybase_interop` (scripts/test-all.sh); the
//! harness is support/interop.rs, the TinyBase side tests/interop/ws/.

#[path = "../../tests/support/edits.rs"]
mod edits;
#[path = "../../tests/support/rng.rs"]
mod rng;
#[path = "../../tests/support/script.rs"]
mod script;
#[path = "support/interop.rs"]
mod harness;

use serde_json::{json, Value as Json};
use std::time::{Duration, Instant};
use harness::*;
use tinybase::sync::ws::{WsClient, WsOptions, WsSynchronizer};
use tinybase::sync::ConnectionState;

const CONVERGE: Duration = Duration::from_secs(30);
/// Fragment size of the fragmented scenarios: a 1.5 MB payload is 24 fragments.
const FRAGMENT: usize = 65_536;
const BIG: usize = 1_500_000;
/// The anti-entropy of our clients when TinyBase clients take part (PROTOCOL.md 12.7).
const ANTI_ENTROPY: Option<Duration> = Some(Duration::from_millis(400));

/// The three ways of joining a room that both servers must relay between.
#[derive(Clone, Copy, Debug)]
enum Framing {
    /// Everybody legacy (one socket per store, room = URL path).
    Legacy,
    /// Everybody multiplexed (room = channel), some sockets carrying two stores in two rooms.
    Multiplexed,
    /// Legacy and multiplexed clients in one room, all sending fragments, with cells over 1 MiB.
    MixedFragmented,
}

/// A room's participants: ours and TinyBase's, created for `framing` against `url(path)`.
struct Room {
    ours: Vec<Ours>,
    tb_names: Vec<String>,
    /// The room of the second channel of the shared sockets (multiplexed), with its participants.
    side: Option<(String, Vec<Ours>, Vec<String>)>,
    /// Kept alive while the room is: the shared multiplexed connection of ours.
    _client: Option<WsClient>,
}

fn open_room(framing: Framing, room: &str, url: &dyn Fn(&str) -> String, tb: &TbClients) -> Room {
    let spec = |path: &str, channel: Option<&str>, fragment_size: Option<usize>| OursSpec {
        url: url(path),
        channel: channel.map(str::to_string),
        fragment_size,
        anti_entropy: ANTI_ENTROPY,
        ..Default::default()
    };
    let tb_open = |name: &str, extra: Json| {
        let mut spec = json!({"name": name});
        spec.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        tb.open(spec).unwrap_or_else(|e| panic!("{framing:?}: TinyBase client {name} could not join {room}: {e}"));
        name.to_string()
    };
    let n = |s: &str| format!("{room}-{s}");
    match framing {
        Framing::Legacy => Room {
            ours: vec![Ours::open(&n("O1"), &spec(room, None, None)), Ours::open(&n("O2"), &spec(room, None, None))],
            tb_names: vec![tb_open(&n("T1"), json!({"url": url(room)})), tb_open(&n("T2"), json!({"url": url(room)}))],
            side: None,
            _client: None,
        },
        Framing::Multiplexed => {
            let side = format!("{room}-side");
            // Ours: O1 on a socket of its own; O2 and O3 share one socket, in two rooms.
            let o1 = Ours::open(&n("O1"), &spec("", Some(room), None));
            let client = WsClient::new(&ws_options(&spec("", None, None))).expect("WsClient::new");
            let o2 = Ours::join(&n("O2"), &client, room, ANTI_ENTROPY);
            let o3 = Ours::join(&n("O3"), &client, &side, ANTI_ENTROPY);
            // TinyBase's: T1 and T3 share a socket (TinyBase allows one store per channel and socket).
            let shared = n("socket");
            let t1 = tb_open(&n("T1"), json!({"url": url(""), "channel": room, "socket": shared}));
            let t3 = tb_open(&n("T3"), json!({"url": url(""), "channel": side, "socket": shared}));
            let t2 = tb_open(&n("T2"), json!({"url": url(""), "channel": room}));
            Room { ours: vec![o1, o2], tb_names: vec![t1, t2], side: Some((side, vec![o3], vec![t3])), _client: Some(client) }
        }
        Framing::MixedFragmented => {
            // A multiplexed client on base path "" with channel `room` is in the legacy room `room` (8.1).
            let ours = vec![
                Ours::open(&n("O1"), &spec(room, None, Some(FRAGMENT))),
                Ours::open(&n("O2"), &spec("", Some(room), Some(FRAGMENT + 1000))),
            ];
            let tb_names = vec![
                // Pulls of megabytes on a busy machine: TinyBase's request timeout (default 1 s) longer.
                tb_open(&n("T1"), json!({"url": url(room), "fragmentSize": FRAGMENT, "timeout": 3})),
                tb_open(&n("T2"), json!({"url": url(""), "channel": room, "fragmentSize": FRAGMENT - 1000, "timeout": 3})),
            ];
            Room { ours, tb_names, side: None, _client: None }
        }
    }
}

/// Everybody edits at once (and in the fragmented scenario both sides write a cell over 1 MiB,
/// then overwrite the other's); returns the number of edits.
fn edit_room(framing: Framing, room: &Room, tb: &TbClients, count: u64) -> u64 {
    let all_ours = room.ours.iter().chain(room.side.iter().flat_map(|s| s.1.iter()));
    let all_tb: Vec<&String> = room.tb_names.iter().chain(room.side.iter().flat_map(|s| s.2.iter())).collect();
    let tb_ids: Vec<u64> = all_tb
        .iter()
        .enumerate()
        .map(|(i, name)| tb.node.send("writers", json!({"name": name, "seed": i + 1, "count": count, "maxPauseMs": 4})))
        .collect();
    let writers: Vec<_> = all_ours.enumerate().map(|(i, o)| our_writers(&o.store, i as u64 + 1, count, 4, &o.name)).collect();
    if let Framing::MixedFragmented = framing {
        let (o1, t1) = (&room.ours[0], &room.tb_names[0]);
        script::call_op(&o1.store, "setCell", big_cell_args("ours", BIG, 'o').as_array().unwrap(), false).expect("big cell");
        tb.call(t1, "setCell", big_cell_args("theirs", BIG, 't'));
        std::thread::sleep(Duration::from_millis(500));
        tb.call(t1, "setCell", big_cell_args("ours", BIG + 1, 'T'));
        script::call_op(&o1.store, "setCell", big_cell_args("theirs", BIG + 1, 'O').as_array().unwrap(), false).expect("big cell");
    }
    let mut edits: u64 = writers.into_iter().map(|w| w.join().expect("writer thread")).sum();
    for id in tb_ids {
        let done = tb.node.wait(id, Duration::from_secs(60)).expect("TinyBase writers");
        edits += done["edits"].as_u64().unwrap_or(0);
    }
    edits
}

/// Checks that everybody in `room` (and its side room) converges, with `extra` (a server store)
/// when given; returns the room's hashes.
fn converge_room(
    what: &str,
    room: &Room,
    tb: &TbClients,
    extra: Option<Extra>,
    side_extra: Option<Extra>,
) -> ((u32, u32), Duration) {
    let party = Party { ours: room.ours.iter().collect(), tb: Some(tb), tb_names: room.tb_names.clone(), extra };
    let result = party.converge(what, CONVERGE);
    if let Some((side, ours, tb_names)) = &room.side {
        let party = Party { ours: ours.iter().collect(), tb: Some(tb), tb_names: tb_names.clone(), extra: side_extra };
        party.converge(&format!("{what} ({side})"), CONVERGE);
    }
    result
}

/// Reads the content hashes of a room's server store (None while it has none).
type RoomStore<'a> = dyn Fn(&str) -> Option<(u32, u32)> + 'a;

/// One room run on `server` (reached by `url`): its participants join, edit and converge,
/// together with the server's store of each room when `room_store` reads it; then `check` gets
/// the room's hashes (e.g. for a late joiner), and one line reports it all.
fn run_room(
    server: &str,
    framing: Framing,
    url: &dyn Fn(&str) -> String,
    tb: &TbClients,
    room_store: Option<&RoomStore<'_>>,
    check: impl FnOnce(&str, (u32, u32)),
) {
    let room = format!("{framing:?}").to_lowercase();
    let side_room = format!("{room}-side");
    let started = Instant::now();
    let participants = open_room(framing, &room, url, tb);
    let edits = edit_room(framing, &participants, tb, 80);
    let main_store = || room_store.and_then(|read| read(&room));
    let side_store = || room_store.and_then(|read| read(&side_room));
    let (main_extra, side_extra): (Option<Extra>, Option<Extra>) = match room_store {
        Some(_) => (Some(("the server store", &main_store)), Some(("the server store", &side_store))),
        None => (None, None),
    };
    let what = format!("{server}, {framing:?}");
    let (hashes, took) = converge_room(&what, &participants, tb, main_extra, side_extra);
    check(&room, hashes);
    eprintln!(
        "{what}: {} of ours + {} TinyBase clients, {edits} edits, converged to {hashes:?}{} in {took:?} ({:?} in all, {} TinyBase client(s) opened again after an overload close); destroying one of ours took {:?}",
        participants.ours.len() + participants.side.as_ref().map_or(0, |s| s.1.len()),
        participants.tb_names.len() + participants.side.as_ref().map_or(0, |s| s.2.len()),
        if room_store.is_some() { " with the server store" } else { "" },
        started.elapsed(),
        tb.rejoins.load(std::sync::atomic::Ordering::Relaxed),
        destroy_time(&participants.ours[0])
    );
}

fn with_tinybase_server(framing: Framing) {
    let dir = TempDir::new("tbserver");
    let server = TbServer::start(&dir, Some(&dir.join("data")), matches!(framing, Framing::MixedFragmented).then_some(FRAGMENT));
    let tb = TbClients::start(&dir);
    run_room("TinyBase's WsServer", framing, &|path| server.url(path), &tb, Some(&|room| server.room_hashes(room)), |_, _| {});
}

/// How long a destroy (a clean close) of one of ours takes.
fn destroy_time(o: &Ours) -> Duration {
    let t = Instant::now();
    o.sync.destroy();
    t.elapsed()
}

#[test]
fn tinybase_server_legacy() {
    with_tinybase_server(Framing::Legacy);
}

#[test]
fn tinybase_server_multiplexed() {
    with_tinybase_server(Framing::Multiplexed);
}

#[test]
fn tinybase_server_mixed_fragmented_over_1_mib() {
    with_tinybase_server(Framing::MixedFragmented);
}

/// A TinyBase client joining our server's room late must receive exactly `expected`.
/// Its request timeout is 5 s: it may pull megabytes on a busy machine. Joining, it pulls the
/// whole room from a peer, and again from each peer announcing its hashes meanwhile (ours do
/// every 400 ms): when those answers outgrow what the server may queue for a slow client
/// (16 MiB, PROTOCOL.md 7.3), the server closes it with 1013 `tinybase:15:socket`, as TinyBase's
/// does. A TinyBase app then opens a new socket (TinyBase's clients never reconnect): so does
/// this, up to 3 times, and says so.
fn late_joiner(tb: &TbClients, server: &OurServer, room: &str, name: &str, expected: (u32, u32), what: &str) {
    let overloaded = || {
        let info = tb.node.ok("info", json!({"name": name}));
        info["closed"]["reason"].as_str().is_some_and(|r| r.starts_with("tinybase:15"))
    };
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut rejoins = 0;
    'join: loop {
        let id = tb.node.send("open", json!({"name": name, "url": server.url(room), "timeout": 5}));
        let mut joined = false;
        loop {
            if !joined {
                match tb.node.try_wait(id, Duration::from_millis(200)) {
                    Some(Ok(_)) => joined = true,
                    Some(Err(e)) if !overloaded() => panic!("{what}: {name} could not join: {e}"),
                    _ => {}
                }
            } else if tb.hashes(name) == expected {
                if rejoins > 0 {
                    eprintln!("{what}: the late joiner {name} was closed for overload (1013) and joined again {rejoins} time(s)");
                }
                return;
            } else {
                std::thread::sleep(Duration::from_millis(100));
            }
            if rejoins < 3 && overloaded() {
                rejoins += 1;
                continue 'join;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: the late joiner {name} {} within 40 s ({rejoins} rejoins); {}\nTinyBase clients' last events:\n{}\nthe server's log ends with:\n{}",
                if joined { format!("has {:?}, not {expected:?},", tb.hashes(name)) } else { "did not finish its open and startSync".into() },
                tb.node.ok("info", json!({"name": name})),
                tb.node.events_tail(15),
                file_tail(&server.log, 3000)
            );
        }
    }
}

fn with_our_server(framing: Framing) {
    let dir = TempDir::new("ourserver");
    let mut args = vec!["--data".to_string(), dir.join("data").display().to_string()];
    if let Framing::MixedFragmented = framing {
        args.extend(["--fragment-size".to_string(), FRAGMENT.to_string()]);
    }
    let server = OurServer::start(&dir, 0, &args);
    let tb = TbClients::start(&dir);
    // What the room holds for somebody new (the server store answers first).
    let late = |room: &str, hashes| late_joiner(&tb, &server, room, "late", hashes, &format!("tinybase-server, {framing:?}"));
    run_room("tinybase-server", framing, &|path| server.url(path), &tb, None, late);
}

#[test]
fn our_server_legacy() {
    with_our_server(Framing::Legacy);
}

#[test]
fn our_server_multiplexed() {
    with_our_server(Framing::Multiplexed);
}

#[test]
fn our_server_mixed_fragmented_over_1_mib() {
    with_our_server(Framing::MixedFragmented);
}

/// Waits until `done` holds, at most `timeout`, panicking with `what` otherwise.
fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what} (waited {timeout:?})");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn our_server_room_survives_sigterm_and_sigkill() {
    let dir = TempDir::new("restart");
    let mut server = OurServer::start(&dir, 0, &["--data".to_string(), dir.join("data").display().to_string()]);
    let tb = TbClients::start(&dir);
    let room = "kept";
    let spec = OursSpec { url: server.url(room), anti_entropy: ANTI_ENTROPY, ..Default::default() };
    let o1 = Ours::open("O1", &spec);
    tb.open(json!({"name": "T1", "url": server.url(room)})).expect("T1 joins");
    tb.open(json!({"name": "T2", "url": server.url(""), "channel": room})).expect("T2 joins");
    let tb_ids: Vec<u64> =
        ["T1", "T2"].iter().enumerate().map(|(i, n)| tb.node.send("writers", json!({"name": n, "seed": i + 11, "count": 60}))).collect();
    our_writers(&o1.store, 21, 60, 4, "O1").join().unwrap();
    for id in tb_ids {
        tb.node.wait(id, Duration::from_secs(60)).expect("writers");
    }
    let party = Party { ours: vec![&o1], tb: Some(&tb), tb_names: vec!["T1".into(), "T2".into()], extra: None };
    let (before_term, _) = party.converge("before SIGTERM", CONVERGE);
    // O1 and T1 leave (the room stays loaded for its idle period); T2 stays, to be closed with
    // 1001 ("going away"). SIGTERM must save the room.
    o1.sync.destroy();
    tb.node.ok("close", json!({"name": "T1"}));
    server.terminate();
    wait_for("T2 sees its socket closed", Duration::from_secs(5), || !tb.node.ok("info", json!({"name": "T2"}))["closed"].is_null());
    let closed = tb.node.ok("info", json!({"name": "T2"}))["closed"].clone();
    assert_eq!(closed["code"], 1001, "SIGTERM closed a TinyBase client's socket with {closed}, not 1001");
    let server = server.restart(&dir);
    late_joiner(&tb, &server, room, "after-term", before_term, "after SIGTERM and a restart");

    // New edits, then a SIGKILL once they had time to be saved (the save delay is 250 ms).
    let o2 = Ours::open("O2", &OursSpec { url: server.url(room), anti_entropy: ANTI_ENTROPY, ..Default::default() });
    let id = tb.node.send("writers", json!({"name": "after-term", "seed": 31, "count": 30}));
    our_writers(&o2.store, 32, 30, 4, "O2").join().unwrap();
    tb.node.wait(id, Duration::from_secs(60)).expect("writers");
    let party = Party { ours: vec![&o2], tb: Some(&tb), tb_names: vec!["after-term".into()], extra: None };
    let (before_kill, _) = party.converge("before SIGKILL", CONVERGE);
    assert_ne!(before_kill, before_term, "the second round of edits changed nothing");
    // Nobody may bring the content back but the server's own files.
    o2.sync.destroy();
    tb.node.ok("close", json!({"name": "after-term"}));
    std::thread::sleep(Duration::from_millis(1500));
    let mut server = server;
    server.kill();
    let server = server.restart(&dir);
    late_joiner(&tb, &server, room, "after-kill", before_kill, "after SIGKILL and a restart");
    eprintln!("tinybase-server: the room kept {before_term:?} through SIGTERM and {before_kill:?} through SIGKILL");
}

/// A TinyBase client's (legacy) connection must be refused.
fn refused(tb: &TbClients, name: &str, url: String, why: &str) {
    if let Ok(v) = tb.open(json!({"name": name, "url": url})) {
        panic!("{why}: the TinyBase client {name} was let in ({v})");
    }
}

#[test]
fn our_server_auth_refuses_what_it_should() {
    use tinybase_server::jwt::{sign_hs256, unix_now};
    let dir = TempDir::new("auth");
    let secret = b"interop-test-secret-0123456789abcdef";
    let secret_file = dir.join("secret");
    std::fs::write(&secret_file, secret).unwrap();
    let server = OurServer::start(
        &dir,
        0,
        &["--data".into(), dir.join("data").display().to_string(), "--jwt-secret-file".into(), secret_file.display().to_string()],
    );
    let tb = TbClients::start(&dir);
    let now = unix_now();
    let token = |claims: Json| sign_hs256(secret, &claims.to_string());
    // The read-write token as an operator makes one: `tinybase-server token`.
    let made = std::process::Command::new(env!("CARGO_BIN_EXE_tinybase-server"))
        .args(["token", "--secret-file"])
        .arg(&secret_file)
        .args(["--rooms", "shop/*", "--ttl-seconds", "600"])
        .output()
        .expect("tinybase-server token");
    assert!(made.status.success(), "tinybase-server token failed: {}", String::from_utf8_lossy(&made.stderr));
    let rw = String::from_utf8(made.stdout).unwrap().trim().to_string();
    let ro = token(json!({"rooms": ["shop/*"], "exp": now + 600, "ro": true}));
    let pets_only = token(json!({"rooms": "shop/pets", "exp": now + 600}));
    let expired = token(json!({"rooms": ["shop/*"], "exp": now - 3600}));
    let elsewhere = token(json!({"rooms": ["elsewhere"], "exp": now + 600}));
    let forged = sign_hs256(b"not-the-secret", &json!({"rooms": ["*"], "exp": now + 600}).to_string());
    let pets = |token: &str| server.url(&format!("shop/pets?token={token}"));

    refused(&tb, "no-token", server.url("shop/pets"), "no token");
    refused(&tb, "expired", pets(&expired), "an expired token");
    refused(&tb, "wrong-room", pets(&elsewhere), "a token for another room");
    refused(&tb, "forged", pets(&forged), "a token signed with another secret");
    let channel = |name: &str, token: &str, channel: &str| {
        tb.open(json!({"name": name, "url": server.url(&format!("shop?token={token}")), "channel": channel}))
    };
    assert!(channel("other-channel", &pets_only, "cats").is_err(), "a multiplexed subscribe to a room the token does not open was let in");
    let no_token = WsSynchronizer::new(
        &tinybase::MergeableStore::new(None),
        WsOptions { reconnect: false, connect_timeout: Duration::from_secs(5), ..ws_options(&OursSpec { url: server.url("shop/pets"), ..Default::default() }) },
    );
    assert!(no_token.is_err(), "our client got in without a token");

    // Who is let in: a TinyBase writer (token in the query), ours (Authorization header) and a
    // read-only TinyBase client, multiplexed on the token that opens only shop/pets.
    tb.open(json!({"name": "W", "url": pets(&rw)})).expect("a valid token is accepted");
    let ours = Ours::open(
        "O",
        &OursSpec { url: server.url("shop/pets"), headers: vec![("Authorization".into(), format!("Bearer {rw}"))], ..Default::default() },
    );
    channel("R", &ro, "pets").expect("a read-only token is accepted");
    tb.call("W", "setCell", json!(["t", "from", "W", 1]));
    script::call_op(&ours.store, "setCell", &[json!("t"), json!("from"), json!("O"), json!(2)], false).unwrap();
    let has = |name: &str, cell: &str| tb.content(name)[0]["t"]["from"].get(cell).is_some();
    wait_for("the read-only client pulls what the others write", Duration::from_secs(5), || has("R", "W") && has("R", "O"));
    tb.call("R", "setCell", json!(["t", "from", "R", 3]));
    tb.node.ok("save", json!({"name": "R"}));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!has("W", "R"), "a read-only client's write reached a TinyBase client");
    assert!(ours.content()[0]["t"]["from"].get("R").is_none(), "a read-only client's write reached our client");
    tb.open(json!({"name": "late", "url": pets(&rw)})).expect("late joiner");
    std::thread::sleep(Duration::from_millis(500));
    assert!(has("late", "W") && has("late", "O"), "the late joiner misses the writers' cells: {}", tb.content("late"));
    assert!(!has("late", "R"), "a read-only client's write reached the room");
    eprintln!("tinybase-server auth: no token, expired, wrong room, forged, wrong channel refused; a `tinybase-server token` token let in; read-only writes reached nobody");
}

#[test]
fn our_server_killed_and_restarted_while_everybody_edits() {
    let dir = TempDir::new("reconnect");
    let server = OurServer::start(&dir, 0, &["--data".to_string(), dir.join("data").display().to_string()]);
    let tb = TbClients::start(&dir);
    let room = "reconnect";
    let o1 = Ours::open("O1", &OursSpec { url: server.url(room), anti_entropy: ANTI_ENTROPY, ..Default::default() });
    let o2 = Ours::open("O2", &OursSpec { url: server.url(""), channel: Some(room.into()), anti_entropy: ANTI_ENTROPY, ..Default::default() });
    let tb_specs = [json!({"name": "T1", "url": server.url(room)}), json!({"name": "T2", "url": server.url(""), "channel": room})];
    for spec in &tb_specs {
        tb.open(spec.clone()).expect("TinyBase client joins");
    }
    let tb_ids: Vec<u64> = ["T1", "T2"]
        .iter()
        .enumerate()
        .map(|(i, n)| tb.node.send("writers", json!({"name": n, "seed": i + 41, "count": 250, "maxPauseMs": 12})))
        .collect();
    let writers = [our_writers(&o1.store, 51, 250, 12, "O1"), our_writers(&o2.store, 52, 250, 12, "O2")];
    std::thread::sleep(Duration::from_millis(700));
    assert!(writers.iter().all(|w| !w.is_finished()), "the edits ended before the server was killed: make them longer");
    let mut server = server;
    server.kill();
    std::thread::sleep(Duration::from_millis(300));
    let server = server.restart(&dir);
    // TinyBase's clients stop for good when their socket closes (PROTOCOL.md 8.5): the app makes
    // a new socket and synchronizer, with the same store. Ours reconnect by themselves.
    for spec in &tb_specs {
        let name = spec["name"].as_str().unwrap();
        wait_for(&format!("{name} notices the server is gone"), Duration::from_secs(10), || {
            !tb.node.ok("info", json!({"name": name}))["open"].as_bool().unwrap_or(true)
        });
        let mut attempts = 0;
        while let Err(e) = tb.open(spec.clone()) {
            attempts += 1;
            assert!(attempts < 20, "{name} cannot rejoin the restarted server: {e}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let mut edits: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    for id in tb_ids {
        edits += tb.node.wait(id, Duration::from_secs(60)).expect("writers")["edits"].as_u64().unwrap_or(0);
    }
    let party = Party { ours: vec![&o1, &o2], tb: Some(&tb), tb_names: vec!["T1".into(), "T2".into()], extra: None };
    let (hashes, took) = party.converge("after the server was killed and restarted", CONVERGE);
    for o in [&o1, &o2] {
        assert_eq!(o.sync.connection_state(), ConnectionState::Open, "{} did not reconnect", o.name);
    }
    late_joiner(&tb, &server, room, "late", hashes, "after the restart");
    eprintln!("tinybase-server killed and restarted during {edits} edits: 2 of ours + 2 TinyBase clients converged to {hashes:?} in {took:?}");
}

/// A size of the load test from the environment, else `default`.
fn load_size(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The open-file limit of this process (each client and each server connection holds one).
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// `TB_LOAD_CLIENTS` (default 1000) of our clients in `TB_LOAD_ROOMS` (50) rooms make
/// `TB_LOAD_EDITS` (20,000) edits in all; every room must converge, everything within 60 s.
/// Measures the server's memory per connection (VmRSS before and after the connections).
#[test]
fn load_clients_rooms_edits() {
    let (clients, rooms, edits) =
        (load_size("TB_LOAD_CLIENTS", 1000), load_size("TB_LOAD_ROOMS", 50), load_size("TB_LOAD_EDITS", 20_000));
    if let Some(limit) = open_file_limit() {
        assert!(limit > clients + 200, "{clients} clients need more than {limit} open files: `ulimit -n {}` first", 2 * clients + 400);
    }
    let dir = TempDir::new("load");
    let limit = (2 * clients).to_string();
    let server = OurServer::start(
        &dir,
        0,
        &["--data".into(), dir.join("data").display().to_string(), "--max-connections-per-ip".into(), limit.clone(), "--max-clients".into(), limit],
    );
    std::thread::sleep(Duration::from_millis(200));
    let rss_before = server.proc.rss_bytes();
    let started = Instant::now();
    // Connect everybody, then wait for every initial load and save.
    let mut ours: Vec<(usize, Ours)> = Vec::with_capacity(clients);
    let mut pending = Vec::with_capacity(clients);
    for i in 0..clients {
        let room = i % rooms;
        let store = tinybase::MergeableStore::new(None);
        let options = ws_options(&OursSpec { url: server.url(&format!("load/{room}")), ..Default::default() });
        let sync = WsSynchronizer::new(&store, options).unwrap_or_else(|e| panic!("client {i}: {e}"));
        pending.push(sync.start_sync_async(None));
        ours.push((room, Ours { name: format!("L{i}"), store, sync, errors: Default::default() }));
    }
    for (i, started) in pending.into_iter().enumerate() {
        started.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| panic!("client {i}: startSync did not finish"));
    }
    let connected = started.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let rss_connected = server.proc.rss_bytes();
    let per_connection = rss_connected.saturating_sub(rss_before) / clients as u64;

    // The edits: one thread per 100 clients, round-robin over its clients, a short pause per round.
    let per_client = edits.div_ceil(clients);
    let threads: Vec<_> = ours
        .chunks(100)
        .enumerate()
        .map(|(t, chunk)| {
            let stores: Vec<(String, tinybase::MergeableStore)> = chunk.iter().map(|(_, o)| (o.name.clone(), o.store.clone())).collect();
            std::thread::spawn(move || {
                let mut rng = rng::Rng(t as u64 + 1);
                let mut made = 0usize;
                for _ in 0..per_client {
                    for (name, store) in &stores {
                        let (op, args) = edits::random_op(&mut rng, name);
                        script::call_op(store, op, &args, false).expect("random edit");
                        made += 1;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                made
            })
        })
        .collect();
    let made: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let edited = started.elapsed();

    // Every room converges: all its clients have the same hashes.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut by_room: Vec<Option<(u32, u32)>> = vec![None; rooms];
        let mut split = Vec::new();
        for (room, o) in &ours {
            let h = o.hashes();
            match by_room[*room] {
                None => by_room[*room] = Some(h),
                Some(first) if first != h => split.push(*room),
                _ => {}
            }
        }
        if split.is_empty() {
            break;
        }
        split.dedup();
        assert!(Instant::now() < deadline, "{} of {rooms} rooms did not converge within 60 s after the edits: {split:?}", split.len());
        std::thread::sleep(Duration::from_millis(200));
    }
    let converged = started.elapsed();
    let rss_end = server.proc.rss_bytes();
    eprintln!(
        "load: {clients} clients in {rooms} rooms, {made} edits: connected and synced in {connected:?}, edits done at {edited:?}, all rooms converged at {converged:?}; server RSS {} MiB idle, {} MiB connected ({} KiB per connection), {} MiB at the end",
        rss_before >> 20,
        rss_connected >> 20,
        per_connection >> 10,
        rss_end >> 20
    );
    assert!(made >= edits, "only {made} edits");
    assert!(converged < Duration::from_secs(60), "the load run took {converged:?} (budget 60 s)");
    // Each destroy closes its socket cleanly (and waits for that): in parallel, a bounded cleanup.
    let destroyed = Instant::now();
    std::thread::scope(|scope| {
        for chunk in ours.chunks(50) {
            scope.spawn(move || chunk.iter().for_each(|(_, o)| o.sync.destroy()));
        }
    });
    eprintln!("load: {clients} clients destroyed in {:?}", destroyed.elapsed());
}
