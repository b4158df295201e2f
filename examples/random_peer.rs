//! The peer of this library in the randomized interop suite (tests/interop/random): the line
//! protocol of tests/interop/sync (README there) with the real clock, optional anti-entropy,
//! and a `writers` command that edits the store from several threads while it syncs.
//!
//! `random_peer --unique-id ID [--timeout SECONDS] [--anti-entropy SECONDS]`

#[path = "../tests/support/line_peer.rs"]
mod line_peer;
#[path = "../tests/support/edits.rs"]
mod edits;
#[path = "../tests/support/rng.rs"]
mod rng;
#[path = "../tests/support/script.rs"]
mod script;

use edits::random_op;
use line_peer::{arg, emit, Lines, Out};
use rng::Rng;
use serde_json::{json, Value as Json};
use std::io::BufRead;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tinybase::sync::{Status, Synchronizer, SynchronizerOptions};
use tinybase::value::{parse_json, to_json_string};
use tinybase::MergeableStore;

/// `writers {seed, threads, count, maxPauseMs, txPercent, quietPercent}`: `threads` threads each
/// make `count` random edits (txPercent of them transactions of 2–4), pausing up to maxPauseMs
/// between them, or 50–250 ms (quietPercent of the time).
fn run_writers(sync: &Arc<Synchronizer>, spec: &Json, tag: &str) -> Json {
    let store = sync.get_store();
    let num = |k: &str, d: u64| spec.get(k).and_then(Json::as_f64).map_or(d, |n| n as u64);
    let (seed, threads, count, pause) = (num("seed", 1), num("threads", 2), num("count", 20), num("maxPauseMs", 5));
    let (tx, quiet) = (num("txPercent", 10), num("quietPercent", 0));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (store, tag, sync) = (store.clone(), format!("{tag}{t}-"), sync.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(seed.wrapping_mul(1_000_003).wrapping_add(t));
                let (mut edits, mut loading) = (0u64, 0u64);
                for _ in 0..count {
                    let steps = if rng.below(100) < tx { 2 + rng.below(3) } else { 1 };
                    let ops: Vec<_> = (0..steps).map(|_| random_op(&mut rng, &tag)).collect();
                    store.transaction(|_| {
                        for (op, args) in &ops {
                            script::call_op(&store, op, args, false).expect("random edit");
                        }
                    });
                    edits += steps;
                    // Committed while a load runs (TinyBase's rule: not sent).
                    loading += u64::from(sync.get_status() == Status::Loading);
                    // Now and then a longer pause, so that the peers' hashes meet while the others write.
                    let ms = if rng.below(100) < quiet { 50 + rng.below(200) } else { rng.below(pause + 1) };
                    std::thread::sleep(Duration::from_millis(ms));
                }
                (edits, loading)
            })
        })
        .collect();
    let counts: Vec<(u64, u64)> = handles.into_iter().map(|h| h.join().expect("writer thread")).collect();
    json!({"edits": counts.iter().map(|c| c.0).sum::<u64>(), "whileLoading": counts.iter().map(|c| c.1).sum::<u64>()})
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let unique_id = arg(&args, "--unique-id").unwrap_or_else(|| "random-peer".into());
    let seconds = |name: &str, default: f64| arg(&args, name).and_then(|t| t.parse::<f64>().ok()).unwrap_or(default);
    let (timeout, anti_entropy) = (seconds("--timeout", 1.0), seconds("--anti-entropy", 0.0));
    let out: Out = Arc::new(Mutex::new(std::io::stdout()));
    let store = MergeableStore::new(Some(&unique_id));
    let errors_out = out.clone();
    let options = SynchronizerOptions {
        request_timeout: Duration::from_secs_f64(timeout),
        anti_entropy: (anti_entropy > 0.0).then(|| Duration::from_secs_f64(anti_entropy)),
        on_ignored_error: Some(Arc::new(move |e: &str| emit(&errors_out, &json!({"type": "log", "event": "ignoredError", "error": e})))),
        ..Default::default()
    };
    let sync = Arc::new(Synchronizer::new(&store, Arc::new(Lines { out: out.clone() }), options));
    emit(&out, &json!({"type": "ready", "uniqueId": unique_id, "implementation": "tinybase-native"}));

    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let Ok(msg) = parse_json(&line) else { continue };
        match msg.get("type").and_then(Json::as_str) {
            Some("msg") => {
                let field = |k: &str| msg.get(k).cloned().unwrap_or(Json::Null);
                let payload = to_json_string(&json!([field("requestId"), field("message"), field("body")]));
                if let Err(e) = sync.receive(msg.get("from").and_then(Json::as_str).unwrap_or(""), &payload) {
                    eprintln!("{e}"); // a full inbox; the ignored-error hook reports it too
                }
            }
            Some("cmd") => {
                let id = msg.get("id").cloned().unwrap_or(Json::Null);
                let op = msg.get("op").and_then(Json::as_str).unwrap_or("");
                let cmd_args: Vec<Json> = msg.get("args").and_then(Json::as_array).cloned().unwrap_or_default();
                let answer = |value: Result<Json, String>| match value {
                    Ok(v) => emit(&out, &json!({"type": "result", "id": id, "value": v})),
                    Err(e) => emit(&out, &json!({"type": "error", "id": id, "message": e})),
                };
                match op {
                    // Answered from other threads, so that messages keep flowing meanwhile.
                    "startSync" | "writers" => {
                        let (out, id, writer_sync) = (out.clone(), id.clone(), sync.clone());
                        let done = (op == "startSync").then(|| sync.start_sync_async(None));
                        let (spec, tag) = (cmd_args.first().cloned().unwrap_or(Json::Null), unique_id.clone());
                        std::thread::spawn(move || {
                            let value = match done {
                                Some(done) => {
                                    let _ = done.recv();
                                    Json::Null
                                }
                                None => run_writers(&writer_sync, &spec, &tag),
                            };
                            emit(&out, &json!({"type": "result", "id": id, "value": value}));
                        });
                    }
                    "stopSync" => answer(Ok({
                        sync.stop_sync();
                        Json::Null
                    })),
                    "destroy" => answer(Ok({
                        sync.destroy();
                        Json::Null
                    })),
                    "exit" => {
                        sync.destroy();
                        answer(Ok(Json::Null));
                        std::process::exit(0);
                    }
                    _ => answer(script::call_op(&store, op, &cmd_args, false).map(|v| v.unwrap_or(Json::Null))),
                }
            }
            _ => {}
        }
    }
    sync.destroy();
}
