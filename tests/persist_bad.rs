//! The bad-data matrix (issue 9): for the file persister and both SQLite modes, stored data that
//! cannot be loaded (truncated, not JSON, the wrong shape, a cell value changed under its hash, a
//! wrong leaf hash, an HLC far in the future, invalid UTF-8, an empty file, garbage where a
//! database should be) is refused with `Error::Corrupt`, and storage that cannot be used (a
//! folder where the file should be, a read-only folder) with `Error::Io`. Either way the store
//! keeps what it had, and nothing writes over the stored data: not `save`, not auto-save, not
//! `destroy`, not a persister that never loaded. `move_aside_unreadable` then moves the bad data
//! aside, keeping it, and saving works again.

#[path = "support/persist_writer.rs"]
mod persist_writer;

use persist_writer::{open_persister, Folder};
use rusqlite::{params, Connection, OpenFlags};
use serde_json::Value as Json;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tinybase::persist::PersisterOptions;
use tinybase::{Error, MergeableStore};

fn file_name(kind: &str) -> &'static str {
    if kind == "file" {
        "store.json"
    } else {
        "store.db"
    }
}

/// The content every case starts from: cells of every type, an object, a deleted cell, a value.
fn good_store(unique_id: &str) -> MergeableStore {
    let s = MergeableStore::new(Some(unique_id));
    s.set_cell("pets", "fido", "species", "dog").unwrap();
    s.set_cell("pets", "fido", "legs", 4.0).unwrap();
    s.set_cell("pets", "fido", "o", tinybase::Cell::from_json(&serde_json::json!({"a": [1, 2]})).unwrap()).unwrap();
    s.set_cell("pets", "fido", "gone", true).unwrap();
    s.del_cell("pets", "fido", "gone");
    s.set_cell("pets", "felix", "species", "cat").unwrap();
    s.set_value("open", true).unwrap();
    s
}

/// A store whose clock runs an hour ahead: its content is valid, with matching hashes, but its
/// HLCs are beyond the five-minute limit of any store with a true clock.
fn future_store() -> MergeableStore {
    let s = MergeableStore::with_clock(Some("future"), || {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as f64 + 3_600_000.0
    });
    s.set_cell("pets", "rex", "species", "dog").unwrap();
    s.set_value("late", 1.0).unwrap();
    s
}

/// Saves `store` to `path` through the kind's own persister (so the bytes are the real format).
fn save_through(kind: &str, store: &MergeableStore, path: &Path) {
    let p = open_persister(kind, store, path, PersisterOptions::default()).unwrap();
    p.save().unwrap();
    p.destroy();
}

/// What is stored, to compare before and after: a file's bytes; for a database that opens, every
/// row of every table (the pages may legitimately change, e.g. SQLite's journal mode in the
/// header), else its bytes; for a folder, its listing and files.
fn fingerprint(path: &Path) -> String {
    if path.is_dir() {
        let mut entries: Vec<String> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                format!("{:?}={:?}", e.file_name(), std::fs::read(e.path()).ok())
            })
            .collect();
        entries.sort();
        return format!("folder {entries:?}");
    }
    let Ok(bytes) = std::fs::read(path) else { return "absent".into() };
    if bytes.starts_with(b"SQLite format 3\0") {
        if let Some(rows) = dump_database(path) {
            return rows;
        }
    }
    format!("bytes {bytes:?}")
}

fn dump_database(path: &Path) -> Option<String> {
    let db = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    let tables: Vec<String> = {
        let mut q = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").ok()?;
        let names = q.query_map([], |r| r.get(0)).ok()?.collect::<Result<Vec<String>, _>>().ok()?;
        names
    };
    let mut out = String::from("database");
    for table in tables {
        let mut q = db.prepare(&format!("SELECT * FROM \"{table}\"")).ok()?;
        let n = q.column_count();
        let mut rows: Vec<String> = q
            .query_map([], |r| {
                let cells: Vec<String> = (0..n).map(|i| format!("{:?}", r.get_ref(i).map(|v| format!("{v:?}")))).collect();
                Ok(cells.join("|"))
            })
            .ok()?
            .collect::<Result<_, _>>()
            .ok()?;
        rows.sort();
        out.push_str(&format!("\n{table}: {rows:?}"));
    }
    Some(out)
}

/// Runs SQL on a database the persister wrote (then checkpoints, so that the database file alone
/// holds everything).
fn sql(path: &Path, statement: &str, args: &[&dyn rusqlite::ToSql]) {
    let db = Connection::open(path).unwrap();
    let changed = db.execute(statement, args).unwrap_or_else(|e| panic!("{statement}: {e}"));
    assert!(changed > 0, "{statement} changed nothing");
    let _ = db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
}

fn checkpoint(path: &Path) {
    let db = Connection::open(path).unwrap();
    let _ = db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
}

/// SQLite JSON mode: the `_` row's store column as bytes (None when the database cannot be read).
fn store_column(path: &Path) -> Option<String> {
    let db = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    let stored: Option<Vec<u8>> = db.query_row("SELECT CAST(store AS BLOB) FROM tinybase WHERE _id = '_'", [], |r| r.get(0)).ok()?;
    Some(format!("{stored:?}"))
}

/// The JSON-text variants of a good wire content: (name, bytes).
fn bad_texts(good: &str, file: bool) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let len = good.len();
    for at in [1, len / 4, len / 2, len - 1] {
        out.push((format!("truncated at byte {at} of {len}"), good.as_bytes()[..at].to_vec()));
    }
    out.push(("not JSON".into(), b"this is not JSON".to_vec()));
    if file {
        // (SQLite's JSON mode reads `null` as nothing stored, as TinyBase writes it for no content.)
        out.push(("wrong shape null".into(), b"null".to_vec()));
    }
    for shape in ["[]", "{\"pets\":{}}", "[{}, {}]", "[[{}, \"\", 0]]", "[[1, \"\", 0], [{}, \"\", 0]]"] {
        out.push((format!("wrong shape {shape}"), shape.as_bytes().to_vec()));
    }
    assert!(good.contains("\"dog\""));
    out.push(("a cell value changed under its hash".into(), good.replacen("\"dog\"", "\"cat\"", 1).into_bytes()));
    out.push(("a wrong leaf hash".into(), with_leaf_hash_changed(good).into_bytes()));
    let mut invalid = good.as_bytes().to_vec();
    let at = good.find("\"dog\"").unwrap() + 2;
    invalid.insert(at, 0xFF);
    out.push(("invalid UTF-8".into(), invalid));
    out.push(("only white space".into(), b"  \n".to_vec()));
    out
}

/// The good content with the hash of cell pets/fido/species changed (and nothing else).
fn with_leaf_hash_changed(good: &str) -> String {
    let mut json: Json = serde_json::from_str(good).unwrap();
    let leaf = &mut json[0][0]["pets"][0]["fido"][0]["species"][2];
    let hash = leaf.as_u64().expect("a leaf hash");
    *leaf = Json::from(hash ^ 1);
    let text = tinybase::value::to_json_string(&json);
    assert_ne!(text, good);
    text
}

/// What a case expects.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    Corrupt,
    Io,
}

/// A case: its name, how it makes the storage at `path` bad, and what it expects.
struct Case {
    name: String,
    expect: Expect,
    arrange: Box<dyn Fn(&Path)>,
}

fn case(name: impl Into<String>, expect: Expect, arrange: impl Fn(&Path) + 'static) -> Case {
    Case { name: name.into(), expect, arrange: Box::new(arrange) }
}

/// The cases that are the same for every kind: the storage file truncated, garbage, a folder.
fn common_cases(kind: &'static str) -> Vec<Case> {
    let mut cases = Vec::new();
    cases.push(case("far-future HLCs (valid hashes)", Expect::Corrupt, move |path| save_through(kind, &future_store(), path)));
    if kind != "file" {
        for fraction in [0.1, 0.5, 0.9] {
            cases.push(case(format!("database file truncated at {:.0}%", fraction * 100.0), Expect::Corrupt, move |path| {
                save_through(kind, &good_store("g"), path);
                checkpoint(path);
                let bytes = std::fs::read(path).unwrap();
                let at = ((bytes.len() as f64 * fraction) as usize).max(1);
                std::fs::write(path, &bytes[..at]).unwrap();
            }));
        }
        cases.push(case("not a database", Expect::Corrupt, |path| std::fs::write(path, b"this is not a database, just text, long enough to be more than a header would be: ......................................................................").unwrap()));
    }
    cases.push(case("a folder where the file should be", Expect::Io, |path| {
        std::fs::create_dir(path).unwrap();
        std::fs::write(path.join("keep.txt"), b"mine").unwrap();
    }));
    cases
}

/// The cases of the file persister and SQLite's JSON mode: bad JSON text as the file, or as the
/// `store` column of the `_` row.
fn json_cases(kind: &'static str) -> Vec<Case> {
    let good = good_store("g").get_encoded_mergeable_content_json();
    let mut cases = common_cases(kind);
    for (name, bytes) in bad_texts(&good, kind == "file") {
        let name = if kind == "file" { name } else { format!("store column: {name}") };
        cases.push(case(name.clone(), Expect::Corrupt, move |path| {
            if kind == "file" {
                std::fs::write(path, &bytes).unwrap();
                return;
            }
            save_through(kind, &good_store("g"), path);
            // Invalid UTF-8 as TEXT, as another program could store it; the rest as text.
            match String::from_utf8(bytes.clone()) {
                Ok(text) => sql(path, "UPDATE tinybase SET store = ?1 WHERE _id = '_'", params![text]),
                Err(_) => sql(path, "UPDATE tinybase SET store = CAST(?1 AS TEXT) WHERE _id = '_'", params![bytes]),
            }
        }));
    }
    if kind != "file" {
        cases.push(case("store column: a BLOB", Expect::Corrupt, move |path| {
            save_through(kind, &good_store("g"), path);
            sql(path, "UPDATE tinybase SET store = ?1 WHERE _id = '_'", params![good.clone().into_bytes()]);
        }));

    }
    cases
}

/// The incremental layout's cases: rows changed behind the persister's back.
fn incremental_cases() -> Vec<Case> {
    let kind = "sqlite-incremental";
    let mut cases = common_cases(kind);
    let species = "table_id = 'pets' AND row_id = 'fido' AND cell_id = 'species'";
    let updates: Vec<(&str, String)> = vec![
        ("a cell value changed under its hash", format!("UPDATE tinybase_cells SET value = '\"cat\"' WHERE {species}")),
        ("a wrong leaf hash", format!("UPDATE tinybase_cells SET hash = (hash + 1) % 4294967296 WHERE {species}")),
        ("a cell value that is not JSON", format!("UPDATE tinybase_cells SET value = '{{not json' WHERE {species}")),
        ("a truncated cell value", format!("UPDATE tinybase_cells SET value = '\"do' WHERE {species}")),
        ("a cell value of the wrong shape (a bare array)", format!("UPDATE tinybase_cells SET value = '[1,2]' WHERE {species}")),
        ("invalid UTF-8 in a cell value", format!("UPDATE tinybase_cells SET value = CAST(X'22FF646F6722' AS TEXT) WHERE {species}")),
        ("an HLC that is not one", format!("UPDATE tinybase_cells SET hlc = 'not an hlc' WHERE {species}")),
        ("a value's hash changed", "UPDATE tinybase_values SET hash = (hash + 1) % 4294967296 WHERE value_id = 'open'".into()),
        ("a row's container hash changed", "UPDATE tinybase_containers SET hash = (hash + 1) % 4294967296 WHERE kind = 2 AND table_id = 'pets' AND row_id = 'fido'".into()),
        ("the tables stamp's hash changed", "UPDATE tinybase_containers SET hash = (hash + 1) % 4294967296 WHERE kind = 0".into()),
        ("a container of an unknown kind", "UPDATE tinybase_containers SET kind = 7 WHERE kind = 2".into()),
        ("a cell row deleted", format!("DELETE FROM tinybase_cells WHERE {species}")),
        ("an unknown schema version", "UPDATE tinybase_meta SET value = '99' WHERE key = 'schema_version'".into()),
    ];
    for (name, statement) in updates {
        cases.push(case(name, Expect::Corrupt, move |path| {
            save_through(kind, &good_store("g"), path);
            sql(path, &statement, params![]);
        }));
    }
    cases.push(case("every cell row deleted, hashes kept", Expect::Corrupt, move |path| {
        save_through(kind, &good_store("g"), path);
        sql(path, "DELETE FROM tinybase_cells", params![]);
    }));
    cases
}

/// Lets a test run as root see permissions: drops the calling thread's capabilities to bypass
/// file permissions (capabilities are per thread on Linux; threads it starts inherit the
/// reduced set) until dropped.
struct NoDacOverride {
    saved: Option<[CapData; 2]>,
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAPABILITY_VERSION_3: u32 = 0x2008_0522;
const CAP_DAC_OVERRIDE: u32 = 1;
const CAP_DAC_READ_SEARCH: u32 = 2;
const CAP_FOWNER: u32 = 3;

impl NoDacOverride {
    fn new() -> NoDacOverride {
        let mut header = CapHeader { version: CAPABILITY_VERSION_3, pid: 0 };
        let mut data = [CapData::default(); 2];
        // SAFETY: capget/capset with a version-3 header and two data structs, for this thread.
        unsafe {
            if libc::syscall(libc::SYS_capget, &mut header as *mut CapHeader, data.as_mut_ptr()) != 0 {
                return NoDacOverride { saved: None };
            }
            let saved = data;
            data[0].effective &= !((1 << CAP_DAC_OVERRIDE) | (1 << CAP_DAC_READ_SEARCH) | (1 << CAP_FOWNER));
            let mut header = CapHeader { version: CAPABILITY_VERSION_3, pid: 0 };
            if libc::syscall(libc::SYS_capset, &mut header as *mut CapHeader, data.as_ptr()) != 0 {
                return NoDacOverride { saved: None };
            }
            NoDacOverride { saved: Some(saved) }
        }
    }
}

impl Drop for NoDacOverride {
    fn drop(&mut self) {
        if let Some(saved) = self.saved {
            let mut header = CapHeader { version: CAPABILITY_VERSION_3, pid: 0 };
            // SAFETY: as in new; restores this thread's own earlier set.
            unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut CapHeader, saved.as_ptr()) };
        }
    }
}

fn is_kind(err: &Error, expect: Expect) -> bool {
    matches!((err, expect), (Error::Corrupt(_), Expect::Corrupt) | (Error::Io(_), Expect::Io))
}

/// An error a user can act on: the right kind, and naming the storage.
fn assert_clear(err: &Error, expect: Expect, what: &str, name: &str) {
    assert!(is_kind(err, expect), "{what}: expected Error::{expect:?}, got {err:?}");
    let text = err.to_string();
    assert!(text.contains(name), "{what}: the error does not name the storage ({name}): {text}");
}

/// The store's whole state, to show it untouched.
fn state(store: &MergeableStore) -> String {
    store.get_mergeable_content_json()
}

/// The store a user had before the bad load: something of its own.
fn user_store() -> MergeableStore {
    let s = MergeableStore::new(Some("user"));
    s.set_cell("mine", "r", "c", "keep").unwrap();
    s.set_value("mine", 1.0).unwrap();
    s
}

fn errors_hook() -> (Arc<Mutex<Vec<String>>>, PersisterOptions) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hook = {
        let seen = seen.clone();
        move |e: &Error| seen.lock().unwrap().push(format!("{e:?}"))
    };
    (seen, PersisterOptions { on_ignored_error: Some(Arc::new(hook)), lock_timeout: Duration::from_secs(2), ..PersisterOptions::default() })
}

/// Every way a persister could write over the stored data, tried against it; the data and the
/// store stay as they were.
fn nothing_overwrites(kind: &str, path: &Path, what: &str, expect: Expect) {
    let name = file_name(kind);
    let before = fingerprint(path);
    let unchanged = |when: &str| assert!(fingerprint(path) == before, "{what}: the stored data changed {when}");

    // A persister that loads first: the load is refused, the store keeps what it had, and saving
    // is refused until the data is moved aside.
    let store = user_store();
    let had = state(&store);
    let (_, options) = errors_hook();
    match open_persister(kind, &store, path, options) {
        Err(e) => {
            assert!(expect == Expect::Io, "{what}: opening the persister failed: {e:?} (a persister over unreadable data must open, so that its data can be moved aside)");
            assert_clear(&e, expect, &format!("{what}: open"), name);
        }
        Ok(p) => {
            let err = p.load().expect_err(&format!("{what}: the load succeeded"));
            assert_clear(&err, expect, &format!("{what}: load"), name);
            assert_eq!(state(&store), had, "{what}: the failed load changed the store");
            let err = p.save().expect_err(&format!("{what}: save after a failed load succeeded"));
            if expect == Expect::Corrupt {
                assert!(matches!(err, Error::InvalidState(_)), "{what}: save after a refused load: {err:?}");
                assert!(err.to_string().contains("move_aside_unreadable"), "{what}: the error does not say what to do: {err}");
                assert!(err.to_string().contains(name), "{what}: the error does not name the storage: {err}");
            }
            unchanged("after save");
            assert!(p.start_auto_save().is_err(), "{what}: auto-save started over data that could not be loaded");
            assert!(!p.is_auto_saving(), "{what}: auto-saving after start_auto_save failed");
            store.set_cell("mine", "r", "c", "changed").unwrap();
            let _ = p.flush(Duration::from_millis(200));
            assert_eq!(p.get_stats().saves, 0, "{what}: a save was counted");
            p.destroy();
            p.destroy();
            unchanged("after auto-save and destroy");
        }
    }

    // Into an empty store (loaded another way: straight in, rolled back): refused, still empty.
    let empty = MergeableStore::new(Some("empty"));
    let had = state(&empty);
    if let Ok(p) = open_persister(kind, &empty, path, PersisterOptions::default()) {
        let err = p.load().expect_err(&format!("{what}: the load into an empty store succeeded"));
        assert_clear(&err, expect, &format!("{what}: load into an empty store"), name);
        assert_eq!(state(&empty), had, "{what}: the failed load changed the empty store");
        assert!(empty.get_tables().is_empty() && empty.get_values().is_empty(), "{what}: the empty store has content");
        p.destroy();
    }
    unchanged("after a load into an empty store");

    // A persister that never loaded: its save and auto-save meet the bad data and write nothing.
    for how in ["save", "start_auto_save"] {
        let store = user_store();
        let had = state(&store);
        let (seen, options) = errors_hook();
        if let Ok(p) = open_persister(kind, &store, path, options) {
            let result = if how == "save" { p.save() } else { p.start_auto_save() };
            let err = result.expect_err(&format!("{what}: {how} without a load wrote over the data"));
            assert_clear(&err, expect, &format!("{what}: {how} without a load"), name);
            assert_eq!(state(&store), had, "{what}: the failed {how} changed the store");
            store.set_cell("mine", "r", "c", "changed").unwrap();
            let _ = p.flush(Duration::from_millis(200));
            drop(p);
            assert!(seen.lock().unwrap().iter().all(|e| !e.contains("Corrupt") || expect == Expect::Corrupt), "{what}: {seen:?}");
        }
        unchanged(&format!("by {how} without a load"));
    }
}

/// The matrix for one kind.
fn matrix(kind: &'static str, cases: Vec<Case>) {
    let name = file_name(kind);
    let mut failures = Vec::new();
    for (n, case) in cases.into_iter().enumerate() {
        let folder = Folder::new(&format!("bad-{kind}-{n}"));
        let path = folder.0.join(name);
        (case.arrange)(&path);
        let what = format!("{kind}, {}", case.name);
        let bad = fingerprint(&path);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            nothing_overwrites(kind, &path, &what, case.expect);
            if case.expect == Expect::Corrupt {
                moved_aside_then_saved(kind, &path, &what, &bad);
            }
        }));
        match result {
            Ok(()) => println!("ok: {what}"),
            Err(e) => failures.push(format!(
                "{what}: {}",
                e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
            )),
        }
    }
    assert!(failures.is_empty(), "{} case(s) failed:\n{}", failures.len(), failures.join("\n"));
}

/// `move_aside_unreadable` keeps the bad data (its bytes, elsewhere) and lets saving start afresh.
fn moved_aside_then_saved(kind: &str, path: &Path, what: &str, bad: &str) {
    let bad_store_column = (kind == "sqlite-json").then(|| store_column(path)).flatten();
    let store = user_store();
    let p = open_persister(kind, &store, path, PersisterOptions::default()).unwrap();
    assert_eq!(p.move_aside_unreadable().unwrap(), None, "{what}: moved aside before any load failed");
    assert!(p.load().is_err(), "{what}: the load succeeded");
    let aside = p.move_aside_unreadable().unwrap().unwrap_or_else(|| panic!("{what}: nothing moved aside"));
    // Where the bad data went: a file (`<path>.corrupt`), or in SQLite's JSON mode the row kept
    // under another id in the same database (`... row "_.corrupt"`) or the table renamed.
    let aside_path = Path::new(&aside);
    let kept = || -> String {
        if aside_path.exists() {
            return fingerprint(aside_path);
        }
        if let Some((_, row)) = aside.rsplit_once(" row ") {
            let db = Connection::open(path).unwrap();
            let id: String = serde_json::from_str(row).unwrap_or_else(|_| panic!("{what}: {aside}"));
            let stored: Option<Vec<u8>> =
                db.query_row("SELECT CAST(store AS BLOB) FROM tinybase WHERE _id = ?1", [id], |r| r.get(0)).unwrap_or_else(|e| panic!("{what}: {aside}: {e}"));
            return format!("{stored:?}");
        }
        panic!("{what}: move_aside_unreadable returned {aside}, which is neither a path nor a row");
    };
    let bad = if aside_path.exists() { bad.to_string() } else { bad_store_column.clone().unwrap_or_else(|| panic!("{what}: {aside}")) };
    assert!(kept() == bad, "{what}: the moved-aside copy {aside} is not the bad data");
    p.save().unwrap_or_else(|e| panic!("{what}: save after moving aside: {e:?}"));
    p.start_auto_save().unwrap();
    store.set_cell("mine", "r", "after", "auto-saved").unwrap();
    assert!(p.flush(Duration::from_secs(10)).unwrap(), "{what}: auto-save did not flush");
    p.destroy();
    let again = MergeableStore::new(Some("again"));
    let p = open_persister(kind, &again, path, PersisterOptions::default()).unwrap();
    assert!(p.load().unwrap(), "{what}: nothing to load after saving");
    p.destroy();
    assert_eq!(again.get_tables(), store.get_tables(), "{what}: what was saved after moving aside");
    assert_eq!(again.get_values(), store.get_values(), "{what}: the values saved after moving aside");
    assert!(kept() == bad, "{what}: saving afresh touched the moved-aside copy");
}

/// A read-only folder: loading may work (a file) or fail with `Error::Io` (SQLite's WAL needs
/// files beside the database); saving fails with `Error::Io`; nothing is written.
fn read_only(kind: &'static str) {
    let name = file_name(kind);
    let folder = Folder::new(&format!("bad-{kind}-readonly"));
    let path = folder.0.join(name);
    save_through(kind, &good_store("g"), &path);
    if kind != "file" {
        checkpoint(&path);
    }
    let before = fingerprint(&path);
    let empty = folder.0.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let set_mode = |dir: &Path, mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    set_mode(&folder.0, 0o555);
    set_mode(&empty, 0o555);
    let failure = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _guard = NoDacOverride::new();
        if std::fs::write(folder.0.join("probe"), b"x").is_ok() {
            let _ = std::fs::remove_file(folder.0.join("probe"));
            println!("skipped {kind} read-only folder: this user writes into read-only folders");
            return;
        }
        let what = format!("{kind}, a read-only folder");
        'existing: {
            let store = user_store();
            let (seen, options) = errors_hook();
            match open_persister(kind, &store, &path, options) {
                Err(e) => assert_clear(&e, Expect::Io, &format!("{what}: open"), name),
                Ok(p) => {
                    match p.load() {
                        Ok(loaded) => assert!(loaded && state(&store).contains("fido"), "{what}: the load"),
                        Err(e) => assert_clear(&e, Expect::Io, &format!("{what}: load"), name),
                    }
                    store.set_cell("mine", "r", "c", "changed").unwrap();
                    match p.save() {
                        // The database file itself is writable: SQLite in WAL mode may write it
                        // without creating a file in the folder. Then the save must be real.
                        Ok(()) if kind == "sqlite-incremental" => {
                            p.destroy();
                            let again = MergeableStore::new(Some("again"));
                            let p = open_persister(kind, &again, &path, PersisterOptions::default()).unwrap();
                            assert!(p.load().unwrap(), "{what}: the save is not there");
                            assert_eq!(again.get_tables(), store.get_tables(), "{what}: the save is not there");
                            println!("{what}: SQLite (WAL) saved into the writable database file");
                            break 'existing;
                        }
                        Ok(()) => panic!("{what}: save succeeded in a read-only folder"),
                        Err(e) => assert!(matches!(e, Error::Io(_) | Error::InvalidState(_)), "{what}: save: {e:?}"),
                    }
                    if p.start_auto_save().is_ok() {
                        store.set_cell("mine", "r", "c", "again").unwrap();
                        let flushed = p.flush(Duration::from_secs(2));
                        assert!(!matches!(flushed, Ok(true)), "{what}: auto-save reported durable in a read-only folder");
                        assert!(flushed.is_err() || !seen.lock().unwrap().is_empty(), "{what}: the auto-save error was not reported");
                    }
                    p.destroy();
                }
            }
            assert!(fingerprint(&path) == before, "{what}: the stored data changed");
        }
        // Nothing stored yet, in a read-only folder: saving fails with Error::Io.
        let store = user_store();
        let path = empty.join(name);
        match open_persister(kind, &store, &path, PersisterOptions::default()) {
            Err(e) => assert_clear(&e, Expect::Io, &format!("{kind}, new storage in a read-only folder: open"), name),
            Ok(p) => {
                if let Ok(loaded) = p.load() {
                    assert!(!loaded, "{kind}: loaded from nothing");
                }
                let e = p.save().expect_err("save in a read-only folder succeeded");
                assert_clear(&e, Expect::Io, &format!("{kind}, new storage in a read-only folder: save"), name);
                p.destroy();
            }
        }
        assert!(!path.exists(), "{kind}: a file appeared in a read-only folder");
    }));
    set_mode(&empty, 0o755);
    set_mode(&folder.0, 0o755);
    if let Err(e) = failure {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn file_bad_data() {
    matrix("file", json_cases("file"));
}

#[test]
fn sqlite_json_bad_data() {
    matrix("sqlite-json", json_cases("sqlite-json"));
}

#[test]
fn sqlite_incremental_bad_data() {
    matrix("sqlite-incremental", incremental_cases());
}

#[test]
fn file_read_only_folder() {
    read_only("file");
}

#[test]
fn sqlite_json_read_only_folder() {
    read_only("sqlite-json");
}

#[test]
fn sqlite_incremental_read_only_folder() {
    read_only("sqlite-incremental");
}

/// A database that is an empty file is an empty database (SQLite's own reading of it): nothing
/// is stored, the load leaves the store as it is, and saving writes a real database there.
#[test]
fn sqlite_empty_file_is_an_empty_database() {
    for kind in ["sqlite-json", "sqlite-incremental"] {
        let folder = Folder::new(&format!("bad-{kind}-empty"));
        let path = folder.0.join("store.db");
        std::fs::write(&path, b"").unwrap();
        let store = user_store();
        let had = state(&store);
        let p = open_persister(kind, &store, &path, PersisterOptions::default()).unwrap();
        assert!(!p.load().unwrap(), "{kind}: loaded something from an empty file");
        assert_eq!(state(&store), had);
        p.save().unwrap();
        p.destroy();
        let again = MergeableStore::new(Some("again"));
        let p = open_persister(kind, &again, &path, PersisterOptions::default()).unwrap();
        assert!(p.load().unwrap());
        assert_eq!(again.get_tables(), store.get_tables());
    }
}

/// SQLite's JSON mode reads a `store` column holding NULL or the JSON text `null` as nothing
/// stored, as TinyBase does (it writes `null` for no content): nothing is lost by saving there.
#[test]
fn sqlite_json_null_is_nothing_stored() {
    for (n, value) in ["NULL", "'null'"].into_iter().enumerate() {
        let folder = Folder::new(&format!("bad-sqlite-json-null-{n}"));
        let path = folder.0.join("store.db");
        save_through("sqlite-json", &good_store("g"), &path);
        sql(&path, &format!("UPDATE tinybase SET store = {value} WHERE _id = '_'"), params![]);
        let store = user_store();
        let had = state(&store);
        let p = open_persister("sqlite-json", &store, &path, PersisterOptions::default()).unwrap();
        assert!(!p.load().unwrap(), "{value}: loaded something");
        assert_eq!(state(&store), had);
        p.save().unwrap();
        p.destroy();
        let again = MergeableStore::new(Some("again"));
        let p = open_persister("sqlite-json", &again, &path, PersisterOptions::default()).unwrap();
        assert!(p.load().unwrap());
        assert_eq!(again.get_tables(), store.get_tables());
    }
}
