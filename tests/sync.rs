//! Synchronizers: convergence over the local bus, named channels and custom transports with
//! faults; message validation; no echo.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tinybase::sync::local::{BroadcastChannel, LocalBus};
use tinybase::sync::{Synchronizer, SynchronizerOptions, Transport};
use tinybase::{Cell, MergeableStore};

const WAIT: Duration = Duration::from_secs(10);

/// Local-bus options with a request timeout that survives a busy test machine (TinyBase's local
/// default is 10 ms).
fn robust() -> Option<SynchronizerOptions> {
    Some(SynchronizerOptions { request_timeout: Duration::from_millis(500), ..Default::default() })
}

fn store(id: &str) -> MergeableStore {
    MergeableStore::new(Some(id))
}

fn same(a: &MergeableStore, b: &MergeableStore) -> bool {
    a.get_mergeable_content_hashes() == b.get_mergeable_content_hashes() && a.get_content() == b.get_content()
}

#[test]
fn a_store_and_an_empty_one_converge_on_a_local_bus() {
    let (a, b) = (store("a"), store("b"));
    a.set_json(r#"[{"pets":{"fido":{"species":"dog","tags":["good"]},"felix":{"species":"cat"}}},{"open":true}]"#).unwrap();
    let bus = LocalBus::new();
    let sa = bus.create_synchronizer(&a, robust());
    let sb = bus.create_synchronizer(&b, robust());
    sa.start_sync(None);
    sb.start_sync(None);
    assert!(bus.wait_for_idle(WAIT));
    assert!(same(&a, &b));
    assert_eq!(b.get_cell("pets", "fido", "tags"), Some(Cell::Array(vec![serde_json::json!("good")])));
    // Steady state: each local transaction is one ContentDiff, applied directly.
    let before = sb.get_synchronizer_stats().receives;
    a.set_cell("pets", "rex", "species", "dog").unwrap();
    assert!(bus.wait_for_idle(WAIT));
    assert_eq!(b.get_cell("pets", "rex", "species"), Some(Cell::from("dog")));
    assert_eq!(sb.get_synchronizer_stats().receives, before + 1);
    // Changes received are not echoed back.
    assert!(sa.get_synchronizer_stats().receives >= 1);
}

#[test]
fn concurrent_conflicting_edits_and_deletions_converge() {
    let (a, b) = (store("a"), store("b"));
    a.set_cell("t", "r", "x", 1).unwrap();
    b.set_cell("t", "r", "x", 2).unwrap();
    b.set_cell("t", "q", "y", "b").unwrap();
    a.set_value("v", "a").unwrap();
    let bus = LocalBus::new();
    let sa = bus.create_synchronizer(&a, robust());
    let sb = bus.create_synchronizer(&b, robust());
    sa.start_sync(None);
    sb.start_sync(None);
    assert!(bus.wait_for_idle(WAIT));
    assert!(same(&a, &b));
    a.del_row("t", "q");
    b.set_cell("t", "r", "x", 3).unwrap();
    a.set_cell_json("t", "o", "obj", r#"{"b":1,"a":2}"#).unwrap();
    assert!(bus.wait_for_idle(WAIT));
    assert!(same(&a, &b));
    assert!(!b.has_row("t", "q"));
    assert_eq!(a.get_mergeable_content_hashes(), a.compute_content_hashes());
}

#[test]
fn three_peers_on_a_named_channel_converge() {
    let stores: Vec<MergeableStore> = (0..3).map(|i| store(&format!("p{i}"))).collect();
    let channel = format!("test-{}", std::process::id());
    let syncs: Vec<_> = stores
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.set_cell("t", &format!("r{i}"), "n", i as f64).unwrap();
            // A generous timeout: this machine may be busy (TinyBase's 10 ms is the default).
            let options = SynchronizerOptions { request_timeout: Duration::from_millis(500), ..Default::default() };
            BroadcastChannel::open(&channel).create_synchronizer(s, Some(options))
        })
        .collect();
    // Peers join one after the other, each once the others have settled (as in TinyBase, a
    // peer that joins while two others are still pulling from each other can miss data that
    // only a later ContentHashes, or anti-entropy, brings).
    let bus = BroadcastChannel::open(&channel);
    for s in &syncs {
        s.start_sync(None);
        assert!(bus.wait_for_idle(WAIT));
    }
    stores[1].set_value("late", true).unwrap();
    assert!(bus.wait_for_idle(WAIT));
    for s in &stores[1..] {
        assert!(same(&stores[0], s), "{} vs {}", stores[0].get_json(), s.get_json());
    }
    assert_eq!(stores[0].get_row_count("t"), 3);
}

/// A transport between two synchronizers that can drop or duplicate messages.
struct Faulty {
    peer: Mutex<Option<Arc<Synchronizer>>>,
    me: String,
    count: AtomicUsize,
    drop_every: usize,
}

impl Transport for Faulty {
    fn send(&self, _to: Option<&str>, payload: &str) {
        let n = self.count.fetch_add(1, Ordering::Relaxed);
        if self.drop_every > 0 && n % self.drop_every == self.drop_every - 1 {
            return;
        }
        if let Some(peer) = self.peer.lock().unwrap().clone() {
            peer.receive(&self.me, payload).unwrap();
            if n.is_multiple_of(5) {
                peer.receive(&self.me, payload).unwrap(); // duplicated
            }
        }
    }
}

#[test]
fn lossy_links_converge_with_anti_entropy() {
    let (a, b) = (store("a"), store("b"));
    let options = SynchronizerOptions {
        request_timeout: Duration::from_millis(50),
        anti_entropy: Some(Duration::from_millis(30)),
        ..Default::default()
    };
    let ta = Arc::new(Faulty { peer: Mutex::new(None), me: "a".into(), count: AtomicUsize::new(0), drop_every: 3 });
    let tb = Arc::new(Faulty { peer: Mutex::new(None), me: "b".into(), count: AtomicUsize::new(0), drop_every: 4 });
    let sa = Arc::new(Synchronizer::new(&a, ta.clone(), options.clone()));
    let sb = Arc::new(Synchronizer::new(&b, tb.clone(), options));
    *ta.peer.lock().unwrap() = Some(sb.clone());
    *tb.peer.lock().unwrap() = Some(sa.clone());
    for i in 0..20 {
        a.set_cell("t", &format!("a{i}"), "n", i as f64).unwrap();
        b.set_cell("t", &format!("b{i}"), "n", i as f64).unwrap();
    }
    sa.start_sync(None);
    sb.start_sync(None);
    for i in 0..20 {
        a.set_value(&format!("va{i}"), i as f64).unwrap();
        b.del_cell("t", &format!("b{i}"), "n");
    }
    // Drops fall on fixed positions of each side's message count, so a repair can miss several
    // anti-entropy rounds in a row before the counts shift: 100 runs here took 0.4 s (median),
    // 2.9 s (p90) and 6.1 s at most, which a 4 s bound failed a few times in a hundred.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let converged = loop {
        std::thread::sleep(Duration::from_millis(10));
        if same(&a, &b) {
            break true;
        }
        if std::time::Instant::now() > deadline {
            break false;
        }
    };
    assert!(converged, "peers did not converge after faults in 30 s");
    *ta.peer.lock().unwrap() = None;
    *tb.peer.lock().unwrap() = None;
    sa.destroy();
    sb.destroy();
}

#[test]
fn malformed_messages_are_ignored_and_reported() {
    let a = store("a");
    a.set_cell("t", "r", "c", 1).unwrap();
    let errors = Arc::new(Mutex::new(Vec::new()));
    let e2 = errors.clone();
    struct Null;
    impl Transport for Null {
        fn send(&self, _: Option<&str>, _: &str) {}
    }
    let options = SynchronizerOptions { on_ignored_error: Some(Arc::new(move |e: &str| e2.lock().unwrap().push(e.to_string()))), ..Default::default() };
    let s = Synchronizer::new(&a, Arc::new(Null), options);
    s.start_auto_load(None);
    let before = a.get_encoded_mergeable_content_json();
    for bad in [
        "not json",
        "[1,1,\"\"]",
        "[\"x\",9,\"\"]",
        "[\"x\",3,[[{\"t\":[{\"r\":[{\"c\":[2,\"NjEtLV-----6YM_I\",123]}]}]}],[{}],1]]",
        "[\"x\",2,[1]]",
        &format!("[\"x\",3,\"{}\"]", "a".repeat(1000)),
    ] {
        s.receive("evil", bad).unwrap();
    }
    assert!(s.wait_for_idle(WAIT));
    assert_eq!(a.get_encoded_mergeable_content_json(), before);
    assert_eq!(errors.lock().unwrap().iter().filter(|e| e.as_str() == "tinybase:14").count(), 6);
    // A valid ContentDiff with a far-future HLC passes the message check but is refused whole.
    s.receive("evil", "[\"x\",3,[[{\"t\":[{\"r\":[{\"c\":[2,\"zzzzzzz----6YM_I\"]}]}]}],[{}],1]]").unwrap();
    assert!(s.wait_for_idle(WAIT));
    assert_eq!(a.get_encoded_mergeable_content_json(), before);
    assert_eq!(s.get_synchronizer_stats().receives, 1);
}

#[test]
fn status_callback_reports_syncing_idle_and_errors() {
    use tinybase::sync::{SyncState, SyncStatus};
    let states = Arc::new(Mutex::new(Vec::new()));
    let s2 = states.clone();
    let options = SynchronizerOptions {
        request_timeout: Duration::from_millis(30),
        on_status: Some(Arc::new(move |s: &SyncStatus| s2.lock().unwrap().push(s.state))),
        ..Default::default()
    };
    let (a, b) = (store("a"), store("b"));
    a.set_cell("t", "r", "c", 1).unwrap();
    let bus = LocalBus::new();
    // Alone on the bus: the initial GetContentHashes times out.
    let sa = bus.create_synchronizer(&a, Some(options.clone()));
    sa.start_sync(None);
    assert!(bus.wait_for_idle(WAIT));
    assert_eq!(*states.lock().unwrap(), vec![SyncState::Syncing, SyncState::Error]);
    states.lock().unwrap().clear();
    let sb = bus.create_synchronizer(&b, robust());
    sb.start_sync(None);
    assert!(bus.wait_for_idle(WAIT));
    assert!(same(&a, &b));
    // A answered B and then pulled from B: a successful exchange clears the error.
    let seen = states.lock().unwrap().clone();
    assert_eq!(seen.last(), Some(&SyncState::Idle), "{seen:?}");
}

#[test]
fn concurrent_writers_on_both_sides_lose_nothing_without_anti_entropy() {
    let (a, b) = (store("a"), store("b"));
    let bus = LocalBus::new();
    let options = || Some(SynchronizerOptions { request_timeout: Duration::from_millis(500), ..Default::default() });
    let (sa, sb) = (bus.create_synchronizer(&a, options()), bus.create_synchronizer(&b, options()));
    sa.start_sync(None);
    sb.start_sync(None);
    assert!(bus.wait_for_idle(WAIT));
    std::thread::scope(|s| {
        for (st, tag) in [(&a, "a"), (&b, "b")] {
            s.spawn(move || {
                for i in 0..300 {
                    st.set_cell("t", &format!("{tag}{i}"), "c", i as f64).unwrap();
                }
            });
        }
    });
    assert!(bus.wait_for_idle(WAIT));
    assert_eq!(a.get_row_count("t"), 600);
    assert_eq!(b.get_row_count("t"), 600);
    assert!(same(&a, &b));
    drop((sa, sb));
}

/// As TinyBase's startSync (checked in node): with nobody answering, the initial content
/// becomes the store's and is announced by the save's ContentHashes only. No ContentDiff
/// follows it, so the messages sent are settled once start_sync returns.
#[test]
fn start_sync_initial_content_is_announced_by_hashes_not_a_diff() {
    struct Record(Mutex<Vec<String>>);
    impl Transport for Record {
        fn send(&self, _: Option<&str>, payload: &str) {
            self.0.lock().unwrap().push(payload.to_string());
        }
    }
    let kinds = |r: &Record| -> Vec<u64> {
        r.0.lock().unwrap().iter().map(|p| serde_json::from_str::<serde_json::Value>(p).unwrap()[1].as_u64().unwrap()).collect()
    };
    let a = store("a");
    let sent = Arc::new(Record(Mutex::new(Vec::new())));
    let s = Synchronizer::new(&a, sent.clone(), SynchronizerOptions { request_timeout: Duration::from_millis(20), ..Default::default() });
    s.start_sync(Some(r#"[{"pets":{"fido":{"species":"dog"}}},{"open":true}]"#));
    assert_eq!(a.get_cell("pets", "fido", "species"), Some(Cell::from("dog")));
    assert!(s.wait_for_idle(WAIT));
    assert_eq!(kinds(&sent), [1, 2], "GetContentHashes, then ContentHashes");
    s.save();
    assert_eq!(kinds(&sent), [1, 2, 2]);
    a.set_cell("pets", "fido", "legs", 4).unwrap();
    assert!(s.wait_for_idle(WAIT));
    assert_eq!(kinds(&sent), [1, 2, 2, 3], "a local change is a ContentDiff");
    // With auto-save already on, a load's default content is announced when the load ends.
    let b = store("b");
    let sent_b = Arc::new(Record(Mutex::new(Vec::new())));
    let sb = Synchronizer::new(&b, sent_b.clone(), SynchronizerOptions { request_timeout: Duration::from_millis(20), ..Default::default() });
    sb.start_auto_save();
    sb.load(Some(r#"[{"t":{"r":{"c":1}}},{}]"#));
    assert!(sb.wait_for_idle(WAIT));
    assert_eq!(kinds(&sent_b), [2, 1, 2]);
    assert_eq!(b.get_cell("t", "r", "c"), Some(Cell::from(1)));
    s.destroy();
    sb.destroy();
}
