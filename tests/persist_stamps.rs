//! Merges that change stamps without changing what the Store shows (a newer HLC for the same
//! value, a tombstone for a cell or value the store never had, a container's newer HLC) reach
//! every persister's storage: a store loaded from it has exactly the merged store's hashes.

use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tinybase::persist::file::create_file_persister;
use tinybase::persist::sqlite::{create_sqlite_persister, SqliteConfig, SqliteMode};
use tinybase::persist::{Persister, PersisterOptions};
use tinybase::{MergeableStore, Store};

const LONG: Duration = Duration::from_secs(20);

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tinybase-stamps-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

type Make = fn(&Store, &Path) -> Persister;
type MakeBox = Box<dyn Fn(&Store, &Path) -> Persister>;

fn sqlite(mode: SqliteMode) -> impl Fn(&Store, &Path) -> Persister {
    move |store, path| create_sqlite_persister(store, path, SqliteConfig::with_mode(mode), PersisterOptions::default()).unwrap()
}

/// The persisters under test, each with the file name it writes.
fn kinds() -> Vec<(&'static str, MakeBox)> {
    let file: Make = |store, path| create_file_persister(store, path, PersisterOptions::default()).unwrap();
    vec![
        ("sqlite-incremental", Box::new(sqlite(SqliteMode::Incremental))),
        ("sqlite-json", Box::new(sqlite(SqliteMode::Json))),
        ("file", Box::new(file)),
    ]
}

/// The hashes of what `path` holds, as a fresh store loads it (the load verifies them).
fn stored_hashes(make: &dyn Fn(&Store, &Path) -> Persister, path: &Path) -> (u32, u32) {
    let fresh = MergeableStore::new(Some("fresh"));
    let p = make(&fresh, path);
    assert!(p.load().unwrap(), "{} holds something", path.display());
    p.destroy();
    assert_eq!(fresh.get_mergeable_content_hashes(), fresh.compute_content_hashes());
    fresh.get_mergeable_content_hashes()
}

/// Every transaction's public mergeable changes (TinyBase's `getTransactionMergeableChanges`).
fn record_changes(store: &MergeableStore) -> Arc<Mutex<Vec<String>>> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let into = log.clone();
    store.add_did_finish_transaction_listener(move |s| {
        let m = MergeableStore::from_store(s).expect("mergeable");
        into.lock().push(m.get_encoded_transaction_mergeable_changes_json(true));
    });
    log
}

/// An HLC string from `store`'s content: the stamp of value `v`.
fn value_hlc(store: &MergeableStore, v: &str) -> String {
    let content: serde_json::Value = serde_json::from_str(&store.get_encoded_mergeable_content_json()).unwrap();
    content[1][0][v][1].as_str().unwrap().to_string()
}

#[test]
fn stamp_only_merges_reach_the_storage() {
    for (kind, make) in kinds() {
        let dir = temp_dir(kind);
        let path = dir.join("a.db");
        let a = MergeableStore::new(Some("a"));
        a.set_cell("pets", "fido", "species", "dog").unwrap();
        a.set_cell("t1", "r", "n", 1.0).unwrap();
        a.set_value("open", true).unwrap();
        let p = make(&a, &path);
        p.start_auto_save().unwrap();
        let public = record_changes(&a);

        // B stamps what A shows already, later, and leaves tombstones A never had.
        std::thread::sleep(Duration::from_millis(5));
        let b = MergeableStore::new(Some("b"));
        b.set_value("open", true).unwrap();
        b.set_cell("pets", "fido", "species", "dog").unwrap();
        b.set_cell("ghost", "g", "name", "boo").unwrap();
        b.del_cell("ghost", "g", "name");
        b.set_value("gone", 1.0).unwrap();
        b.del_value("gone");
        let before = a.get_json();
        a.apply_mergeable_changes_json(&b.get_encoded_mergeable_content_json()).unwrap();
        assert_eq!(a.get_json(), before, "{kind}: nothing visible changed");
        assert_ne!(a.get_mergeable_content_hashes(), MergeableStore::new(None).get_mergeable_content_hashes());
        assert!(p.flush(LONG).unwrap(), "{kind}: flushed");
        assert_eq!(stored_hashes(make.as_ref(), &path), a.get_mergeable_content_hashes(), "{kind}: leaves stamped only");
        // TinyBase's transaction changes still list visible changes only.
        let last = public.lock().last().cloned().expect("the merge was a transaction");
        assert!(!last.contains("ghost") && !last.contains("open") && !last.contains("gone"), "{kind}: {last}");

        // Container stamps only: a row, a table (without its rows) and the values get newer HLCs.
        std::thread::sleep(Duration::from_millis(5));
        let c = MergeableStore::new(Some("c"));
        c.set_value("x", 1.0).unwrap();
        let h = value_hlc(&c, "x");
        let changes = format!(r#"[[{{"pets":[{{"fido":[{{}},"{h}"]}},""],"t1":[{{}},"{h}"]}},"{h}"],[{{}},"{h}"],1]"#);
        let hashes = a.get_mergeable_content_hashes();
        a.apply_mergeable_changes_json(&changes).unwrap();
        assert_ne!(a.get_mergeable_content_hashes(), hashes, "{kind}: the container stamps changed");
        assert!(p.flush(LONG).unwrap(), "{kind}: flushed");
        assert_eq!(stored_hashes(make.as_ref(), &path), a.get_mergeable_content_hashes(), "{kind}: containers stamped only");

        // Both at once with a visible change, from B's changes rather than its content.
        std::thread::sleep(Duration::from_millis(5));
        let log = record_changes(&b);
        b.transaction(|_| {
            b.set_cell("pets", "rex", "species", "dog").unwrap();
            b.set_value("open", true).unwrap();
            b.set_cell("ghost", "g2", "name", "boo").unwrap();
            b.del_cell("ghost", "g2", "name");
            true
        });
        b.set_value("open", false).unwrap();
        b.set_value("open", true).unwrap();
        for changes in log.lock().iter() {
            a.apply_mergeable_changes_json(changes).unwrap();
        }
        assert_eq!(a.get_cell("pets", "rex", "species"), Some("dog".into()));
        assert!(p.flush(LONG).unwrap(), "{kind}: flushed");
        assert_eq!(stored_hashes(make.as_ref(), &path), a.get_mergeable_content_hashes(), "{kind}: mixed");

        // A merge that changes no stamp is no transaction to save.
        let saves = p.get_stats().saves;
        a.apply_mergeable_changes_json(&b.get_encoded_mergeable_content_json()).unwrap();
        a.apply_mergeable_changes_json(&b.get_encoded_mergeable_content_json()).unwrap();
        a.transaction(|_| ());
        assert!(p.flush(LONG).unwrap());
        assert_eq!(p.get_stats().saves, saves, "{kind}: nothing to save");

        // And the peers agree once B has A's content too.
        b.apply_mergeable_changes_json(&a.get_encoded_mergeable_content_json()).unwrap();
        a.apply_mergeable_changes_json(&b.get_encoded_mergeable_content_json()).unwrap();
        assert!(p.flush(LONG).unwrap());
        assert_eq!(a.get_mergeable_content_hashes(), b.get_mergeable_content_hashes(), "{kind}");
        assert_eq!(stored_hashes(make.as_ref(), &path), b.get_mergeable_content_hashes(), "{kind}: peers");
        p.destroy();
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Two persisters on one store, one of them whole-file: a stamp-only commit takes a number for
/// both, and neither one's flush waits for a commit it never gets.
#[test]
fn stamp_only_commits_reach_every_persister_of_a_store() {
    let dir = temp_dir("two");
    let (db, file) = (dir.join("a.db"), dir.join("a.json"));
    let a = MergeableStore::new(Some("a"));
    a.set_value("open", true).unwrap();
    let incremental = sqlite(SqliteMode::Incremental);
    let whole: Make = |store, path| create_file_persister(store, path, PersisterOptions::default()).unwrap();
    let p = incremental(&a, &db);
    let q = whole(&a, &file);
    p.start_auto_save().unwrap();
    q.start_auto_save().unwrap();
    std::thread::sleep(Duration::from_millis(5));
    let b = MergeableStore::new(Some("b"));
    b.set_value("open", true).unwrap();
    a.apply_mergeable_changes_json(&b.get_encoded_mergeable_content_json()).unwrap();
    assert!(p.flush(LONG).unwrap());
    assert!(q.flush(LONG).unwrap());
    assert_eq!(stored_hashes(&incremental, &db), a.get_mergeable_content_hashes());
    assert_eq!(stored_hashes(&whole, &file), a.get_mergeable_content_hashes());
    p.destroy();
    q.destroy();
    let _ = std::fs::remove_dir_all(&dir);
}
