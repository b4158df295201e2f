//! A WebSocket peer for the bindings' tests (a Rust store in the same room as theirs): joins
//! the room at `--url` (multiplexed on `--channel` when given), writes each `--set row=value`
//! as the string cell `t/row/c`, waits until every `--expect row=value` cell has arrived, then
//! prints its content JSON and exits 0 (1 on timeout, 2 on bad arguments or connection).
//!
//! `ws_expect_peer --url ws://127.0.0.1:8043/room [--channel ID] [--set row=value]...
//!          [--expect row=value]... [--timeout SECONDS]`

use std::time::{Duration, Instant};
use tinybase::sync::ws::{WsOptions, WsSynchronizer};
use tinybase::{Cell, MergeableStore};

fn pair(s: &str) -> Option<(String, String)> {
    s.split_once('=').map(|(r, v)| (r.to_string(), v.to_string()))
}

fn main() {
    let (mut url, mut channel, mut sets, mut expects, mut timeout) = (None, None, Vec::new(), Vec::new(), 20.0);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next();
        match (a.as_str(), v) {
            ("--url", Some(v)) => url = Some(v),
            ("--channel", Some(v)) => channel = Some(v),
            ("--set", Some(v)) => sets.extend(pair(&v)),
            ("--expect", Some(v)) => expects.extend(pair(&v)),
            ("--timeout", Some(v)) => timeout = v.parse().unwrap_or(timeout),
            _ => {
                eprintln!("usage: ws_expect_peer --url URL [--channel ID] [--set row=value]... [--expect row=value]... [--timeout S]");
                std::process::exit(2);
            }
        }
    }
    let Some(url) = url else {
        eprintln!("ws_expect_peer: --url is required");
        std::process::exit(2);
    };
    let store = MergeableStore::new(None);
    let options = WsOptions { url, channel_id: channel, reconnect: false, ..Default::default() };
    let sync = match WsSynchronizer::new(&store, options) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ws_expect_peer: {e}");
            std::process::exit(2);
        }
    };
    sync.start_sync(None);
    for (row, value) in &sets {
        if let Err(e) = store.set_cell("t", row, "c", value.as_str()) {
            eprintln!("ws_expect_peer: {e}");
            std::process::exit(2);
        }
    }
    let deadline = Instant::now() + Duration::from_secs_f64(timeout);
    let arrived = || expects.iter().all(|(row, value)| store.get_cell("t", row, "c") == Some(Cell::String(value.clone())));
    while !arrived() {
        if Instant::now() > deadline {
            eprintln!("ws_expect_peer: timed out; content {}", store.get_content_json());
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // What this peer wrote has been handed to the socket before it closes.
    sync.wait_for_idle(Duration::from_secs(5));
    println!("{}", store.get_content_json());
    sync.destroy();
}
