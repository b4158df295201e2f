//! Runs BENCHMARKS.md's workloads on this library, on TinyBase (node, same run) and on Yrs,
//! Automerge and Loro (their map types), and writes a Markdown report with plots.
//!
//! `cargo run --release -p tinybase-bench -- [--sizes 10000,100000,1000000,10000000] [--runs 3]
//! [--only ours,tinybase,yrs,automerge,loro] [--out docs/benchmarks] [--tinybase-limit SECS] [--quick]`
//!
//! Every (library, N) round is a child process of this binary (`tinybase-bench child LIBRARY N`
//! or `child LIBRARY w8`) so that W3 and peak RSS belong to that round only; the parent takes
//! min/median/max over the runs.

mod crdt;
mod measure;
mod node;
mod ours;
mod plot;
mod report;
mod w8;

use measure::{Measure, W8_STORES};
use report::{Results, Stat};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: measure::Counting = measure::Counting;

/// The libraries this binary can measure, in report order ("tinybase" runs through node).
const LIBRARIES: [&str; 5] = ["ours", "tinybase", crdt::LIBRARIES[0], crdt::LIBRARIES[1], crdt::LIBRARIES[2]];

/// From this size on: one run per library, and only this library and TinyBase's attempt (W12).
const BIG: usize = 10_000_000;

/// A child exits with this when its library or workload is not in this build.
const NOT_BUILT: i32 = 3;

/// One library's W1-W7 round at n (`sync` false skips W6/W7), None if not in this build.
fn round_of(library: &str, n: usize, sync: bool) -> Option<Vec<Measure>> {
    match library {
        "ours" => Some(ours::round(n, sync)),
        _ => crdt::round(library, n),
    }
}

/// One library's W8 round, None if not in this build.
fn w8_of(library: &str) -> Option<Vec<Measure>> {
    match library {
        "ours" => Some(w8::w8_ours()),
        _ => crdt::w8(library),
    }
}

/// A comparison library's crate version, None if not in this build.
fn crdt_version(library: &str) -> Option<&'static str> {
    crdt::version(library)
}

/// `child LIBRARY N|w8 [--no-sync]`: one round, one JSON object per measure on stdout, then the
/// process's peak RSS.
fn child(args: &[String]) -> i32 {
    let (Some(library), Some(what)) = (args.first(), args.get(1)) else {
        eprintln!("usage: tinybase-bench child LIBRARY N|w8 [--no-sync]");
        return 2;
    };
    let sync = !args.iter().any(|a| a == "--no-sync");
    let (n, measures) = if what == "w8" {
        (W8_STORES, w8_of(library))
    } else {
        let Ok(n) = what.parse::<usize>() else {
            eprintln!("tinybase-bench child: N must be a number or w8, not {what}");
            return 2;
        };
        (n, round_of(library, n, sync))
    };
    let Some(measures) = measures else {
        eprintln!("tinybase-bench child: {library} {what} is not in this build");
        return NOT_BUILT;
    };
    let line = |workload: &str, unit: &str, value: f64| {
        println!(r#"{{"library":"{library}","workload":"{workload}","unit":"{unit}","n":{n},"value":{value:?}}}"#)
    };
    for m in measures {
        line(m.workload, m.unit, m.value);
    }
    if let Some(rss) = measure::peak_rss() {
        line("peak", "bytes", rss as f64);
    }
    0
}

/// The runner's options.
struct Options {
    sizes: Vec<usize>,
    runs: usize,
    only: Vec<String>,
    out: PathBuf,
    tinybase_limit: Duration,
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let mut o = Options {
        sizes: vec![10_000, 100_000, 1_000_000, BIG],
        runs: 3,
        only: LIBRARIES.iter().map(|s| s.to_string()).collect(),
        out: root.join("docs/benchmarks"),
        tinybase_limit: Duration::from_secs(600),
    };
    let mut it = args.iter();
    let number = |v: Option<&String>, what: &str| -> Result<usize, String> {
        let v = v.ok_or(format!("{what} needs a value"))?;
        v.replace('_', "").parse().map_err(|_| format!("{what}: not a number: {v}"))
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--sizes" => {
                let v = it.next().ok_or("--sizes needs a value")?;
                o.sizes = v.split(',').map(|s| number(Some(&s.to_string()), "--sizes")).collect::<Result<_, _>>()?;
            }
            "--runs" => o.runs = number(it.next(), "--runs")?.max(1),
            "--only" => {
                let v = it.next().ok_or("--only needs a value")?;
                o.only = v.split(',').map(|s| s.trim().to_lowercase()).collect();
                if let Some(bad) = o.only.iter().find(|l| !LIBRARIES.contains(&l.as_str())) {
                    return Err(format!("--only: unknown library {bad} (known: {})", LIBRARIES.join(",")));
                }
            }
            "--out" => o.out = PathBuf::from(it.next().ok_or("--out needs a value")?),
            "--tinybase-limit" => o.tinybase_limit = Duration::from_secs(number(it.next(), "--tinybase-limit")? as u64),
            "--quick" => {
                o.sizes = vec![1_000, 10_000];
                o.runs = 1;
                o.tinybase_limit = Duration::from_secs(120);
            }
            "-h" | "--help" => {
                println!("{}", include_str!("main.rs").lines().take(7).map(|l| l.trim_start_matches("//!")).collect::<Vec<_>>().join("\n"));
                std::process::exit(0);
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    o.sizes.sort_unstable();
    o.sizes.dedup();
    Ok(o)
}

/// Runs `child LIBRARY WHAT` `runs` times into `results`. Err(true) when the library is not in
/// this build; Err(false) when a round failed (noted).
fn rust_rounds(results: &mut Results, library: &str, what: &str, runs: usize) -> Result<(), bool> {
    let exe = std::env::current_exe().expect("own path");
    let mut samples: std::collections::BTreeMap<(String, String, usize), Vec<f64>> = Default::default();
    for run in 1..=runs {
        eprintln!("tinybase-bench: {library} {what} run {run}/{runs}");
        let out = Command::new(&exe).args(["child", library, what]).output().expect("run own binary");
        if out.status.code() == Some(NOT_BUILT) {
            results.note(library, "not in this build (its module has not landed yet)".into());
            return Err(true);
        }
        if !out.status.success() {
            // The panic's message (the line after "panicked at"), not the backtrace's last line.
            let stderr = String::from_utf8_lossy(&out.stderr);
            let lines: Vec<&str> = stderr.lines().collect();
            let tail = match lines.iter().position(|l| l.contains("panicked at")) {
                Some(i) => lines.get(i + 1).copied().unwrap_or(lines[i]),
                None => lines.iter().rev().find(|l| !l.starts_with("note:")).copied().unwrap_or(""),
            }
            .to_string();
            results.note(library, format!("{what}: round failed ({}): {tail}", out.status));
            return Err(false);
        }
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Ok(v) = tinybase::value::parse_json(line) else { continue };
            let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
            // JSON numbers come back as JavaScript's (f64).
            let (Some(n), Some(value)) = (v.get("n").and_then(|x| x.as_f64()), v.get("value").and_then(|x| x.as_f64())) else {
                continue;
            };
            samples.entry((s("workload"), s("unit"), n as usize)).or_default().push(value);
        }
    }
    for ((workload, unit, n), values) in samples {
        results.insert(library, &workload, &unit, n, Stat::of(values));
    }
    Ok(())
}

fn run_node(results: &mut Results, o: &Options) {
    let version = match node::node_version() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("tinybase-bench: {e}");
            results.note("tinybase", e);
            return;
        }
    };
    results.version("node", &version);
    if let Err(e) = node::ensure_tinybase() {
        eprintln!("tinybase-bench: {e}");
        results.note("tinybase", e);
        return;
    }
    results.version("TinyBase", &node::tinybase_version().unwrap_or_else(|| "?".into()));
    for &n in &o.sizes {
        let runs = if n >= BIG { 1 } else { o.runs };
        // TinyBase's W5 takes about 30 s and W6 minutes per run at 1M; at 10M only W1/W3 fit.
        let skip = if n >= BIG {
            "W2,W4,W5,W6,W7"
        } else if n >= 1_000_000 {
            "W5,W6,W7"
        } else {
            ""
        };
        if n >= BIG {
            if let Some(why) = tinybase_too_big(results, n, o.tinybase_limit) {
                eprintln!("tinybase-bench: TinyBase at {n}: {why}");
                results.note("tinybase", format!("N = {n}: not run: {why}"));
                break;
            }
        }
        eprintln!("tinybase-bench: TinyBase N = {n}, {runs} run(s), skipping [{skip}]");
        match node::run("bench.mjs", &[n.to_string(), runs.to_string()], skip, o.tinybase_limit) {
            Ok(round) => {
                for f in round.figures {
                    results.insert("tinybase", &f.workload, &f.unit, n, Stat { runs: f.runs, min: f.min, median: f.median, max: f.max });
                }
                if let Some(rss) = round.peak_rss {
                    results.insert("tinybase", "peak", "bytes", n, Stat::of(vec![rss as f64]));
                }
                if !skip.is_empty() {
                    results.note("tinybase", format!("N = {n}: {skip} skipped (time budget); ran in {:.0} s", round.seconds));
                }
            }
            Err(e) => {
                eprintln!("tinybase-bench: TinyBase at {n}: {e}");
                results.note("tinybase", format!("N = {n}: {e}"));
                break;
            }
        }
    }
    if node::interop_dir().join("bench_w8.mjs").exists() {
        eprintln!("tinybase-bench: TinyBase W8, {} run(s)", o.runs);
        match node::run("bench_w8.mjs", &[o.runs.to_string()], "", o.tinybase_limit) {
            Ok(round) => {
                for f in round.figures {
                    results.insert("tinybase", &f.workload, &f.unit, W8_STORES, Stat { runs: f.runs, min: f.min, median: f.median, max: f.max });
                }
            }
            Err(e) => results.note("tinybase", format!("W8: {e}")),
        }
    } else {
        results.note("tinybase", "W8: tests/interop/bench_w8.mjs is not in this checkout yet".into());
    }
}

/// Why TinyBase is not attempted at n: its W1 would not end within the limit at the rate
/// measured at the largest smaller size, or its heap would not fit in the available memory.
fn tinybase_too_big(results: &Results, n: usize, limit: Duration) -> Option<String> {
    let below = results.largest_below("tinybase", "W1", "cells/s", n)?;
    let rate = results.get("tinybase", "W1", "cells/s", below)?.median;
    let seconds = n as f64 / rate * 1.3;
    if seconds > limit.as_secs_f64() {
        return Some(format!(
            "W1 would take about {seconds:.0} s at the rate measured at {below} ({rate:.0} cells/s), over the {} s limit",
            limit.as_secs()
        ));
    }
    let bytes = results.get("tinybase", "W3", "bytes/cell", below)?.median * n as f64 * 1.5;
    let available = report::mem_available()?;
    (bytes > available as f64).then(|| {
        format!("its heap would need about {:.1} GB, more than the {:.1} GB available", bytes / 1e9, available as f64 / 1e9)
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("child") {
        std::process::exit(child(&args[1..]));
    }
    let o = match parse_options(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("tinybase-bench: {e}");
            std::process::exit(2);
        }
    };
    let t0 = Instant::now();
    let mut results = Results::new(&o.sizes, o.runs, &args);
    results.version("tinybase-native", tinybase::VERSION);
    for library in LIBRARIES.iter().filter(|l| **l != "tinybase" && o.only.iter().any(|x| x == *l)) {
        if library != &"ours" {
            if let Some(v) = crdt_version(library) {
                results.version(library, v);
            }
        }
        let mut built = true;
        for &n in &o.sizes {
            if n >= BIG && library != &"ours" {
                results.note(library, format!("N = {n}: not run (W12's scale is this library's and TinyBase's)"));
                break;
            }
            match rust_rounds(&mut results, library, &n.to_string(), if n >= BIG { 1 } else { o.runs }) {
                Ok(()) => {}
                Err(not_built) => {
                    built = !not_built;
                    break;
                }
            }
        }
        if built && rust_rounds(&mut results, library, "w8", o.runs) == Err(true) {
            results.notes.get_mut(*library).map(|v| v.pop());
            results.note(library, "W8: not in this build (its module has not landed yet)".into());
        }
    }
    if o.only.iter().any(|l| l == "tinybase") {
        run_node(&mut results, &o);
    }
    results.seconds = t0.elapsed().as_secs_f64();
    if let Err(e) = std::fs::create_dir_all(&o.out) {
        eprintln!("tinybase-bench: cannot create {}: {e}", o.out.display());
        std::process::exit(1);
    }
    let plots = plot::draw(&results, &o.out);
    let summary = report::summary(&results);
    let text = report::markdown(&results, &summary, &plots, &o.out);
    let path = o.out.join("REPORT.md");
    if let Err(e) = std::fs::write(&path, text) {
        eprintln!("tinybase-bench: cannot write {}: {e}", path.display());
        std::process::exit(1);
    }
    println!("{summary}");
    let misses = report::misses(&results);
    if !misses.is_empty() {
        println!("{misses}");
    }
    eprintln!("tinybase-bench: wrote {} in {:.0} s", path.display(), results.seconds);
}
