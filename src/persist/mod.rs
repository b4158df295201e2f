//! Persistence: keeping a Store's or MergeableStore's content outside the process, TinyBase's
//! Persister API (`load`, `save`, `start_auto_load`, `start_auto_save`, status, stats, destroy)
//! over a [`Storage`]: a file ([`file`](mod@file), TinyBase's format), SQLite ([`sqlite`], TinyBase's
//! JSON layout or an incremental row-per-cell layout) or PostgreSQL ([`postgres`]).
//!
//! Beyond TinyBase (PROTOCOL.md 12.8): loading merges into the store instead of replacing it, the
//! hashes of loaded content are verified, and storage that could not be loaded is never written
//! over: the persister reports the error and refuses to save there until it loads successfully or
//! is told to move the unreadable data aside.

pub mod file;
#[cfg(feature = "postgres")]
pub mod pg;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod incremental;
pub mod sqlite;

use crate::error::{Error, Result};
use crate::mergeable::MergeableStore;
use crate::store::{CommitHookFns, ListenerId, Store};
use crate::value::parse_json;
use parking_lot::{Condvar, Mutex};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::{Duration, Instant};

/// What a persister is doing (TinyBase's `Status`: 0 idle, 1 loading, 2 saving).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PersisterStatus {
    /// Neither loading nor saving.
    Idle = 0,
    /// Loading.
    Loading = 1,
    /// Saving.
    Saving = 2,
}

/// TinyBase's `getStats`: how many loads and saves completed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PersisterStats {
    /// Loads that completed (including those that found nothing stored).
    pub loads: u64,
    /// Saves that completed (whole-content saves and incremental transaction writes).
    pub saves: u64,
}

/// What the durable callback is told: the store content that is now durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Durable {
    /// The MergeableStore's content hashes `[tablesHash, valuesHash]` of the content now durable
    /// (0, 0 for a plain Store).
    pub content_hashes: (u32, u32),
    /// Saves completed so far.
    pub saves: u64,
}

/// Called on the persister's thread each time content becomes durable (after a save or an
/// incremental write is synced or committed).
pub type DurableHook = Arc<dyn Fn(&Durable) + Send + Sync>;
/// Called with an error that auto-load or auto-save met and could not return (TinyBase's
/// `onIgnoredError`).
pub type PersistErrorHook = Arc<dyn Fn(&Error) + Send + Sync>;

/// Options of a persister.
#[derive(Clone)]
pub struct PersisterOptions {
    /// Called when content becomes durable.
    pub on_durable: Option<DurableHook>,
    /// Called for errors met by auto-load and auto-save.
    pub on_ignored_error: Option<PersistErrorHook>,
    /// How often auto-load checks the storage for another process's writes.
    pub auto_load_interval: Duration,
    /// How long a save waits for another process's write lock before failing with `Error::Io`.
    pub lock_timeout: Duration,
}

impl Default for PersisterOptions {
    fn default() -> Self {
        PersisterOptions {
            on_durable: None,
            on_ignored_error: None,
            auto_load_interval: Duration::from_millis(250),
            lock_timeout: Duration::from_secs(10),
        }
    }
}

/// Content as a storage holds it.
#[derive(Clone, Debug, PartialEq)]
pub enum Content {
    /// A MergeableStore's content in wire form with hashes (TinyBase's file format):
    /// `[[tables, hlc, hash], [values, hlc, hash]]`.
    Mergeable(String),
    /// A plain Store's content `[tables, values]` with object and array cells as U+FFFD-prefixed
    /// strings (`Store::get_json`), byte for byte what TinyBase's persisters write for a Store.
    Plain(String),
}

/// Where a persister keeps content. Implemented by the file, SQLite and PostgreSQL storages; a
/// persister calls it from one thread at a time (it is moved into the persister).
pub trait Storage: Send + 'static {
    /// Names the storage in errors and logs (`file /data/room.json`, `sqlite /x.db (json)`).
    fn describe(&self) -> String;
    /// Reads what is stored: `Ok(None)` when nothing is stored yet. Unreadable data is
    /// `Err(Error::Corrupt)`, a failure to read `Err(Error::Io)`.
    fn read(&mut self, mergeable: bool) -> Result<Option<Content>>;
    /// Replaces what is stored with `content`, durably (synced or committed) before returning.
    fn write(&mut self, content: &Content) -> Result<()>;
    /// Takes the cross-process write lock (waiting at most `timeout`) for a read-merge-write;
    /// `Err(Error::Io)` when another process holds it past the timeout.
    fn lock(&mut self, timeout: Duration) -> Result<()>;
    /// Releases the lock taken by [`Storage::lock`]. A storage may make the writes done under
    /// the lock one transaction that commits here (SQLite's `BEGIN IMMEDIATE` ... `COMMIT`): a
    /// save is durable once `unlock` returned `Ok`.
    fn unlock(&mut self) -> Result<()>;
    /// Whether the stored data changed since this storage last read or wrote it (another
    /// process wrote): cheap, polled by auto-load (a file's size/mtime/inode, SQLite's
    /// `data_version`, a version column).
    fn changed(&mut self) -> Result<bool>;
    /// Incremental storages write each committed transaction instead of the whole content.
    fn is_incremental(&self) -> bool {
        false
    }
    /// Incremental storages: writes one committed transaction, its mergeable changes in wire
    /// form with hashes at every level (`[[tables, hlc, hash], [values, hlc, hash], 1]`), as one
    /// database transaction, durably.
    fn write_changes(&mut self, changes: &str) -> Result<()> {
        let _ = changes;
        Err(Error::InvalidState(format!("{} is not incremental", self.describe())))
    }
    /// Moves unreadable stored data aside (a file renamed `<name>.corrupt`, a database row or
    /// file kept under another name) so that saving can start afresh; returns where it went.
    fn move_aside(&mut self) -> Result<String>;
}

/// TinyBase's Persister: loads a store's content from a [`Storage`] and saves it there.
/// `Send + Sync`; every method may be called from any thread. Dropping it destroys it.
pub struct Persister {
    inner: Arc<Inner>,
}

static NEXT_PERSISTER_ID: AtomicUsize = AtomicUsize::new(1);

thread_local! {
    /// The persisters whose own load is merging into a store on this thread: that merge must
    /// not come back to them as a change to save.
    static LOADING: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// Marks this thread as loading for one persister until dropped.
struct LoadingGuard(usize);

impl LoadingGuard {
    fn new(id: usize) -> LoadingGuard {
        LOADING.with(|l| l.borrow_mut().push(id));
        LoadingGuard(id)
    }
}

impl Drop for LoadingGuard {
    fn drop(&mut self) {
        let _ = LOADING.try_with(|l| {
            let mut l = l.borrow_mut();
            if let Some(i) = l.iter().rposition(|&id| id == self.0) {
                l.remove(i);
            }
        });
    }
}

fn is_loading(id: usize) -> bool {
    LOADING.try_with(|l| l.borrow().contains(&id)).unwrap_or(false)
}

struct Inner {
    id: usize,
    store: Store,
    mergeable: Option<MergeableStore>,
    incremental: bool,
    description: String,
    options: PersisterOptions,
    /// The storage, taken by whoever reads or writes it (explicit calls on their own thread, the
    /// persister thread for auto-load and auto-save): one at a time. None once destroyed.
    storage: Mutex<Option<Box<dyn Storage>>>,
    /// The thread using the storage, if any.
    storage_owner: Mutex<Option<ThreadId>>,
    state: Mutex<State>,
    changed: Condvar,
    status: AtomicU8,
    loads: AtomicU64,
    saves: AtomicU64,
}

/// Bookkeeping of auto-save and auto-load. Lock order: the store's lock, then this one (the
/// commit hook's `wants` takes it under the store's lock); never the store while holding it.
#[derive(Default)]
struct State {
    destroyed: bool,
    auto_load: bool,
    auto_save: bool,
    thread: Option<JoinHandle<()>>,
    thread_id: Option<ThreadId>,
    hook: Option<u64>,
    listener: Option<ListenerId>,
    /// Every transaction numbered up to this one is durable or was not the persister's to save
    /// (its own loads' merges). MergeableStore: the store's commit numbers; plain Store: the
    /// persister's own count of transactions.
    durable: u64,
    /// The highest transaction number auto-save was told of.
    received: u64,
    /// Incremental storages: transactions waiting to be written, by number.
    queue: BTreeMap<u64, String>,
    /// Commit numbers of the persister's own loads' merges (never saved for themselves).
    skipped: BTreeSet<u64>,
    /// The number the commit in progress takes if it is numbered at all: known only at the
    /// next `wants` call (see `Inner::wants`).
    pending_skip: Option<u64>,
    /// A merge-load left the store holding more than the storage: one whole save is due.
    resave: bool,
    /// MergeableStore, whole-content storage: the content hashes last written (or loaded and
    /// equal to the store's). A merge can add stamps without any transaction changes (the
    /// deletion of a cell the store never had), so no commit hook tells of it; the store's
    /// hashes do.
    written: Option<(u32, u32)>,
    /// When the persister thread next compares the store's hashes with `written`.
    next_check: Option<Instant>,
    /// The persister thread is writing or loading.
    busy: bool,
    /// Stopping or destroying: queued work gets one last try and is dropped if it fails.
    last_chance: bool,
    /// After a failed auto-save write, when to try again.
    retry_at: Option<Instant>,
    next_load: Option<Instant>,
    /// The first auto-save error since the last `flush`.
    error: Option<Error>,
    /// A load failed with `Error::Corrupt`: saving is refused until a load succeeds or the
    /// data is moved aside.
    unreadable: bool,
}

impl State {
    /// Moves `durable` past the numbers that need nothing written, dropping queued
    /// transactions that a whole save already covered.
    fn settle(&mut self) {
        while self.skipped.remove(&(self.durable + 1)) {
            self.durable += 1;
        }
        self.skipped.retain(|&s| s > self.durable);
        while self.queue.first_key_value().is_some_and(|(&s, _)| s <= self.durable) {
            self.queue.pop_first();
        }
    }

    /// After a merge-load left the store holding more than the storage: whether auto-save
    /// writes the whole content once. Not for an incremental storage while transactions are
    /// queued: they are the difference, and a whole write of a large store is costly.
    fn store_ahead_needs_save(&self, incremental: bool) -> bool {
        self.auto_save && (!incremental || (self.queue.is_empty() && self.received <= self.durable))
    }

    /// Whether the persister thread has something to write now.
    fn has_write_work(&self, incremental: bool) -> bool {
        if self.unreadable {
            return false;
        }
        self.resave
            || if incremental {
                self.queue.first_key_value().is_some_and(|(&s, _)| s == self.durable + 1)
            } else {
                self.received > self.durable
            }
    }
}

enum Job {
    Whole,
    Changes(u64, String),
    Poll,
    Check,
}

fn destroyed_error() -> Error {
    Error::InvalidState("the persister was destroyed".into())
}

impl Inner {
    fn set_status(&self, status: PersisterStatus) {
        self.status.store(status as u8, Ordering::Release);
    }

    fn corrupt(&self, err: Error) -> Error {
        match err {
            // Named once: the storage's own errors already say which storage they are about.
            Error::Corrupt(m) if !m.contains(&self.description) => Error::Corrupt(format!("{}: {m}", self.description)),
            Error::Corrupt(_) | Error::Io(_) | Error::InvalidState(_) => err,
            other => Error::Corrupt(format!("{}: {other}", self.description)),
        }
    }

    fn unreadable_error(&self) -> Error {
        Error::InvalidState(format!(
            "{} holds data that could not be loaded: it is not saved over; load it successfully or call move_aside_unreadable first",
            self.description
        ))
    }

    /// The commit hook's `wants`, under the store's lock: everything but this persister's own
    /// loads. A refused commit may or may not take a number (only if another hook wants it and
    /// it changed cells or values, or stamps only and that hook takes those); the next call,
    /// before any other number is given, tells.
    fn wants(&self) -> bool {
        let (commits, mut st) = self.settle_pending_skip();
        if is_loading(self.id) {
            st.pending_skip = Some(commits + 1);
            return false;
        }
        true
    }

    /// Settles a refused commit's number, with the store's lock held (no commit is
    /// half-numbered then): it took the number the commit count reached, or none. Returns the
    /// commit count and the state, still locked.
    fn settle_pending_skip(&self) -> (u64, parking_lot::MutexGuard<'_, State>) {
        let commits = self.store.shared.commits.load(Ordering::Acquire);
        let mut st = self.state.lock();
        if let Some(s) = st.pending_skip.take() {
            if commits >= s {
                st.skipped.insert(s);
                st.settle();
            }
        }
        (commits, st)
    }

    /// The number of the last commit, once the commit a load refused is settled.
    fn last_commit(&self) -> u64 {
        self.store.read(|_| self.settle_pending_skip().0)
    }

    fn on_commit(&self, seq: u64, changes: &str) {
        let mut st = self.state.lock();
        if seq <= st.durable || st.destroyed {
            return;
        }
        st.received = st.received.max(seq);
        if self.incremental {
            st.queue.insert(seq, changes.to_string());
        }
        drop(st);
        self.changed.notify_all();
    }

    fn on_plain_transaction(&self, store: &Store) {
        // The finished transaction's changes are already written out for did-finish listeners.
        if is_loading(self.id) || store.finished().is_none_or(|t| t.changes == "[{},{},1]") {
            return;
        }
        let mut st = self.state.lock();
        if st.destroyed {
            return;
        }
        st.received += 1;
        drop(st);
        self.changed.notify_all();
    }

    /// Reads the storage and merges what it holds into the store. Returns the loaded
    /// content's hashes (MergeableStore) or whether it matches the store afterwards.
    fn load_from(&self, storage: &mut dyn Storage) -> Result<Option<bool>> {
        self.set_status(PersisterStatus::Loading);
        let result = self.load_inner(storage);
        self.set_status(PersisterStatus::Idle);
        match &result {
            Ok(_) => {
                self.loads.fetch_add(1, Ordering::AcqRel);
                self.state.lock().unreadable = false;
            }
            Err(Error::Corrupt(_)) => self.state.lock().unreadable = true,
            Err(_) => {}
        }
        result
    }

    fn load_inner(&self, storage: &mut dyn Storage) -> Result<Option<bool>> {
        let content = match storage.read(self.mergeable.is_some())? {
            None => return Ok(None),
            Some(content) => content,
        };
        let _loading = LoadingGuard::new(self.id);
        match (&self.mergeable, content) {
            (Some(store), Content::Mergeable(text)) => {
                let loaded = file::merge_content(store, &text).map_err(|e| self.corrupt(e))?;
                let same = store.get_mergeable_content_hashes() == loaded;
                if same {
                    self.state.lock().written = Some(loaded);
                }
                Ok(Some(same))
            }
            (None, Content::Plain(text)) => {
                file::merge_plain_text(&self.store, &text).map_err(|e| self.corrupt(e))?;
                let same = parse_json(&text).ok() == parse_json(&self.store.get_json()).ok();
                Ok(Some(same))
            }
            (Some(_), Content::Plain(_)) => {
                Err(Error::Corrupt(format!("{}: holds a plain Store's content, not a MergeableStore's", self.description)))
            }
            (None, Content::Mergeable(_)) => {
                Err(Error::Corrupt(format!("{}: holds a MergeableStore's content, not a plain Store's", self.description)))
            }
        }
    }

    /// The store's whole content, its hashes and the last transaction it includes.
    fn snapshot(&self) -> (Content, (u32, u32), u64) {
        match &self.mergeable {
            Some(store) => self.store.read(|_| {
                let seq = self.store.shared.commits.load(Ordering::Acquire);
                (Content::Mergeable(store.get_encoded_mergeable_content_json()), store.get_mergeable_content_hashes(), seq)
            }),
            None => {
                // Counted after commit: a counted transaction is in the content read next.
                let seq = self.state.lock().received;
                (Content::Plain(self.store.get_json()), (0, 0), seq)
            }
        }
    }

    /// A whole save: lock, merge what another process wrote, write, unlock. Returns what it
    /// made durable.
    fn save_to(&self, storage: &mut dyn Storage) -> Result<(Durable, u64)> {
        if self.state.lock().unreadable {
            return Err(self.unreadable_error());
        }
        storage.lock(self.options.lock_timeout)?;
        let result = (|| -> Result<((u32, u32), u64)> {
            if storage.changed()? {
                self.load_from(storage)?;
            }
            self.set_status(PersisterStatus::Saving);
            let (content, hashes, seq) = self.snapshot();
            storage.write(&content)?;
            Ok((hashes, seq))
        })();
        let unlocked = storage.unlock();
        self.set_status(PersisterStatus::Idle);
        let (content_hashes, seq) = result?;
        unlocked?;
        let saves = self.saves.fetch_add(1, Ordering::AcqRel) + 1;
        let mut st = self.state.lock();
        st.resave = false;
        if self.mergeable.is_some() {
            st.written = Some(content_hashes);
        }
        drop(st);
        Ok((Durable { content_hashes, saves }, seq))
    }

    /// After a durable write and its callback: every transaction numbered up to `seq` is
    /// durable (`flush` returns once the callback ran).
    fn advance(&self, seq: u64) {
        let mut st = self.state.lock();
        st.retry_at = None;
        st.durable = st.durable.max(seq);
        st.settle();
        drop(st);
        self.changed.notify_all();
    }

    /// Runs `f` on the storage, one caller at a time. A listener that calls `load` or `save`
    /// while this persister's own load merges on the same thread gets an error, not a deadlock.
    fn with_storage<R>(&self, f: impl FnOnce(&mut dyn Storage) -> Result<R>) -> Result<R> {
        let me = thread::current().id();
        if *self.storage_owner.lock() == Some(me) {
            return Err(Error::InvalidState(format!(
                "{}: called from inside this persister's own load or save (a listener of the store it is merging into)",
                self.description
            )));
        }
        let mut guard = self.storage.lock();
        *self.storage_owner.lock() = Some(me);
        let result = match guard.as_mut() {
            Some(storage) => f(storage.as_mut()),
            None => Err(destroyed_error()),
        };
        *self.storage_owner.lock() = None;
        result
    }

    fn durable(&self, durable: &Durable) {
        if let Some(hook) = &self.options.on_durable {
            hook(durable);
        }
    }

    fn ignored(&self, err: &Error) {
        if let Some(hook) = &self.options.on_ignored_error {
            hook(err);
        }
    }

    fn on_persister_thread(&self) -> bool {
        self.state.lock().thread_id == Some(thread::current().id())
    }

    /// Waits (not on the persister thread) until the persister thread has nothing to write,
    /// including transactions queued behind one whose hook call is still on its way (a few
    /// seconds at most: it is on the committing thread).
    fn wait_drained(&self) {
        if self.on_persister_thread() {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut st = self.state.lock();
        while st.thread.is_some() && (st.busy || st.has_write_work(self.incremental) || (!st.unreadable && !st.queue.is_empty())) {
            if self.changed.wait_until(&mut st, deadline).timed_out() {
                break;
            }
        }
    }

    // ------------------------------------------------------------------ the persister thread

    fn run(self: Arc<Inner>) {
        loop {
            let job = {
                let mut st = self.state.lock();
                st.busy = false;
                self.changed.notify_all();
                let job = loop {
                    let now = Instant::now();
                    let may_write = st.last_chance || st.destroyed || st.retry_at.is_none_or(|t| now >= t);
                    if may_write && st.has_write_work(self.incremental) {
                        break if st.resave || !self.incremental {
                            Job::Whole
                        } else {
                            let (seq, changes) = st.queue.pop_first().expect("queued");
                            Job::Changes(seq, changes)
                        };
                    }
                    if st.destroyed {
                        st.thread_id = None;
                        drop(st);
                        self.changed.notify_all();
                        // The last owner releases the storage (a lock, a connection).
                        self.storage.lock().take();
                        return;
                    }
                    if st.auto_load && st.next_load.is_some_and(|t| now >= t) {
                        break Job::Poll;
                    }
                    if st.auto_save && st.next_check.is_some_and(|t| now >= t) {
                        st.next_check = Some(now + self.options.auto_load_interval);
                        break Job::Check;
                    }
                    let mut wake = None;
                    if st.auto_load {
                        wake = st.next_load;
                    }
                    if st.auto_save && st.next_check.is_some() {
                        wake = match (wake, st.next_check) {
                            (Some(a), Some(b)) => Some(a.min(b)),
                            (a, b) => a.or(b),
                        };
                    }
                    if st.has_write_work(self.incremental) {
                        wake = match (wake, st.retry_at) {
                            (Some(a), Some(b)) => Some(a.min(b)),
                            (a, b) => a.or(b),
                        };
                    }
                    match wake {
                        Some(t) => {
                            self.changed.wait_until(&mut st, t);
                        }
                        None => self.changed.wait(&mut st),
                    }
                };
                st.busy = true;
                job
            };
            match job {
                Job::Whole => self.auto_save_whole(),
                Job::Changes(seq, changes) => self.auto_save_changes(seq, changes),
                Job::Poll => self.poll(),
                Job::Check => self.check_unsaved(),
            }
        }
    }

    /// Whole-content auto-save of a MergeableStore: when the store's hashes are not those last
    /// written, one whole save is due (stamps a merge added without transaction changes).
    fn check_unsaved(&self) {
        let Some(store) = &self.mergeable else { return };
        if self.incremental {
            return;
        }
        let hashes = store.get_mergeable_content_hashes();
        let mut st = self.state.lock();
        if st.auto_save && !st.unreadable && st.written.is_some_and(|w| w != hashes) && !st.has_write_work(false) {
            st.resave = true;
            drop(st);
            self.changed.notify_all();
        }
    }

    fn retry_later(&self, st: &mut State) {
        st.retry_at = Some(Instant::now() + self.options.auto_load_interval.max(Duration::from_millis(100)));
    }

    fn auto_save_failed(&self, st: &mut State, err: &Error) {
        if st.error.is_none() {
            st.error = Some(err.clone());
        }
        if st.last_chance || st.destroyed {
            // Stopping: what could not be written is given up (the error says so).
            st.queue.clear();
            st.resave = false;
            st.durable = st.durable.max(st.received);
        } else {
            self.retry_later(st);
        }
    }

    fn auto_save_whole(&self) {
        match self.with_storage(|s| self.save_to(s)) {
            Ok((durable, seq)) => {
                self.durable(&durable);
                self.advance(seq);
            }
            Err(err) => {
                self.auto_save_failed(&mut self.state.lock(), &err);
                self.ignored(&err);
            }
        }
    }

    fn auto_save_changes(&self, seq: u64, changes: String) {
        let result = self.with_storage(|s| {
            if self.state.lock().unreadable {
                return Err(self.unreadable_error());
            }
            self.set_status(PersisterStatus::Saving);
            let r = s.write_changes(&changes);
            self.set_status(PersisterStatus::Idle);
            r
        });
        match result {
            Ok(()) => {
                let saves = self.saves.fetch_add(1, Ordering::AcqRel) + 1;
                self.durable(&Durable { content_hashes: changes_hashes(&changes), saves });
                self.advance(seq);
            }
            Err(err) => {
                let mut st = self.state.lock();
                if seq > st.durable {
                    st.queue.insert(seq, changes);
                }
                self.auto_save_failed(&mut st, &err);
                drop(st);
                self.ignored(&err);
            }
        }
    }

    fn poll(&self) {
        let result = self.with_storage(|s| {
            if !s.changed()? {
                return Ok(None);
            }
            self.load_from(s)
        });
        let mut st = self.state.lock();
        st.next_load = Some(Instant::now() + self.options.auto_load_interval);
        match result {
            Ok(Some(false)) => {
                if st.store_ahead_needs_save(self.incremental) {
                    st.resave = true;
                }
            }
            Ok(_) => {}
            Err(err) => {
                drop(st);
                self.ignored(&err);
            }
        }
    }
}

/// The top-level hashes of wire-form changes with hashes `[[tables, hlc, hash], [values, hlc, hash], 1]`.
fn changes_hashes(changes: &str) -> (u32, u32) {
    let json = parse_json(changes).unwrap_or_default();
    let hash = |i: usize| json.get(i).and_then(|p| p.get(2)).and_then(serde_json::Value::as_f64).unwrap_or(0.0) as u32;
    (hash(0), hash(1))
}

impl Persister {
    /// A persister of `store` (a plain Store, or a MergeableStore through `Deref`) over
    /// `storage`. Incremental storages need a MergeableStore (`Error::InvalidState` otherwise).
    /// Nothing is read or written until a method is called.
    pub fn new(store: &Store, storage: Box<dyn Storage>, options: PersisterOptions) -> Result<Persister> {
        let mergeable = MergeableStore::from_store(store);
        let incremental = storage.is_incremental();
        let description = storage.describe();
        if incremental && mergeable.is_none() {
            return Err(Error::InvalidState(format!("{description} is incremental: it persists a MergeableStore, not a plain Store")));
        }
        Ok(Persister {
            inner: Arc::new(Inner {
                id: NEXT_PERSISTER_ID.fetch_add(1, Ordering::Relaxed),
                store: store.clone(),
                mergeable,
                incremental,
                description,
                options,
                storage: Mutex::new(Some(storage)),
                storage_owner: Mutex::new(None),
                state: Mutex::new(State::default()),
                changed: Condvar::new(),
                status: AtomicU8::new(PersisterStatus::Idle as u8),
                loads: AtomicU64::new(0),
                saves: AtomicU64::new(0),
            }),
        })
    }

    /// The store this persister persists.
    pub fn get_store(&self) -> Store {
        self.inner.store.clone()
    }

    /// Names the storage (`file /data/room.json`).
    pub fn describe(&self) -> String {
        self.inner.description.clone()
    }

    fn check_alive(&self) -> Result<()> {
        if self.inner.state.lock().destroyed {
            return Err(destroyed_error());
        }
        Ok(())
    }

    /// `load`: merges what is stored into the store (a MergeableStore merges stamps; a plain
    /// Store takes the stored cells and values over its own, keeping those only it has).
    /// `Ok(false)` when nothing is stored yet (the store is left as it is). Unreadable data is
    /// `Err(Error::Corrupt)`, and from then on the persister refuses to save over it until a
    /// load succeeds or [`Persister::move_aside_unreadable`] is called.
    pub fn load(&self) -> Result<bool> {
        self.check_alive()?;
        let loaded = self.inner.with_storage(|s| self.inner.load_from(s))?;
        if loaded == Some(false) {
            self.note_store_ahead();
        }
        Ok(loaded.is_some())
    }

    /// After a merge-load left the store holding more than the storage: auto-save writes once.
    fn note_store_ahead(&self) {
        let mut st = self.inner.state.lock();
        if st.store_ahead_needs_save(self.inner.incremental) {
            st.resave = true;
            drop(st);
            self.inner.changed.notify_all();
        }
    }

    /// `save`: writes the whole content (under the storage's cross-process lock; stored data
    /// another process wrote since is merged in first, so neither loses a change) and returns
    /// once it is durable.
    pub fn save(&self) -> Result<()> {
        self.check_alive()?;
        let (durable, seq) = self.inner.with_storage(|s| self.inner.save_to(s))?;
        self.inner.durable(&durable);
        self.inner.advance(seq);
        Ok(())
    }

    fn ensure_thread(&self, st: &mut State) {
        if st.thread.is_none() {
            let inner = self.inner.clone();
            let handle = thread::Builder::new()
                .name("tinybase-persister".into())
                .spawn(move || inner.run())
                .expect("spawning the persister thread");
            st.thread_id = Some(handle.thread().id());
            st.thread = Some(handle);
        }
    }

    /// `startAutoLoad`: loads now, then merges whatever another process writes to the storage
    /// (checked every `auto_load_interval`). Returns the first load's error, if any (auto-load
    /// then stays off).
    pub fn start_auto_load(&self) -> Result<()> {
        self.check_alive()?;
        if self.is_auto_loading() {
            return Ok(());
        }
        self.load()?;
        let mut st = self.inner.state.lock();
        if st.destroyed {
            return Err(destroyed_error());
        }
        st.auto_load = true;
        st.next_load = Some(Instant::now() + self.inner.options.auto_load_interval);
        self.ensure_thread(&mut st);
        drop(st);
        self.inner.changed.notify_all();
        Ok(())
    }

    /// `stopAutoLoad`.
    pub fn stop_auto_load(&self) {
        let mut st = self.inner.state.lock();
        st.auto_load = false;
        st.next_load = None;
    }

    /// `isAutoLoading`.
    pub fn is_auto_loading(&self) -> bool {
        self.inner.state.lock().auto_load
    }

    /// `startAutoSave`: saves now (unless the storage holds exactly the store's content, as
    /// after a load that changed nothing), then after every committed transaction (on the persister's
    /// thread: whole content, coalescing transactions that queued meanwhile, or each
    /// transaction on its own for incremental storages). Refused while stored data could not be
    /// loaded.
    pub fn start_auto_save(&self) -> Result<()> {
        {
            let st = self.inner.state.lock();
            if st.destroyed {
                return Err(destroyed_error());
            }
            if st.unreadable {
                return Err(self.inner.unreadable_error());
            }
            if st.auto_save {
                return Ok(());
            }
        }
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let (hook, listener) = match &self.inner.mergeable {
            Some(store) => {
                let (wants, call) = (weak.clone(), weak);
                let (id, last) = store.add_commit_hook_at(Arc::new(CommitHookFns {
                    wants: Box::new(move || wants.upgrade().is_some_and(|inner| inner.wants())),
                    with_hashes: self.inner.incremental,
                    // What is stored must hold every stamp, or its hashes drift from the store's.
                    stamps: true,
                    call: Box::new(move |seq, changes| {
                        if let Some(inner) = call.upgrade() {
                            inner.on_commit(seq, changes);
                        }
                    }),
                }));
                let mut st = self.inner.state.lock();
                st.durable = st.durable.max(last);
                st.received = st.received.max(last);
                st.pending_skip = None;
                st.settle();
                (Some(id), None)
            }
            None => {
                let id = self.inner.store.add_did_finish_transaction_listener(move |store| {
                    if let Some(inner) = weak.upgrade() {
                        inner.on_plain_transaction(store);
                    }
                });
                (None, Some(id))
            }
        };
        let remove = |inner: &Inner| {
            if let Some(id) = hook {
                inner.store.del_commit_hook(id);
            }
            if let Some(id) = listener {
                inner.store.del_listener(id);
            }
        };
        {
            let mut st = self.inner.state.lock();
            st.hook = hook;
            st.listener = listener;
            st.auto_save = true;
            st.last_chance = false;
            st.next_check = Some(Instant::now() + self.inner.options.auto_load_interval);
        }
        // TinyBase saves first; skipped when the storage holds exactly the store's content (it
        // was just loaded or saved), which spares rewriting a whole database at every start.
        let up_to_date = self.inner.mergeable.as_ref().is_some_and(|s| self.inner.state.lock().written == Some(s.get_mergeable_content_hashes()));
        if let Err(err) = if up_to_date { Ok(()) } else { self.save() } {
            let mut st = self.inner.state.lock();
            st.auto_save = false;
            st.hook = None;
            st.listener = None;
            drop(st);
            remove(&self.inner);
            return Err(err);
        }
        let mut st = self.inner.state.lock();
        if st.destroyed {
            return Err(destroyed_error());
        }
        self.ensure_thread(&mut st);
        drop(st);
        self.inner.changed.notify_all();
        Ok(())
    }

    /// Detaches auto-save from the store; what was queued is still written.
    fn detach_auto_save(&self) -> bool {
        self.inner.check_unsaved();
        let (hook, listener) = {
            let mut st = self.inner.state.lock();
            if !st.auto_save {
                return false;
            }
            st.auto_save = false;
            st.last_chance = true;
            (st.hook.take(), st.listener.take())
        };
        if let Some(id) = hook {
            self.inner.store.del_commit_hook(id);
        }
        if let Some(id) = listener {
            self.inner.store.del_listener(id);
        }
        self.inner.changed.notify_all();
        true
    }

    /// `stopAutoSave`: writes what is queued first.
    pub fn stop_auto_save(&self) {
        if self.detach_auto_save() && !self.inner.on_persister_thread() {
            self.inner.wait_drained();
            let mut st = self.inner.state.lock();
            if st.unreadable {
                // Blocked by unreadable data: nothing queued can be written.
                st.queue.clear();
                st.resave = false;
            }
        }
    }

    /// `isAutoSaving`.
    pub fn is_auto_saving(&self) -> bool {
        self.inner.state.lock().auto_save
    }

    /// `getStatus`.
    pub fn get_status(&self) -> PersisterStatus {
        match self.inner.status.load(Ordering::Acquire) {
            1 => PersisterStatus::Loading,
            2 => PersisterStatus::Saving,
            _ => PersisterStatus::Idle,
        }
    }

    /// `getStats`.
    pub fn get_stats(&self) -> PersisterStats {
        PersisterStats { loads: self.inner.loads.load(Ordering::Acquire), saves: self.inner.saves.load(Ordering::Acquire) }
    }

    /// Waits until every transaction committed before the call is durable (auto-save) or
    /// `timeout` passes: `Ok(true)` when durable. The first auto-save error since the last
    /// call is returned instead. Without auto-save, waits for what was queued before it stopped.
    /// On the persister's own thread (inside a callback) it does not wait.
    pub fn flush(&self, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        self.inner.check_unsaved();
        let target = match &self.inner.mergeable {
            Some(_) => self.inner.last_commit(),
            None => self.inner.state.lock().received,
        };
        let on_thread = self.inner.on_persister_thread();
        let incremental = self.inner.incremental;
        let mut st = self.inner.state.lock();
        loop {
            if let Some(err) = st.error.take() {
                return Err(err);
            }
            let done = if st.auto_save { st.durable >= target && !st.resave } else { !st.has_write_work(incremental) && !st.busy };
            if done {
                return Ok(true);
            }
            if st.unreadable {
                return Err(self.inner.unreadable_error());
            }
            if on_thread || st.destroyed || self.inner.changed.wait_until(&mut st, deadline).timed_out() {
                let done = if st.auto_save { st.durable >= target && !st.resave } else { !st.has_write_work(incremental) && !st.busy };
                return Ok(done);
            }
        }
    }

    /// After a load failed with `Error::Corrupt`: moves the unreadable data aside (see
    /// [`Storage::move_aside`]) so saves may write afresh; returns where it went, or None when
    /// no load has failed.
    pub fn move_aside_unreadable(&self) -> Result<Option<String>> {
        self.check_alive()?;
        self.inner.with_storage(|s| {
            if !self.inner.state.lock().unreadable {
                return Ok(None);
            }
            // Under the save lock, so that no other process writes meanwhile; a database too
            // damaged to be locked (not a database at all) is moved aside without it.
            let locked = match s.lock(self.inner.options.lock_timeout) {
                Ok(()) => true,
                Err(Error::Corrupt(_)) => false,
                Err(e) => return Err(e),
            };
            let moved = s.move_aside();
            if locked {
                s.unlock()?;
            }
            let moved = moved?;
            self.inner.state.lock().unreadable = false;
            self.inner.changed.notify_all();
            Ok(Some(moved))
        })
    }

    /// `destroy`: stops auto-load and auto-save (writing what is queued), releases the
    /// storage. Later calls fail with `Error::InvalidState`. Idempotent. Called from inside a
    /// callback on the persister's own thread, it returns at once and the thread finishes the
    /// queued work and releases the storage when the callback returns.
    pub fn destroy(&self) {
        {
            let mut st = self.inner.state.lock();
            if st.destroyed {
                return;
            }
            st.auto_load = false;
        }
        self.detach_auto_save();
        let (handle, on_thread) = {
            let mut st = self.inner.state.lock();
            st.destroyed = true;
            st.last_chance = true;
            let on_thread = st.thread_id == Some(thread::current().id());
            (st.thread.take(), on_thread)
        };
        self.inner.changed.notify_all();
        if on_thread {
            // The persister thread is calling back into this: it ends by itself when the
            // callback returns, writing what is queued and releasing the storage then.
            return;
        }
        match handle {
            Some(handle) => {
                let _ = handle.join();
            }
            None => {
                // Another caller is joining the thread: wait for it to end all the same, so the
                // storage is released when this returns.
                let mut st = self.inner.state.lock();
                while st.thread_id.is_some() {
                    self.inner.changed.wait(&mut st);
                }
            }
        }
        self.inner.storage.lock().take();
    }
}

impl Drop for Persister {
    fn drop(&mut self) {
        self.destroy();
    }
}
