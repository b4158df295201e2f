//! The collected figures and the Markdown report: machine, versions, targets, scale, the CRDT
//! comparison, plots and the profiles' notes.

use crate::measure::{min_median_max, W8_STORES};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

/// min/median/max over `runs` runs.
#[derive(Clone, Copy, Debug)]
pub struct Stat {
    pub runs: usize,
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Stat {
    /// The statistics of a non-empty sample.
    pub fn of(values: Vec<f64>) -> Stat {
        let runs = values.len();
        let (min, median, max) = min_median_max(values);
        Stat { runs, min, median, max }
    }

    /// Each figure mapped through `f`; a decreasing `f` swaps min and max.
    fn map(self, f: impl Fn(f64) -> f64) -> Stat {
        let (a, b) = (f(self.min), f(self.max));
        Stat { runs: self.runs, min: a.min(b), median: f(self.median), max: a.max(b) }
    }
}

/// Figure key: (library, workload, unit, N); W8 is filed under N = W8_STORES.
type Key = (String, String, String, usize);

/// Everything one command measured.
pub struct Results {
    pub figures: BTreeMap<Key, Stat>,
    /// What each library's rounds left out, and why.
    pub notes: BTreeMap<String, Vec<String>>,
    pub versions: Vec<(String, String)>,
    pub sizes: Vec<usize>,
    pub runs: usize,
    pub args: Vec<String>,
    pub seconds: f64,
}

impl Results {
    /// Empty results for a command with these sizes, runs and arguments.
    pub fn new(sizes: &[usize], runs: usize, args: &[String]) -> Results {
        Results {
            figures: BTreeMap::new(),
            notes: BTreeMap::new(),
            versions: Vec::new(),
            sizes: sizes.to_vec(),
            runs,
            args: args.to_vec(),
            seconds: 0.0,
        }
    }

    /// Files one figure.
    pub fn insert(&mut self, library: &str, workload: &str, unit: &str, n: usize, stat: Stat) {
        self.figures.insert((library.into(), workload.into(), unit.into(), n), stat);
    }

    /// One figure, if measured.
    pub fn get(&self, library: &str, workload: &str, unit: &str, n: usize) -> Option<Stat> {
        self.figures.get(&(library.into(), workload.into(), unit.into(), n)).copied()
    }

    /// Notes what a library's rounds left out.
    pub fn note(&mut self, library: &str, text: String) {
        self.notes.entry(library.into()).or_default().push(text);
    }

    /// Records a component's version.
    pub fn version(&mut self, what: &str, version: &str) {
        self.versions.push((what.into(), version.into()));
    }

    /// The largest N below `n` at which the figure was measured.
    pub fn largest_below(&self, library: &str, workload: &str, unit: &str, n: usize) -> Option<usize> {
        self.sizes.iter().rev().copied().find(|&m| m < n && self.get(library, workload, unit, m).is_some())
    }

    /// A per-cell figure at n for the scale table: W1/W4/W5/W6 in ns/cell, W3 and peak in bytes/cell.
    pub fn per_cell(&self, library: &str, what: &str, n: usize) -> Option<Stat> {
        let nf = n as f64;
        match what {
            "W1" => Some(self.get(library, "W1", "cells/s", n)?.map(|r| 1e9 / r)),
            "W3" => self.get(library, "W3", "bytes/cell", n),
            "peak" => Some(self.get(library, "peak", "bytes", n)?.map(|b| b / nf)),
            w => Some(self.get(library, w, "ms", n)?.map(|ms| ms * 1e6 / nf)),
        }
    }

    /// The size the targets are judged at: 100k if measured, else the largest below 10M.
    pub fn reference_n(&self) -> usize {
        if self.sizes.contains(&100_000) {
            return 100_000;
        }
        self.sizes.iter().rev().copied().find(|&n| n < 10_000_000).or(self.sizes.last().copied()).unwrap_or(0)
    }
}

/// The scale table's rows: (key for `per_cell`, label).
pub const PER_CELL: [(&str, &str); 6] = [
    ("W1", "W1 ns/cell"),
    ("W3", "W3 bytes/cell"),
    ("W4", "W4 ns/cell"),
    ("W5", "W5 ns/cell"),
    ("W6", "W6 ns/cell"),
    ("peak", "peak RSS bytes/cell"),
];

/// Libraries in report order with their display names.
pub const NAMES: [(&str, &str); 5] =
    [("ours", "this library"), ("tinybase", "TinyBase"), ("yrs", "Yrs"), ("automerge", "Automerge"), ("loro", "Loro")];

/// Issue 11's targets: (workload, unit, ratio to TinyBase at least, as written).
const TARGETS: [(&str, &str, f64, &str); 8] = [
    ("W1", "cells/s", 100.0, ">= 100x"),
    ("W2", "calls/s", 50.0, ">= 50x"),
    ("W3", "bytes/cell", 5.0, "<= 1/5 of the bytes"),
    ("W4", "ms", 30.0, ">= 30x"),
    ("W5", "ms", 30.0, ">= 30x"),
    ("W6", "ms", 30.0, ">= 30x"),
    ("W7", "ms", 0.0, "< 1 ms"),
    ("W8", "ms", 30.0, ">= 30x, ahead of Yrs/Automerge/Loro"),
];

/// Where the profile notes (docs/benchmarks/profiles, embedded in the report) give the measured
/// limit and its reasons for a workload whose target a run misses.
const LIMITS: [(&str, &str); 8] = [
    ("W1", "W1-W3.md, \"Where W1 stops, and why\": 2,871 instructions a cell, every part required by TinyBase's semantics (the hash tree kept current, an HLC per write, the changes listeners read), and a machine whose speed for one binary moves by 1.7x"),
    ("W2", "W2.md, \"Where W2 stops, and why\": 3,203 instructions a call, a third of them the hash tree's terms"),
    ("W3", "W1-W3.md, \"Memory after: bytes per cell\""),
    ("W4", "W5-W6.md, \"Issue 11, text paths\""),
    ("W5", "W5-W6.md, \"Issue 11, merge side of W5 and W6\""),
    ("W6", "W5-W6.md, \"Issue 11, merge side of W5 and W6\""),
    ("W7", "W5-W6.md"),
    ("W8", "W8.md"),
];

/// Ours against TinyBase, as "higher is better for this library": rates ours / theirs, time and
/// bytes theirs / ours.
pub fn ratio(unit: &str, ours: f64, theirs: f64) -> f64 {
    if unit.ends_with("/s") {
        ours / theirs
    } else {
        theirs / ours
    }
}

/// A figure for a table: whole numbers from 100 up, fewer decimals as it grows.
pub fn fmt(x: f64) -> String {
    if !x.is_finite() {
        "-".into()
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 1.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

fn fmt_stat(s: Option<Stat>) -> String {
    match s {
        Some(s) if s.runs > 1 => format!("{} / {} / {}", fmt(s.min), fmt(s.median), fmt(s.max)),
        Some(s) => fmt(s.median),
        None => "-".into(),
    }
}

fn fmt_ratio(r: f64) -> String {
    if r.is_finite() {
        format!("{r:.1}x")
    } else {
        "-".into()
    }
}

/// One target at the reference N.
pub struct TargetRow {
    pub workload: &'static str,
    pub unit: &'static str,
    pub n: usize,
    pub ours: Option<Stat>,
    pub theirs: Option<Stat>,
    /// Ours against TinyBase (NaN when either is missing).
    pub ratio: f64,
    /// The ratio wanted (0 for W7, whose target is absolute).
    pub want: f64,
    pub target: &'static str,
    /// None when not measured.
    pub met: Option<bool>,
}

/// Each target's row at the reference N.
pub fn target_rows(r: &Results) -> Vec<TargetRow> {
    let reference = r.reference_n();
    TARGETS
        .iter()
        .map(|&(w, unit, want, text)| {
            let n = if w == "W8" { W8_STORES } else { reference };
            let ours = r.get("ours", w, unit, n);
            let theirs = r.get("tinybase", w, unit, n);
            let x = match (ours, theirs) {
                (Some(o), Some(t)) => ratio(unit, o.median, t.median),
                _ => f64::NAN,
            };
            let met = match (w, ours) {
                ("W7", Some(o)) => Some(o.median < 1.0),
                ("W8", Some(o)) if x.is_finite() => Some(
                    x >= want
                        && ["yrs", "automerge", "loro"]
                            .iter()
                            .all(|l| r.get(l, "W8", "ms", n).is_none_or(|s| o.median < s.median)),
                ),
                _ if x.is_finite() => Some(x >= want),
                _ => None,
            };
            TargetRow { workload: w, unit, n, ours, theirs, ratio: x, want, target: text, met }
        })
        .collect()
}

/// The table for the README: targets at the reference N, then this library's per-cell figures
/// at each N with the growth from 100k to the largest N.
pub fn summary(r: &Results) -> String {
    let mut s = String::new();
    let reference = r.reference_n();
    let _ = writeln!(
        s,
        "| workload | N | this library (median) | TinyBase (median) | ratio | target | met |\n|---|---|---|---|---|---|---|"
    );
    for TargetRow { workload: w, unit, n, ours, theirs, ratio: x, target, met, .. } in target_rows(r) {
        let met = match met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "-",
        };
        let n = if w == "W8" { format!("{n} stores") } else { n.to_string() };
        let _ = writeln!(
            s,
            "| {w} {unit} | {n} | {} | {} | {} | {target} | {met} |",
            ours.map_or("-".into(), |o| fmt(o.median)),
            theirs.map_or("-".into(), |t| fmt(t.median)),
            fmt_ratio(x)
        );
    }
    let sizes: Vec<usize> = r.sizes.iter().copied().filter(|&n| r.get("ours", "W1", "cells/s", n).is_some()).collect();
    let Some(&last) = sizes.last() else { return s };
    // The growth column (W12: within 1.5x) only when a size above the reference was measured.
    let grows = last > reference && sizes.contains(&reference);
    let _ = writeln!(
        s,
        "\n| this library, per cell (median) | {}{} |\n|---|{}{}",
        sizes.iter().map(|n| format!("N = {n}")).collect::<Vec<_>>().join(" | "),
        if grows { format!(" | {last} / {reference}") } else { String::new() },
        "---|".repeat(sizes.len()),
        if grows { "---|" } else { "" }
    );
    for (key, label) in PER_CELL {
        let cells: Vec<String> = sizes.iter().map(|&n| r.per_cell("ours", key, n).map_or("-".into(), |s| fmt(s.median))).collect();
        let growth = match (grows, r.per_cell("ours", key, last), r.per_cell("ours", key, reference)) {
            (true, Some(a), Some(b)) => format!(" | {:.2}x", a.median / b.median),
            (true, ..) => " | -".into(),
            _ => String::new(),
        };
        let _ = writeln!(s, "| {label} | {}{growth} |", cells.join(" | "));
    }
    s
}

/// The targets this run missed, each with where the profile notes give its measured limit and
/// why (empty when every target is met).
pub fn misses(r: &Results) -> String {
    let mut s = String::new();
    for row in target_rows(r).iter().filter(|t| t.met == Some(false)) {
        let why = LIMITS.iter().find(|(w, _)| *w == row.workload).map_or("", |(_, why)| why);
        let _ = writeln!(s, "- {} at {}: {} of {}. Limit and why: profiles/{why}.", row.workload, row.n, fmt_ratio(row.ratio), row.target);
    }
    let reference = r.reference_n();
    if let Some(&last) = r.sizes.iter().rfind(|&&n| n > reference && r.get("ours", "W1", "cells/s", n).is_some()) {
        for (key, label) in PER_CELL.iter().filter(|(k, _)| *k != "peak") {
            if let (Some(a), Some(b)) = (r.per_cell("ours", key, last), r.per_cell("ours", key, reference)) {
                let growth = a.median / b.median;
                if growth > 1.5 {
                    let _ = writeln!(
                        s,
                        "- W12 {label}: {growth:.2}x from {reference} to {last}, above 1.5x. Limit and why: profiles/W5-W6.md, \"Scale (W12)\": \
                         the work per cell does not grow with N, the misses in caches and the heap's fresh pages do."
                    );
                }
            }
        }
    }
    if s.is_empty() {
        s
    } else {
        format!("Targets this run missed, with the profile notes that give the measured limit and why:\n\n{s}")
    }
}

/// The machine: cores, CPU model, memory.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU".to_string(), |m| m.trim().to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = meminfo("MemTotal:").map_or("? GB".into(), |b| format!("{:.1} GB", b as f64 / 1e9));
    // Other work on a shared machine moves every figure: say how busy it was.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    format!("{cores} cores ({model}), {memory} of memory, {}; load average at the end {load}", std::env::consts::OS)
}

fn meminfo(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = text.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Memory available for a new process now (MemAvailable), in bytes.
pub fn mem_available() -> Option<u64> {
    meminfo("MemAvailable:")
}

fn command_output(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or("?".into(), |o| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// The whole report.
pub fn markdown(r: &Results, summary: &str, plots: &[(String, String)], out: &Path) -> String {
    let mut s = String::new();
    let name = |l: &str| NAMES.iter().find(|(k, _)| *k == l).map_or(l.to_string(), |(_, v)| v.to_string());
    let _ = writeln!(s, "# Benchmark report\n");
    let _ = writeln!(
        s,
        "Written by `cargo run --release -p tinybase-bench --{}{}` in {:.0} s (BENCHMARKS.md's workloads; \
         every (library, N) round in its own process; {} run(s) per size below 10M, one at 10M).\n",
        if r.args.is_empty() { "" } else { " " },
        r.args.join(" "),
        r.seconds,
        r.runs
    );
    let _ = writeln!(s, "- Date: {}", command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]));
    let _ = writeln!(s, "- Machine: {}", machine());
    let mut versions = r.versions.clone();
    versions.push(("rustc".into(), command_output("rustc", &["--version"])));
    let _ = writeln!(
        s,
        "- Versions: {}",
        versions.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
    );
    let _ = writeln!(
        s,
        "- Figures are min / median / max over the runs (one figure: one run). Ratios compare medians, \
         \"higher is better for this library\": rates ours / TinyBase, time and bytes TinyBase / ours.\n"
    );

    let _ = writeln!(s, "## Summary (targets of issue 11 at N = {})\n\n{summary}", r.reference_n());
    let misses = misses(r);
    if !misses.is_empty() {
        let _ = writeln!(s, "{misses}");
    }

    let _ = writeln!(s, "## How far each library got\n");
    if r.notes.is_empty() {
        let _ = writeln!(s, "Every library ran every workload at every size.\n");
    }
    for (library, notes) in &r.notes {
        for n in notes {
            let _ = writeln!(s, "- {}: {n}", name(library));
        }
    }
    let _ = writeln!(s);

    let _ = writeln!(s, "## This library against TinyBase\n");
    let _ = writeln!(s, "| workload | N | this library | TinyBase | ratio |\n|---|---|---|---|---|");
    for &n in &r.sizes {
        let mut keys: Vec<(String, String)> = r
            .figures
            .keys()
            .filter(|k| k.3 == n && (k.0 == "ours" || k.0 == "tinybase") && k.1 != "peak")
            .map(|k| (k.1.clone(), k.2.clone()))
            .collect();
        keys.sort();
        keys.dedup();
        for (w, unit) in keys {
            let (o, t) = (r.get("ours", &w, &unit, n), r.get("tinybase", &w, &unit, n));
            let x = match (o, t) {
                (Some(o), Some(t)) => ratio(&unit, o.median, t.median),
                _ => f64::NAN,
            };
            let _ = writeln!(s, "| {w} {unit} | {n} | {} | {} | {} |", fmt_stat(o), fmt_stat(t), fmt_ratio(x));
        }
    }
    let _ = writeln!(s);

    let _ = writeln!(s, "## Scale: cost per cell and peak memory\n");
    let _ = writeln!(
        s,
        "Per-cell figures (medians; W1/W4/W5/W6 in ns per cell, W3 and peak RSS in bytes per cell); \
         linear growth means a flat row. Peak RSS is the whole round's process (its input data, W5's \
         second store and W6's included).\n"
    );
    let _ = writeln!(
        s,
        "| library | figure | {} |\n|---|---|{}",
        r.sizes.iter().map(|n| format!("N = {n}")).collect::<Vec<_>>().join(" | "),
        "---|".repeat(r.sizes.len())
    );
    for (library, _) in NAMES {
        for (key, label) in PER_CELL {
            let cells: Vec<String> = r.sizes.iter().map(|&n| fmt_stat(r.per_cell(library, key, n))).collect();
            if cells.iter().any(|c| c != "-") {
                let _ = writeln!(s, "| {} | {label} | {} |", name(library), cells.join(" | "));
            }
        }
    }
    let _ = writeln!(s, "\nPeak RSS in MB:\n");
    let _ = writeln!(
        s,
        "| library | {} |\n|---|{}",
        r.sizes.iter().map(|n| format!("N = {n}")).collect::<Vec<_>>().join(" | "),
        "---|".repeat(r.sizes.len())
    );
    for (library, display) in NAMES {
        let cells: Vec<String> =
            r.sizes.iter().map(|&n| r.get(library, "peak", "bytes", n).map_or("-".into(), |p| fmt(p.median / 1e6))).collect();
        if cells.iter().any(|c| c != "-") {
            let _ = writeln!(s, "| {display} | {} |", cells.join(" | "));
        }
    }
    let _ = writeln!(s);

    let _ = writeln!(s, "## Beside Yrs, Automerge and Loro\n");
    let _ = writeln!(
        s,
        "Same data in each library's nested map type (BENCH.md); medians. W8: 1,549 documents each \
         writing, their updates encoded, then applied to one fresh document.\n"
    );
    let _ = writeln!(
        s,
        "| workload | N | {} |\n|---|---|{}",
        NAMES.iter().map(|(_, d)| *d).collect::<Vec<_>>().join(" | "),
        "---|".repeat(NAMES.len())
    );
    let mut rows: Vec<(&str, &str, usize)> = Vec::new();
    for &n in r.sizes.iter().filter(|&&n| n < 10_000_000) {
        rows.extend([("W1", "cells/s", n), ("W2", "calls/s", n), ("W3", "bytes/cell", n)]);
    }
    rows.extend([("W8", "ms", W8_STORES), ("W8", "bytes", W8_STORES)]);
    for (w, unit, n) in rows {
        let cells: Vec<String> = NAMES.iter().map(|(l, _)| r.get(l, w, unit, n).map_or("-".into(), |s| fmt(s.median))).collect();
        let _ = writeln!(s, "| {w} {unit} | {n} | {} |", cells.join(" | "));
    }
    let _ = writeln!(s);

    let _ = writeln!(s, "## Plots\n");
    for (file, caption) in plots {
        if file.ends_with(".png") {
            let _ = writeln!(s, "{caption}\n\n![{caption}]({file})\n");
        } else {
            let _ = writeln!(s, "{caption}\n");
        }
    }

    let _ = writeln!(s, "## Profiles\n");
    let mut profiles: Vec<_> = [out.join("profiles"), Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/benchmarks/profiles")]
        .iter()
        .find_map(|d| std::fs::read_dir(d).ok())
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "md")).collect())
        .unwrap_or_default();
    profiles.sort();
    if profiles.is_empty() {
        let _ = writeln!(s, "No profile notes yet (docs/benchmarks/profiles/*.md, written by the performance work).");
    }
    for p in profiles {
        let file = p.file_name().unwrap_or_default().to_string_lossy();
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        // The notes' own headings go two levels down, under this section.
        let body: Vec<String> =
            text.lines().map(|l| if l.starts_with('#') { format!("##{l}") } else { l.to_string() }).collect();
        let _ = writeln!(s, "### [{file}](profiles/{file})\n\n{}\n", body.join("\n").trim());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(v: f64) -> Stat {
        Stat::of(vec![v])
    }

    #[test]
    fn misses_name_each_missed_target_with_its_limit_notes() {
        let mut r = Results::new(&[100_000, 10_000_000], 1, &[]);
        r.insert("ours", "W1", "cells/s", 100_000, one(1_000_000.0));
        r.insert("tinybase", "W1", "cells/s", 100_000, one(20_000.0));
        r.insert("ours", "W2", "calls/s", 100_000, one(1_200_000.0));
        r.insert("tinybase", "W2", "calls/s", 100_000, one(20_000.0));
        // W5: 1,000 ns a cell at 100k, 1,600 at 10M (1.6x); W1 grows 1.2x.
        r.insert("ours", "W5", "ms", 100_000, one(100.0));
        r.insert("ours", "W5", "ms", 10_000_000, one(16_000.0));
        r.insert("ours", "W1", "cells/s", 10_000_000, one(1_000_000.0 / 1.2));
        let text = misses(&r);
        assert!(text.contains("- W1 at 100000: 50.0x of >= 100x. Limit and why: profiles/W1-W3.md"), "{text}");
        assert!(!text.contains("- W2"), "W2 (60x) is met: {text}");
        assert!(text.contains("- W12 W5 ns/cell: 1.60x from 100000 to 10000000"), "{text}");
        assert!(!text.contains("W12 W1"), "W1 grew 1.2x: {text}");
        // Every target met and no size above the reference: nothing to say.
        let mut met = Results::new(&[100_000], 1, &[]);
        met.insert("ours", "W1", "cells/s", 100_000, one(3_000_000.0));
        met.insert("tinybase", "W1", "cells/s", 100_000, one(20_000.0));
        assert_eq!(misses(&met), "");
    }

    #[test]
    fn every_target_has_limit_notes_that_exist() {
        let notes = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/benchmarks/profiles");
        for (w, ..) in TARGETS {
            let (_, why) = LIMITS.iter().find(|(l, _)| *l == w).unwrap_or_else(|| panic!("{w} has no limit notes"));
            let file = why.split(',').next().unwrap();
            let text = std::fs::read_to_string(notes.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            // The quoted section title, if any, is a heading of that file.
            if let Some(title) = why.split('"').nth(1) {
                assert!(text.lines().any(|l| l.starts_with('#') && l.contains(title)), "{file} has no section {title:?}");
            }
        }
    }
}
