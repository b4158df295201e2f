//! Runs BENCHMARKS.md's workloads on this library, on TinyBase (node, same run) and on Yrs,
//! Automerge and Loro (their map types), and writes a Markdown report with plots.

mod crdt;
// Some shared helpers (reset_peak, peak_bytes) serve no round of this build yet.
#[allow(dead_code)]
mod measure;

#[global_allocator]
static GLOBAL: measure::Counting = measure::Counting;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `child LIBRARY N|w8`: one round of a comparison library, one JSON object per measure.
    if let [cmd, library, what] = &args[..] {
        if cmd == "child" {
            if let Some(measures) = crdt::child(library, what) {
                let n = if what == "w8" { measure::W8_STORES.to_string() } else { what.clone() };
                let line = |workload: &str, unit: &str, value: f64| {
                    println!(r#"{{"library":"{library}","workload":"{workload}","unit":"{unit}","n":{n},"value":{value:?}}}"#)
                };
                for m in measures {
                    line(m.workload, m.unit, m.value);
                }
                if let Some(rss) = measure::peak_rss() {
                    line("peak", "bytes", rss as f64);
                }
                return;
            }
        }
    }
    let libraries: Vec<String> = crdt::LIBRARIES.iter().map(|l| format!("{l} {}", crdt::version(l).unwrap_or("?"))).collect();
    eprintln!("usage: tinybase-bench child LIBRARY N|w8 (LIBRARY: {})", libraries.join(", "));
}
