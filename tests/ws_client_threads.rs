//! Destroying WebSocket synchronizers ends every thread they started (a process of its own, so
//! other tests' threads are not counted).

#[path = "support/ws_relay.rs"]
mod ws_relay;

use std::time::{Duration, Instant};
use tinybase::sync::ws::{WsClient, WsOptions, WsSynchronizer};
use tinybase::sync::SynchronizerOptions;
use tinybase::MergeableStore;

/// This process's threads named `name` (an I/O thread; not its short-lived connect helpers,
/// `tinybase-ws-connect`), or starting with it when `name` ends with `*`.
fn threads(name: &str) -> usize {
    let matches = |n: &str| match name.strip_suffix('*') {
        Some(prefix) => n.starts_with(prefix),
        None => n == name,
    };
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok()).filter(|n| matches(n.trim_end())).count())
        .unwrap_or(0)
}

#[test]
fn destroy_ends_every_thread() {
    let relay = ws_relay::Relay::start(0, None);
    let options = |path: &str| WsOptions { url: relay.url(path, false), ..Default::default() };
    let store = MergeableStore::new(None);
    let legacy: Vec<WsSynchronizer> = (0..3).map(|_| WsSynchronizer::new(&store, options("room")).unwrap()).collect();
    let client = WsClient::new(&options("")).unwrap();
    let mux: Vec<WsSynchronizer> = (0..3).map(|i| client.join(&MergeableStore::new(None), &format!("c{i}"), SynchronizerOptions::default()).unwrap()).collect();
    // A thread names itself as it starts: counted once they all have.
    let end = Instant::now() + Duration::from_secs(5);
    while (threads("tinybase-ws") != 4 || threads("tinybase-sync") != 6) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(threads("tinybase-ws"), 4, "one I/O thread per socket");
    assert_eq!(threads("tinybase-sync"), 6, "one worker per synchronizer");
    for s in legacy.iter().chain(&mux) {
        s.start_sync(None);
    }
    drop(legacy);
    drop(mux);
    let end = Instant::now() + Duration::from_secs(5);
    while (threads("tinybase-ws*") + threads("tinybase-sync") > 0) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(threads("tinybase-ws*"), 0);
    assert_eq!(threads("tinybase-sync"), 0);
    assert_eq!(client.connection_state(), tinybase::sync::ConnectionState::Closed { code: 1000, reason: String::new() });
}
