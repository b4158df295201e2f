//! The crash-safety promise (issue 9): a process writing through a persister can be killed at
//! any moment, and reopening the storage then gives a valid store (it loads, its hashes verify)
//! holding every transaction the persister had reported durable, exactly.
//!
//! For the file persister and both SQLite modes, this test starts the writer
//! (tests/support/persist_writer.rs, also examples/persist_writer.rs) over one storage, SIGKILLs
//! it at a random moment (0–15 ms or 0–80 ms after its start: during its load or its first save;
//! or 0–60 ms after auto-save started: deep into it), reopens the storage in a fresh store and checks it, and starts the next writer on
//! what the last one left, `TB_CRASH_KILLS` times per storage (150 by default;
//! scripts/crash-persist.sh runs thousands). The storage starts afresh every `TB_CRASH_CHAIN`
//! kills (250) so that whole-content saves stay small enough to complete within a run.
//! `TB_CRASH_SEED` (default 9) seeds the kill times and the writers' seeds.

#[path = "support/persist_writer.rs"]
mod persist_writer;
#[path = "support/rng.rs"]
mod rng;

use persist_writer::{expected, open_persister, run_writer, split_by_run, RunData};
use rng::Rng;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tinybase::persist::PersisterOptions;
use tinybase::MergeableStore;

/// Set in the child: `KIND\tPATH\tSEED`.
const CHILD_ENV: &str = "TB_PERSIST_WRITER";

/// The writing process: the crash test runs its own binary with this test selected and
/// `TB_PERSIST_WRITER` set (so the test needs no separately built example), and kills it.
#[test]
#[ignore = "the crash test's writing process, started and killed by the crash tests"]
fn writer_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else { return };
    let parts: Vec<&str> = spec.split('\t').collect();
    let seed = parts[2].parse().expect("seed");
    std::process::exit(run_writer(parts[0], Path::new(parts[1]), seed, None));
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One writer run, as the checker knows it.
struct Run {
    /// The last transaction it reported durable.
    durable: Option<u64>,
    /// Its data as first reopened after it was killed: no later run writes it, so every later
    /// reopen must find exactly this.
    settled: Option<RunData>,
}

/// Where a kill landed, from the lines the writer printed before it.
#[derive(Default)]
struct Phases {
    loading: u64,
    first_save: u64,
    auto_saving: u64,
    with_durable: u64,
    durable_points: u64,
    max_bytes: u64,
    max_temp_files: usize,
}

/// The storage's bytes (the database with its WAL for SQLite).
fn stored_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| entries.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
}

fn temp_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map_or(0, |entries| entries.filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().ends_with(".tmp")).count())
}

/// Reopens the storage in a fresh store and checks it against every run so far.
fn check_reopen(kind: &str, path: &Path, history: &mut BTreeMap<u64, Run>, repro: &str) {
    let store = MergeableStore::new(Some("checker"));
    let persister = open_persister(kind, &store, path, PersisterOptions::default())
        .unwrap_or_else(|e| panic!("reopening failed: {e:?}\n  reproduce: {repro}"));
    let loaded = persister.load().unwrap_or_else(|e| panic!("the load after the kill failed: {e:?}\n  reproduce: {repro}"));
    persister.destroy();
    drop(persister);
    let any_durable = history.values().any(|r| r.durable.is_some() || r.settled.as_ref().is_some_and(|d| *d != RunData::default()));
    assert!(loaded || !any_durable, "nothing was loaded, yet transactions had been reported durable\n  reproduce: {repro}");
    assert_eq!(
        store.get_mergeable_content_hashes(),
        store.compute_content_hashes(),
        "the loaded store's hashes are not its content's\n  reproduce: {repro}"
    );
    let (mut runs, foreign) = split_by_run(&store);
    assert!(foreign.is_empty(), "data no writer wrote: {foreign:?}\n  reproduce: {repro}");
    for (seed, run) in history.iter_mut() {
        let got = runs.remove(seed).unwrap_or_default();
        match &run.settled {
            Some(settled) => assert!(
                got == *settled,
                "run {seed}'s data changed after it was first reopened:\n  then {settled:?}\n  now  {got:?}\n  reproduce: {repro}"
            ),
            None => {
                let last = got.last_transaction(*seed);
                if let Some(durable) = run.durable {
                    assert!(
                        last.is_some_and(|l| l >= durable),
                        "run {seed} reported transaction {durable} durable, the reopened store holds only up to {last:?}\n  reproduce: {repro}"
                    );
                }
                let want = expected(*seed, last);
                assert!(
                    got == want,
                    "run {seed}'s data is not exactly its transactions 0..={last:?}:\n  want {want:?}\n  got  {got:?}\n  reproduce: {repro}"
                );
                run.settled = Some(got);
            }
        }
    }
    assert!(runs.is_empty(), "data of runs that never ran: {:?}\n  reproduce: {repro}", runs.keys().collect::<Vec<_>>());
}

/// Removes the folder unless the test failed (then it is kept, and named, for inspection).
struct Folder(PathBuf);

impl Drop for Folder {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("the storage is kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn crash(kind: &str) {
    let (kills, chain, base) = (env_u64("TB_CRASH_KILLS", 150), env_u64("TB_CRASH_CHAIN", 250).max(1), env_u64("TB_CRASH_SEED", 9));
    let folder = Folder(std::env::temp_dir().join(format!("tinybase-crash-{kind}-{}", std::process::id())));
    let path = folder.0.join(if kind == "file" { "store.json" } else { "store.db" });
    let mut rng = Rng(base.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ kind.len() as u64);
    let mut history = BTreeMap::new();
    let mut phases = Phases::default();
    let exe = std::env::current_exe().expect("the test binary");
    let started = Instant::now();
    for kill in 0..kills {
        if kill % chain == 0 {
            let _ = std::fs::remove_dir_all(&folder.0);
            std::fs::create_dir_all(&folder.0).expect("a temporary folder");
            history.clear();
        }
        let run_seed = base * 1_000_000 + kill + 1;
        // A quarter of the kills early (the load and the first save), the rest anywhere in 80 ms.
        // A quarter of the kills early (the load and the first save), a third anywhere in the
        // first 80 ms, the rest 0–60 ms after auto-save started (deep into it, however slowly the
        // machine starts processes).
        let (after_start, micros) = match rng.below(100) {
            0..=24 => (false, rng.below(15_000)),
            25..=59 => (false, rng.below(80_000)),
            _ => (true, rng.below(60_000)),
        };
        let delay = Duration::from_micros(micros);
        let when = if after_start { "after auto-save started" } else { "after its start" };
        let repro = format!("TB_CRASH_SEED={base} (kind {kind}, kill #{kill}, writer seed {run_seed}, killed {delay:?} {when}; {})", path.display());
        let spawned = Instant::now();
        let mut child = Command::new(&exe)
            .args(["writer_child", "--exact", "--ignored", "--nocapture", "--test-threads", "1", "-q"])
            .env(CHILD_ENV, format!("{kind}\t{}\t{run_seed}", path.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the writer");
        let stdout = child.stdout.take().expect("the writer's stdout");
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("auto-save started") {
                    let _ = started_tx.send(());
                }
                lines.push(line);
            }
            lines
        });
        if after_start {
            // (A writer that fails before is reported below from its lines.)
            let _ = started_rx.recv_timeout(Duration::from_secs(10));
            std::thread::sleep(delay);
        } else {
            std::thread::sleep(delay.saturating_sub(spawned.elapsed()));
        }
        let _ = child.kill();
        let status = child.wait().expect("waiting for the writer");
        let lines = reader.join().expect("the reader thread");
        // The writer exits on its own only when it cannot load or save: that is a failure too.
        if let Some(bad) = lines.iter().find(|l| l.contains("-error ")) {
            panic!("the writer failed ({status}): {bad}\n  reproduce: {repro}");
        }
        let has = |word: &str| lines.iter().any(|l| l.contains(word));
        let durable = lines.iter().filter_map(|l| l.split_once("durable ").and_then(|(_, i)| i.trim().parse::<u64>().ok())).max();
        match (has("loaded "), has("auto-save started")) {
            (false, _) => phases.loading += 1,
            (true, false) => phases.first_save += 1,
            (true, true) => phases.auto_saving += 1,
        }
        phases.with_durable += u64::from(durable.is_some());
        phases.durable_points += lines.iter().filter(|l| l.contains("durable ")).count() as u64;
        phases.max_temp_files = phases.max_temp_files.max(temp_files(&folder.0));
        phases.max_bytes = phases.max_bytes.max(stored_bytes(&folder.0));
        history.insert(run_seed, Run { durable, settled: None });
        check_reopen(kind, &path, &mut history, &repro);
    }
    let elapsed = started.elapsed();
    println!(
        "crash {kind}: {kills} kills in {:.1} s (seed {base}): {} while loading, {} during the first save, {} auto-saving; \
         {} runs had transactions reported durable ({} durable points), all found after the kill; \
         the folder up to {} KiB, up to {} temporary files of killed saves at once",
        elapsed.as_secs_f64(),
        phases.loading,
        phases.first_save,
        phases.auto_saving,
        phases.with_durable,
        phases.durable_points,
        phases.max_bytes / 1024,
        phases.max_temp_files,
    );
    // Each kill mid-save leaves a temporary file; the next writer's first save removes those of
    // dead processes, so they never pile up.
    assert!(phases.max_temp_files <= 10, "{} temporary files of killed writers piled up", phases.max_temp_files);
    if kills >= 50 {
        assert!(phases.auto_saving > 0 && phases.with_durable > 0, "no kill landed while auto-saving with durable transactions: the test checked nothing");
    }
}

#[test]
fn crash_file() {
    crash("file");
}

#[test]
fn crash_sqlite_json() {
    crash("sqlite-json");
}

#[test]
fn crash_sqlite_incremental() {
    crash("sqlite-incremental");
}
