//! Runs BENCHMARKS.md's workloads on this library, on TinyBase (node, same run) and on Yrs,
//! Automerge and Loro (their map types), and writes a Markdown report with plots.

mod measure;

#[global_allocator]
static GLOBAL: measure::Counting = measure::Counting;

fn main() {
    eprintln!("tinybase-bench: nothing to run yet");
}
