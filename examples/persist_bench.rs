//! W11 of BENCHMARKS.md: saving and loading the W1 store (cell i of N: table `t{i%10}`, row
//! `r{i/10}`, cell `c{i%3}`, value `"v{i}"`) through every persister of ours — the file, SQLite
//! in JSON mode, SQLite incremental, PostgreSQL (when `TB_TEST_POSTGRES_DSN` is set) — and
//! through TinyBase's file persister (node, tests/interop/persist/bench.mjs) in the same run;
//! then the latency of saving a one-cell change at the largest N (SQLite incremental, PostgreSQL,
//! and the file for contrast; SQLite incremental once more on tmpfs when /dev/shm exists, where an
//! fsync costs nothing, and the disk's own fsync latency: a durable save waits for at least one).
//! Prints Markdown tables with the ratios and targets.
//!
//! `cargo run --release --example persist_bench -- [N ...] [--runs R] [--tinybase-runs-1m R]
//! [--latency-n N] [--saves K] [--no-node] [--dir DIR] [--only file,json,incremental,postgres] [--smoke]`
//! (defaults: N = 10000 100000 1000000, 3 runs (TinyBase 1 run at 1M: its load takes minutes),
//! latency at 1M with 500 one-cell saves (50 for the file); `--smoke`: N = 2000 20000, one run,
//! latency at 20000; fails on any difference between what was saved and what was loaded).
//! scripts/bench-persist.sh runs it.
//!
//! A save is timed until it is durable (`save()` returns after fsync or COMMIT); a one-cell save
//! from `set_cell` until `on_durable` reports the transaction durable (auto-save). TinyBase's
//! file persister does not fsync: its figures are for a write that is not yet durable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use tinybase::persist::file::create_file_persister;
use tinybase::persist::sqlite::{create_sqlite_persister, SqliteConfig, SqliteMode};
use tinybase::persist::{Durable, Persister, PersisterOptions};
use tinybase::MergeableStore;

/// W11 target: our file save and load at least this many times faster than TinyBase's.
const FILE_TARGET: f64 = 20.0;
/// W11 targets for a one-cell save at 1M cells (incremental): median and p99, in ms.
const ONE_CELL_P50_MS: f64 = 1.0;
const ONE_CELL_P99_MS: f64 = 5.0;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Backend {
    File,
    SqliteJson,
    SqliteIncremental,
    Postgres,
}

impl Backend {
    /// Its name for `--only`.
    fn key(self) -> &'static str {
        match self {
            Backend::File => "file",
            Backend::SqliteJson => "json",
            Backend::SqliteIncremental => "incremental",
            Backend::Postgres => "postgres",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Backend::File => "file",
            Backend::SqliteJson => "SQLite JSON",
            Backend::SqliteIncremental => "SQLite incremental",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

struct Args {
    sizes: Vec<usize>,
    runs: usize,
    tinybase_runs_1m: usize,
    latency_n: usize,
    saves: usize,
    node: bool,
    dir: PathBuf,
    smoke: bool,
    only: Option<Vec<String>>,
}

fn parse_args() -> Args {
    let mut args = Args {
        sizes: Vec::new(),
        runs: 3,
        tinybase_runs_1m: 1,
        latency_n: 1_000_000,
        saves: 500,
        node: true,
        dir: PathBuf::from("target/persist-bench"),
        smoke: false,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    let number = |it: &mut dyn Iterator<Item = String>, flag: &str| -> usize {
        it.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{flag} takes a number"))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--runs" => args.runs = number(&mut it, "--runs").max(1),
            "--tinybase-runs-1m" => args.tinybase_runs_1m = number(&mut it, "--tinybase-runs-1m").max(1),
            "--latency-n" => args.latency_n = number(&mut it, "--latency-n"),
            "--saves" => args.saves = number(&mut it, "--saves").max(1),
            "--no-node" => args.node = false,
            "--dir" => args.dir = PathBuf::from(it.next().expect("--dir takes a folder")),
            "--smoke" => args.smoke = true,
            "--only" => {
                let list = it.next().expect("--only takes file,json,incremental,postgres");
                args.only = Some(list.split(',').map(str::to_string).collect());
            }
            n => args.sizes.push(n.parse().unwrap_or_else(|_| panic!("unknown argument {n}"))),
        }
    }
    if args.smoke {
        if args.sizes.is_empty() {
            args.sizes = vec![2_000, 20_000];
        }
        args.runs = 1;
        args.latency_n = 20_000;
        args.saves = 50;
    }
    if args.sizes.is_empty() {
        args.sizes = vec![10_000, 100_000, 1_000_000];
    }
    args
}

/// The W1 store of BENCHMARKS.md, all N cells set in one transaction.
fn w1_store(n: usize) -> MergeableStore {
    let store = MergeableStore::new(Some("bench"));
    store.transaction(|s| {
        for i in 0..n {
            s.set_cell(&format!("t{}", i % 10), &format!("r{}", i / 10), &format!("c{}", i % 3), format!("v{i}").as_str()).unwrap();
        }
    });
    store
}

fn remove_sqlite(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

fn postgres_dsn() -> Option<String> {
    std::env::var("TB_TEST_POSTGRES_DSN").ok().filter(|s| !s.is_empty())
}

/// A persister of `store` over a fresh location of `backend` named `name` (removed first), or
/// over that location as it is when `fresh` is false.
fn persister(backend: Backend, store: &MergeableStore, dir: &Path, name: &str, fresh: bool, options: PersisterOptions) -> Persister {
    let sqlite = |mode, path: PathBuf| {
        if fresh {
            remove_sqlite(&path);
        }
        create_sqlite_persister(store, &path, SqliteConfig { mode, ..Default::default() }, options.clone())
    };
    let result = match backend {
        Backend::File => {
            let path = dir.join(format!("{name}.json"));
            if fresh {
                let _ = std::fs::remove_file(&path);
            }
            create_file_persister(store, &path, options.clone())
        }
        Backend::SqliteJson => sqlite(SqliteMode::Json, dir.join(format!("{name}-json.db"))),
        Backend::SqliteIncremental => sqlite(SqliteMode::Incremental, dir.join(format!("{name}-incremental.db"))),
        Backend::Postgres => postgres(store, name, fresh, options.clone()),
    };
    result.unwrap_or_else(|e| panic!("{} persister {name}: {e}", backend.name()))
}

#[cfg(feature = "postgres")]
fn postgres(store: &MergeableStore, name: &str, fresh: bool, options: PersisterOptions) -> tinybase::Result<Persister> {
    let dsn = postgres_dsn().expect("TB_TEST_POSTGRES_DSN");
    // A room of its own per run (rooms are never reused, so "fresh" needs no delete).
    let room = format!("w11-{}-{name}", std::process::id());
    let _ = fresh;
    tinybase::persist::postgres::create_postgres_persister(store, &dsn, &room, options)
}

#[cfg(not(feature = "postgres"))]
fn postgres(_: &MergeableStore, _: &str, _: bool, _: PersisterOptions) -> tinybase::Result<Persister> {
    Err(tinybase::Error::InvalidState("built without PostgreSQL".into()))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(values: &[f64]) -> f64 {
    percentile(values, 50.0)
}

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// Saves the W1 store at `n` to a fresh location and loads it into a fresh store: (save ms,
/// load ms), checked to hold the same content.
fn save_and_load(backend: Backend, store: &MergeableStore, dir: &Path, n: usize, run: usize) -> (f64, f64) {
    let name = format!("w11-{n}-{run}");
    let saver = persister(backend, store, dir, &name, true, PersisterOptions::default());
    let t0 = Instant::now();
    saver.save().unwrap_or_else(|e| panic!("{} save: {e}", backend.name()));
    let save = ms(t0.elapsed());
    saver.destroy();
    drop(saver);
    let fresh = MergeableStore::new(Some("fresh"));
    let loader = persister(backend, &fresh, dir, &name, false, PersisterOptions::default());
    let t0 = Instant::now();
    let loaded = loader.load().unwrap_or_else(|e| panic!("{} load: {e}", backend.name()));
    let load = ms(t0.elapsed());
    loader.destroy();
    assert!(loaded, "{}: nothing loaded", backend.name());
    assert_eq!(fresh.get_mergeable_content_hashes(), store.get_mergeable_content_hashes(), "{}: loaded content differs", backend.name());
    if backend != Backend::Postgres {
        let _ = std::fs::remove_file(dir.join(format!("{name}.json")));
        remove_sqlite(&dir.join(format!("{name}-json.db")));
        remove_sqlite(&dir.join(format!("{name}-incremental.db")));
    }
    (save, load)
}

static ONE_CELL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// One-cell save latency with auto-save on the store of `n` cells: `saves` times, one cell set,
/// timed until `on_durable` reports a save that completed after it (the saves counter passed
/// what it was before the cell was set). Returns the samples in ms.
fn one_cell_latency(backend: Backend, store: &MergeableStore, dir: &Path, saves: usize) -> Vec<f64> {
    let (tx, rx) = mpsc::channel::<(Instant, u64)>();
    let name = backend.name();
    let options = PersisterOptions {
        on_durable: Some(Arc::new(move |d: &Durable| {
            let _ = tx.send((Instant::now(), d.saves));
        })),
        on_ignored_error: Some(Arc::new(move |e| eprintln!("[W11 latency] {name}: auto-save error: {e}"))),
        ..Default::default()
    };
    let p = persister(backend, store, dir, "w11-latency", true, options);
    p.start_auto_save().unwrap_or_else(|e| panic!("{} start_auto_save: {e}", backend.name()));
    assert!(p.flush(Duration::from_secs(600)).unwrap(), "{}: the first save", backend.name());
    let mut samples = Vec::with_capacity(saves);
    for k in 0..saves {
        // The durable report of an earlier save may arrive after its flush returned: only a save
        // counted after this cell was set can hold it.
        let before = p.get_stats().saves;
        let t0 = Instant::now();
        // A value never set before (an unchanged cell is no transaction to save).
        let value = format!("one-cell {}", ONE_CELL.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        store.set_cell("t0", &format!("r{}", k % 1000), "c0", value.as_str()).unwrap();
        let durable = loop {
            let Ok((at, count)) = rx.recv_timeout(Duration::from_secs(60)) else {
                panic!(
                    "{}: one-cell save {k}: no durable report within 60 s (saves before {before}, now {:?}, flush {:?})",
                    backend.name(),
                    p.get_stats(),
                    p.flush(Duration::from_secs(1))
                )
            };
            if count > before {
                break at;
            }
        };
        samples.push(ms(durable.saturating_duration_since(t0)));
    }
    p.destroy();
    if backend != Backend::Postgres {
        let _ = std::fs::remove_file(dir.join("w11-latency.json"));
        remove_sqlite(&dir.join("w11-latency-json.db"));
        remove_sqlite(&dir.join("w11-latency-incremental.db"));
    }
    samples
}

/// The latency of fsync on the folder's disk: 50 times, 100 bytes appended then synced.
fn fsync_latency(dir: &Path) -> Vec<f64> {
    use std::io::Write;
    let path = dir.join("w11-fsync-probe");
    let mut file = std::fs::File::create(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let samples = (0..50)
        .map(|_| {
            file.write_all(&[b'x'; 100]).unwrap();
            let t0 = Instant::now();
            file.sync_all().unwrap();
            ms(t0.elapsed())
        })
        .collect();
    let _ = std::fs::remove_file(&path);
    samples
}

/// TinyBase's file persister at `n` (node): medians of (save ms, load ms).
fn tinybase(dir: &Path, n: usize, runs: usize) -> Option<(f64, f64)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/persist/bench.mjs");
    let out = Command::new("node")
        .arg(&script)
        .arg(dir)
        .arg(n.to_string())
        .arg(runs.to_string())
        .stderr(std::process::Stdio::inherit())
        .output();
    let out = match out {
        Ok(out) if out.status.success() => out,
        Ok(out) => panic!("TinyBase's bench failed ({}): is `npm ci` done in tests/interop?", out.status),
        Err(e) => panic!("cannot run node for TinyBase's side ({e}); --no-node skips it"),
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let get = |workload: &str| -> Option<f64> {
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|j| j["workload"] == workload)
            .and_then(|j| j["median"].as_f64())
    };
    Some((get("file save")?, get("file load")?))
}

fn fmt_ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn fmt_n(n: usize) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

fn main() {
    let args = parse_args();
    std::fs::create_dir_all(&args.dir).unwrap_or_else(|e| panic!("{}: {e}", args.dir.display()));
    let mut backends = vec![Backend::File, Backend::SqliteJson, Backend::SqliteIncremental];
    if postgres_dsn().is_some() {
        if cfg!(feature = "postgres") {
            backends.push(Backend::Postgres);
        } else {
            eprintln!("TB_TEST_POSTGRES_DSN is set but this build has no PostgreSQL: skipped");
        }
    } else {
        eprintln!("TB_TEST_POSTGRES_DSN is not set: PostgreSQL skipped (scripts/pg.sh start DIR prints one)");
    }
    if let Some(only) = &args.only {
        backends.retain(|b| only.iter().any(|o| o == b.key()));
    }

    // (op, n, backend) -> samples; TinyBase: n -> (save, load).
    let mut ours: BTreeMap<(&str, usize, Backend), Vec<f64>> = BTreeMap::new();
    let mut theirs: BTreeMap<usize, (f64, f64)> = BTreeMap::new();
    for &n in &args.sizes {
        eprintln!("[W11 N={n}] building the W1 store");
        let store = w1_store(n);
        for run in 1..=args.runs {
            for &backend in &backends {
                let (save, load) = save_and_load(backend, &store, &args.dir, n, run);
                eprintln!("[W11 N={n}] run {run}: {}: save {} ms, load {} ms", backend.name(), fmt_ms(save), fmt_ms(load));
                ours.entry(("save", n, backend)).or_default().push(save);
                ours.entry(("load", n, backend)).or_default().push(load);
            }
        }
        drop(store);
        if args.node {
            let runs = if n >= 1_000_000 { args.tinybase_runs_1m.min(args.runs) } else { args.runs };
            if let Some(tb) = tinybase(&args.dir, n, runs) {
                theirs.insert(n, tb);
            }
        }
    }

    println!(
        "| W11 save / load, ms (medians of {} runs{}) | N | file | SQLite JSON | SQLite incremental | PostgreSQL | TinyBase file | TinyBase / ours (file) | target | met? |",
        args.runs,
        if args.node && args.sizes.iter().any(|&n| n >= 1_000_000) && args.tinybase_runs_1m < args.runs {
            format!("; TinyBase {} at 1M", args.tinybase_runs_1m)
        } else {
            String::new()
        }
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut all_met = true;
    for &n in &args.sizes {
        for (i, op) in ["save", "load"].into_iter().enumerate() {
            let cell = |b: Backend| ours.get(&(op, n, b)).map(|v| fmt_ms(median(v))).unwrap_or_else(|| "-".into());
            let file = ours.get(&(op, n, Backend::File)).map(|v| median(v));
            let tb = theirs.get(&n).map(|&(save, load)| if i == 0 { save } else { load });
            let (ratio, met) = match (tb, file) {
                (Some(t), Some(file)) => {
                    let ratio = t / file;
                    all_met &= ratio >= FILE_TARGET;
                    (format!("{ratio:.1}x"), if ratio >= FILE_TARGET { "yes" } else { "no" })
                }
                _ => ("-".into(), "-"),
            };
            let tb = tb.map(fmt_ms).unwrap_or_else(|| "-".into());
            println!(
                "| {op} | {} | {} | {} | {} | {} | {tb} | {ratio} | >= {FILE_TARGET}x | {met} |",
                fmt_n(n),
                cell(Backend::File),
                cell(Backend::SqliteJson),
                cell(Backend::SqliteIncremental),
                cell(Backend::Postgres)
            );
        }
    }

    if args.saves > 0 && args.latency_n > 0 {
        eprintln!("[W11 latency N={}] building the W1 store", args.latency_n);
        let store = w1_store(args.latency_n);
        println!();
        println!("| W11 one-cell save at {} cells, ms (until durable) | saves | p50 | p99 | max | target | met? |", fmt_n(args.latency_n));
        println!("|---|---|---|---|---|---|---|");
        let floor = fsync_latency(&args.dir);
        println!(
            "| the disk's fsync (100 bytes; a durable save waits for at least one) | 50 | {} | {} | {} | | |",
            fmt_ms(percentile(&floor, 50.0)),
            fmt_ms(percentile(&floor, 99.0)),
            fmt_ms(floor.iter().cloned().fold(0.0, f64::max))
        );
        let shm = Path::new("/dev/shm");
        let mut latency = Vec::new();
        for backend in [Backend::SqliteIncremental, Backend::Postgres, Backend::File] {
            if backends.contains(&backend) {
                latency.push((backend, args.dir.clone(), ""));
            }
            // On tmpfs an fsync costs nothing: what is left is the persister's own work.
            if backend == Backend::SqliteIncremental && backends.contains(&backend) && shm.is_dir() {
                latency.push((backend, shm.join(format!("tinybase-w11-{}", std::process::id())), " on tmpfs (no fsync cost)"));
            }
        }
        for (backend, dir, place) in latency {
            std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            // A whole-content save per change: a few are enough to show its cost.
            let saves = if backend == Backend::File { (args.saves / 10).max(5) } else { args.saves };
            eprintln!("[W11 latency] {}{place}: {saves} one-cell saves", backend.name());
            let samples = one_cell_latency(backend, &store, &dir, saves);
            if dir != args.dir {
                let _ = std::fs::remove_dir_all(&dir);
            }
            let (p50, p99) = (percentile(&samples, 50.0), percentile(&samples, 99.0));
            let max = samples.iter().cloned().fold(0.0, f64::max);
            let (target, met) = if backend == Backend::SqliteIncremental {
                let met = p50 < ONE_CELL_P50_MS && p99 < ONE_CELL_P99_MS;
                if place.is_empty() {
                    all_met &= met || args.latency_n < 1_000_000;
                }
                (format!("< {ONE_CELL_P50_MS} (p99 < {ONE_CELL_P99_MS})"), if met { "yes" } else { "no" })
            } else {
                ("(contrast)".to_string(), "-")
            };
            println!("| {}{place} | {saves} | {} | {} | {} | {target} | {met} |", backend.name(), fmt_ms(p50), fmt_ms(p99), fmt_ms(max));
        }
    }
    if !all_met {
        eprintln!("W11: some targets were not met (see the tables)");
    }
}
