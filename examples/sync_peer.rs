//! A synchronizer peer speaking the line protocol of tests/interop/sync (README there): the
//! store and synchronizer of this library, driven by a hub that also runs TinyBase peers.
//!
//! `sync_peer --unique-id ID [--now MS] [--timeout SECONDS]`

#[path = "../tests/support/line_peer.rs"]
mod line_peer;
#[path = "../tests/support/script.rs"]
mod script;

use line_peer::{arg, emit, Lines, Out};
use serde_json::{json, Value as Json};
use std::io::BufRead;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tinybase::sync::{Synchronizer, SynchronizerOptions};
use tinybase::value::{parse_json, to_json_string};
use tinybase::MergeableStore;

fn settle(sync: &Synchronizer) {
    let end = Instant::now() + Duration::from_secs(2);
    while !sync.is_settled() && Instant::now() < end {
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let unique_id = arg(&args, "--unique-id");
    let now = Arc::new(Mutex::new(arg(&args, "--now").and_then(|n| n.parse().ok()).unwrap_or(1_700_000_000_000.0)));
    let timeout = arg(&args, "--timeout").and_then(|t| t.parse::<f64>().ok()).unwrap_or(1.0);
    let out: Out = Arc::new(Mutex::new(std::io::stdout()));
    let clock = now.clone();
    let store = MergeableStore::with_clock(unique_id.as_deref(), move || *clock.lock().unwrap());
    let started = Instant::now();
    let last_activity = Arc::new(AtomicU64::new(0));
    let touch = {
        let last = last_activity.clone();
        move || last.store(started.elapsed().as_millis() as u64, Ordering::Release)
    };
    let (t1, t2, errors_out) = (touch.clone(), touch.clone(), out.clone());
    let options = SynchronizerOptions {
        request_timeout: Duration::from_secs_f64(timeout),
        on_send: Some(Arc::new(move |_, _, _, _| t1())),
        on_receive: Some(Arc::new(move |_, _, _, _| t2())),
        on_ignored_error: Some(Arc::new(move |e: &str| emit(&errors_out, &json!({"type": "log", "event": "ignoredError", "error": e})))),
        ..Default::default()
    };
    let sync = Arc::new(Synchronizer::new(&store, Arc::new(Lines { out: out.clone() }), options));
    emit(&out, &json!({"type": "ready", "uniqueId": unique_id, "implementation": "tinybase-native"}));

    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let Ok(msg) = parse_json(&line) else {
            emit(&out, &json!({"type": "log", "event": "invalidLine"}));
            continue;
        };
        match msg.get("type").and_then(Json::as_str) {
            Some("msg") => {
                let payload = to_json_string(&json!([msg.get("requestId").cloned().unwrap_or(Json::Null), msg.get("message").cloned().unwrap_or(Json::Null), msg.get("body").cloned().unwrap_or(Json::Null)]));
                if let Err(e) = sync.receive(msg.get("from").and_then(Json::as_str).unwrap_or(""), &payload) {
                    eprintln!("{e}"); // a full inbox; the ignored-error hook reports it too
                }
            }
            Some("cmd") => {
                let id = msg.get("id").cloned().unwrap_or(Json::Null);
                let op = msg.get("op").and_then(Json::as_str).unwrap_or("").to_string();
                let cmd_args: Vec<Json> = msg.get("args").and_then(Json::as_array).cloned().unwrap_or_default();
                let first_json = || cmd_args.first().filter(|a| !a.is_null()).map(to_json_string);
                let answer = |out: &Out, value: Result<Json, String>| match value {
                    Ok(v) => emit(out, &json!({"type": "result", "id": id, "value": v})),
                    Err(e) => emit(out, &json!({"type": "error", "id": id, "message": e})),
                };
                match op.as_str() {
                    "startSync" | "load" | "startAutoLoad" => {
                        let initial = first_json();
                        let done = match op.as_str() {
                            "startSync" => sync.start_sync_async(initial.as_deref()),
                            "load" => sync.load_async(initial.as_deref()),
                            _ => sync.start_auto_load_async(initial.as_deref()),
                        };
                        let (out, id) = (out.clone(), id.clone());
                        std::thread::spawn(move || {
                            let _ = done.recv();
                            emit(&out, &json!({"type": "result", "id": id, "value": null}));
                        });
                    }
                    "stopSync" => answer(&out, Ok({ sync.stop_sync(); Json::Null })),
                    "save" => answer(&out, Ok({ sync.save(); Json::Null })),
                    "stopAutoLoad" => answer(&out, Ok({ sync.stop_auto_load(); Json::Null })),
                    "startAutoSave" => answer(&out, Ok({ sync.start_auto_save(); Json::Null })),
                    "stopAutoSave" => answer(&out, Ok({ sync.stop_auto_save(); Json::Null })),
                    "getStatus" => answer(&out, Ok(json!(sync.get_status() as u8))),
                    "getSynchronizerStats" => {
                        let s = sync.get_synchronizer_stats();
                        answer(&out, Ok(json!({"sends": s.sends, "receives": s.receives})))
                    }
                    "now" => {
                        if let Some(ms) = cmd_args.first().and_then(Json::as_f64) {
                            *now.lock().unwrap() = ms;
                        }
                        let v = *now.lock().unwrap();
                        answer(&out, Ok(json!(v)))
                    }
                    "wait" => {
                        let ms = cmd_args.first().and_then(Json::as_f64).unwrap_or(0.0);
                        let (out, id) = (out.clone(), id.clone());
                        std::thread::spawn(move || {
                            std::thread::sleep(Duration::from_secs_f64(ms / 1000.0));
                            emit(&out, &json!({"type": "result", "id": id, "value": null}));
                        });
                    }
                    "idle" => {
                        let quiet = cmd_args.first().and_then(Json::as_u64).unwrap_or(50);
                        let max = cmd_args.get(1).and_then(Json::as_u64).unwrap_or(10_000);
                        let (out, id, last, sync) = (out.clone(), id.clone(), last_activity.clone(), sync.clone());
                        std::thread::spawn(move || {
                            let begin = started.elapsed().as_millis() as u64;
                            loop {
                                let t = started.elapsed().as_millis() as u64;
                                if sync.is_idle() && t.saturating_sub(last.load(Ordering::Acquire)) >= quiet || t - begin >= max {
                                    break;
                                }
                                std::thread::sleep(Duration::from_millis(2));
                            }
                            emit(&out, &json!({"type": "result", "id": id, "value": null}));
                        });
                    }
                    "destroy" | "exit" => {
                        sync.destroy();
                        answer(&out, Ok(Json::Null));
                        if op == "exit" {
                            std::process::exit(0);
                        }
                    }
                    "transaction" => {
                        let steps: Vec<Json> = msg
                            .get("steps")
                            .and_then(Json::as_array)
                            .or_else(|| cmd_args.first().and_then(Json::as_array))
                            .cloned()
                            .unwrap_or_default();
                        let result = store.transaction(|_| {
                            steps
                                .iter()
                                .map(|step| {
                                    let op = step.get("op").and_then(Json::as_str).unwrap_or("");
                                    let a: Vec<Json> = step.get("args").and_then(Json::as_array).cloned().unwrap_or_default();
                                    script::call_op(&store, op, &a, false).map(|v| v.unwrap_or(Json::Null))
                                })
                                .collect::<Result<Vec<Json>, String>>()
                        });
                        settle(&sync);
                        answer(&out, result.map(Json::Array))
                    }
                    other => {
                        let (op, wire) = match other {
                            "getEncodedMergeableContent" => ("getMergeableContent", true),
                            "getEncodedTransactionMergeableChanges" => ("getTransactionMergeableChanges", true),
                            "setEncodedMergeableContent" => ("setMergeableContent", true),
                            "applyEncodedMergeableChanges" => ("applyMergeableChanges", true),
                            o => (o, false),
                        };
                        let result = script::call_op(&store, op, &cmd_args, wire).map(|v| v.unwrap_or(Json::Null));
                        // TinyBase sends a local transaction's ContentDiff before the call returns.
                        settle(&sync);
                        answer(&out, result)
                    }
                }
            }
            _ => emit(&out, &json!({"type": "log", "event": "invalidLine"})),
        }
    }
    sync.destroy();
}
