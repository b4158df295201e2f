//! The PostgreSQL storage against a real server (`TB_TEST_POSTGRES_DSN`, or one started through
//! scripts/pg.sh for this test binary and stopped when it exits): rooms, several writers of one
//! room, corrupted rows, locks, and the persister on top of it.

#![cfg(feature = "postgres")]

#[path = "support/postgres.rs"]
mod pg;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tinybase::persist::file::merge_text;
use tinybase::persist::postgres::{create_postgres_persister, PostgresStorage};
use tinybase::persist::{Content, Persister, PersisterOptions, Storage};
use tinybase::sync::local::LocalBus;
use tinybase::{Error, MergeableStore, Store};

const LONG: Duration = Duration::from_secs(20);

fn connect(room: &str) -> PostgresStorage {
    PostgresStorage::connect(&pg::dsn(), room).expect("connect")
}

/// Each committed transaction's changes in wire form with hashes, as auto-save hands them to
/// `write_changes`.
fn record_changes(store: &MergeableStore) -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let into = seen.clone();
    let s = store.clone();
    store.add_did_finish_transaction_listener(move |_| {
        into.lock().unwrap().push(s.get_encoded_transaction_mergeable_changes_json(true));
    });
    seen
}

fn take(changes: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
    std::mem::take(&mut *changes.lock().unwrap())
}

fn stored(storage: &mut PostgresStorage) -> Option<String> {
    match storage.read(true).expect("read") {
        Some(Content::Mergeable(text)) => Some(text),
        Some(Content::Plain(_)) => panic!("a plain content from an incremental storage"),
        None => None,
    }
}

/// The stored content loaded into a fresh store (hashes verified).
fn load(storage: &mut PostgresStorage) -> MergeableStore {
    let s = MergeableStore::new(None);
    if let Some(text) = stored(storage) {
        merge_text(&s, &text).expect("stored content verifies");
    }
    s
}

fn sql(statements: &str) {
    let config: tinybase::persist::pg::Config = pg::dsn().parse().unwrap();
    let mut client = tinybase::persist::pg::Client::connect(&config).unwrap();
    client.batch_execute(statements).unwrap();
}

fn pets(store: &MergeableStore) {
    store.set_cell("pets", "fido", "species", "dog").unwrap();
    store.set_cell("pets", "fido", "legs", 4.0).unwrap();
    store.set_cell("pets", "felix", "species", "cat").unwrap();
    store.set_cell_json("pets", "felix", "toys", "[\"ball\",{\"a\":1}]").unwrap();
    store.del_cell("pets", "felix", "species");
    store.set_value("open", true).unwrap();
    // What COPY's text format and SQL quoting must carry through untouched.
    store.set_cell("odd\ttable", "row\nid '", "c\\ell\r", "tab\there\nnew \\ line \u{1F600} 'quote' \\N").unwrap();
}

#[test]
fn whole_content_round_trips_and_rooms_are_isolated() {
    let room = pg::unique_room("round");
    let mut storage = connect(&room);
    assert_eq!(stored(&mut storage), None, "nothing stored yet");
    assert!(!storage.changed().unwrap());
    assert!(storage.describe().contains(&room) && storage.describe().starts_with("postgres "), "{}", storage.describe());
    assert!(!storage.describe().contains("password"));

    let a = MergeableStore::new(Some("a"));
    pets(&a);
    let content = a.get_encoded_mergeable_content_json();
    storage.write(&Content::Mergeable(content.clone())).unwrap();
    assert_eq!(stored(&mut storage).as_deref(), Some(content.as_str()), "read back byte for byte, in the store's order");

    // Another room of the same database is another store.
    let other_room = pg::unique_room("round-other");
    let mut other = connect(&other_room);
    assert_eq!(stored(&mut other), None);
    let b = MergeableStore::new(Some("b"));
    b.set_value("other", 1.0).unwrap();
    other.write(&Content::Mergeable(b.get_encoded_mergeable_content_json())).unwrap();
    assert_eq!(load(&mut storage).get_mergeable_content_hashes(), a.get_mergeable_content_hashes());
    assert_eq!(load(&mut other).get_mergeable_content_hashes(), b.get_mergeable_content_hashes());

    // `write` replaces the room's content.
    storage.write(&Content::Mergeable(b.get_encoded_mergeable_content_json())).unwrap();
    assert_eq!(load(&mut storage).get_mergeable_content_hashes(), b.get_mergeable_content_hashes());
    assert!(load(&mut storage).get_cell("pets", "fido", "species").is_none());

    // A plain Store's content is refused: the layout is a MergeableStore's.
    assert!(matches!(storage.write(&Content::Plain("[{},{}]".into())), Err(Error::InvalidState(_))));
    assert!(matches!(storage.read(false), Err(Error::InvalidState(_))));
}

#[test]
fn each_transaction_is_written_incrementally() {
    let room = pg::unique_room("incremental");
    let mut storage = connect(&room);
    let a = MergeableStore::new(Some("a"));
    let changes = record_changes(&a);
    pets(&a);
    a.transaction(|s| {
        s.set_cell("pets", "rex", "species", "dog").unwrap();
        s.set_value("open", false).unwrap();
        s.del_cell("pets", "fido", "legs");
    });
    let all = take(&changes);
    assert_eq!(all.len(), 8);
    for c in &all {
        storage.write_changes(c).unwrap();
    }
    // Byte for byte: the same order, stamps and hashes as the store's own content.
    assert_eq!(stored(&mut storage).unwrap(), a.get_encoded_mergeable_content_json());
    assert!(!storage.changed().unwrap(), "its own writes are not a change");

    // Bad input is refused and nothing is written.
    assert!(storage.write_changes("[1,").is_err());
    assert!(storage.write_changes("[[{},\"\",0],[{},\"\",0],2]").is_err());
    assert_eq!(stored(&mut storage).unwrap(), a.get_encoded_mergeable_content_json());
}

#[test]
fn two_writers_of_one_room_merge_and_see_each_other() {
    let room = pg::unique_room("two");
    let mut one = connect(&room);
    let mut two = connect(&room);
    let a = MergeableStore::new(Some("a"));
    let b = MergeableStore::new(Some("b"));
    let (ca, cb) = (record_changes(&a), record_changes(&b));

    a.set_cell("pets", "fido", "species", "dog").unwrap();
    for c in take(&ca) {
        one.write_changes(&c).unwrap();
    }
    assert!(two.changed().unwrap(), "the other process's write is seen");
    // b never loaded a's write: its changes carry container hashes of its own store only.
    b.set_cell("pets", "fido", "legs", 4.0).unwrap();
    b.set_cell("pets", "felix", "species", "cat").unwrap();
    b.set_value("open", true).unwrap();
    for c in take(&cb) {
        two.write_changes(&c).unwrap();
    }
    assert!(one.changed().unwrap());
    // a then overwrites a cell b wrote (newer stamp), and b writes an older stamp of it later.
    let late = MergeableStore::with_clock(Some("late"), || 1_000_000_000_000.0);
    let cl = record_changes(&late);
    late.set_cell("pets", "fido", "legs", 3.0).unwrap();
    a.set_cell("pets", "fido", "legs", 5.0).unwrap();
    for c in take(&ca) {
        one.write_changes(&c).unwrap();
    }
    for c in take(&cl) {
        two.write_changes(&c).unwrap();
    }

    let loaded = load(&mut one);
    assert!(!one.changed().unwrap(), "read brought it up to date");
    a.merge(&b).unwrap();
    a.apply_mergeable_changes_json(&late.get_encoded_mergeable_content_json()).unwrap();
    assert_eq!(loaded.get_mergeable_content_hashes(), a.get_mergeable_content_hashes(), "the rows hold the merge of everything written");
    assert_eq!(loaded.get_cell("pets", "fido", "legs"), Some(5.0.into()), "the newest stamp wins, not the last write");
}

#[test]
fn concurrent_writer_threads_converge() {
    let room = pg::unique_room("threads");
    let threads = 4;
    let per_thread = 40;
    let stores: Vec<MergeableStore> = (0..threads).map(|i| MergeableStore::new(Some(&format!("w{i}")))).collect();
    std::thread::scope(|scope| {
        for (i, store) in stores.iter().enumerate() {
            let room = room.clone();
            scope.spawn(move || {
                let mut storage = connect(&room);
                let changes = record_changes(store);
                for n in 0..per_thread {
                    // Shared cells (every writer writes them) and own ones.
                    store.set_cell("shared", &format!("r{}", n % 5), "by", format!("w{i}-{n}")).unwrap();
                    store.set_cell(&format!("own{i}"), &format!("r{n}"), "n", n as f64).unwrap();
                    store.set_value("last", format!("w{i}")).unwrap();
                    for c in take(&changes) {
                        storage.write_changes(&c).unwrap();
                    }
                }
            });
        }
    });
    let loaded = load(&mut connect(&room));
    let all = MergeableStore::new(None);
    for s in &stores {
        all.merge(s).unwrap();
    }
    assert_eq!(loaded.get_mergeable_content_hashes(), all.get_mergeable_content_hashes());
    assert_eq!(loaded.get_cell("own3", &format!("r{}", per_thread - 1), "n"), Some(((per_thread - 1) as f64).into()));
}

#[test]
fn corrupted_rows_are_refused_and_moved_aside() {
    let room = pg::unique_room("corrupt");
    let mut storage = connect(&room);
    let a = MergeableStore::new(Some("a"));
    pets(&a);
    storage.write(&Content::Mergeable(a.get_encoded_mergeable_content_json())).unwrap();
    let quoted = room.replace('\'', "''");
    sql(&format!("UPDATE tinybase_cells SET value = '\"wolf\"' WHERE room = '{quoted}' AND cell_id = 'species' AND row_id = 'fido'"));
    match storage.read(true) {
        Err(Error::Corrupt(m)) => assert!(m.contains(&room) && m.contains("hash"), "{m}"),
        other => panic!("a corrupted cell must be refused: {other:?}"),
    }
    sql(&format!("UPDATE tinybase_cells SET hash = -1 WHERE room = '{quoted}' AND cell_id = 'legs'"));
    assert!(matches!(storage.read(true), Err(Error::Corrupt(_))));

    let moved = storage.move_aside().unwrap();
    assert!(moved.contains(&format!("{room}.corrupt-")), "{moved}");
    assert_eq!(stored(&mut storage), None, "the room starts afresh");
    // The unreadable rows are kept under the other name, untouched.
    let aside = moved.rsplit_once(" moved to room ").unwrap().1.trim_matches('"').to_string();
    let mut kept = connect(&aside);
    assert!(matches!(kept.read(true), Err(Error::Corrupt(_))), "kept as they were");
    storage.write(&Content::Mergeable(a.get_encoded_mergeable_content_json())).unwrap();
    assert_eq!(load(&mut storage).get_mergeable_content_hashes(), a.get_mergeable_content_hashes());
}

#[test]
fn the_room_lock_keeps_writers_apart() {
    let room = pg::unique_room("lock");
    let mut one = connect(&room);
    let mut two = connect(&room);
    let a = MergeableStore::new(Some("a"));
    a.set_value("v", 1.0).unwrap();
    one.lock(Duration::from_secs(1)).unwrap();
    let started = Instant::now();
    match two.lock(Duration::from_millis(200)) {
        Err(Error::Io(m)) => assert!(m.contains("lock"), "{m}"),
        other => panic!("the second lock must time out: {other:?}"),
    }
    assert!(started.elapsed() >= Duration::from_millis(150));
    // A write from the other process waits for the save under the lock to commit.
    let waiter = std::thread::spawn(move || {
        let b = MergeableStore::new(Some("b"));
        b.set_value("w", 2.0).unwrap();
        two.write(&Content::Mergeable(b.get_encoded_mergeable_content_json())).unwrap();
        two
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(!waiter.is_finished(), "the write waits for the lock");
    one.write(&Content::Mergeable(a.get_encoded_mergeable_content_json())).unwrap();
    one.unlock().unwrap();
    let mut two = waiter.join().unwrap();
    assert!(load(&mut two).get_value("w").is_some(), "the waiting write came after the locked one");
    assert!(one.changed().unwrap());

    // Another room's lock is independent.
    let mut three = connect(&pg::unique_room("lock-other"));
    one.lock(Duration::from_secs(1)).unwrap();
    three.lock(Duration::from_millis(200)).unwrap();
    three.unlock().unwrap();
    one.unlock().unwrap();
}

#[test]
fn server_errors_are_io_errors() {
    // A port nothing listens on (the test server's port plus one is as good as any other).
    match PostgresStorage::connect("host=127.0.0.1 port=1 user=nobody dbname=none connect_timeout=5", "r") {
        Err(Error::Io(m)) => assert!(m.contains("127.0.0.1:1"), "{m}"),
        Err(e) => panic!("not an Io error: {e:?}"),
        Ok(_) => panic!("connected to nothing"),
    }
    assert!(matches!(PostgresStorage::connect("host=127.0.0.1 port=notaport", "r"), Err(Error::InvalidValue(_))));
    let missing_db = pg::dsn().replace("dbname=", "dbname=missing_");
    if missing_db != pg::dsn() {
        assert!(matches!(PostgresStorage::connect(&missing_db, "r"), Err(Error::Io(_))));
    }
}

/// The rows of `sql` run by the test server's superuser, as text.
fn sql_rows(statement: &str) -> Vec<Vec<String>> {
    let config: tinybase::persist::pg::Config = pg::dsn().parse().unwrap();
    let mut client = tinybase::persist::pg::Client::connect(&config).unwrap();
    let rows = client.simple_query(statement).unwrap();
    rows.iter().map(|r| (0..r.len()).map(|i| r.string(i).unwrap()).collect()).collect()
}

#[test]
fn password_authentication() {
    // scripts/pg.sh makes one role per method (pg_hba.conf: scram-sha-256, md5, password), each
    // owning a database of its name; a server started otherwise may lack them.
    let rules = sql_rows("SELECT user_name[1], auth_method FROM pg_hba_file_rules WHERE user_name[1] LIKE 'tb\\_%'");
    for (role, method, password) in
        [("tb_scram", "scram-sha-256", "scram-secret"), ("tb_md5", "md5", "md5-secret"), ("tb_clear", "password", "clear-secret")]
    {
        if !rules.contains(&vec![role.to_string(), method.to_string()]) {
            eprintln!("skipped {role}: the server has no {method} rule for it (not started by scripts/pg.sh)");
            continue;
        }
        let room = pg::unique_room(role);
        // Later keys win: the test server's host and port, this role, its database.
        let base = format!("{} user={role} dbname={role}", pg::dsn());
        let mut storage = PostgresStorage::connect(&format!("{base} password={password}"), &room)
            .unwrap_or_else(|e| panic!("{role} with its password: {e}"));
        assert_eq!(stored(&mut storage), None);
        match PostgresStorage::connect(&format!("{base} password=wrong"), &room) {
            Err(Error::Io(m)) => assert!(m.contains("password authentication failed") && m.contains("(28P01)"), "{role}: {m}"),
            Err(e) => panic!("{role}: not an Io error: {e:?}"),
            Ok(_) => panic!("{role} logged in with a wrong password"),
        }
        match PostgresStorage::connect(&base, &room) {
            Err(Error::Io(m)) => assert!(m.contains("password"), "{role}: {m}"),
            Err(e) => panic!("{role}: not an Io error: {e:?}"),
            Ok(_) => panic!("{role} logged in without a password"),
        }
    }
    // A URL with a percent-encoded password, through the persister.
    if rules.iter().any(|r| r[0] == "tb_scram") {
        let port = pg::dsn().split_whitespace().find_map(|kv| kv.strip_prefix("port=").map(str::to_string)).unwrap();
        let url = format!("postgresql://tb_scram:scram%2Dsecret@127.0.0.1:{port}/tb_scram?connect_timeout=10");
        PostgresStorage::connect(&url, &pg::unique_room("url")).expect("a URL with a password");
    }
}

#[test]
fn several_hosts_are_tried_in_turn() {
    // A port nothing listens on first (or, shuffled, anywhere), then the test server.
    let port = pg::dsn().split_whitespace().find_map(|kv| kv.strip_prefix("port=").map(str::to_string)).unwrap();
    let others: Vec<String> = pg::dsn().split_whitespace().filter(|kv| !kv.starts_with("host=") && !kv.starts_with("port=")).map(str::to_string).collect();
    for extra in ["", " load_balance_hosts=random"] {
        let dsn = format!("host=127.0.0.1,127.0.0.1 port=1,{port} connect_timeout=5 {}{extra}", others.join(" "));
        PostgresStorage::connect(&dsn, &pg::unique_room("hosts")).unwrap_or_else(|e| panic!("{dsn}: {e}"));
    }
}

#[test]
fn connects_through_the_unix_socket() {
    let dirs = sql_rows("SHOW unix_socket_directories");
    let Some(dir) = dirs.first().and_then(|r| r[0].split(',').next().map(|d| d.trim().to_string())).filter(|d| d.starts_with('/')) else {
        eprintln!("skipped: the server listens on no unix socket");
        return;
    };
    // host= adds to the hosts tried in turn: leave the TCP one out.
    let others: Vec<String> = pg::dsn().split_whitespace().filter(|kv| !kv.starts_with("host=")).map(str::to_string).collect();
    let dsn = format!("host={dir} {}", others.join(" "));
    let room = pg::unique_room("unix");
    let mut storage = PostgresStorage::connect(&dsn, &room).unwrap_or_else(|e| panic!("{dsn}: {e}"));
    assert!(storage.describe().contains(&dir), "{}", storage.describe());
    assert_eq!(stored(&mut storage), None);
}

// ------------------------------------------------------------------ through the Persister

fn fast_options() -> PersisterOptions {
    PersisterOptions { auto_load_interval: Duration::from_millis(50), ..PersisterOptions::default() }
}

fn persister(store: &MergeableStore, room: &str) -> Persister {
    create_postgres_persister(store, &pg::dsn(), room, fast_options()).expect("persister")
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ok() {
        assert!(started.elapsed() < LONG, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn persister_saves_loads_and_keeps_rooms_apart() {
    let room = pg::unique_room("persister");
    let a = MergeableStore::new(Some("a"));
    pets(&a);
    let pa = persister(&a, &room);
    assert!(pa.describe().contains(&room));
    pa.save().unwrap();
    assert_eq!(pa.get_stats().saves, 1);

    // A fresh store loads it; loading merges (what only the store has is kept).
    let b = MergeableStore::new(Some("b"));
    b.set_value("mine", "kept").unwrap();
    let pb = persister(&b, &room);
    assert!(pb.load().unwrap());
    assert_eq!(b.get_cell("pets", "fido", "species"), Some("dog".into()));
    assert_eq!(b.get_value("mine"), Some("kept".into()));
    assert_eq!(b.get_cell("pets", "felix", "toys"), a.get_cell("pets", "felix", "toys"));
    assert!(b.get_cell("pets", "felix", "toys").is_some());

    // Another room of the same database holds nothing yet; loading it leaves the store alone.
    let c = MergeableStore::new(Some("c"));
    c.set_value("alone", true).unwrap();
    let before = c.get_mergeable_content_hashes();
    let pc = persister(&c, &pg::unique_room("persister-other"));
    assert!(!pc.load().unwrap());
    assert_eq!(c.get_mergeable_content_hashes(), before);

    // A plain Store cannot use the incremental layout.
    let plain = Store::new();
    assert!(matches!(create_postgres_persister(&plain, &pg::dsn(), &room, fast_options()), Err(Error::InvalidState(_))));
}

#[test]
fn auto_save_then_reload_in_a_fresh_store() {
    let room = pg::unique_room("autosave");
    let a = MergeableStore::new(Some("a"));
    a.set_value("before", 1.0).unwrap();
    let durable = Arc::new(Mutex::new(Vec::new()));
    let into = durable.clone();
    let options = PersisterOptions {
        on_durable: Some(Arc::new(move |d: &tinybase::persist::Durable| into.lock().unwrap().push(d.content_hashes))),
        ..fast_options()
    };
    let pa = create_postgres_persister(&a, &pg::dsn(), &room, options).unwrap();
    pa.start_auto_save().unwrap();
    assert!(pa.is_auto_saving());
    pets(&a);
    for i in 0..50 {
        a.set_cell("many", &format!("r{i}"), "n", i as f64).unwrap();
    }
    a.transaction(|s| {
        s.del_cell("many", "r0", "n");
        s.set_value("after", "x").unwrap();
    });
    assert!(pa.flush(LONG).unwrap());
    assert!(durable.lock().unwrap().len() >= 2);
    pa.destroy();

    let b = MergeableStore::new(Some("b"));
    let pb = persister(&b, &room);
    assert!(pb.load().unwrap());
    assert_eq!(b.get_mergeable_content_hashes(), a.get_mergeable_content_hashes());
    assert_eq!(b.get_encoded_mergeable_content_json(), a.get_encoded_mergeable_content_json(), "order, stamps and hashes");
}

#[test]
fn two_persisters_of_one_room_converge() {
    // Two server processes sharing a room: each auto-loads and auto-saves.
    let room = pg::unique_room("converge");
    let a = MergeableStore::new(Some("a"));
    let b = MergeableStore::new(Some("b"));
    a.set_value("from_a_before", 1.0).unwrap();
    b.set_value("from_b_before", 2.0).unwrap();
    let pa = persister(&a, &room);
    let pb = persister(&b, &room);
    for p in [&pa, &pb] {
        p.start_auto_load().unwrap();
        p.start_auto_save().unwrap();
    }
    for i in 0..20 {
        a.set_cell("t", &format!("a{i}"), "n", i as f64).unwrap();
        b.set_cell("t", &format!("b{i}"), "n", i as f64).unwrap();
        // Both write the same cell: the later stamp wins everywhere.
        a.set_cell("t", "shared", "by", "a").unwrap();
        b.set_cell("t", "shared", "by", "b").unwrap();
    }
    wait_until("both stores to hold the same content", || {
        a.get_mergeable_content_hashes() == b.get_mergeable_content_hashes() && b.get_value("from_a_before").is_some() && a.get_value("from_b_before").is_some()
    });
    assert!(pa.flush(LONG).unwrap() && pb.flush(LONG).unwrap());
    pa.destroy();
    pb.destroy();
    let c = MergeableStore::new(Some("c"));
    assert!(persister(&c, &room).load().unwrap());
    assert_eq!(c.get_mergeable_content_hashes(), a.get_mergeable_content_hashes(), "the database holds the converged content");
    assert_eq!(c.get_row_ids("t").len(), 41);
}

#[test]
fn a_corrupted_row_is_refused_kept_and_moved_aside_on_request() {
    let room = pg::unique_room("persister-corrupt");
    let a = MergeableStore::new(Some("a"));
    pets(&a);
    persister(&a, &room).save().unwrap();
    let quoted = room.replace('\'', "''");
    sql(&format!("UPDATE tinybase_values SET value = 'false' WHERE room = '{quoted}'"));

    let b = MergeableStore::new(Some("b"));
    b.set_value("own", 1.0).unwrap();
    let before = b.get_mergeable_content_hashes();
    let pb = persister(&b, &room);
    assert!(matches!(pb.load(), Err(Error::Corrupt(_))));
    assert_eq!(b.get_mergeable_content_hashes(), before, "the store is untouched");
    match pb.save() {
        Err(Error::InvalidState(m)) => assert!(m.contains("move_aside_unreadable"), "{m}"),
        other => panic!("saving over unreadable rows must be refused: {other:?}"),
    }
    assert!(pb.start_auto_save().is_err());
    assert!(matches!(connect(&room).read(true), Err(Error::Corrupt(_))), "the rows are kept as they were");

    let moved = pb.move_aside_unreadable().unwrap().expect("moved");
    assert!(moved.contains(".corrupt-"), "{moved}");
    pb.save().unwrap();
    let c = MergeableStore::new(Some("c"));
    assert!(persister(&c, &room).load().unwrap());
    assert_eq!(c.get_mergeable_content_hashes(), b.get_mergeable_content_hashes());
}

#[test]
fn persisting_while_synchronizing() {
    // The server's case: a store synchronized with clients and persisted at once; what the
    // clients write reaches the database, and a restarted server gets it back.
    let room = pg::unique_room("sync");
    let server = MergeableStore::new(Some("server"));
    let client = MergeableStore::new(Some("client"));
    let p = persister(&server, &room);
    p.start_auto_load().unwrap();
    p.start_auto_save().unwrap();
    let bus = LocalBus::new();
    let ss = bus.create_synchronizer(&server, None);
    let sc = bus.create_synchronizer(&client, None);
    ss.start_sync(None);
    sc.start_sync(None);
    for i in 0..30 {
        client.set_cell("notes", &format!("n{i}"), "text", format!("note {i}")).unwrap();
        server.set_value("seen", i as f64).unwrap();
    }
    assert!(bus.wait_for_idle(LONG));
    wait_until("the stores to converge", || server.get_mergeable_content_hashes() == client.get_mergeable_content_hashes());
    assert!(p.flush(LONG).unwrap());
    ss.destroy();
    sc.destroy();
    p.destroy();

    let restarted = MergeableStore::new(Some("restarted"));
    assert!(persister(&restarted, &room).load().unwrap());
    assert_eq!(restarted.get_mergeable_content_hashes(), client.get_mergeable_content_hashes());
    assert_eq!(restarted.get_cell("notes", "n29", "text"), Some("note 29".into()));
}

#[test]
fn a_lost_connection_is_an_error_then_reconnects() {
    // A server restart or a network cut: the storage reports the failure once and connects
    // again on its next use instead of failing for good.
    let room = pg::unique_room("reconnect");
    let name = room.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    let dsn = format!("{} application_name={name}", pg::dsn());
    let mut storage = PostgresStorage::connect(&dsn, &room).unwrap();
    let a = MergeableStore::new(Some("a"));
    let changes = record_changes(&a);
    a.set_value("v", 1.0).unwrap();
    storage.write_changes(&take(&changes)[0]).unwrap();
    sql(&format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{name}'"));
    a.set_value("v", 2.0).unwrap();
    let c = take(&changes).pop().unwrap();
    let first = storage.write_changes(&c);
    if let Err(e) = &first {
        assert!(matches!(e, Error::Io(_)), "{e:?}");
        storage.write_changes(&c).expect("written once connected again");
    }
    assert_eq!(load(&mut storage).get_value("v"), Some(2.0.into()));
}

/// Save/load of 10k and 100k cells and one-cell write latency at 100k (figures printed; run
/// with --nocapture).
#[test]
fn speed() {
    for &cells in &[10_000usize, 100_000] {
        let room = pg::unique_room(&format!("speed{cells}"));
        let mut storage = connect(&room);
        let s = MergeableStore::new(Some("s"));
        s.transaction(|s| {
            for i in 0..cells {
                s.set_cell(&format!("t{}", i % 10), &format!("r{}", i / 10), "c", i as f64).unwrap();
            }
        });
        let content = Content::Mergeable(s.get_encoded_mergeable_content_json());
        let started = Instant::now();
        storage.write(&content).unwrap();
        let save = started.elapsed();
        let started = Instant::now();
        let loaded = load(&mut connect(&room));
        let load_time = started.elapsed();
        assert_eq!(loaded.get_mergeable_content_hashes(), s.get_mergeable_content_hashes());
        println!("postgres {cells} cells: save {:.0} ms, load {:.0} ms", save.as_secs_f64() * 1e3, load_time.as_secs_f64() * 1e3);
        if cells == 100_000 {
            let changes = record_changes(&s);
            let mut latencies = Vec::new();
            for i in 0..300 {
                s.set_cell("t3", &format!("r{}", i * 17 % 10_000), "c", -(i as f64)).unwrap();
                let c = take(&changes).pop().unwrap();
                let started = Instant::now();
                storage.write_changes(&c).unwrap();
                latencies.push(started.elapsed());
            }
            latencies.sort();
            let p = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)].as_secs_f64() * 1e3;
            println!("postgres one-cell write at {cells} cells: p50 {:.2} ms, p99 {:.2} ms", p(0.5), p(0.99));
            assert_eq!(load(&mut connect(&room)).get_mergeable_content_hashes(), s.get_mergeable_content_hashes());
        }
        // The big rooms are not left behind when TB_TEST_POSTGRES_DSN names a lasting database.
        let quoted = room.replace('\'', "''");
        sql(&format!(
            "DELETE FROM tinybase_cells WHERE room = '{quoted}'; DELETE FROM tinybase_values WHERE room = '{quoted}'; \
             DELETE FROM tinybase_containers WHERE room = '{quoted}'; DELETE FROM tinybase_meta WHERE room = '{quoted}';"
        ));
    }
}
