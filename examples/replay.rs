//! Replays a conformance script and prints `{"results": [...], "final": {...}}` as JSON.
//!
//! `cargo run --release --example replay -- SCRIPT.json`

#[path = "../tests/support/script.rs"]
mod script;

fn main() {
    let path = match std::env::args().nth(1) {
        Some(p) => p,
        None => {
            eprintln!("usage: replay SCRIPT.json");
            std::process::exit(2);
        }
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        eprintln!("cannot read {path}: {e}");
        std::process::exit(2);
    });
    let script = tinybase::value::parse_json(&text).unwrap_or_else(|e| {
        eprintln!("{path}: {e}");
        std::process::exit(2);
    });
    match script::run_script(&script) {
        Ok(out) => println!("{}", tinybase::value::to_json_string(&out)),
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    }
}
