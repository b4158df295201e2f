//! A WebSocket peer: joins a room, writes a few cells, waits until the room is quiet, prints
//! its content hashes (the same on every peer once they have converged).
//!
//! `ws_peer URL NAME [--channel ID] [--cells N] [--fragment-size BYTES] [--quiet-ms MS]
//!  [--ca-file PEM] [--header 'Name: value'] [--stay-seconds S]`
//!
//! Prints `{"name", "tables_hash", "values_hash", "cells"}` as one JSON line.
//! For example, with `tinybase-server --listen 127.0.0.1:8043` running:
//! `cargo run --release --example ws_peer -- ws://127.0.0.1:8043/demo alice`

use std::time::{Duration, Instant};
use tinybase::sync::ws::{WsOptions, WsSynchronizer};
use tinybase::sync::SynchronizerOptions;
use tinybase::MergeableStore;

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 || args[0].starts_with("--") || args[1].starts_with("--") {
        eprintln!("usage: ws_peer URL NAME [--channel ID] [--cells N] [--fragment-size BYTES] [--quiet-ms MS] [--ca-file PEM] [--header 'Name: value'] [--stay-seconds S]");
        std::process::exit(2);
    }
    let (url, name) = (args[0].clone(), args[1].clone());
    let number = |f: &str, d: u64| flag(&args, f).map_or(d, |v| v.parse().unwrap_or_else(|_| panic!("{f} takes a number")));
    let cells = number("--cells", 10);
    let quiet = Duration::from_millis(number("--quiet-ms", 500));
    let headers = flag(&args, "--header")
        .and_then(|h| h.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
        .into_iter()
        .collect();
    let store = MergeableStore::new(None);
    let options = WsOptions {
        url,
        channel_id: flag(&args, "--channel"),
        fragment_size: flag(&args, "--fragment-size").and_then(|s| s.parse().ok()),
        ca_file: flag(&args, "--ca-file").map(Into::into),
        headers,
        reconnect: false,
        sync: SynchronizerOptions { anti_entropy: Some(Duration::from_secs(5)), ..Default::default() },
        ..Default::default()
    };
    let sync = match WsSynchronizer::new(&store, options) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ws_peer: {e}");
            std::process::exit(1);
        }
    };
    sync.start_sync(None);
    store.transaction(|s| {
        for i in 0..cells {
            s.set_cell("peers", &name, &format!("c{i}"), i as f64).unwrap();
        }
    });
    // Quiet: nothing received, nothing pending, for a while (peers may still be joining).
    let stay = Duration::from_secs_f64(flag(&args, "--stay-seconds").and_then(|s| s.parse().ok()).unwrap_or(0.0));
    let started = Instant::now();
    let mut last = (sync.get_synchronizer_stats(), Instant::now());
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let stats = sync.get_synchronizer_stats();
        if stats != last.0 || !sync.is_idle() {
            last = (stats, Instant::now());
        } else if last.1.elapsed() >= quiet && started.elapsed() >= stay {
            break;
        }
    }
    let (t, v) = store.get_mergeable_content_hashes();
    let total: usize = store.get_tables().values().map(|t| t.values().map(|r| r.len()).sum::<usize>()).sum();
    println!("{{\"name\":{},\"tables_hash\":{t},\"values_hash\":{v},\"cells\":{total}}}", serde_json::Value::from(name));
    sync.destroy();
}
