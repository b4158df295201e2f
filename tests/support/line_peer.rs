//! The line protocol of tests/interop/sync (README there) for this library's example peers:
//! stdout lines, the transport that writes protocol messages as `msg` lines, arguments.

#![allow(dead_code)]

use serde_json::{json, Value as Json};
use std::io::Write;
use std::sync::{Arc, Mutex};
use tinybase::sync::Transport;
use tinybase::value::{parse_json, to_json_string};

/// Stdout, shared by the threads that answer.
pub type Out = Arc<Mutex<std::io::Stdout>>;

/// Writes one line (flushed: the hub waits for it).
pub fn emit(out: &Out, line: &Json) {
    let mut o = out.lock().unwrap();
    let _ = writeln!(o, "{}", to_json_string(line));
    let _ = o.flush();
}

/// The transport: every payload becomes a `msg` line.
pub struct Lines {
    pub out: Out,
}

impl Transport for Lines {
    fn send(&self, to: Option<&str>, payload: &str) {
        let Ok(Json::Array(parts)) = parse_json(payload) else { return };
        emit(&self.out, &json!({"type": "msg", "to": to, "requestId": parts[0], "message": parts[1], "body": parts[2]}));
    }
}

/// The value after `--name` on the command line.
pub fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}
