//! Runs BENCHMARKS.md's workloads on this library, on TinyBase (node, same run) and on Yrs,
//! Automerge and Loro (their map types), and writes a Markdown report with plots.

mod measure;
mod w8;

#[global_allocator]
static GLOBAL: measure::Counting = measure::Counting;

/// Prints one child round's measures, one JSON object per line, then the peak RSS.
fn print_child(library: &str, n: usize, measures: &[measure::Measure]) {
    for m in measures {
        println!(r#"{{"library":"{library}","workload":"{}","unit":"{}","n":{n},"value":{}}}"#, m.workload, m.unit, m.value);
    }
    if let Some(peak) = measure::peak_rss() {
        println!(r#"{{"library":"{library}","workload":"peak","unit":"bytes","n":{n},"value":{peak}}}"#);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["child", "ours", "w8"] => print_child("ours", measure::W8_STORES, &w8::w8_ours()),
        _ => eprintln!("tinybase-bench: nothing to run yet (child ours w8)"),
    }
}
