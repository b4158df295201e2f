//! SQLite persistence: TinyBase's JSON layout and the incremental layout, at the storage level
//! (what is in the database, bad databases, locks, other connections) and through a Persister.

use parking_lot::Mutex;
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tinybase::persist::file::merge_text;
use tinybase::persist::sqlite::{SqliteConfig, SqliteMode, SqliteStorage};
use tinybase::persist::{Content, Storage};
use tinybase::{Cell, Error, MergeableStore};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tinybase-sqlite-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn json() -> SqliteConfig {
    SqliteConfig::with_mode(SqliteMode::Json)
}

fn incremental() -> SqliteConfig {
    SqliteConfig::with_mode(SqliteMode::Incremental)
}

/// Every committed transaction's wire changes with hashes, as a persister's commit hook gets them.
fn record_changes(store: &MergeableStore) -> Arc<Mutex<Vec<String>>> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let into = log.clone();
    store.add_did_finish_transaction_listener(move |s| {
        let m = MergeableStore::from_store(s).expect("mergeable");
        into.lock().push(m.get_encoded_transaction_mergeable_changes_json(true));
    });
    log
}

/// A store with objects, arrays, deletions, integer-like ids and several tables.
fn sample(id: &str) -> MergeableStore {
    let s = MergeableStore::new(Some(id));
    s.set_cell("pets", "fido", "species", "dog").unwrap();
    s.set_cell("pets", "fido", "legs", 4.0).unwrap();
    s.set_cell("pets", "2", "toy", Cell::from_json(&serde_json::json!({"b": [1, 2.5, "x"], "a": null})).unwrap()).unwrap();
    s.set_cell("pets", "felix", "species", "cat").unwrap();
    s.del_cell("pets", "felix", "species");
    for t in 0..5 {
        for r in 0..3 {
            s.set_cell(&format!("t{t}"), &format!("r{r}"), "n", (t * 10 + r) as f64).unwrap();
        }
    }
    s.set_value("open", true).unwrap();
    s.set_value("gone", "soon").unwrap();
    s.del_value("gone");
    s.set_value("list", Cell::from_json(&serde_json::json!([3, {"k": "v"}])).unwrap()).unwrap();
    s
}

/// Loads stored mergeable content into a fresh store (verifying its hashes).
fn loaded(content: Option<Content>) -> MergeableStore {
    let s = MergeableStore::new(Some("reader"));
    match content {
        Some(Content::Mergeable(text)) => merge_text(&s, &text).unwrap(),
        other => panic!("expected mergeable content, got {other:?}"),
    }
    s
}

fn assert_corrupt<T: std::fmt::Debug>(r: tinybase::Result<T>, what: &str) -> String {
    match r {
        Err(Error::Corrupt(m)) => m,
        other => panic!("{what}: expected Error::Corrupt, got {other:?}"),
    }
}

fn table_sql(path: &Path, table: &str) -> Option<String> {
    let c = Connection::open(path).unwrap();
    c.query_row("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1", [table], |r| r.get(0)).ok()
}

// ------------------------------------------------------------------------------- JSON mode

#[test]
fn json_mode_writes_tinybases_layout() {
    let dir = temp_dir("json-layout");
    let path = dir.join("store.db");
    let store = sample("a");
    let mut storage = SqliteStorage::open(&path, json()).unwrap();
    assert_eq!(storage.read(true).unwrap(), None, "nothing stored yet");
    let text = store.get_encoded_mergeable_content_json();
    storage.write(&Content::Mergeable(text.clone())).unwrap();
    // (SQLite keeps the text TinyBase issues, `CREATE TABLE"tinybase"(...)`, with this one space added.)
    assert_eq!(table_sql(&path, "tinybase").as_deref(), Some("CREATE TABLE \"tinybase\"(\"_id\" PRIMARY KEY,\"store\")"));
    let c = Connection::open(&path).unwrap();
    let (id, stored): (String, String) = c.query_row("SELECT \"_id\", \"store\" FROM tinybase", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    assert_eq!((id.as_str(), stored.as_str()), ("_", text.as_str()), "one row _ holding TinyBase's file text");
    let journal: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(journal, "delete", "no WAL, so the bytes can be handed to sqlite-wasm");
    drop(c);

    // Written again: still one row.
    store.set_cell("pets", "fido", "legs", 3.0).unwrap();
    storage.write(&Content::Mergeable(store.get_encoded_mergeable_content_json())).unwrap();
    let reader = loaded(SqliteStorage::open(&path, json()).unwrap().read(true).unwrap());
    assert_eq!(reader.get_mergeable_content_hashes(), store.get_mergeable_content_hashes());
    assert_eq!(reader.get_cell("pets", "fido", "legs"), Some(Cell::Number(3.0)));
    let n: i64 = Connection::open(&path).unwrap().query_row("SELECT count(*) FROM tinybase", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 1);

    // A table made elsewhere, its id not a key: TinyBase's unique index is added.
    let other = dir.join("other.db");
    Connection::open(&other).unwrap().execute_batch("CREATE TABLE tinybase(_id TEXT, store TEXT, extra INTEGER)").unwrap();
    let mut storage = SqliteStorage::open(&other, json()).unwrap();
    storage.write(&Content::Mergeable(text.clone())).unwrap();
    storage.write(&Content::Mergeable(text.clone())).unwrap();
    let c = Connection::open(&other).unwrap();
    let index: String = c.query_row("SELECT name FROM sqlite_master WHERE type = 'index'", [], |r| r.get(0)).unwrap();
    assert!(index.starts_with("tinybase_pk_"), "{index}");
    let n: i64 = c.query_row("SELECT count(*) FROM tinybase", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 1);

    // A plain Store's [tables, values].
    let plain_path = dir.join("plain.db");
    let mut plain = SqliteStorage::open(&plain_path, json()).unwrap();
    let content = "[{\"pets\":{\"fido\":{\"species\":\"dog\"}}},{\"open\":true}]".to_string();
    plain.write(&Content::Plain(content.clone())).unwrap();
    assert_eq!(SqliteStorage::open(&plain_path, json()).unwrap().read(false).unwrap(), Some(Content::Plain(content)));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn json_mode_reads_what_tinybase_wrote_with_custom_names() {
    let dir = temp_dir("json-tinybase");
    let path = dir.join("tb.db");
    // As TinyBase 10.0.1's sqlite persisters issue it, with storeTableName "my store",
    // storeIdColumnName "id" and storeColumnName "json".
    let text = "[[{\"pets\":[{\"fido\":[{\"species\":[\"dog\",\"P7o4uYi----7JQY8\",1688904453],\"o\":[\"\u{FFFD}{\\\"a\\\":[1,2]}\",\"P7o4uYj----7JQY8\",861218171]},\"\",1582795359]},\"\",1816222327]},\"\",762336777],[{\"open\":[true,\"P7o4uYk----7JQY8\",1468796195]},\"\",984249598]]";
    let c = Connection::open(&path).unwrap();
    c.execute_batch("CREATE TABLE\"my store\"(\"id\" PRIMARY KEY,\"json\");").unwrap();
    c.execute("INSERT INTO\"my store\"(\"id\",\"json\")VALUES(?,?)ON CONFLICT(\"id\")DO UPDATE SET\"json\"=excluded.\"json\"", ["_", text]).unwrap();
    drop(c);
    let config = SqliteConfig {
        mode: SqliteMode::Json,
        store_table_name: "my store".into(),
        store_id_column_name: "id".into(),
        store_column_name: "json".into(),
    };
    let mut storage = SqliteStorage::open(&path, config.clone()).unwrap();
    let reader = loaded(storage.read(true).unwrap());
    assert_eq!(reader.get_mergeable_content_hashes(), (762336777, 984249598));
    assert_eq!(reader.get_encoded_mergeable_content_json(), text);
    // Our write goes into the same row, and TinyBase's default names see nothing.
    storage.write(&Content::Mergeable(reader.get_encoded_mergeable_content_json())).unwrap();
    assert_eq!(SqliteStorage::open(&path, json()).unwrap().read(true).unwrap(), None);
    assert_eq!(SqliteStorage::open(&path, config).unwrap().read(true).unwrap(), Some(Content::Mergeable(text.to_string())));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn json_mode_refuses_bad_databases_and_moves_them_aside() {
    let dir = temp_dir("json-bad");
    // Not a database at all.
    let path = dir.join("garbage.db");
    let garbage = b"this is not a SQLite database, just some bytes that must survive".repeat(100);
    std::fs::write(&path, &garbage).unwrap();
    let mut storage = SqliteStorage::open(&path, json()).unwrap();
    assert_corrupt(storage.read(true), "garbage read");
    assert_corrupt(storage.write(&Content::Mergeable(sample("a").get_encoded_mergeable_content_json())), "garbage write");
    assert!(std::fs::read(&path).unwrap() == garbage, "not overwritten");
    let aside = storage.move_aside().unwrap();
    assert!(aside.ends_with("garbage.db.corrupt"), "{aside}");
    assert!(std::fs::read(&aside).unwrap() == garbage, "kept whole");
    assert_eq!(storage.read(true).unwrap(), None, "a fresh database");
    storage.write(&Content::Mergeable(sample("a").get_encoded_mergeable_content_json())).unwrap();
    assert!(storage.read(true).unwrap().is_some());

    // A row that is not JSON content: refused, then kept under _.corrupt.
    let path = dir.join("badrow.db");
    let c = Connection::open(&path).unwrap();
    c.execute_batch("CREATE TABLE \"tinybase\"(\"_id\" PRIMARY KEY,\"store\"); INSERT INTO tinybase VALUES ('_', '{not json'), ('_.corrupt', 'older');").unwrap();
    drop(c);
    let mut storage = SqliteStorage::open(&path, json()).unwrap();
    assert_corrupt(storage.read(true), "bad JSON");
    let aside = storage.move_aside().unwrap();
    assert!(aside.contains("_.corrupt.2"), "{aside}");
    assert_eq!(storage.read(true).unwrap(), None);
    let kept: String = Connection::open(&path).unwrap().query_row("SELECT store FROM tinybase WHERE _id = '_.corrupt.2'", [], |r| r.get(0)).unwrap();
    assert_eq!(kept, "{not json");

    // A number where the text should be.
    let path = dir.join("number.db");
    Connection::open(&path).unwrap().execute_batch("CREATE TABLE tinybase(_id PRIMARY KEY, store); INSERT INTO tinybase VALUES ('_', 42);").unwrap();
    assert_corrupt(SqliteStorage::open(&path, json()).unwrap().read(true), "a number");

    // The table without the store column: refused, then renamed.
    let path = dir.join("shape.db");
    Connection::open(&path).unwrap().execute_batch("CREATE TABLE tinybase(_id PRIMARY KEY, other); INSERT INTO tinybase VALUES ('_', 'x');").unwrap();
    let mut storage = SqliteStorage::open(&path, json()).unwrap();
    assert!(assert_corrupt(storage.read(true), "wrong shape").contains("store"));
    assert_corrupt(storage.write(&Content::Plain("[{},{}]".into())), "write over a wrong shape");
    assert!(storage.move_aside().unwrap().contains("tinybase_corrupt"));
    storage.write(&Content::Plain("[{},{}]".into())).unwrap();
    assert!(table_sql(&path, "tinybase_corrupt").is_some());
    let _ = std::fs::remove_dir_all(&dir);
}

// ------------------------------------------------------------------------ incremental mode

#[test]
fn incremental_mode_round_trips_content_and_transactions() {
    let dir = temp_dir("inc-round");
    let path = dir.join("inc.db");
    let store = sample("a");
    let log = record_changes(&store);
    let mut storage = SqliteStorage::open(&path, incremental()).unwrap();
    assert!(storage.is_incremental());
    assert_eq!(storage.read(true).unwrap(), None);
    storage.write(&Content::Mergeable(store.get_encoded_mergeable_content_json())).unwrap();
    let again = SqliteStorage::open(&path, incremental()).unwrap().read(true).unwrap();
    assert_eq!(again, Some(Content::Mergeable(store.get_encoded_mergeable_content_json())), "byte for byte, in the store's order");

    // Transactions: one cell, a row deletion, a table, values, objects.
    log.lock().clear();
    store.set_cell("pets", "fido", "legs", 3.0).unwrap();
    store.del_row("pets", "fido");
    store.transaction(|s| {
        s.set_cell("new", "r", "c", "x").unwrap();
        s.set_cell("pets", "2", "toy", Cell::from_json(&serde_json::json!([{"deep": [true]}])).unwrap()).unwrap();
        s.set_value("open", false).unwrap();
        s.del_value("list");
    });
    store.del_table("t3");
    let changes = log.lock().clone();
    assert_eq!(changes.len(), 4, "{changes:?}");
    for c in &changes {
        storage.write_changes(c).unwrap();
    }
    let reader = loaded(SqliteStorage::open(&path, incremental()).unwrap().read(true).unwrap());
    assert_eq!(reader.get_mergeable_content_hashes(), store.get_mergeable_content_hashes());
    assert_eq!(reader.get_content_json(), store.get_content_json());
    assert_eq!(reader.get_encoded_mergeable_content_json(), store.get_encoded_mergeable_content_json());

    let c = Connection::open(&path).unwrap();
    let journal: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(journal, "wal");
    let cells: i64 = c.query_row("SELECT count(*) FROM tinybase_cells", [], |r| r.get(0)).unwrap();
    assert_eq!(cells, 4 + 15 + 1, "one row per cell, tombstones included");
    let tomb: String = c.query_row("SELECT value FROM tinybase_cells WHERE table_id = 'pets' AND row_id = 'fido' AND cell_id = 'species'", [], |r| r.get(0)).unwrap();
    assert_eq!(tomb, "\"\u{FFFC}\"");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn incremental_writers_on_several_connections_store_their_merge() {
    let dir = temp_dir("inc-writers");
    let path = dir.join("inc.db");
    let threads = 4;
    let stores: Vec<MergeableStore> = (0..threads).map(|i| MergeableStore::new(Some(&format!("w{i}")))).collect();
    std::thread::scope(|scope| {
        for (i, store) in stores.iter().enumerate() {
            let path = path.clone();
            scope.spawn(move || {
                let log = record_changes(store);
                let mut storage = SqliteStorage::open(&path, incremental()).unwrap();
                for n in 0..60 {
                    // Shared cells too: the later HLC must win in the database as in a merge.
                    store.set_cell("shared", &format!("r{}", n % 7), "by", i as f64).unwrap();
                    store.set_cell(&format!("own{i}"), &format!("r{n}"), "n", n as f64).unwrap();
                    if n % 10 == 9 {
                        store.del_row(&format!("own{i}"), &format!("r{}", n - 5));
                        store.set_value(&format!("v{}", n % 3), i as f64).unwrap();
                    }
                    for c in log.lock().drain(..) {
                        storage.write_changes(&c).unwrap();
                    }
                }
            });
        }
    });
    let merged = MergeableStore::new(Some("merged"));
    for s in &stores {
        merged.apply_mergeable_changes_json(&s.get_encoded_mergeable_content_json()).unwrap();
    }
    let reader = loaded(SqliteStorage::open(&path, incremental()).unwrap().read(true).unwrap());
    assert_eq!(reader.get_mergeable_content_hashes(), merged.get_mergeable_content_hashes());
    let content = |s: &MergeableStore| serde_json::from_str::<serde_json::Value>(&s.get_content_json()).unwrap();
    assert!(content(&reader) == content(&merged), "the database holds the merge of every writer");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn incremental_mode_refuses_bad_databases() {
    let dir = temp_dir("inc-bad");
    let store = sample("a");
    let good = dir.join("good.db");
    SqliteStorage::open(&good, incremental()).unwrap().write(&Content::Mergeable(store.get_encoded_mergeable_content_json())).unwrap();
    let tamper = |name: &str, sql: &str| {
        let path = dir.join(name);
        // A consistent copy (the WAL checkpointed into the copy).
        Connection::open(&good).unwrap().execute("VACUUM INTO ?1", [path.to_str().unwrap()]).unwrap();
        Connection::open(&path).unwrap().execute_batch(sql).unwrap();
        path
    };
    let cases = [
        ("value.db", "UPDATE tinybase_cells SET value = '\"cat\"' WHERE cell_id = 'species' AND row_id = 'fido'", "hash"),
        ("json.db", "UPDATE tinybase_cells SET value = '{' WHERE cell_id = 'legs'", "JSON"),
        ("hash.db", "UPDATE tinybase_containers SET hash = hash + 1 WHERE kind = 1", "hash"),
        ("range.db", "UPDATE tinybase_values SET hash = -1", "32-bit"),
        ("future.db", "UPDATE tinybase_cells SET hlc = 'zzzzzzzzzzzzzzzz' WHERE cell_id = 'legs'", "future"),
        ("orphan.db", "DELETE FROM tinybase_containers WHERE kind = 2 AND row_id = 'fido'", "stamp"),
        ("kind.db", "UPDATE tinybase_containers SET kind = 9 WHERE kind = 3", "kind"),
        ("version.db", "UPDATE tinybase_meta SET value = '2' WHERE key = 'schema_version'", "schema_version"),
        ("column.db", "ALTER TABLE tinybase_cells DROP COLUMN hash", "column"),
        ("type.db", "UPDATE tinybase_cells SET hlc = x'00ff' WHERE cell_id = 'legs'", ""),
    ];
    for (name, sql, says) in cases {
        let path = tamper(name, sql);
        let before = std::fs::read(&path).unwrap();
        let mut storage = SqliteStorage::open(&path, incremental()).unwrap();
        let why = assert_corrupt(storage.read(true), name);
        assert!(why.contains(says), "{name}: {why}");
        drop(storage);
        assert!(std::fs::read(&path).unwrap() == before, "{name}: reading changed nothing");
    }

    // Moved aside: the files keep their bytes under .corrupt and a fresh database starts.
    let path = tamper("aside.db", "UPDATE tinybase_cells SET value = '\"cat\"' WHERE cell_id = 'species' AND row_id = 'fido'");
    let mut storage = SqliteStorage::open(&path, incremental()).unwrap();
    assert_corrupt(storage.read(true), "aside");
    let aside = storage.move_aside().unwrap();
    assert!(aside.ends_with("aside.db.corrupt"), "{aside}");
    assert_eq!(storage.read(true).unwrap(), None);
    assert_corrupt(SqliteStorage::open(&aside, incremental()).unwrap().read(true), "the moved copy");

    // Not a database.
    let path = dir.join("garbage.db");
    std::fs::write(&path, vec![7u8; 5000]).unwrap();
    let mut storage = SqliteStorage::open(&path, incremental()).unwrap();
    assert_corrupt(storage.read(true), "garbage");
    assert_corrupt(storage.write_changes("[[{},\"\",0],[{},\"\",0],1]"), "garbage write");
    assert!(std::fs::read(&path).unwrap() == vec![7u8; 5000], "not overwritten");
    storage.move_aside().unwrap();
    storage.write(&Content::Mergeable(store.get_encoded_mergeable_content_json())).unwrap();
    assert!(storage.read(true).unwrap().is_some());
    let _ = std::fs::remove_dir_all(&dir);
}

// ------------------------------------------------------------------------ both modes

#[test]
fn changed_sees_other_connections_and_locks_exclude() {
    for config in [json(), incremental()] {
        let dir = temp_dir(&format!("changed-{:?}", config.mode));
        let path = dir.join("s.db");
        let mut a = SqliteStorage::open(&path, config.clone()).unwrap();
        let mut b = SqliteStorage::open(&path, config.clone()).unwrap();
        let store = sample("a");
        a.write(&Content::Mergeable(store.get_encoded_mergeable_content_json())).unwrap();
        assert!(a.read(true).unwrap().is_some());
        assert!(!a.changed().unwrap(), "its own write is not a change");
        store.set_value("open", false).unwrap();
        b.lock(Duration::from_secs(1)).unwrap();
        // Locked: another connection waits, then fails with Io.
        let started = Instant::now();
        match a.lock(Duration::from_millis(200)) {
            Err(Error::Io(m)) => assert!(m.contains("lock"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() >= Duration::from_millis(150));
        b.write(&Content::Mergeable(store.get_encoded_mergeable_content_json())).unwrap();
        assert!(!a.changed().unwrap(), "not committed yet");
        b.unlock().unwrap();
        assert!(a.changed().unwrap(), "another connection's commit");
        let reader = loaded(a.read(true).unwrap());
        assert_eq!(reader.get_value("open"), Some(Cell::Bool(false)));
        assert!(!a.changed().unwrap());
        a.lock(Duration::from_secs(1)).unwrap();
        a.unlock().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// One-cell `write_changes` latency at 1M cells (run by hand:
/// `cargo test --release --test persist_sqlite one_cell_latency -- --ignored --nocapture`).
#[test]
#[ignore]
fn one_cell_latency_at_1m_cells() {
    let dir = temp_dir("latency");
    let path = dir.join("big.db");
    let store = MergeableStore::new(Some("big"));
    let started = Instant::now();
    store.transaction(|s| {
        for r in 0..100_000 {
            for c in 0..10 {
                s.set_cell("t", &format!("r{r}"), &format!("c{c}"), (r * 10 + c) as f64).unwrap();
            }
        }
    });
    let built = started.elapsed();
    let started = Instant::now();
    let mut storage = SqliteStorage::open(&path, incremental()).unwrap();
    storage.write(&Content::Mergeable(store.get_encoded_mergeable_content_json())).unwrap();
    let written = started.elapsed();
    println!("1M cells: built {built:?}, whole write {written:?}");
    let log = record_changes(&store);
    for power_loss_safe in [false, true] {
        storage.set_power_loss_safe(power_loss_safe).unwrap();
        let mut times = Vec::new();
        for i in 0..2000 {
            store.set_cell("t", &format!("r{}", (i * 7919) % 100_000), "c3", (i + if power_loss_safe { 10_000 } else { 0 }) as f64 + 0.5).unwrap();
            let changes = log.lock().pop().unwrap();
            let t = Instant::now();
            storage.write_changes(&changes).unwrap();
            times.push(t.elapsed());
        }
        times.sort();
        let p = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
        println!(
            "one-cell write_changes at 1M cells, synchronous = {}: p50 {:?} p99 {:?} max {:?}",
            if power_loss_safe { "FULL" } else { "NORMAL" },
            p(0.5),
            p(0.99),
            times[times.len() - 1]
        );
    }
    let started = Instant::now();
    let content = SqliteStorage::open(&path, incremental()).unwrap().read(true).unwrap();
    let read = started.elapsed();
    let reader = loaded(content);
    println!("load 1M cells: read + verify {read:?}, then merge: {:?} in all", started.elapsed());
    assert_eq!(reader.get_mergeable_content_hashes(), store.get_mergeable_content_hashes());
    let _ = std::fs::remove_dir_all(&dir);
}

// ------------------------------------------------------------------------ through a Persister

use tinybase::persist::sqlite::create_sqlite_persister;
use tinybase::persist::PersisterOptions;
use tinybase::sync::local::LocalBus;
use tinybase::Store;

const LONG: Duration = Duration::from_secs(20);

fn fast() -> PersisterOptions {
    PersisterOptions { auto_load_interval: Duration::from_millis(20), ..PersisterOptions::default() }
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + LONG;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What the database at `path` holds, as a fresh MergeableStore loads it.
fn stored_hashes(path: &Path, config: &SqliteConfig) -> (u32, u32) {
    let s = MergeableStore::new(Some("check"));
    assert!(create_sqlite_persister(&s, path, config.clone(), PersisterOptions::default()).unwrap().load().unwrap());
    s.get_mergeable_content_hashes()
}

fn modes() -> [SqliteConfig; 2] {
    [json(), incremental()]
}

#[test]
fn persister_round_trip_and_merge_on_load() {
    for config in modes() {
        let dir = temp_dir(&format!("p-round-{:?}", config.mode));
        let path = dir.join("s.db");
        let store = sample("a");
        let p = create_sqlite_persister(&store, &path, config.clone(), PersisterOptions::default()).unwrap();
        assert!(p.describe().contains("s.db"), "{}", p.describe());
        p.save().unwrap();
        assert_eq!(p.get_stats().saves, 1);
        let other = MergeableStore::new(Some("b"));
        other.set_value("mine", "kept").unwrap();
        let q = create_sqlite_persister(&other, &path, config.clone(), PersisterOptions::default()).unwrap();
        assert!(q.load().unwrap());
        assert_eq!(other.get_value("mine"), Some(Cell::from("kept")), "{:?}: load merges", config.mode);
        assert_eq!(other.get_tables_json(), store.get_tables_json());
        assert_eq!(other.get_cell("pets", "felix", "species"), None, "the deletion is loaded");
        // Saved back: the database holds the merge.
        q.save().unwrap();
        assert_eq!(stored_hashes(&path, &config), other.get_mergeable_content_hashes());
        p.destroy();
        q.destroy();
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn plain_store_in_json_mode_only() {
    let dir = temp_dir("p-plain");
    let path = dir.join("plain.db");
    let store = Store::new();
    store.set_cell("pets", "fido", "species", "dog").unwrap();
    store.set_value("open", true).unwrap();
    let p = create_sqlite_persister(&store, &path, json(), PersisterOptions::default()).unwrap();
    p.save().unwrap();
    let stored: String = Connection::open(&path).unwrap().query_row("SELECT store FROM tinybase WHERE _id = '_'", [], |r| r.get(0)).unwrap();
    assert_eq!(stored, store.get_content_json());
    let other = Store::new();
    other.set_cell("pets", "felix", "species", "cat").unwrap();
    assert!(create_sqlite_persister(&other, &path, json(), PersisterOptions::default()).unwrap().load().unwrap());
    assert_eq!(other.get_cell("pets", "fido", "species"), Some(Cell::from("dog")));
    assert_eq!(other.get_cell("pets", "felix", "species"), Some(Cell::from("cat")), "what only the store had is kept");
    match create_sqlite_persister(&other, dir.join("inc.db"), incremental(), PersisterOptions::default()) {
        Err(Error::InvalidState(_)) => {}
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("incremental mode with a plain Store"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn auto_save_then_reopen_with_writer_threads() {
    for config in modes() {
        let dir = temp_dir(&format!("p-auto-{:?}", config.mode));
        let path = dir.join("s.db");
        let store = MergeableStore::new(Some("a"));
        let p = create_sqlite_persister(&store, &path, config.clone(), PersisterOptions::default()).unwrap();
        p.start_auto_save().unwrap();
        assert!(p.is_auto_saving());
        std::thread::scope(|scope| {
            for k in 0..4 {
                let store = &store;
                scope.spawn(move || {
                    for i in 0..150 {
                        store.set_cell(&format!("t{}", i % 9), &format!("r{}", i % 13), &format!("c{k}"), i).unwrap();
                        if i % 11 == 0 {
                            store.del_row(&format!("t{}", (i + 4) % 9), &format!("r{}", i % 13));
                        }
                        if i % 17 == 0 {
                            store.set_value(&format!("v{k}"), Cell::from_json(&serde_json::json!({"i": i, "k": [k]})).unwrap()).unwrap();
                        }
                    }
                });
            }
        });
        assert!(p.flush(LONG).unwrap());
        assert_eq!(stored_hashes(&path, &config), store.get_mergeable_content_hashes(), "{:?}", config.mode);
        store.set_cell("last", "r", "c", "queued").unwrap();
        p.destroy();
        let reopened = MergeableStore::new(Some("b"));
        assert!(create_sqlite_persister(&reopened, &path, config.clone(), PersisterOptions::default()).unwrap().load().unwrap());
        assert_eq!(reopened.get_mergeable_content_hashes(), store.get_mergeable_content_hashes(), "destroy wrote what was queued");
        if config.mode == SqliteMode::Incremental {
            let cells: i64 = Connection::open(&path).unwrap().query_row("SELECT count(*) FROM tinybase_cells", [], |r| r.get(0)).unwrap();
            assert!(cells > 100, "one row per cell ({cells})");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn auto_load_sees_another_connections_write() {
    for config in modes() {
        let dir = temp_dir(&format!("p-autoload-{:?}", config.mode));
        let path = dir.join("s.db");
        let reader = MergeableStore::new(Some("reader"));
        let pr = create_sqlite_persister(&reader, &path, config.clone(), fast()).unwrap();
        pr.start_auto_load().unwrap();
        assert!(pr.is_auto_loading());
        let writer = MergeableStore::new(Some("writer"));
        let pw = create_sqlite_persister(&writer, &path, config.clone(), fast()).unwrap();
        pw.start_auto_save().unwrap();
        writer.set_cell("pets", "fido", "species", "dog").unwrap();
        wait_until("the first write", || reader.get_cell("pets", "fido", "species").is_some());
        writer.set_value("open", true).unwrap();
        wait_until("the second write", || reader.get_value("open") == Some(Cell::Bool(true)));
        assert!(pw.flush(LONG).unwrap());
        wait_until("the same content", || reader.get_mergeable_content_hashes() == writer.get_mergeable_content_hashes());
        pr.stop_auto_load();
        pw.destroy();
        pr.destroy();
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn bad_databases_are_refused_through_the_persister_and_not_overwritten() {
    let dir = temp_dir("p-bad");
    let good = sample("a").get_encoded_mergeable_content_json();
    let far_future = {
        let s = MergeableStore::with_clock(Some("future"), || 4_000_000_000_000.0);
        s.set_cell("t", "r", "c", 1.0).unwrap();
        s.get_encoded_mergeable_content_json()
    };
    let json_rows = [
        ("hashes", good.replace("\"dog\"", "\"cat\"")),
        ("shape", "[1,2]".to_string()),
        ("json", "[[{".to_string()),
        ("future", far_future.clone()),
        ("plain", "[{\"t\":{\"r\":{\"c\":1}}},{}]".to_string()),
    ];
    for (name, text) in json_rows {
        let path = dir.join(format!("{name}.db"));
        Connection::open(&path)
            .unwrap()
            .execute_batch(&format!("CREATE TABLE \"tinybase\"(\"_id\" PRIMARY KEY,\"store\"); INSERT INTO tinybase VALUES ('_', '{}');", text.replace('\'', "''")))
            .unwrap();
        let before = std::fs::read(&path).unwrap();
        let store = MergeableStore::new(Some("s"));
        store.set_value("mine", 1.0).unwrap();
        let p = create_sqlite_persister(&store, &path, json(), PersisterOptions::default()).unwrap();
        assert_corrupt(p.load(), name);
        assert_eq!(store.get_value("mine"), Some(Cell::Number(1.0)), "{name}: the store is untouched");
        assert_eq!(store.get_tables_json(), "{}", "{name}: nothing loaded");
        assert!(matches!(p.save(), Err(Error::InvalidState(_))), "{name}: no save over it");
        assert!(p.start_auto_save().is_err(), "{name}: no auto-save over it");
        p.destroy();
        assert!(std::fs::read(&path).unwrap() == before, "{name}: not overwritten");
    }

    // Moved aside, saving starts afresh and the bad row is kept.
    let path = dir.join("hashes.db");
    let store = MergeableStore::new(Some("s"));
    let p = create_sqlite_persister(&store, &path, json(), PersisterOptions::default()).unwrap();
    assert_corrupt(p.load(), "again");
    let aside = p.move_aside_unreadable().unwrap().expect("moved");
    assert!(aside.contains("_.corrupt"), "{aside}");
    store.set_value("fresh", true).unwrap();
    p.save().unwrap();
    assert_eq!(stored_hashes(&path, &json()), store.get_mergeable_content_hashes());

    // Incremental: a far-future HLC written straight into the rows, and a file that is not a database.
    let path = dir.join("future-inc.db");
    SqliteStorage::open(&path, incremental()).unwrap().write(&Content::Mergeable(good.clone())).unwrap();
    Connection::open(&path).unwrap().execute_batch("UPDATE tinybase_values SET hlc = 'zzzzzzzzzzzzzzzz'").unwrap();
    let garbage = dir.join("garbage-inc.db");
    std::fs::write(&garbage, b"SQLite format 3\0 but not really".repeat(50)).unwrap();
    for path in [path, garbage] {
        let before = std::fs::read(&path).unwrap();
        let store = MergeableStore::new(Some("s"));
        let p = create_sqlite_persister(&store, &path, incremental(), PersisterOptions::default()).unwrap();
        assert_corrupt(p.load(), "incremental");
        assert!(p.save().is_err());
        assert!(std::fs::read(&path).unwrap() == before, "{}: not overwritten", path.display());
        let aside = p.move_aside_unreadable().unwrap().expect("moved");
        assert!(aside.ends_with(".corrupt"), "{aside}");
        store.set_value("fresh", true).unwrap();
        p.save().unwrap();
        assert_eq!(stored_hashes(&path, &incremental()), store.get_mergeable_content_hashes());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn persisting_while_synchronizing_converges() {
    for config in modes() {
        let dir = temp_dir(&format!("p-sync-{:?}", config.mode));
        let bus = LocalBus::new();
        let a = MergeableStore::new(Some("a"));
        let b = MergeableStore::new(Some("b"));
        let (path_a, path_b) = (dir.join("a.db"), dir.join("b.db"));
        let pa = create_sqlite_persister(&a, &path_a, config.clone(), fast()).unwrap();
        let pb = create_sqlite_persister(&b, &path_b, config.clone(), fast()).unwrap();
        for p in [&pa, &pb] {
            p.start_auto_load().unwrap();
            p.start_auto_save().unwrap();
        }
        let sa = bus.create_synchronizer(&a, None);
        let sb = bus.create_synchronizer(&b, None);
        sa.start_sync(None);
        sb.start_sync(None);
        std::thread::scope(|scope| {
            for (k, store) in [&a, &b, &a, &b].into_iter().enumerate() {
                scope.spawn(move || {
                    for i in 0..80 {
                        store.set_cell("t", &format!("r{}", i % 20), &format!("c{k}"), i).unwrap();
                        if i % 7 == 0 {
                            store.del_cell("t", &format!("r{}", (i + 3) % 20), &format!("c{k}"));
                        }
                        store.set_value(&format!("v{}", i % 5), k as f64).unwrap();
                    }
                });
            }
        });
        assert!(bus.wait_for_idle(LONG));
        wait_until("the stores to converge", || a.get_mergeable_content_hashes() == b.get_mergeable_content_hashes());
        assert!(pa.flush(LONG).unwrap());
        assert!(pb.flush(LONG).unwrap());
        assert_eq!(stored_hashes(&path_a, &config), a.get_mergeable_content_hashes(), "{:?}: a's database holds what a holds", config.mode);
        assert_eq!(stored_hashes(&path_b, &config), b.get_mergeable_content_hashes(), "{:?}: b's database holds what b holds", config.mode);
        sa.stop_sync();
        sb.stop_sync();
        pa.destroy();
        pb.destroy();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
