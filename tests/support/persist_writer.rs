//! The crash test's writing process (examples/persist_writer.rs, and tests/persist_crash.rs
//! re-running itself as that process) and the model its checker replays.
//!
//! Run `SEED` commits transactions 0, 1, 2 ... to table `t`, rows `SEED.j` (j = i mod
//! [`ROWS`], so a run's data stays small however many transactions it commits) and values
//! `n.SEED`, `a.SEED`. Every transaction `i` sets cell `v` of its row to `"SEED:i"`, so the state
//! after transaction `k` holds `"SEED:k"` and nothing later: `k` can be read back from a loaded
//! store, and the exact content expected is [`apply`] replayed from 0 to `k`.

#![allow(dead_code)]

use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tinybase::persist::file::create_file_persister;
use tinybase::persist::sqlite::{create_sqlite_persister, SqliteConfig, SqliteMode};
use tinybase::persist::{Durable, Persister, PersisterOptions};
use tinybase::{Cell, MergeableStore, Row, Store};

/// Rows per run.
pub const ROWS: u64 = 16;
/// The storages the crash test covers.
pub const KINDS: [&str; 3] = ["file", "sqlite-json", "sqlite-incremental"];
/// The table every run writes.
pub const TABLE: &str = "t";

fn row_id(seed: u64, i: u64) -> String {
    format!("{seed}.{}", i % ROWS)
}

/// Transaction `i` of run `seed`'s edits (the caller wraps them in one transaction): one cell
/// (i ≡ 0 mod 4), a whole row with an object, an array, a boolean and null (1), a cell, a value
/// and a deleted cell (2), a deleted row, a cell, an array value and every other time a deleted
/// value (3).
pub fn apply(store: &Store, seed: u64, i: u64) {
    let row = row_id(seed, i);
    let v = format!("{seed}:{i}");
    let set = |r: &str, c: &str, cell: Cell| store.set_cell(TABLE, r, c, cell).expect("set_cell");
    match i % 4 {
        1 => {
            let mut full = Row::new();
            full.insert("v".into(), Cell::from(v.as_str()));
            full.insert("n".into(), Cell::from(i as f64));
            full.insert("b".into(), Cell::from((i / 4).is_multiple_of(2)));
            full.insert("z".into(), Cell::Null);
            full.insert("o".into(), Cell::from_json(&json!({"seed": seed, "i": i, "l": [i, "x", {"y": null}]})).unwrap());
            full.insert("a".into(), Cell::from_json(&json!([seed, i])).unwrap());
            store.set_row(TABLE, &row, &full).expect("set_row");
        }
        2 => {
            set(&row, "v", Cell::from(v.as_str()));
            store.set_value(&format!("n.{seed}"), i as f64).expect("set_value");
            store.del_cell(TABLE, &row_id(seed, i - 1), "o");
        }
        3 => {
            store.del_row(TABLE, &row_id(seed, i - 2));
            set(&row, "v", Cell::from(v.as_str()));
            store.set_value(&format!("a.{seed}"), Cell::from_json(&json!([i, format!("{seed}")])).unwrap()).expect("set_value");
            if i % 8 == 7 {
                store.del_value(&format!("n.{seed}"));
            }
        }
        _ => set(&row, "v", Cell::from(v.as_str())),
    }
}

/// One run's part of a store: its rows and its values, ordered for comparison and messages.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunData {
    /// Row id → cell id → cell.
    pub rows: BTreeMap<String, BTreeMap<String, Cell>>,
    /// Value id → value.
    pub values: BTreeMap<String, Cell>,
}

impl RunData {
    /// The last transaction this data holds (from the `v` cells), None for no data.
    pub fn last_transaction(&self, seed: u64) -> Option<u64> {
        let prefix = format!("{seed}:");
        self.rows
            .values()
            .filter_map(|row| match row.get("v") {
                Some(Cell::String(s)) => s.strip_prefix(&prefix).and_then(|i| i.parse().ok()),
                _ => None,
            })
            .max()
    }
}

/// A store's content split by run (the seed in row ids `SEED.j` and value ids `x.SEED`);
/// anything else is under `None` (never written by a writer: a sign of foreign data).
pub fn split_by_run(store: &Store) -> (BTreeMap<u64, RunData>, Vec<String>) {
    let mut runs: BTreeMap<u64, RunData> = BTreeMap::new();
    let mut foreign = Vec::new();
    for (table_id, table) in store.get_tables() {
        for (row_id, row) in table {
            match (table_id == TABLE).then(|| row_id.split_once('.')).flatten().and_then(|(s, _)| s.parse().ok()) {
                Some(seed) => {
                    runs.entry(seed).or_default().rows.insert(row_id, row.into_iter().collect());
                }
                None => foreign.push(format!("row {table_id}/{row_id}")),
            }
        }
    }
    for (value_id, value) in store.get_values() {
        match value_id.split_once('.').and_then(|(_, s)| s.parse().ok()) {
            Some(seed) => {
                runs.entry(seed).or_default().values.insert(value_id, value);
            }
            None => foreign.push(format!("value {value_id}")),
        }
    }
    (runs, foreign)
}

/// What run `seed` holds after its transactions 0..=last, replayed on a fresh store.
pub fn expected(seed: u64, last: Option<u64>) -> RunData {
    let model = Store::new();
    if let Some(last) = last {
        for i in 0..=last {
            model.transaction(|s| apply(s, seed, i));
        }
    }
    split_by_run(&model).0.remove(&seed).unwrap_or_default()
}

/// The persister of `kind` over `path`.
pub fn open_persister(kind: &str, store: &Store, path: &Path, options: PersisterOptions) -> tinybase::Result<Persister> {
    let sqlite = |mode| create_sqlite_persister(store, path, SqliteConfig { mode, ..SqliteConfig::default() }, options.clone());
    match kind {
        "file" => create_file_persister(store, path, options.clone()),
        "sqlite-json" => sqlite(SqliteMode::Json),
        "sqlite-incremental" => sqlite(SqliteMode::Incremental),
        _ => Err(tinybase::Error::InvalidState(format!("unknown kind {kind:?} (file | sqlite-json | sqlite-incremental)"))),
    }
}

/// Writes one whole line to stdout in one write, flushed, so a reader sees complete lines up to
/// the moment of a SIGKILL.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(format!("{line}\n").as_bytes());
    let _ = out.flush();
}

#[derive(Default)]
struct Durables {
    /// Content hashes after each commit → the transaction; the load's hashes → None.
    by_hash: HashMap<(u32, u32), Option<u64>>,
    /// Hashes reported durable before the committing thread recorded them.
    pending: Vec<(u32, u32)>,
}

fn report(i: Option<u64>) {
    if let Some(i) = i {
        say(&format!("durable {i}"));
    }
}

/// The writer: opens the store over `kind`'s storage at `path`, loads (`loaded true|false`, or
/// `load-error ...` and exit status 3), starts auto-save (`auto-save started`, or
/// `auto-save-error ...` and exit status 4), then commits transactions as fast as it can,
/// printing `durable <i>` each time the persister reports the content after transaction `i`
/// durable. With `count`, stops after that many transactions, flushes, destroys the persister
/// and prints `done`; otherwise runs until killed.
pub fn run_writer(kind: &str, path: &Path, seed: u64, count: Option<u64>) -> i32 {
    let store = MergeableStore::new(Some(&format!("w{seed}")));
    let durables = Arc::new(Mutex::new(Durables::default()));
    let on_durable = {
        let durables = durables.clone();
        move |d: &Durable| {
            let mut ds = durables.lock().unwrap();
            match ds.by_hash.get(&d.content_hashes) {
                Some(i) => report(*i),
                None => ds.pending.push(d.content_hashes),
            }
        }
    };
    let options = PersisterOptions { on_durable: Some(Arc::new(on_durable)), ..PersisterOptions::default() };
    let persister = match open_persister(kind, &store, path, options) {
        Ok(p) => p,
        Err(e) => {
            say(&format!("open-error {e}"));
            return 2;
        }
    };
    match persister.load() {
        Ok(loaded) => say(&format!("loaded {loaded}")),
        Err(e) => {
            say(&format!("load-error {e:?}"));
            return 3;
        }
    }
    durables.lock().unwrap().by_hash.insert(store.get_mergeable_content_hashes(), None);
    if let Err(e) = persister.start_auto_save() {
        say(&format!("auto-save-error {e:?}"));
        return 4;
    }
    say("auto-save started");
    let mut i = 0;
    while count.is_none_or(|n| i < n) {
        store.transaction(|s| apply(s, seed, i));
        let hashes = store.get_mergeable_content_hashes();
        let mut ds = durables.lock().unwrap();
        ds.by_hash.insert(hashes, Some(i));
        if let Some(at) = ds.pending.iter().position(|h| *h == hashes) {
            ds.pending.swap_remove(at);
            report(Some(i));
        }
        i += 1;
    }
    match persister.flush(std::time::Duration::from_secs(60)) {
        Ok(true) => {}
        other => {
            say(&format!("flush-error {other:?}"));
            return 5;
        }
    }
    persister.destroy();
    say("done");
    0
}
