//! Synchronizers under adverse timing: local writes that land inside loads, peers that drop
//! their own announcements (as TinyBase does while loading), destroy racing the worker, floods.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};
use tinybase::sync::message::Message;
use tinybase::sync::{wait_until, Status, Synchronizer, SynchronizerOptions, Transport};
use tinybase::Error;
use tinybase::MergeableStore;

const WAIT: Duration = Duration::from_secs(20);

/// A link to one peer that delivers each payload `delay` after it was sent, in order, on a
/// thread of its own.
struct Delayed {
    me: String,
    peer: Mutex<Weak<Synchronizer>>,
    queue: Mutex<Option<mpsc::Sender<(Instant, String)>>>,
    in_flight: Arc<AtomicUsize>,
    /// Drop our own ContentHashes and ContentDiff messages (what TinyBase does while loading).
    mute_announcements: AtomicBool,
    sent: AtomicUsize,
    /// While true, `send` blocks (the worker is held up); `held` tells that it is waiting.
    gate: Mutex<bool>,
    opened: Condvar,
    held: AtomicBool,
}

impl Delayed {
    fn new(me: &str, delay: Duration) -> Arc<Delayed> {
        let (tx, rx) = mpsc::channel::<(Instant, String)>();
        let link = Arc::new(Delayed {
            me: me.to_string(),
            peer: Mutex::new(Weak::new()),
            queue: Mutex::new(Some(tx)),
            in_flight: Arc::new(AtomicUsize::new(0)),
            mute_announcements: AtomicBool::new(false),
            sent: AtomicUsize::new(0),
            gate: Mutex::new(false),
            opened: Condvar::new(),
            held: AtomicBool::new(false),
        });
        let weak = Arc::downgrade(&link);
        let in_flight = link.in_flight.clone();
        std::thread::spawn(move || {
            for (sent_at, payload) in rx {
                let due = sent_at + delay;
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
                if let Some(link) = weak.upgrade() {
                    let peer = link.peer.lock().unwrap().upgrade();
                    if let Some(peer) = peer {
                        peer.receive(&link.me, &payload).unwrap();
                    }
                }
                in_flight.fetch_sub(1, Ordering::AcqRel);
            }
        });
        link
    }

    fn idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    fn hold(&self, closed: bool) {
        *self.gate.lock().unwrap() = closed;
        self.opened.notify_all();
    }
}

fn message_of(payload: &str) -> Option<u8> {
    let parsed: serde_json::Value = serde_json::from_str(payload).ok()?;
    parsed.get(1)?.as_u64().map(|m| m as u8)
}

impl Transport for Delayed {
    fn send(&self, _to: Option<&str>, payload: &str) {
        let mut closed = self.gate.lock().unwrap();
        while *closed {
            self.held.store(true, Ordering::Release);
            closed = self.opened.wait(closed).unwrap();
        }
        self.held.store(false, Ordering::Release);
        drop(closed);
        self.sent.fetch_add(1, Ordering::AcqRel);
        let announcement = matches!(message_of(payload), Some(m) if m == Message::ContentHashes as u8 || m == Message::ContentDiff as u8);
        if announcement && self.mute_announcements.load(Ordering::Acquire) {
            return;
        }
        if let Some(queue) = &*self.queue.lock().unwrap() {
            self.in_flight.fetch_add(1, Ordering::AcqRel);
            if queue.send((Instant::now(), payload.to_string())).is_err() {
                self.in_flight.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
    fn destroy(&self) {
        self.queue.lock().unwrap().take();
    }
}

struct Pair {
    a: MergeableStore,
    b: MergeableStore,
    sa: Arc<Synchronizer>,
    sb: Arc<Synchronizer>,
    la: Arc<Delayed>,
    lb: Arc<Delayed>,
}

impl Pair {
    fn new(delay: Duration, options_a: SynchronizerOptions, options_b: SynchronizerOptions) -> Pair {
        let (a, b) = (MergeableStore::new(Some("a")), MergeableStore::new(Some("b")));
        let (la, lb) = (Delayed::new("a", delay), Delayed::new("b", delay));
        let sa = Arc::new(Synchronizer::new(&a, la.clone(), options_a));
        let sb = Arc::new(Synchronizer::new(&b, lb.clone(), options_b));
        *la.peer.lock().unwrap() = Arc::downgrade(&sb);
        *lb.peer.lock().unwrap() = Arc::downgrade(&sa);
        Pair { a, b, sa, sb, la, lb }
    }

    fn start(&self) {
        let (x, y) = (self.sa.start_sync_async(None), self.sb.start_sync_async(None));
        x.recv().unwrap();
        y.recv().unwrap();
        assert!(self.settle());
    }

    /// Both synchronizers idle and nothing on the wire, for a while.
    fn settle(&self) -> bool {
        wait_until(WAIT, || self.sa.is_idle() && self.sb.is_idle() && self.la.idle() && self.lb.idle())
    }

    fn same(&self) -> bool {
        self.a.get_mergeable_content_hashes() == self.b.get_mergeable_content_hashes() && self.a.get_content() == self.b.get_content()
    }
}

fn options() -> SynchronizerOptions {
    SynchronizerOptions { request_timeout: Duration::from_secs(5), ..Default::default() }
}

/// Waits until `s` is loading (its pull in flight).
fn until_loading(s: &Synchronizer) {
    assert!(wait_until(WAIT, || s.get_status() == Status::Loading), "the load never started");
}

#[test]
fn writes_inside_loads_are_sent_once_the_load_ends_without_anti_entropy() {
    // 40 ms each way: a load's pull is in flight for at least 80 ms.
    let pair = Pair::new(Duration::from_millis(40), options(), options());
    pair.start();
    for round in 0..3 {
        for (sync, store, tag) in [(&pair.sa, &pair.a, "a"), (&pair.sb, &pair.b, "b")] {
            let loaded = sync.load_async(None);
            until_loading(sync);
            // Another thread writes while the load's pull is in flight.
            std::thread::scope(|s| {
                s.spawn(|| {
                    store.set_cell("t", &format!("{tag}{round}"), "n", round as f64).unwrap();
                    store.set_value(&format!("{tag}{round}"), true).unwrap();
                });
            });
            assert_eq!(sync.get_status(), Status::Loading, "the write did not land inside the load");
            loaded.recv().unwrap();
        }
    }
    assert!(pair.settle());
    assert!(pair.same(), "not converged:\n{}\n{}", pair.a.get_json(), pair.b.get_json());
    assert_eq!(pair.a.get_row_count("t"), 6);
    assert_eq!(pair.b.get_value_ids().len(), 6);
}

/// Polls `done` for up to `WAIT`.
fn eventually(done: impl Fn() -> bool) -> bool {
    let end = Instant::now() + WAIT;
    while Instant::now() < end {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn anti_entropy_pulls_what_a_peer_never_sent() {
    // B drops its own ContentHashes and ContentDiff messages, as a TinyBase peer drops what it
    // commits while loading; it answers requests. Anti-entropy is on at A only.
    let with_anti_entropy = SynchronizerOptions { anti_entropy: Some(Duration::from_millis(100)), ..options() };
    let pair = Pair::new(Duration::from_millis(5), with_anti_entropy, options());
    pair.lb.mute_announcements.store(true, Ordering::Release);
    pair.start();
    for i in 0..5 {
        pair.b.set_cell("t", &format!("b{i}"), "n", i as f64).unwrap();
        pair.b.set_value(&format!("b{i}"), i as f64).unwrap();
        std::thread::sleep(Duration::from_millis(30));
    }
    pair.a.set_cell("t", "a", "n", 1.0).unwrap();
    assert!(eventually(|| pair.same()), "not repaired:\n{}\n{}", pair.a.get_json(), pair.b.get_json());
    assert_eq!(pair.a.get_row_count("t"), 6);
}

/// Destroys `sync` and returns how many payloads its link was handed meanwhile.
fn sends_during_destroy(sync: &Synchronizer, link: &Delayed) -> usize {
    let before = link.sent.load(Ordering::Acquire);
    sync.destroy();
    link.sent.load(Ordering::Acquire) - before
}

#[test]
fn destroy_never_sends_and_ends_idle() {
    // A load in flight (a write inside it waits for the load's end) when destroy begins: the
    // failed load must neither announce nor retry.
    let pair = Pair::new(Duration::from_millis(200), options(), options());
    pair.start();
    let loaded = pair.sa.load_async(None);
    until_loading(&pair.sa);
    pair.a.set_cell("t", "inside", "n", 1.0).unwrap();
    assert!(wait_until(WAIT, || pair.sa.is_settled()));
    assert_eq!(sends_during_destroy(&pair.sa, &pair.la), 0);
    assert_eq!(pair.sa.get_status(), Status::Idle);
    loaded.recv().unwrap();

    // A pull answering a peer's ContentHashes in flight: failing it must not start a load.
    let pair = Pair::new(Duration::from_millis(200), options(), options());
    pair.start();
    pair.lb.mute_announcements.store(true, Ordering::Release);
    pair.b.set_cell("t", "missed", "n", 1.0).unwrap();
    assert!(wait_until(WAIT, || pair.sb.is_settled()));
    pair.lb.mute_announcements.store(false, Ordering::Release);
    let sent = pair.la.sent.load(Ordering::Acquire);
    pair.sb.save();
    // A has received the ContentHashes and asked B for its table diff.
    assert!(wait_until(WAIT, || pair.la.sent.load(Ordering::Acquire) > sent && pair.sa.is_settled()));
    assert!(!pair.sa.is_idle(), "the pull is not in flight");
    assert_eq!(sends_during_destroy(&pair.sa, &pair.la), 0);
    assert_eq!(pair.sa.get_status(), Status::Idle);
}

#[test]
fn destroy_from_a_store_listener_on_the_worker_thread() {
    // The options' hooks hold `marker`: the worker drops them when it exits.
    let marker = Arc::new(());
    let m = marker.clone();
    let options_a = SynchronizerOptions { on_ignored_error: Some(Arc::new(move |_: &str| drop(m.clone()))), ..options() };
    let pair = Pair::new(Duration::from_millis(1), options_a, options());
    pair.start();
    let sent_at_destroy = Arc::new(AtomicUsize::new(usize::MAX));
    let (weak, link, at) = (Arc::downgrade(&pair.sa), pair.la.clone(), sent_at_destroy.clone());
    pair.a.add_tables_listener(move |_| {
        if std::thread::current().name() != Some("tinybase-sync") {
            return;
        }
        if let Some(sync) = weak.upgrade() {
            // A request queued before the destroy: never answered once destroy has begun.
            sync.receive("b", r#"["q",1,""]"#).unwrap();
            at.store(link.sent.load(Ordering::Acquire), Ordering::Release);
            sync.destroy();
        }
    });
    pair.b.set_cell("t", "r", "c", 1.0).unwrap();
    assert!(eventually(|| Arc::strong_count(&marker) == 1), "the worker never exited");
    assert_ne!(sent_at_destroy.load(Ordering::Acquire), usize::MAX, "the listener did not run on the worker");
    assert_eq!(pair.la.sent.load(Ordering::Acquire), sent_at_destroy.load(Ordering::Acquire), "sent after destroy began");
    assert_eq!(pair.sa.get_status(), Status::Idle);
    assert!(pair.la.queue.lock().unwrap().is_none(), "the transport was not destroyed");
}

#[test]
fn a_flood_is_refused_beyond_the_inbox_bounds_and_repaired() {
    const PAYLOAD: usize = 1_400_000;
    const MAX_BYTES: usize = 16 << 20;
    let errors = Arc::new(Mutex::new(Vec::new()));
    let e = errors.clone();
    let options_a = SynchronizerOptions {
        anti_entropy: Some(Duration::from_millis(200)),
        inbox_max_bytes: MAX_BYTES,
        on_ignored_error: Some(Arc::new(move |error: &str| e.lock().unwrap().push(error.to_string()))),
        ..options()
    };
    let pair = Pair::new(Duration::from_millis(1), options_a, options());
    pair.start();
    // Hold A's worker inside its transport's send.
    pair.la.hold(true);
    let sa = pair.sa.clone();
    let saving = std::thread::spawn(move || sa.save());
    assert!(wait_until(WAIT, || pair.la.held.load(Ordering::Acquire)));
    let started = Instant::now();
    let (mut accepted, mut refused, mut most) = (0, 0, 0);
    for i in 0..300 {
        let big = "x".repeat(PAYLOAD);
        let payload = format!(r#"["f{i}",3,[[{{"big":[{{"r{i}":[{{"c":["{big}","NjEtLV-----6YM_I"]}}]}}]}}],[{{}}],1]]"#);
        match pair.sa.receive("b", &payload) {
            Ok(()) => accepted += 1,
            Err(Error::InvalidState(m)) => {
                assert!(m.starts_with("tinybase:15:inbox"), "{m}");
                refused += 1;
            }
            Err(other) => panic!("{other}"),
        }
        most = most.max(pair.sa.get_inbox_stats().queued_bytes);
    }
    assert!(started.elapsed() < Duration::from_secs(10), "receive blocked");
    assert!(most <= MAX_BYTES, "{most} bytes queued");
    assert!(accepted >= 10 && refused > 250, "accepted {accepted}, refused {refused}");
    let stats = pair.sa.get_inbox_stats();
    assert_eq!((stats.queued_payloads, stats.refused_payloads), (accepted, refused as u64));
    // Released: the worker drains its inbox, reports the refusals, and anti-entropy brings
    // what it applied to B.
    pair.la.hold(false);
    saving.join().unwrap();
    assert!(eventually(|| pair.a.get_row_count("big") == accepted && pair.same()), "not converged after the flood: {:?}", errors.lock().unwrap().iter().map(|e| e.chars().take(120).collect::<String>()).collect::<Vec<_>>());
    assert_eq!(pair.b.get_row_count("big"), accepted);
    // Anti-entropy traffic keeps coming: the inbox empties between its rounds.
    assert!(eventually(|| pair.sa.get_inbox_stats().queued_bytes == 0));
    assert!(errors.lock().unwrap().iter().any(|e| e == "tinybase:15:inbox"));
}

/// A transport that hands every payload to the test.
struct Scripted(Mutex<mpsc::Sender<String>>);

impl Transport for Scripted {
    fn send(&self, _to: Option<&str>, payload: &str) {
        let _ = self.0.lock().unwrap().send(payload.to_string());
    }
}

/// The request id of the next sent payload of type `message`.
fn next_request(sent: &mpsc::Receiver<String>, message: Message) -> String {
    loop {
        let payload = sent.recv_timeout(WAIT).expect("no request sent");
        let parsed: serde_json::Value = serde_json::from_str(&payload).unwrap();
        if parsed[1].as_u64() == Some(message as u64) {
            return parsed[0].as_str().unwrap().to_string();
        }
    }
}

#[test]
fn every_ignored_error_carries_its_tinybase_code() {
    let a = MergeableStore::new(Some("a"));
    a.set_cell("t", "r", "c", 1.0).unwrap();
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let e = errors.clone();
    let (tx, sent) = mpsc::channel();
    let options = SynchronizerOptions {
        request_timeout: Duration::from_secs(5),
        on_ignored_error: Some(Arc::new(move |error: &str| e.lock().unwrap().push(error.to_string()))),
        ..Default::default()
    };
    let sa = Synchronizer::new(&a, Arc::new(Scripted(Mutex::new(tx))), options);
    let last_error = |count: usize| {
        assert!(wait_until(WAIT, || errors.lock().unwrap().len() >= count), "no error reported: {:?}", errors.lock().unwrap());
        errors.lock().unwrap()[count - 1].clone()
    };
    // The initial load's GetContentHashes answered with a valid Response of another kind (a
    // values stamp); initial content that is no content.
    let started = sa.start_sync_async(Some("[1,2]"));
    let id = next_request(&sent, Message::GetContentHashes);
    sa.receive("b", &format!(r#"["{id}",0,[{{}}]]"#)).unwrap();
    started.recv().unwrap();
    assert!(last_error(1).starts_with("tinybase:14:response"), "{:?}", errors.lock().unwrap());
    assert!(last_error(2).starts_with("tinybase:1:"), "{:?}", errors.lock().unwrap());
    // Each announcement (values equal, tables not) makes A pull: its GetTableDiff is answered
    // with content hashes, a values stamp, then a table diff whose HLC is in the future.
    let responses = [r#"[1,2]"#, r#"[{}]"#, r#"[[{"t":[{"r":[{"c":[1,"zzzzzzz----6YM_I"]}]}]}],{}]"#];
    let mut seen = 2;
    for (i, response) in responses.iter().enumerate() {
        let (_, v) = a.get_mergeable_content_hashes();
        sa.receive("b", &format!(r#"["x{i}",2,[1,{v}]]"#)).unwrap();
        let id = next_request(&sent, Message::GetTableDiff);
        sa.receive("b", &format!(r#"["{id}",0,{response}]"#)).unwrap();
        seen += 1;
        let error = last_error(seen);
        let expected = if i == 2 { "tinybase:13:" } else { "tinybase:14:response" };
        assert!(error.starts_with(expected), "response {response}: {error}");
        if i < 2 {
            // A failed pull starts a load: answer its GetContentHashes with equal hashes.
            let id = next_request(&sent, Message::GetContentHashes);
            let (t, v) = a.get_mergeable_content_hashes();
            sa.receive("b", &format!(r#"["{id}",0,[{t},{v}]]"#)).unwrap();
        }
    }
    assert!(sa.wait_for_idle(WAIT));
    let errors = errors.lock().unwrap().clone();
    assert_eq!(errors.len(), seen, "{errors:?}");
    assert!(errors.iter().all(|e| e.starts_with("tinybase:")), "{errors:?}");
    assert_eq!(a.get_cell("t", "r", "c"), Some(tinybase::Cell::from(1.0)));
}
