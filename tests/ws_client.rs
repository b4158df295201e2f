//! The WebSocket client against a relay started in the test (tests/support/ws_relay.rs,
//! TinyBase's WsServerSimple rules) and against TinyBase's own WsServer in node: legacy and
//! multiplexed sync, fragments, reconnecting, a dead server, wss:// with a private CA, close
//! codes.

#[path = "support/ws_relay.rs"]
mod ws_relay;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tinybase::sync::ws::{WsClient, WsOptions, WsSynchronizer};
use tinybase::sync::{ConnectionState, SyncStatus, SynchronizerOptions};
use tinybase::{Cell, MergeableStore};
use ws_relay::Relay;

const WAIT: Duration = Duration::from_secs(8);

fn options(url: &str) -> WsOptions {
    WsOptions {
        url: url.to_string(),
        reconnect_min: Duration::from_millis(20),
        reconnect_max: Duration::from_millis(300),
        connect_timeout: Duration::from_secs(2),
        ..Default::default()
    }
}

fn same(a: &MergeableStore, b: &MergeableStore) -> bool {
    a.get_mergeable_content_hashes() == b.get_mergeable_content_hashes() && a.get_content() == b.get_content()
}

/// Polls `cond` until it holds or `timeout` passes.
fn eventually(timeout: Duration, cond: impl Fn() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}

/// A status hook recording every connection state reported.
fn recorder() -> (Arc<Mutex<Vec<Option<ConnectionState>>>>, tinybase::sync::StatusHook) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    (seen, Arc::new(move |status: &SyncStatus| s.lock().unwrap().push(status.connection.clone())))
}

fn errors() -> (Arc<Mutex<Vec<String>>>, tinybase::sync::ErrorHook) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    (seen, Arc::new(move |e: &str| s.lock().unwrap().push(e.to_string())))
}

#[test]
fn two_stores_sync_through_a_relay_in_legacy_framing() {
    let relay = Relay::start(0, None);
    let (a, b) = (MergeableStore::new(Some("a")), MergeableStore::new(Some("b")));
    a.set_cell("pets", "fido", "species", "dog").unwrap();
    let (states, hook) = recorder();
    let mut oa = options(&relay.url("room", false));
    oa.sync.on_status = Some(hook);
    oa.headers = vec![("Authorization".into(), "Bearer token-a".into())];
    let sa = WsSynchronizer::new(&a, oa).unwrap();
    assert_eq!(sa.connection_state(), ConnectionState::Open);
    let sb = WsSynchronizer::new(&b, options(&relay.url("room", false))).unwrap();
    // Another room sees nothing.
    let c = MergeableStore::new(Some("c"));
    let sc = WsSynchronizer::new(&c, options(&relay.url("other", false))).unwrap();
    sa.start_sync(None);
    sb.start_sync(None);
    sc.start_sync(None);
    b.set_value("open", true).unwrap();
    assert!(eventually(WAIT, || same(&a, &b) && a.get_value("open").is_some()), "a and b converge");
    assert_eq!(b.get_cell("pets", "fido", "species"), Some(Cell::from("dog")));
    a.set_cell("pets", "felix", "species", "cat").unwrap();
    assert!(eventually(WAIT, || b.get_cell("pets", "felix", "species").is_some()), "a steady-state change arrives");
    assert!(c.get_tables().is_empty(), "rooms are separate");
    assert!(states.lock().unwrap().contains(&Some(ConnectionState::Open)), "the status hook reports the connection");
    assert!(eventually(WAIT, || relay.connections() == 3));
    assert!(relay.upgrades().contains(&("room".to_string(), Some("Bearer token-a".to_string()))), "extra headers go with the upgrade");
}

#[test]
fn multiplexed_channels_share_one_socket_and_rooms_with_legacy_clients() {
    let relay = Relay::start(0, None);
    let base = relay.url("shop", false);
    let (a1, a2, b1, b2) = (MergeableStore::new(None), MergeableStore::new(None), MergeableStore::new(None), MergeableStore::new(None));
    let ca = WsClient::new(&options(&base)).unwrap();
    let cb = WsClient::new(&options(&base)).unwrap();
    let s_a1 = ca.join(&a1, "pets", SynchronizerOptions::default()).unwrap();
    let s_a2 = ca.join(&a2, "toys", SynchronizerOptions::default()).unwrap();
    let s_b1 = cb.join(&b1, "pets", SynchronizerOptions::default()).unwrap();
    let s_b2 = cb.join(&b2, "toys", SynchronizerOptions::default()).unwrap();
    assert!(ca.join(&MergeableStore::new(None), "pets", SynchronizerOptions::default()).is_err_and(|e| e.to_string().contains("tinybase:7")));
    assert!(ca.join(&MergeableStore::new(None), "a/../b", SynchronizerOptions::default()).is_err_and(|e| e.to_string().contains("tinybase:6")));
    // A legacy client on /shop/pets is in the room of the channel pets (8.1).
    let l = MergeableStore::new(None);
    let sl = WsSynchronizer::new(&l, options(&relay.url("shop/pets", false))).unwrap();
    assert!(eventually(WAIT, || relay.connections() == 3), "two multiplexed sockets and a legacy one");
    assert_eq!(s_a1.connection_state(), ConnectionState::Open);
    assert_eq!(ca.channel_ids().len(), 2);
    for s in [&s_a1, &s_a2, &s_b1, &s_b2] {
        s.start_sync(None);
    }
    sl.start_sync(None);
    a1.set_cell("pets", "fido", "species", "dog").unwrap();
    b2.set_cell("toys", "ball", "color", "red").unwrap();
    l.set_value("legacy", true).unwrap();
    assert!(eventually(WAIT, || same(&a1, &b1) && same(&a1, &l) && a1.get_value("legacy").is_some() && b1.get_cell("pets", "fido", "species").is_some()));
    assert!(eventually(WAIT, || same(&a2, &b2) && a2.get_cell("toys", "ball", "color").is_some()));
    assert!(a2.get_value("legacy").is_none() && b2.get_tables().get("pets").is_none(), "channels are separate rooms");
    // Destroying one channel unsubscribes it; the socket stays for the other.
    s_a1.destroy();
    assert!(eventually(WAIT, || relay.controls().iter().any(|c| c.contains(",-1,[2,\"pets\"]"))), "Unsubscribe sent");
    assert!(relay.closes().is_empty());
    a2.set_cell("toys", "kite", "color", "blue").unwrap();
    assert!(eventually(WAIT, || b2.get_cell("toys", "kite", "color").is_some()));
    // The last one closes the socket, cleanly.
    s_a2.destroy();
    assert!(eventually(WAIT, || relay.closes().contains(&(1000, String::new()))));
    assert!(eventually(WAIT, || relay.connections() == 2));
    assert_eq!(ca.connection_state(), ConnectionState::Closed { code: 1000, reason: String::new() });
}

#[test]
fn payloads_over_a_mebibyte_go_through_in_fragments() {
    let relay = Relay::start(0, None);
    let (a, b) = (MergeableStore::new(None), MergeableStore::new(None));
    let big: String = (0..1_500_000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    a.set_cell("files", "f1", "text", big.as_str()).unwrap();
    let mut oa = options(&relay.url("big", false));
    oa.fragment_size = Some(64 * 1024);
    let ob = WsOptions { fragment_size: Some(64 * 1024), ..options(&relay.url("big", false)) };
    let sa = WsSynchronizer::new(&a, oa).unwrap();
    let sb = WsSynchronizer::new(&b, ob).unwrap();
    sa.start_sync(None);
    sb.start_sync(None);
    assert!(eventually(WAIT, || same(&a, &b)), "the big cell arrives");
    assert_eq!(b.get_cell("files", "f1", "text"), Some(Cell::from(big.as_str())));
    // 1.5 MB in fragments of 64 KiB: at least 23 frames for the big payload alone.
    assert!(relay.frames_in() >= 23, "{} frames", relay.frames_in());
    // Multiplexed too, the other way round.
    let client = WsClient::new(&WsOptions { fragment_size: Some(100_000), ..options(&relay.url("m", false)) }).unwrap();
    let (c, d) = (MergeableStore::new(None), MergeableStore::new(None));
    let sc = client.join(&c, "files", SynchronizerOptions::default()).unwrap();
    let sd = client.join(&d, "other", SynchronizerOptions::default()).unwrap();
    let e = MergeableStore::new(None);
    let se = WsSynchronizer::new(&e, options(&relay.url("m/files", false))).unwrap();
    sc.start_sync(None);
    sd.start_sync(None);
    se.start_sync(None);
    e.set_value("big", big.as_str()).unwrap();
    assert!(eventually(WAIT, || same(&c, &e) && c.get_value("big").is_some()));
    assert!(d.get_values().is_empty());
}

#[test]
fn reconnects_after_the_server_restarts_and_converges_while_both_edit() {
    let relay = Relay::start(0, None);
    let port = relay.port();
    let (a, b) = (MergeableStore::new(None), MergeableStore::new(None));
    let sa = WsSynchronizer::new(&a, options(&relay.url("r", false))).unwrap();
    let sb = WsSynchronizer::new(&b, options(&relay.url("r", false))).unwrap();
    // A multiplexed client in the same room (base path "" + channel "r"), editing nothing. A
    // load pulls from one peer only (6.4): if c resubscribes after b re-announced and its load
    // is answered by a that has not pulled b's offline edits yet, nobody ever sends them to c
    // (TinyBase's protocol with three peers and no server store). Anti-entropy is the repair
    // (PROTOCOL.md 12.7); a and b go without it, so their reconnect repair is what is tested.
    let c = MergeableStore::new(None);
    let oc = WsOptions {
        channel_id: Some("r".into()),
        sync: SynchronizerOptions { anti_entropy: Some(Duration::from_millis(300)), ..Default::default() },
        ..options(&relay.url("", false))
    };
    let sc = WsSynchronizer::new(&c, oc).unwrap();
    sa.start_sync(None);
    sb.start_sync(None);
    sc.start_sync(None);
    let edit = |s: &MergeableStore, who: &str, from: usize, to: usize| {
        for i in from..to {
            s.set_cell("t", &format!("{who}{}", i % 7), "n", i as f64).unwrap();
            s.set_value(who, i as f64).unwrap();
            std::thread::sleep(Duration::from_millis(3));
        }
    };
    edit(&a, "a", 0, 30);
    edit(&b, "b", 0, 30);
    relay.kill();
    assert!(eventually(WAIT, || sa.connection_state() != ConnectionState::Open && sb.connection_state() != ConnectionState::Open));
    // Both keep editing while the server is away.
    std::thread::scope(|s| {
        s.spawn(|| edit(&a, "a", 30, 90));
        s.spawn(|| edit(&b, "b", 30, 90));
        std::thread::sleep(Duration::from_millis(150));
        let relay = Relay::start(port, None);
        std::thread::sleep(Duration::from_millis(100));
        // ...and after it is back.
        assert!(eventually(WAIT, || same(&a, &b) && same(&a, &c) && a.get_value("b") == Some(Cell::from(89.0)) && b.get_value("a") == Some(Cell::from(89.0))),
            "converged after the restart: a {:?} {:?} b {:?} {:?} c {:?}; a's values {:?}, b's {:?}, stats {:?} {:?} {:?}",
            a.get_mergeable_content_hashes(), sa.connection_state(), b.get_mergeable_content_hashes(), sb.connection_state(), c.get_mergeable_content_hashes(),
            a.get_values(), b.get_values(), sa.get_synchronizer_stats(), sb.get_synchronizer_stats(), sc.get_synchronizer_stats());
        assert_eq!(sa.connection_state(), ConnectionState::Open);
        assert_eq!(sc.connection_state(), ConnectionState::Open);
        drop(relay);
    });
}

#[test]
fn a_server_closing_with_1001_is_reported_and_reconnected() {
    let relay = Relay::start(0, None);
    let (states, hook) = recorder();
    let (a, b) = (MergeableStore::new(None), MergeableStore::new(None));
    let mut o = options(&relay.url("g", false));
    o.sync.on_status = Some(hook);
    let sa = WsSynchronizer::new(&a, o).unwrap();
    let sb = WsSynchronizer::new(&b, options(&relay.url("g", false))).unwrap();
    sa.start_sync(None);
    sb.start_sync(None);
    relay.close_all(1001, "going away");
    let closed = Some(ConnectionState::Closed { code: 1001, reason: "going away".into() });
    assert!(eventually(WAIT, || states.lock().unwrap().contains(&closed)), "{:?}", states.lock().unwrap());
    assert!(eventually(WAIT, || sa.connection_state() == ConnectionState::Open && sb.connection_state() == ConnectionState::Open));
    a.set_value("after", true).unwrap();
    assert!(eventually(WAIT, || b.get_value("after").is_some()));
    assert!(eventually(WAIT, || relay.connections() == 2));
}

#[test]
fn a_dead_server_is_noticed_by_ping_and_the_connection_comes_back() {
    let relay = Relay::start(0, None);
    let port = relay.port();
    let (states, hook) = recorder();
    let (errs, ehook) = errors();
    let a = MergeableStore::new(None);
    let mut o = options(&relay.url("p", false));
    o.ping_interval = Duration::from_millis(150);
    o.connect_timeout = Duration::from_millis(400);
    o.sync.on_status = Some(hook);
    o.sync.on_ignored_error = Some(ehook);
    let sa = WsSynchronizer::new(&a, o).unwrap();
    sa.start_sync(None);
    assert_eq!(sa.connection_state(), ConnectionState::Open);
    // The server stops answering (TCP stays up: only ping finds out).
    relay.freeze();
    let frozen = Instant::now();
    assert!(eventually(Duration::from_secs(3), || sa.connection_state() != ConnectionState::Open));
    assert!(frozen.elapsed() < Duration::from_millis(1500), "noticed within a few intervals: {:?}", frozen.elapsed());
    assert!(eventually(WAIT, || states.lock().unwrap().iter().any(|s| matches!(s, Some(ConnectionState::Closed { code: 1006, .. })))));
    assert!(errs.lock().unwrap().iter().any(|e| e.starts_with("tinybase:5")));
    // A live server on the same port: back to Open, and syncing again.
    relay.kill();
    let relay = Relay::start(port, None);
    assert!(eventually(WAIT, || sa.connection_state() == ConnectionState::Open));
    assert!(eventually(WAIT, || states.lock().unwrap().last() == Some(&Some(ConnectionState::Open))));
    let b = MergeableStore::new(None);
    b.set_value("back", true).unwrap();
    let sb = WsSynchronizer::new(&b, options(&relay.url("p", false))).unwrap();
    sb.start_sync(None);
    assert!(eventually(WAIT, || same(&a, &b) && a.get_value("back").is_some()));
}

/// A private CA and a certificate for localhost signed by it: (CA PEM, server config).
fn private_ca() -> (String, Arc<rustls::ServerConfig>) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()]).unwrap().signed_by(&key, &issuer).unwrap();
    let der_key = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], der_key)
        .unwrap();
    (ca_cert.pem(), Arc::new(config))
}

#[test]
fn wss_with_a_private_ca_from_a_file() {
    let (ca_pem, config) = private_ca();
    let relay = Relay::start(0, Some(config));
    let dir = std::env::temp_dir().join(format!("tb-ws-ca-{}-{}", std::process::id(), relay.port()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let url = relay.url("secure", true);
    // Without the CA the certificate is refused.
    let refused = WsSynchronizer::new(&MergeableStore::new(None), WsOptions { reconnect: false, ..options(&url) });
    assert!(refused.is_err_and(|e| e.to_string().contains("tinybase:5")));
    let (a, b) = (MergeableStore::new(None), MergeableStore::new(None));
    a.set_cell("t", "r", "c", "secret").unwrap();
    let sa = WsSynchronizer::new(&a, WsOptions { ca_file: Some(ca_file.clone()), reconnect: false, ..options(&url) }).unwrap();
    let client = WsClient::new(&WsOptions { ca_file: Some(ca_file.clone()), ..options(&relay.url("", true)) }).unwrap();
    let sb = client.join(&b, "secure", SynchronizerOptions::default()).unwrap();
    sa.start_sync(None);
    sb.start_sync(None);
    assert!(eventually(WAIT, || same(&a, &b) && b.get_cell("t", "r", "c").is_some()));
    // A CA file that is not one is refused at once.
    std::fs::write(dir.join("bad.pem"), "not a certificate").unwrap();
    assert!(WsSynchronizer::new(&MergeableStore::new(None), WsOptions { ca_file: Some(dir.join("bad.pem")), ..options(&url) }).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn malformed_frames_from_the_server_close_the_socket_with_1007() {
    let relay = Relay::start(0, None);
    let (errs, ehook) = errors();
    let a = MergeableStore::new(None);
    let mut o = options(&relay.url("m", false));
    o.sync.on_ignored_error = Some(ehook);
    o.reconnect = false;
    let sa = WsSynchronizer::new(&a, o).unwrap();
    sa.start_sync(None);
    // Injected frames go to the connections the relay has registered.
    assert!(eventually(WAIT, || relay.connections() == 1));
    relay.inject("no newline here");
    assert!(eventually(WAIT, || relay.closes().contains(&(1007, "tinybase:14".to_string()))), "{:?}", relay.closes());
    assert!(eventually(WAIT, || errs.lock().unwrap().iter().any(|e| e == "tinybase:14")));
    assert!(eventually(WAIT, || sa.connection_state() == ConnectionState::Closed { code: 1007, reason: "tinybase:14".into() }));
    assert!(eventually(WAIT, || relay.connections() == 0));
    // Multiplexed: a data frame for a channel never subscribed is malformed too.
    let client = WsClient::new(&options(&relay.url("", false))).unwrap();
    let s = client.join(&MergeableStore::new(None), "c", SynchronizerOptions::default()).unwrap();
    assert!(eventually(WAIT, || relay.connections() == 1));
    relay.inject("M\nnot-mine\n\n[null,1,\"\"]");
    assert!(eventually(WAIT, || relay.closes().iter().filter(|c| c.0 == 1007).count() == 2));
    drop(s);
    assert!(eventually(WAIT, || relay.connections() == 0));
    // A frame larger than any payload may be: 1013 tinybase:15:socket (7.3).
    let (errs, ehook) = errors();
    let mut o = options(&relay.url("m", false));
    o.sync.on_ignored_error = Some(ehook);
    let _big = WsSynchronizer::new(&MergeableStore::new(None), o).unwrap();
    assert!(eventually(WAIT, || relay.connections() == 1));
    relay.inject(&"x".repeat(17 << 20));
    assert!(eventually(WAIT, || relay.closes().contains(&(1013, "tinybase:15:socket".to_string()))), "{:?}", relay.closes());
    assert!(eventually(WAIT, || errs.lock().unwrap().iter().any(|e| e == "tinybase:15:socket")));
}

#[test]
fn a_missing_multiplex_echo_is_reported_with_tinybase_4() {
    let relay = Relay::start(0, None);
    relay.mute_controls();
    let (errs, ehook) = errors();
    let client = WsClient::new(&WsOptions { reconnect: false, ..options(&relay.url("", false)) }).unwrap();
    let sync = SynchronizerOptions { request_timeout: Duration::from_millis(300), on_ignored_error: Some(ehook), ..Default::default() };
    let started = Instant::now();
    let err = client.join(&MergeableStore::new(None), "c", sync).err().unwrap();
    assert!(err.to_string().contains("tinybase:5"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(eventually(WAIT, || errs.lock().unwrap().iter().any(|e| e == "tinybase:4:0")), "{:?}", errs.lock().unwrap());
}

#[test]
fn destroy_closes_with_1000_and_a_failed_connection_is_reported() {
    let relay = Relay::start(0, None);
    let a = MergeableStore::new(None);
    let sa = WsSynchronizer::new(&a, options(&relay.url("d", false))).unwrap();
    sa.start_sync(None);
    sa.destroy();
    assert!(eventually(WAIT, || relay.closes() == vec![(1000, String::new())]));
    assert_eq!(sa.connection_state(), ConnectionState::Closed { code: 1000, reason: String::new() });
    assert!(eventually(WAIT, || relay.connections() == 0));
    // Dropping the last reference destroys too.
    let sb = WsSynchronizer::new(&a, options(&relay.url("d", false))).unwrap();
    drop(sb);
    assert!(eventually(WAIT, || relay.closes().len() == 2));
    // Nobody listening: Err with reconnect off, Ok (retrying) with it on.
    let port = relay.port();
    relay.kill();
    let url = format!("ws://127.0.0.1:{port}/d");
    let started = Instant::now();
    let err = WsSynchronizer::new(&a, WsOptions { reconnect: false, ..options(&url) }).err().unwrap();
    assert!(err.to_string().contains("tinybase:5"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
    let retrying = WsSynchronizer::new(&a, options(&url)).unwrap();
    assert!(matches!(retrying.connection_state(), ConnectionState::Closed { code: 1006, .. } | ConnectionState::Connecting));
    let relay = Relay::start(port, None);
    assert!(eventually(WAIT, || retrying.connection_state() == ConnectionState::Open));
    drop(retrying);
    assert!(eventually(WAIT, || relay.closes() == vec![(1000, String::new())]));
    // Invalid options are refused at once.
    assert!(WsSynchronizer::new(&a, options("http://127.0.0.1/x")).is_err());
    assert!(WsSynchronizer::new(&a, options("not a url")).is_err());
    assert!(WsSynchronizer::new(&a, WsOptions { headers: vec![("bad header".into(), "x".into())], ..options(&url) }).is_err());
}

/// TinyBase's WsServer (pure relay) in node, killed on drop.
struct TinyBaseServer {
    child: std::process::Child,
    port: u16,
}

impl TinyBaseServer {
    fn start() -> TinyBaseServer {
        use std::io::BufRead;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
        assert!(dir.join("node_modules/ws").is_dir(), "TinyBase's server needs the ws package: run `npm ci` in tests/interop");
        let script = "import {WebSocketServer} from 'ws';
            import {createWsServer} from 'tinybase/synchronizers/synchronizer-ws-server';
            const wss = new WebSocketServer({host: '127.0.0.1', port: 0});
            createWsServer(wss, undefined, (e) => process.stderr.write('ignored ' + e + '\\n'));
            wss.on('listening', () => process.stdout.write('listening ' + wss.address().port + '\\n'));
            process.stdin.on('end', () => process.exit(0));
            process.stdin.resume();";
        let mut child = std::process::Command::new("node")
            .args(["--input-type=module", "-e", script])
            .current_dir(&dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("node");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let mut server = TinyBaseServer { child, port: 0 };
        server.port = line.trim().strip_prefix("listening ").and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("no port from TinyBase's server: {line:?}"));
        server
    }
}

impl Drop for TinyBaseServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn tinybase_ws_server_relays_our_legacy_multiplexed_and_fragmented_clients() {
    let server = TinyBaseServer::start();
    let base = format!("ws://127.0.0.1:{}", server.port);
    let (a, b, c) = (MergeableStore::new(None), MergeableStore::new(None), MergeableStore::new(None));
    let big: String = "0123456789".repeat(120_000);
    a.set_cell("docs", "d1", "body", big.as_str()).unwrap();
    b.set_value("from_b", true).unwrap();
    c.set_cell("docs", "d2", "body", "small").unwrap();
    // Legacy on /shop/docs, fragmenting; two multiplexed channels on /shop sharing a socket.
    let sa = WsSynchronizer::new(&a, WsOptions { fragment_size: Some(50_000), ..options(&format!("{base}/shop/docs")) }).unwrap();
    let client = WsClient::new(&WsOptions { fragment_size: Some(4096), ..options(&format!("{base}/shop")) }).unwrap();
    let sb = client.join(&b, "docs", SynchronizerOptions::default()).unwrap();
    let other = MergeableStore::new(None);
    let so = client.join(&other, "elsewhere", SynchronizerOptions::default()).unwrap();
    let sc = WsSynchronizer::new(&c, WsOptions { channel_id: Some("docs".into()), ..options(&format!("{base}/shop")) }).unwrap();
    for s in [&sa, &sb, &so, &sc] {
        assert_eq!(s.connection_state(), ConnectionState::Open);
        s.start_sync(None);
    }
    assert!(eventually(WAIT, || same(&a, &b) && same(&a, &c) && a.get_value("from_b").is_some() && b.get_cell("docs", "d1", "body").is_some() && a.get_cell("docs", "d2", "body").is_some()));
    assert_eq!(c.get_cell("docs", "d1", "body"), Some(Cell::from(big.as_str())));
    assert!(other.get_tables().is_empty() && other.get_values().is_empty());
    // Steady state both ways.
    b.set_cell("docs", "d3", "body", "from b").unwrap();
    a.set_value("from_a", 1.0).unwrap();
    assert!(eventually(WAIT, || same(&a, &b) && same(&a, &c) && c.get_value("from_a").is_some() && a.get_cell("docs", "d3", "body").is_some()));
    for s in [&sa, &sb, &so, &sc] {
        s.destroy();
    }
}

#[test]
fn destroy_does_not_wait_for_a_server_that_never_answers() {
    let relay = Relay::start(0, None);
    relay.freeze();
    let a = MergeableStore::new(None);
    let started = Instant::now();
    let s = WsSynchronizer::new(&a, WsOptions { connect_timeout: Duration::from_millis(600), ..options(&relay.url("x", false)) }).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(500), "waited for the first attempt");
    assert!(matches!(s.connection_state(), ConnectionState::Closed { code: 1006, .. } | ConnectionState::Connecting));
    // Retrying now, in the middle of another handshake that will never complete.
    std::thread::sleep(Duration::from_millis(350));
    let destroying = Instant::now();
    s.destroy();
    assert!(destroying.elapsed() < Duration::from_millis(300), "{:?}", destroying.elapsed());
}
