//! The persister engine over the file storage: what a user of `load`, `save`, auto-save and
//! auto-load relies on, bad files refused and never overwritten, several writers (threads,
//! persisters, a second process) on one file, and persisting while synchronizing.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tinybase::persist::file::{create_file_persister, FileStorage};
use tinybase::persist::{Durable, Persister, PersisterOptions, PersisterStats, PersisterStatus, Storage};
use tinybase::sync::local::LocalBus;
use tinybase::{Error, MergeableStore, Store};

const LONG: Duration = Duration::from_secs(20);

/// A fresh folder for one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tinybase-persist-test-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn persister(store: &Store, path: &Path) -> Persister {
    create_file_persister(store, path, PersisterOptions::default()).unwrap()
}

fn fast_options() -> PersisterOptions {
    PersisterOptions { auto_load_interval: Duration::from_millis(20), ..PersisterOptions::default() }
}

/// The content hashes a file holds, as a fresh MergeableStore loads them.
fn file_hashes(path: &Path) -> (u32, u32) {
    let store = MergeableStore::new(None);
    assert!(persister(&store, path).load().unwrap(), "{} exists", path.display());
    store.get_mergeable_content_hashes()
}

/// Options whose durable callback records what it is told.
fn recording_durable() -> (Arc<Mutex<Vec<Durable>>>, PersisterOptions) {
    let seen: Arc<Mutex<Vec<Durable>>> = Arc::default();
    let record = seen.clone();
    (seen, PersisterOptions { on_durable: Some(Arc::new(move |d: &Durable| record.lock().unwrap().push(d.clone()))), ..PersisterOptions::default() })
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + LONG;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn is_corrupt(err: &Error, path: &Path) -> bool {
    matches!(err, Error::Corrupt(m) if m.contains(&path.display().to_string()))
}

// ---------------------------------------------------------------------- load and save

#[test]
fn mergeable_round_trip_keeps_stamps_and_hashes() {
    let dir = TempDir::new("round");
    let path = dir.file("room.json");
    let a = MergeableStore::new(Some("a"));
    a.set_cell("pets", "fido", "species", "dog").unwrap();
    a.set_cell_json("pets", "fido", "toy", r#"{"ball":[1,2]}"#).unwrap();
    a.set_value("open", true).unwrap();
    a.del_cell("pets", "fido", "toy");
    let p = persister(&a, &path);
    p.save().unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), a.get_encoded_mergeable_content_json(), "TinyBase's file format");

    let b = MergeableStore::new(Some("b"));
    let q = persister(&b, &path);
    assert!(q.load().unwrap());
    assert_eq!(b.get_mergeable_content_json(), a.get_mergeable_content_json(), "stamps, deletions and hashes round-trip");
    assert_eq!(q.get_stats(), PersisterStats { loads: 1, saves: 0 });
    assert_eq!(p.get_stats(), PersisterStats { loads: 0, saves: 1 });
    assert_eq!(q.describe(), format!("file {}", path.display()));
}

#[test]
fn plain_store_round_trip_and_merge() {
    let dir = TempDir::new("plain");
    let path = dir.file("store.json");
    let a = Store::new();
    a.set_cell("pets", "fido", "species", "dog").unwrap();
    a.set_cell("pets", "fido", "legs", 4).unwrap();
    a.set_cell_json("pets", "fido", "tags", r#"["good","old"]"#).unwrap();
    a.set_value("open", true).unwrap();
    persister(&a, &path).save().unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text, a.get_json(), "a Store file is [tables, values], as TinyBase writes it");
    assert!(text.contains("\"tags\":\"\u{FFFD}["), "object and array cells as U+FFFD strings: {text}");

    let b = Store::new();
    b.set_cell("pets", "fido", "species", "cat").unwrap();
    b.set_cell("pets", "rex", "species", "dog").unwrap();
    b.set_value("closed", 1).unwrap();
    assert!(persister(&b, &path).load().unwrap());
    assert_eq!(b.get_cell("pets", "fido", "species"), Some("dog".into()), "stored cells are set over the store's");
    assert_eq!(b.get_cell("pets", "fido", "legs"), Some(4.into()));
    assert_eq!(b.get_cell("pets", "rex", "species"), Some("dog".into()), "what only the store has is kept");
    assert_eq!(b.get_value("closed"), Some(1.into()));
    assert_eq!(b.get_value("open"), Some(true.into()));
    assert_eq!(b.get_cell("pets", "fido", "tags"), a.get_cell("pets", "fido", "tags"));
}

#[test]
fn nothing_stored_leaves_the_store_as_it_is() {
    let dir = TempDir::new("none");
    let path = dir.file("absent.json");
    let s = MergeableStore::new(Some("s"));
    s.set_value("v", 1).unwrap();
    let before = s.get_mergeable_content_json();
    let p = persister(&s, &path);
    assert!(!p.load().unwrap());
    assert_eq!(s.get_mergeable_content_json(), before);
    assert!(!path.exists(), "loading creates nothing");
    assert_eq!(p.get_stats().loads, 1, "a load that found nothing is a load");
    let plain = Store::new();
    assert!(!persister(&plain, &path).load().unwrap());
}

#[test]
fn load_merges_where_tinybase_would_replace() {
    let dir = TempDir::new("merge");
    let path = dir.file("room.json");
    let a = MergeableStore::new(Some("a"));
    a.set_cell("t", "r", "from_file", 1).unwrap();
    persister(&a, &path).save().unwrap();

    let b = MergeableStore::new(Some("b"));
    b.set_cell("t", "r", "in_memory", 2).unwrap();
    b.set_value("mine", "kept").unwrap();
    persister(&b, &path).load().unwrap();
    assert_eq!(b.get_cell("t", "r", "from_file"), Some(1.into()));
    assert_eq!(b.get_cell("t", "r", "in_memory"), Some(2.into()), "TinyBase's load would have dropped this");
    assert_eq!(b.get_value("mine"), Some("kept".into()));
    let c = MergeableStore::new(Some("c"));
    c.merge(&a).unwrap();
    c.set_cell("t", "r", "in_memory", 2).unwrap();
    assert_ne!(b.get_mergeable_content_hashes(), a.get_mergeable_content_hashes());
}

#[test]
fn save_merges_what_another_writer_saved_first() {
    let dir = TempDir::new("savemerge");
    let path = dir.file("room.json");
    let a = MergeableStore::new(Some("a"));
    let b = MergeableStore::new(Some("b"));
    let (pa, pb) = (persister(&a, &path), persister(&b, &path));
    a.set_value("a", 1).unwrap();
    pa.save().unwrap();
    b.set_value("b", 2).unwrap();
    pb.save().unwrap();
    assert_eq!(b.get_value("a"), Some(1.into()), "b merged a's save before writing");
    let file = MergeableStore::new(None);
    persister(&file, &path).load().unwrap();
    assert_eq!(file.get_value("a"), Some(1.into()), "a's write was not lost");
    assert_eq!(file.get_value("b"), Some(2.into()));
}

#[test]
fn status_stats_and_durable_callback() {
    let dir = TempDir::new("status");
    let path = dir.file("room.json");
    let s = MergeableStore::new(Some("s"));
    let (seen, options) = recording_durable();
    let p = create_file_persister(&s, &path, options).unwrap();
    assert_eq!(p.get_status(), PersisterStatus::Idle);
    assert_eq!(p.get_stats(), PersisterStats::default());
    s.set_value("v", 1).unwrap();
    p.save().unwrap();
    p.load().unwrap();
    assert_eq!(p.get_status(), PersisterStatus::Idle);
    assert_eq!(p.get_stats(), PersisterStats { loads: 1, saves: 1 });
    let seen = seen.lock().unwrap();
    assert_eq!(*seen, vec![Durable { content_hashes: s.get_mergeable_content_hashes(), saves: 1 }]);
    assert_eq!(PersisterStatus::Saving as i32, 2);
}

#[test]
fn status_is_saving_while_a_save_runs() {
    // A storage that blocks in write, so the status can be observed from another thread.
    struct Slow(FileStorage, Arc<Mutex<()>>);
    impl Storage for Slow {
        fn describe(&self) -> String {
            self.0.describe()
        }
        fn read(&mut self, m: bool) -> tinybase::Result<Option<tinybase::persist::Content>> {
            self.0.read(m)
        }
        fn write(&mut self, c: &tinybase::persist::Content) -> tinybase::Result<()> {
            let _gate = self.1.lock().unwrap();
            self.0.write(c)
        }
        fn lock(&mut self, t: Duration) -> tinybase::Result<()> {
            self.0.lock(t)
        }
        fn unlock(&mut self) -> tinybase::Result<()> {
            self.0.unlock()
        }
        fn changed(&mut self) -> tinybase::Result<bool> {
            self.0.changed()
        }
        fn move_aside(&mut self) -> tinybase::Result<String> {
            self.0.move_aside()
        }
    }
    let dir = TempDir::new("saving");
    let gate = Arc::new(Mutex::new(()));
    let s = MergeableStore::new(Some("s"));
    let p = Arc::new(Persister::new(&s, Box::new(Slow(FileStorage::new(dir.file("x.json")), gate.clone())), PersisterOptions::default()).unwrap());
    let held = gate.lock().unwrap();
    let p2 = p.clone();
    let saving = std::thread::spawn(move || p2.save());
    wait_until("status Saving", || p.get_status() == PersisterStatus::Saving);
    drop(held);
    saving.join().unwrap().unwrap();
    assert_eq!(p.get_status(), PersisterStatus::Idle);
}

// ---------------------------------------------------------------------- auto-save

#[test]
fn auto_save_writes_every_change_and_flush_waits_for_it() {
    let dir = TempDir::new("autosave");
    let path = dir.file("room.json");
    let s = MergeableStore::new(Some("s"));
    let (durable, options) = recording_durable();
    let p = create_file_persister(&s, &path, options).unwrap();
    p.start_auto_save().unwrap();
    assert!(p.is_auto_saving());
    assert!(path.exists(), "starting auto-save saves at once");
    for i in 0..200 {
        s.set_cell("t", &format!("r{i}"), "c", i).unwrap();
    }
    assert!(p.flush(LONG).unwrap());
    assert_eq!(file_hashes(&path), s.get_mergeable_content_hashes(), "the file holds every change");
    let saves = p.get_stats().saves;
    assert!(saves < 201, "200 transactions coalesced into fewer writes ({saves})");
    let last = durable.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last.content_hashes, s.get_mergeable_content_hashes(), "the durable callback names the content made durable");
    assert_eq!(last.saves, saves);

    p.stop_auto_save();
    assert!(!p.is_auto_saving());
    s.set_value("after", 1).unwrap();
    assert!(p.flush(Duration::from_millis(100)).unwrap());
    assert_ne!(file_hashes(&path), s.get_mergeable_content_hashes(), "nothing saved once stopped");
}

#[test]
fn auto_save_of_a_plain_store() {
    let dir = TempDir::new("autoplain");
    let path = dir.file("store.json");
    let s = Store::new();
    let p = persister(&s, &path);
    p.start_auto_save().unwrap();
    let saves = p.get_stats().saves;
    s.set_cell("t", "r", "c", 1).unwrap();
    s.set_value("v", "x").unwrap();
    assert!(p.flush(LONG).unwrap());
    assert_eq!(fs::read_to_string(&path).unwrap(), s.get_json());
    let after = p.get_stats().saves;
    assert!(after > saves);
    s.transaction(|_| ()); // changes nothing: nothing to save
    s.set_value("v", "x").unwrap(); // the same value: nothing changed
    assert!(p.flush(LONG).unwrap());
    assert_eq!(p.get_stats().saves, after, "transactions that changed nothing are not saved");
}

#[test]
fn stop_and_destroy_write_what_is_queued() {
    let dir = TempDir::new("queued");
    let path = dir.file("room.json");
    let s = MergeableStore::new(Some("s"));
    let p = persister(&s, &path);
    p.start_auto_save().unwrap();
    for i in 0..50 {
        s.set_value(&format!("v{i}"), i).unwrap();
    }
    p.destroy();
    assert_eq!(file_hashes(&path), s.get_mergeable_content_hashes());
    p.destroy();
    assert!(matches!(p.save(), Err(Error::InvalidState(_))));
    assert!(matches!(p.load(), Err(Error::InvalidState(_))));
    assert!(!p.is_auto_saving());
    drop(p);

    let q = persister(&s, &path);
    q.start_auto_save().unwrap();
    s.set_value("last", 1).unwrap();
    drop(q); // Drop destroys
    assert_eq!(file_hashes(&path), s.get_mergeable_content_hashes());
}

#[test]
fn destroy_from_inside_the_durable_callback() {
    let dir = TempDir::new("reentrant");
    let path = dir.file("room.json");
    let s = MergeableStore::new(Some("s"));
    let slot: Arc<Mutex<Option<Arc<Persister>>>> = Arc::default();
    let calls = Arc::new(AtomicU64::new(0));
    let (slot2, calls2) = (slot.clone(), calls.clone());
    let options = PersisterOptions {
        on_durable: Some(Arc::new(move |_: &Durable| {
            if calls2.fetch_add(1, Ordering::SeqCst) == 1 {
                // The second durable write (on the persister's thread) destroys the persister.
                if let Some(p) = slot2.lock().unwrap().take() {
                    p.destroy();
                    p.destroy();
                }
            }
        })),
        ..PersisterOptions::default()
    };
    let p = Arc::new(create_file_persister(&s, &path, options).unwrap());
    *slot.lock().unwrap() = Some(p.clone());
    p.start_auto_save().unwrap();
    s.set_value("v", 1).unwrap();
    wait_until("destroyed from its callback", || !p.is_auto_saving());
    assert!(matches!(p.save(), Err(Error::InvalidState(_))));
    drop(p);
    // The file is released: another persister locks and writes it.
    let t = MergeableStore::new(Some("t"));
    let q = create_file_persister(&t, &path, PersisterOptions { lock_timeout: Duration::from_secs(5), ..PersisterOptions::default() }).unwrap();
    q.save().unwrap();
    assert_eq!(t.get_value("v"), Some(1.into()));
}

// ---------------------------------------------------------------------- auto-load

#[test]
fn auto_load_sees_another_writers_saves() {
    let dir = TempDir::new("autoload");
    let path = dir.file("room.json");
    let reader = MergeableStore::new(Some("reader"));
    let p = create_file_persister(&reader, &path, fast_options()).unwrap();
    p.start_auto_load().unwrap();
    assert!(p.is_auto_loading());
    let writer = MergeableStore::new(Some("writer"));
    let w = persister(&writer, &path);
    w.start_auto_save().unwrap();
    writer.set_cell("t", "r", "c", "hello").unwrap();
    wait_until("the reader to load the write", || reader.get_cell("t", "r", "c") == Some("hello".into()));
    writer.set_cell("t", "r", "c", "again").unwrap();
    wait_until("the second write", || reader.get_cell("t", "r", "c") == Some("again".into()));
    assert!(p.get_stats().loads >= 2);
    assert_eq!(p.get_stats().saves, 0, "a load's own merge is not saved back (no auto-save here)");
    p.stop_auto_load();
    assert!(!p.is_auto_loading());
    writer.set_cell("t", "r", "c", "unseen").unwrap();
    w.flush(LONG).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(reader.get_cell("t", "r", "c"), Some("again".into()));
}

#[test]
fn auto_load_with_auto_save_saves_only_what_the_file_lacks() {
    let dir = TempDir::new("loadsave");
    let path = dir.file("room.json");
    let a = MergeableStore::new(Some("a"));
    let b = MergeableStore::new(Some("b"));
    let pa = create_file_persister(&a, &path, fast_options()).unwrap();
    pa.start_auto_load().unwrap();
    pa.start_auto_save().unwrap();
    a.set_value("x", 1).unwrap();
    pa.flush(LONG).unwrap();
    let saves = pa.get_stats().saves;
    // Another writer adds to the file: a loads it; the store then equals the file, no save.
    let pb = persister(&b, &path);
    b.set_value("y", 2).unwrap();
    pb.save().unwrap();
    wait_until("a to load b's write", || a.get_value("y").is_some());
    std::thread::sleep(Duration::from_millis(100));
    assert!(pa.flush(LONG).unwrap());
    assert_eq!(pa.get_stats().saves, saves, "merging what the file holds does not write it back");
    assert_eq!(file_hashes(&path), a.get_mergeable_content_hashes());
}

#[test]
fn a_second_process_writes_and_auto_load_sees_it() {
    if let Ok(path) = std::env::var("TINYBASE_PERSIST_CHILD") {
        // The child: adds a value to the file through its own persister, then exits.
        let s = MergeableStore::new(Some("child"));
        let p = persister(&s, Path::new(&path));
        p.load().unwrap();
        s.set_value("from_child", f64::from(std::process::id())).unwrap();
        p.save().unwrap();
        return;
    }
    let dir = TempDir::new("process");
    let path = dir.file("room.json");
    let s = MergeableStore::new(Some("parent"));
    s.set_value("from_parent", 1).unwrap();
    let p = create_file_persister(&s, &path, fast_options()).unwrap();
    p.start_auto_save().unwrap();
    p.start_auto_load().unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "a_second_process_writes_and_auto_load_sees_it", "--test-threads=1"])
        .env("TINYBASE_PERSIST_CHILD", &path)
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stdout));
    wait_until("the child's write", || s.get_value("from_child").is_some());
    assert!(p.flush(LONG).unwrap());
    let file = MergeableStore::new(None);
    persister(&file, &path).load().unwrap();
    assert_eq!(file.get_value("from_parent"), Some(1.into()), "the child merged before writing");
    assert!(file.get_value("from_child").is_some());
}

// ---------------------------------------------------------------------- several writers

#[test]
fn two_persisters_auto_saving_one_file_from_threads_lose_nothing() {
    let dir = TempDir::new("two");
    let path = dir.file("room.json");
    let a = MergeableStore::new(Some("a"));
    let b = MergeableStore::new(Some("b"));
    let pa = create_file_persister(&a, &path, fast_options()).unwrap();
    let pb = create_file_persister(&b, &path, fast_options()).unwrap();
    pa.start_auto_save().unwrap();
    pb.start_auto_save().unwrap();
    std::thread::scope(|scope| {
        for (k, store) in [&a, &a, &b, &b].into_iter().enumerate() {
            scope.spawn(move || {
                for i in 0..100 {
                    store.set_cell(&format!("t{k}"), &format!("r{i}"), "c", i).unwrap();
                }
            });
        }
    });
    assert!(pa.flush(LONG).unwrap());
    assert!(pb.flush(LONG).unwrap());
    let file = MergeableStore::new(None);
    persister(&file, &path).load().unwrap();
    for k in 0..4 {
        assert_eq!(file.get_row_count(&format!("t{k}")), 100, "every write of table t{k} is in the file");
    }
}

#[test]
fn lock_timeout_while_another_holder_keeps_the_lock() {
    let dir = TempDir::new("lock");
    let path = dir.file("room.json");
    let mut holder = FileStorage::new(&path);
    holder.lock(Duration::from_secs(1)).unwrap();
    let s = MergeableStore::new(Some("s"));
    s.set_value("v", 1).unwrap();
    let p = create_file_persister(&s, &path, PersisterOptions { lock_timeout: Duration::from_millis(200), ..PersisterOptions::default() }).unwrap();
    let start = Instant::now();
    let err = p.save().unwrap_err();
    assert!(matches!(&err, Error::Io(m) if m.contains("lock")), "{err}");
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert!(!path.exists(), "nothing written without the lock");
    holder.unlock().unwrap();
    p.save().unwrap();
    assert!(path.exists());
}

// ---------------------------------------------------------------------- bad files

fn bad_files() -> Vec<(&'static str, Vec<u8>)> {
    let good = {
        let s = MergeableStore::new(Some("g"));
        s.set_cell("pets", "fido", "species", "dog").unwrap();
        s.set_value("open", true).unwrap();
        s.get_encoded_mergeable_content_json()
    };
    let far_future = {
        // An HLC a year ahead, its hashes right: refused for its time alone.
        let year_ahead = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as f64 + 365.0 * 86_400_000.0;
        let s = MergeableStore::with_clock(Some("f"), move || year_ahead);
        s.set_value("v", 1).unwrap();
        s.get_encoded_mergeable_content_json()
    };
    vec![
        ("invalid UTF-8", vec![b'[', 0xff, 0xfe, b']']),
        ("only white space", b" \n".to_vec()),
        ("truncated", good.as_bytes()[..good.len() / 2].to_vec()),
        ("not JSON", b"hello".to_vec()),
        ("wrong shape", b"{\"pets\":{}}".to_vec()),
        ("a plain Store's file", b"[{},{}]".to_vec()),
        ("bad hashes", good.replace("dog", "cat").into_bytes()),
        ("far-future HLC", far_future.into_bytes()),
    ]
}

#[test]
fn bad_files_are_refused_and_never_overwritten() {
    let dir = TempDir::new("bad");
    for (what, bytes) in bad_files() {
        let path = dir.file("room.json");
        let _ = fs::remove_file(&path);
        fs::write(&path, &bytes).unwrap();
        let s = MergeableStore::new(Some("s"));
        s.set_value("mine", 1).unwrap();
        let before = s.get_mergeable_content_json();
        let p = persister(&s, &path);
        let err = p.load().unwrap_err();
        assert!(is_corrupt(&err, &path), "{what}: {err}");
        assert_eq!(s.get_mergeable_content_json(), before, "{what}: the store is untouched");
        let err = p.save().unwrap_err();
        assert!(matches!(&err, Error::InvalidState(m) if m.contains("move_aside_unreadable")), "{what}: {err}");
        assert!(p.start_auto_save().is_err(), "{what}: auto-save refused");
        assert!(matches!(p.start_auto_load(), Err(Error::Corrupt(_))), "{what}");
        assert_eq!(fs::read(&path).unwrap(), bytes, "{what}: never overwritten");

        // A persister that never loaded it does not save over it either.
        let q = persister(&s, &path);
        assert!(is_corrupt(&q.save().unwrap_err(), &path), "{what}: save reads the file first");
        assert!(q.start_auto_save().is_err(), "{what}");
        assert_eq!(fs::read(&path).unwrap(), bytes, "{what}: never overwritten");

        // A fresh store (loaded in one pass, rolled back on bad hashes) stays empty too.
        let fresh = MergeableStore::new(Some("f"));
        let empty = fresh.get_mergeable_content_json();
        assert!(is_corrupt(&persister(&fresh, &path).load().unwrap_err(), &path), "{what}");
        assert_eq!(fresh.get_mergeable_content_json(), empty, "{what}: a fresh store stays empty");
        assert_eq!(fresh.get_mergeable_content_hashes(), MergeableStore::new(None).get_mergeable_content_hashes());

        let moved = p.move_aside_unreadable().unwrap().expect("moved");
        assert!(moved.ends_with(".corrupt"), "{moved}");
        assert_eq!(fs::read(&moved).unwrap(), bytes, "{what}: kept aside");
        p.save().unwrap();
        assert_eq!(file_hashes(&path), s.get_mergeable_content_hashes());
        assert_eq!(p.move_aside_unreadable().unwrap(), None);
        fs::remove_file(&moved).unwrap();
    }
}

#[test]
fn move_aside_picks_a_free_name() {
    let dir = TempDir::new("aside");
    let path = dir.file("room.json");
    fs::write(dir.file("room.json.corrupt"), "old").unwrap();
    fs::write(&path, "nope").unwrap();
    let s = MergeableStore::new(Some("s"));
    let p = persister(&s, &path);
    assert!(p.load().is_err());
    let moved = p.move_aside_unreadable().unwrap().unwrap();
    assert!(moved.ends_with(".corrupt.1"), "{moved}");
    assert_eq!(fs::read_to_string(dir.file("room.json.corrupt")).unwrap(), "old");
}

#[test]
fn auto_load_of_a_bad_file_reports_it_and_auto_save_stays_off_it() {
    let dir = TempDir::new("autobad");
    let path = dir.file("room.json");
    let errors: Arc<Mutex<Vec<Error>>> = Arc::default();
    let e2 = errors.clone();
    let options = PersisterOptions { on_ignored_error: Some(Arc::new(move |e: &Error| e2.lock().unwrap().push(e.clone()))), ..fast_options() };
    let s = MergeableStore::new(Some("s"));
    let p = create_file_persister(&s, &path, options).unwrap();
    p.start_auto_load().unwrap();
    p.start_auto_save().unwrap();
    fs::write(&path, "[[{},\"\",0],").unwrap();
    wait_until("the error to be reported", || !errors.lock().unwrap().is_empty());
    assert!(is_corrupt(&errors.lock().unwrap()[0], &path));
    s.set_value("v", 1).unwrap();
    assert!(p.flush(Duration::from_millis(300)).is_err(), "flush says the change cannot be saved");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(fs::read_to_string(&path).unwrap(), "[[{},\"\",0],", "auto-save did not overwrite it");
    p.move_aside_unreadable().unwrap().unwrap();
    s.set_value("v", 2).unwrap();
    assert!(p.flush(LONG).unwrap());
    assert_eq!(file_hashes(&path), s.get_mergeable_content_hashes());
}

// ---------------------------------------------------------------------- with a synchronizer

#[test]
fn persisting_and_synchronizing_one_store_at_once() {
    let dir = TempDir::new("sync");
    let bus = LocalBus::new();
    let a = MergeableStore::new(Some("a"));
    let b = MergeableStore::new(Some("b"));
    let (path_a, path_b) = (dir.file("a.json"), dir.file("b.json"));
    let pa = create_file_persister(&a, &path_a, fast_options()).unwrap();
    let pb = create_file_persister(&b, &path_b, fast_options()).unwrap();
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
                for i in 0..100 {
                    store.set_cell("t", &format!("r{}", i % 30), &format!("c{k}"), i).unwrap();
                    if i % 7 == 0 {
                        store.del_cell("t", &format!("r{}", (i + 3) % 30), &format!("c{k}"));
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
    assert_eq!(file_hashes(&path_a), a.get_mergeable_content_hashes(), "a's file holds what a holds");
    assert_eq!(file_hashes(&path_b), b.get_mergeable_content_hashes(), "b's file holds what b holds");
    sa.stop_sync();
    sb.stop_sync();
}

// ---------------------------------------------------------------------- incremental storages

/// An incremental storage in memory: a MergeableStore standing for the database, and the
/// transactions written, in the order they were written.
#[derive(Default)]
struct Memory {
    db: Option<MergeableStore>,
    version: u64,
    written: Vec<String>,
    whole_writes: usize,
}

struct MemoryStorage {
    shared: Arc<Mutex<Memory>>,
    seen: u64,
}

impl Storage for MemoryStorage {
    fn describe(&self) -> String {
        "memory (incremental)".into()
    }
    fn read(&mut self, _mergeable: bool) -> tinybase::Result<Option<tinybase::persist::Content>> {
        let m = self.shared.lock().unwrap();
        self.seen = m.version;
        Ok(m.db.as_ref().map(|db| tinybase::persist::Content::Mergeable(db.get_encoded_mergeable_content_json())))
    }
    fn write(&mut self, content: &tinybase::persist::Content) -> tinybase::Result<()> {
        let tinybase::persist::Content::Mergeable(text) = content else { panic!("a MergeableStore's content") };
        let mut m = self.shared.lock().unwrap();
        let db = MergeableStore::new(None);
        db.set_mergeable_content_json(text)?;
        m.db = Some(db);
        m.version += 1;
        m.whole_writes += 1;
        self.seen = m.version;
        Ok(())
    }
    fn lock(&mut self, _timeout: Duration) -> tinybase::Result<()> {
        Ok(())
    }
    fn unlock(&mut self) -> tinybase::Result<()> {
        Ok(())
    }
    fn changed(&mut self) -> tinybase::Result<bool> {
        Ok(self.shared.lock().unwrap().version != self.seen)
    }
    fn is_incremental(&self) -> bool {
        true
    }
    fn write_changes(&mut self, changes: &str) -> tinybase::Result<()> {
        let mut m = self.shared.lock().unwrap();
        m.db.get_or_insert_with(|| MergeableStore::new(None)).apply_mergeable_changes_json(changes)?;
        m.written.push(changes.to_string());
        m.version += 1;
        self.seen = m.version;
        Ok(())
    }
    fn move_aside(&mut self) -> tinybase::Result<String> {
        self.shared.lock().unwrap().db = None;
        Ok("nowhere".into())
    }
}

/// Every HLC in wire-form changes (the middle of each `[thing, hlc, hash]`).
fn hlcs(json: &serde_json::Value, out: &mut Vec<String>) {
    match json {
        serde_json::Value::Array(items) => {
            if let [_, serde_json::Value::String(hlc), serde_json::Value::Number(_)] = items.as_slice() {
                if !hlc.is_empty() {
                    out.push(hlc.clone());
                }
            }
            items.iter().for_each(|i| hlcs(i, out));
        }
        serde_json::Value::Object(map) => map.values().for_each(|v| hlcs(v, out)),
        _ => {}
    }
}

#[test]
fn incremental_storage_gets_each_transaction_in_commit_order() {
    let memory: Arc<Mutex<Memory>> = Arc::default();
    let s = MergeableStore::new(Some("s"));
    s.set_value("before", 1).unwrap();
    let (durable, options) = recording_durable();
    let p = Persister::new(&s, Box::new(MemoryStorage { shared: memory.clone(), seen: 0 }), options).unwrap();
    assert!(matches!(
        Persister::new(&Store::new(), Box::new(MemoryStorage { shared: memory.clone(), seen: 0 }), PersisterOptions::default()),
        Err(Error::InvalidState(_))
    ));
    p.start_auto_save().unwrap();
    assert_eq!(memory.lock().unwrap().whole_writes, 1, "auto-save starts with one whole write");
    std::thread::scope(|scope| {
        for k in 0..6 {
            let s = &s;
            scope.spawn(move || {
                for i in 0..150 {
                    s.set_cell(&format!("t{k}"), &format!("r{}", i % 20), "c", i).unwrap();
                }
            });
        }
    });
    p.stop_auto_save(); // writes what is queued before returning
    let m = memory.lock().unwrap();
    assert_eq!(m.written.len(), 900, "one write per transaction");
    assert_eq!(m.db.as_ref().unwrap().get_mergeable_content_hashes(), s.get_mergeable_content_hashes());
    // One clock stamps every transaction under the store's lock: commit order is HLC order.
    let mut last = String::new();
    for changes in &m.written {
        let mut found = Vec::new();
        hlcs(&serde_json::from_str(changes).unwrap(), &mut found);
        let max = found.into_iter().max().unwrap();
        assert!(max > last, "written in commit order ({max} after {last})");
        last = max;
    }
    let d = durable.lock().unwrap();
    assert_eq!(d.len(), 901);
    let top: serde_json::Value = serde_json::from_str(m.written.last().unwrap()).unwrap();
    assert_eq!(d.last().unwrap().content_hashes, (top[0][2].as_f64().unwrap() as u32, top[1][2].as_f64().unwrap() as u32));
    assert_eq!(p.get_stats().saves, 901);
}

#[test]
fn incremental_auto_save_skips_its_own_loads_and_keeps_order() {
    let memory: Arc<Mutex<Memory>> = Arc::default();
    let s = MergeableStore::new(Some("s"));
    let p = Persister::new(&s, Box::new(MemoryStorage { shared: memory.clone(), seen: 0 }), fast_options()).unwrap();
    p.start_auto_save().unwrap();
    p.start_auto_load().unwrap();
    // Another writer (standing for another process) adds to the database; loads merge it in
    // while this store's own threads keep committing.
    let other = MergeableStore::new(Some("other"));
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for i in 0..30 {
                other.set_value(&format!("o{i}"), i).unwrap();
                let changes = other.get_encoded_mergeable_content_json();
                let mut m = memory.lock().unwrap();
                m.db.get_or_insert_with(|| MergeableStore::new(None)).apply_mergeable_changes_json(&changes).unwrap();
                m.version += 1;
                drop(m);
                std::thread::sleep(Duration::from_millis(3));
            }
        });
        for k in 0..3 {
            let s = &s;
            scope.spawn(move || {
                for i in 0..100 {
                    s.set_cell("t", &format!("r{k}"), &format!("c{}", i % 7), i).unwrap();
                    if i % 10 == 0 {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
            });
        }
    });
    wait_until("every other write loaded", || s.get_value("o29").is_some());
    assert!(p.flush(LONG).unwrap(), "no transaction number is left waiting (loads' merges are skipped, not awaited)");
    let m = memory.lock().unwrap();
    assert_eq!(m.db.as_ref().unwrap().get_mergeable_content_hashes(), s.get_mergeable_content_hashes());
    assert_eq!(m.written.len(), 300, "loaded merges were not written back");
}

/// Figures for the README (run with `--ignored --nocapture`): whole-file save and load.
#[test]
#[ignore]
fn file_save_and_load_speed() {
    let dir = TempDir::new("speed");
    for cells in [10_000usize, 100_000, 1_000_000] {
        let path = dir.file(&format!("{cells}.json"));
        let s = MergeableStore::new(Some("s"));
        s.transaction(|s| {
            for i in 0..cells {
                s.set_cell(&format!("t{}", i % 10), &format!("r{}", i / 100), &format!("c{}", i % 10), i as f64).unwrap();
            }
        });
        let p = persister(&s, &path);
        let start = Instant::now();
        p.save().unwrap();
        let save = start.elapsed();
        let t = MergeableStore::new(Some("t"));
        let q = persister(&t, &path);
        let start = Instant::now();
        q.load().unwrap();
        let load = start.elapsed();
        assert_eq!(t.get_mergeable_content_hashes(), s.get_mergeable_content_hashes());
        println!("{cells} cells: {} bytes, save {save:?}, load {load:?}", fs::metadata(&path).unwrap().len());
    }
}

#[test]
fn destroy_from_inside_the_durable_callback_of_an_explicit_save() {
    let dir = TempDir::new("reentrant2");
    let path = dir.file("room.json");
    let s = MergeableStore::new(Some("s"));
    let slot: Arc<Mutex<Option<Arc<Persister>>>> = Arc::default();
    let slot2 = slot.clone();
    let options = PersisterOptions {
        on_durable: Some(Arc::new(move |_: &Durable| {
            if let Some(p) = slot2.lock().unwrap().take() {
                p.destroy();
            }
        })),
        ..fast_options()
    };
    let p = Arc::new(create_file_persister(&s, &path, options).unwrap());
    p.start_auto_load().unwrap(); // a persister thread exists and is joined by the callback
    *slot.lock().unwrap() = Some(p.clone());
    s.set_value("v", 1).unwrap();
    p.save().unwrap();
    assert!(!p.is_auto_loading());
    assert!(matches!(p.save(), Err(Error::InvalidState(_))));
    assert_eq!(file_hashes(&path), s.get_mergeable_content_hashes());
}

#[test]
fn plain_store_auto_load() {
    let dir = TempDir::new("plainload");
    let path = dir.file("store.json");
    let reader = Store::new();
    reader.set_value("own", 1).unwrap();
    let p = create_file_persister(&reader, &path, fast_options()).unwrap();
    p.start_auto_load().unwrap();
    let writer = Store::new();
    let w = persister(&writer, &path);
    w.start_auto_save().unwrap();
    writer.set_cell("t", "r", "c", "x").unwrap();
    wait_until("the plain store to load", || reader.get_cell("t", "r", "c") == Some("x".into()));
    assert_eq!(reader.get_value("own"), Some(1.into()));
}

#[test]
fn persisters_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Persister>();
    check::<FileStorage>();
}

#[test]
fn destroy_from_inside_the_ignored_error_callback() {
    let dir = TempDir::new("reentrant3");
    let path = dir.file("room.json");
    let s = MergeableStore::new(Some("s"));
    let slot: Arc<Mutex<Option<Arc<Persister>>>> = Arc::default();
    let slot2 = slot.clone();
    let options = PersisterOptions {
        on_ignored_error: Some(Arc::new(move |_: &Error| {
            if let Some(p) = slot2.lock().unwrap().take() {
                p.destroy();
            }
        })),
        ..fast_options()
    };
    let p = Arc::new(create_file_persister(&s, &path, options).unwrap());
    *slot.lock().unwrap() = Some(p.clone());
    p.start_auto_load().unwrap();
    fs::write(&path, "not json").unwrap();
    wait_until("destroyed from its error callback", || !p.is_auto_loading());
    assert!(matches!(p.load(), Err(Error::InvalidState(_))));
}

#[test]
fn flush_reports_an_auto_save_error_then_auto_save_recovers() {
    let dir = TempDir::new("flusherr");
    let path = dir.file("room.json");
    let s = MergeableStore::new(Some("s"));
    let errors = Arc::new(AtomicU64::new(0));
    let e2 = errors.clone();
    let options = PersisterOptions {
        lock_timeout: Duration::from_millis(50),
        on_ignored_error: Some(Arc::new(move |_: &Error| {
            e2.fetch_add(1, Ordering::SeqCst);
        })),
        ..fast_options()
    };
    let p = create_file_persister(&s, &path, options).unwrap();
    p.start_auto_save().unwrap();
    let mut holder = FileStorage::new(&path);
    holder.lock(Duration::from_secs(1)).unwrap();
    s.set_value("v", 1).unwrap();
    let err = p.flush(LONG).unwrap_err();
    assert!(matches!(&err, Error::Io(m) if m.contains("lock")), "{err}");
    assert!(errors.load(Ordering::SeqCst) >= 1, "reported to on_ignored_error too");
    holder.unlock().unwrap();
    // A retry may have failed since the first flush, just before the lock was released.
    assert!((0..3).any(|_| p.flush(LONG).unwrap_or(false)), "retried once the lock is free");
    assert_eq!(file_hashes(&path), s.get_mergeable_content_hashes());
}

#[test]
fn a_listener_saving_during_the_persisters_own_load_gets_an_error_not_a_deadlock() {
    let dir = TempDir::new("listener");
    let path = dir.file("room.json");
    let a = MergeableStore::new(Some("a"));
    a.set_value("v", 1).unwrap();
    persister(&a, &path).save().unwrap();
    let s = MergeableStore::new(Some("s"));
    let p = Arc::new(persister(&s, &path));
    let results: Arc<Mutex<Vec<bool>>> = Arc::default();
    let (weak, r2) = (Arc::downgrade(&p), results.clone());
    s.add_did_finish_transaction_listener(move |_| {
        if let Some(p) = weak.upgrade() {
            r2.lock().unwrap().push(matches!(p.save(), Err(Error::InvalidState(_))));
        }
    });
    assert!(p.load().unwrap());
    assert_eq!(*results.lock().unwrap(), vec![true]);
    s.set_value("w", 2).unwrap();
    assert_eq!(*results.lock().unwrap(), vec![true, false], "outside a load the listener saves");
    assert_eq!(file_hashes(&path), s.get_mergeable_content_hashes());
}

#[test]
fn auto_save_keeps_a_merged_deletion_of_a_cell_the_store_never_had() {
    let dir = TempDir::new("tombstone");
    let path = dir.file("room.json");
    let a = MergeableStore::new(Some("a"));
    a.set_cell("t", "r", "gone", 1).unwrap();
    a.set_cell("t", "r", "kept", 1).unwrap();
    a.del_cell("t", "r", "gone");
    let b = MergeableStore::new(Some("b"));
    b.set_cell("t", "r", "kept", 1).unwrap();
    let p = create_file_persister(&b, &path, fast_options()).unwrap();
    p.start_auto_save().unwrap();
    // Only the deletion's stamp is new to b: no visible change, so no transaction changes.
    b.apply_mergeable_changes_json(&a.get_encoded_mergeable_content_json()).unwrap();
    wait_until("the file to hold the deletion's stamp", || p.flush(LONG).unwrap() && file_hashes(&path) == b.get_mergeable_content_hashes());
}
