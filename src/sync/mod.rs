//! Synchronizers: TinyBase's sync protocol between MergeableStores over any transport.
//!
//! A [`Synchronizer`] binds one [`MergeableStore`] to one [`Transport`] and speaks TinyBase's
//! protocol message for message (PROTOCOL.md section 6): load (pull the other side's changes
//! through GetContentHashes and the diff requests), save (broadcast ContentHashes, or a
//! ContentDiff after each local transaction), answering requests, timeouts and the 100
//! pending-request bound. Each synchronizer owns one worker thread with a channel inbox:
//! payloads may be received from any thread, the transport's `send` runs on the worker (never
//! under a store lock), and local transactions reach the worker without blocking the writer.

pub mod framed;
pub mod local;
pub mod message;

use crate::error::Result;
use crate::mergeable::MergeableStore;
use crate::value::to_json_string;
use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError, Sender};
use message::{parse_payload, payload, Message};
use parking_lot::Mutex;
use serde_json::{Map, Value as Json};
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

/// At most this many requests wait for a response at once (TinyBase's MAX_PENDING_REQUESTS).
pub const MAX_PENDING_REQUESTS: usize = 100;

/// How a synchronizer reaches its peers: `send` is called on the synchronizer's worker thread
/// with a payload `[requestId, message, body]` (JSON text in TinyBase's wire encoding) for one
/// client, or for every other client when `to` is None.
pub trait Transport: Send + Sync + 'static {
    /// Sends a payload.
    fn send(&self, to: Option<&str>, payload: &str);
    /// Called once when the synchronizer is destroyed.
    fn destroy(&self) {}
}

/// Called with (other client id, request id, message, body JSON) for each message.
pub type MessageHook = Arc<dyn Fn(Option<&str>, Option<&str>, Message, &str) + Send + Sync>;
/// Called with an error that the protocol ignores (invalid message, timeout, failed pull).
pub type ErrorHook = Arc<dyn Fn(&str) + Send + Sync>;

/// What a status callback is told (beyond TinyBase, for UIs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncStatus {
    /// Idle, syncing (requests in flight or changes being applied), or failing.
    pub state: SyncState,
    /// Requests waiting for a response.
    pub pending_requests: usize,
    /// Messages sent so far.
    pub sends: u64,
    /// Valid messages received so far.
    pub receives: u64,
    /// The last ignored error, while the state is `Error`.
    pub last_error: Option<String>,
}

/// The coarse state reported to a status callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncState {
    /// Nothing in flight.
    Idle,
    /// Requests in flight, or changes being loaded.
    Syncing,
    /// The last pull or request failed (timeout, invalid message...); cleared by the next
    /// valid message from a peer.
    Error,
}

/// Called on the worker thread whenever the [`SyncStatus`] state changes.
pub type StatusHook = Arc<dyn Fn(&SyncStatus) + Send + Sync>;

/// Options of a synchronizer.
#[derive(Clone)]
pub struct SynchronizerOptions {
    /// How long a request waits for its response (TinyBase's `requestTimeoutSeconds`).
    pub request_timeout: Duration,
    /// Called for every message sent (`onSend`).
    pub on_send: Option<MessageHook>,
    /// Called for every valid message received (`onReceive`).
    pub on_receive: Option<MessageHook>,
    /// Called for every ignored error (`onIgnoredError`).
    pub on_ignored_error: Option<ErrorHook>,
    /// Beyond TinyBase, off by default: re-announce the content hashes this often while
    /// syncing, so a lost message is repaired without a restart.
    pub anti_entropy: Option<Duration>,
    /// Beyond TinyBase, off by default: called when the sync state changes.
    pub on_status: Option<StatusHook>,
}

impl Default for SynchronizerOptions {
    fn default() -> Self {
        SynchronizerOptions {
            request_timeout: Duration::from_secs(1),
            on_send: None,
            on_receive: None,
            on_ignored_error: None,
            anti_entropy: None,
            on_status: None,
        }
    }
}

/// `getStatus()`: 0 idle, 1 loading, 2 saving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    /// Neither loading nor saving.
    Idle = 0,
    /// Pulling or applying other peers' changes.
    Loading = 1,
    /// Announcing or sending local changes.
    Saving = 2,
}

/// `getSynchronizerStats()`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SynchronizerStats {
    /// Protocol messages sent.
    pub sends: u64,
    /// Valid protocol messages received.
    pub receives: u64,
}

thread_local! {
    /// The synchronizer whose worker is applying peers' changes on this thread (no echo).
    static APPLYING: Cell<usize> = const { Cell::new(0) };
}

type Cont = Box<dyn FnOnce(&mut Worker, std::result::Result<(Json, String), String>) + Send>;
type Done = Box<dyn FnOnce(&mut Worker, std::result::Result<Json, String>) + Send>;
type Then = Box<dyn FnOnce(&mut Worker) + Send>;

enum Command {
    StartSync(Option<String>),
    StopSync,
    Load(Option<String>),
    Save,
    StartAutoLoad(Option<String>),
    StopAutoLoad,
    StartAutoSave,
    StopAutoSave,
}

enum Work {
    Receive(String, String),
    Local(String),
    Command(Command, Option<Sender<()>>),
    Destroy(Sender<()>),
}

struct Shared {
    sends: AtomicU64,
    receives: AtomicU64,
    status: AtomicU8,
    /// Work queued or running, plus requests waiting for a response.
    busy: AtomicUsize,
    pending: AtomicUsize,
    /// A `load` pull is in flight: local transactions made meanwhile are not sent, as in
    /// TinyBase (whose persister skips saving while loading).
    load_in_flight: std::sync::atomic::AtomicBool,
    /// Set by `start_sync` before its command is queued (TinyBase sets `syncing` synchronously),
    /// so peers' GetContentHashes are answered from the start.
    syncing: std::sync::atomic::AtomicBool,
}

impl Shared {
    /// One piece of work is done (never below zero: a destroy resets the count).
    fn unbusy(&self) {
        let _ = self.busy.fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| Some(b.saturating_sub(1)));
    }
}

/// A synchronizer: TinyBase's protocol between one MergeableStore and its peers.
pub struct Synchronizer {
    id: usize,
    inbox: Sender<Work>,
    shared: Arc<Shared>,
    worker: Mutex<Option<JoinHandle<()>>>,
    worker_thread: ThreadId,
    store: MergeableStore,
    hook: u64,
}

struct Pending {
    to: Option<String>,
    deadline: Instant,
    message: Message,
    cont: Cont,
}

struct Worker {
    id: usize,
    store: MergeableStore,
    transport: Arc<dyn Transport>,
    options: SynchronizerOptions,
    shared: Arc<Shared>,
    syncing: bool,
    auto_load: bool,
    auto_save: bool,
    status: Status,
    destroyed: bool,
    pending: HashMap<String, Pending>,
    next_announce: Option<Instant>,
    last_error: Option<String>,
    reported: SyncState,
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

fn is_empty_obj(j: &Json) -> bool {
    j.as_object().is_some_and(Map::is_empty)
}

impl Synchronizer {
    /// A synchronizer for `store` over `transport` (TinyBase's `createCustomSynchronizer`).
    /// Messages from peers are handed to [`Synchronizer::receive`].
    pub fn new(store: &MergeableStore, transport: Arc<dyn Transport>, options: SynchronizerOptions) -> Synchronizer {
        let (inbox, rx) = unbounded();
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(Shared {
            sends: AtomicU64::new(0),
            receives: AtomicU64::new(0),
            status: AtomicU8::new(0),
            busy: AtomicUsize::new(0),
            pending: AtomicUsize::new(0),
            syncing: std::sync::atomic::AtomicBool::new(false),
            load_in_flight: std::sync::atomic::AtomicBool::new(false),
        });
        let worker = Worker {
            id,
            store: store.clone(),
            transport,
            options,
            shared: shared.clone(),
            syncing: false,
            auto_load: false,
            auto_save: false,
            status: Status::Idle,
            destroyed: false,
            pending: HashMap::new(),
            next_announce: None,
            last_error: None,
            reported: SyncState::Idle,
        };
        let handle = std::thread::Builder::new()
            .name("tinybase-sync".into())
            .spawn(move || worker.run(rx))
            .expect("spawn the synchronizer's worker thread");
        let worker_thread = handle.thread().id();
        // Local transactions reach the worker through the inbox, without blocking the writer.
        let (hook_inbox, hook_shared) = (inbox.clone(), shared.clone());
        let wants_shared = shared.clone();
        let hook = store.add_commit_hook(Arc::new(crate::store::CommitHookFns {
            // Changes this synchronizer is applying are not sent back (no echo), nor are local
            // changes made while a load's pull is in flight (TinyBase skips saving while
            // loading). Other threads' writes during the worker's brief applies are sent.
            wants: Box::new(move || APPLYING.with(Cell::get) != id && !wants_shared.load_in_flight.load(Ordering::Acquire)),
            call: Box::new(move |changes: &str| {
                hook_shared.busy.fetch_add(1, Ordering::AcqRel);
                if hook_inbox.send(Work::Local(changes.to_string())).is_err() {
                    hook_shared.unbusy();
                }
            }),
        }));
        Synchronizer { id, inbox, shared, worker: Mutex::new(Some(handle)), worker_thread, store: store.clone(), hook }
    }

    fn post(&self, work: Work) {
        self.shared.busy.fetch_add(1, Ordering::AcqRel);
        if self.inbox.send(work).is_err() {
            self.shared.unbusy();
        }
    }

    fn command(&self, command: Command) {
        if std::thread::current().id() == self.worker_thread {
            self.post(Work::Command(command, None));
            return;
        }
        let _ = self.command_async(command).recv();
    }

    fn command_async(&self, command: Command) -> Receiver<()> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.post(Work::Command(command, Some(tx)));
        rx
    }

    /// [`Synchronizer::start_sync`] without waiting: queued now (so it comes before anything
    /// received later), the returned channel signals when the initial load has finished.
    pub fn start_sync_async(&self, initial_content_json: Option<&str>) -> Receiver<()> {
        self.shared.syncing.store(true, Ordering::Release);
        self.command_async(Command::StartSync(initial_content_json.map(str::to_string)))
    }

    /// [`Synchronizer::load`] without waiting (see [`Synchronizer::start_sync_async`]).
    pub fn load_async(&self, initial_content_json: Option<&str>) -> Receiver<()> {
        self.command_async(Command::Load(initial_content_json.map(str::to_string)))
    }

    /// [`Synchronizer::start_auto_load`] without waiting.
    pub fn start_auto_load_async(&self, initial_content_json: Option<&str>) -> Receiver<()> {
        self.command_async(Command::StartAutoLoad(initial_content_json.map(str::to_string)))
    }

    /// Hands a payload `[requestId, message, body]` from client `from` to the synchronizer
    /// (any thread; never blocks).
    pub fn receive(&self, from: &str, payload: &str) {
        self.post(Work::Receive(from.to_string(), payload.to_string()));
    }

    /// Hands a framed payload (`fromClientId\n[...]`, TinyBase's WebSocket form) to the
    /// synchronizer.
    pub fn receive_framed(&self, frame: &str) -> Result<()> {
        let (from, payload) = message::unframe(frame)?;
        self.receive(from.unwrap_or(""), payload);
        Ok(())
    }

    /// `startSync`: auto-load (pulling from whoever answers first; `initial_content_json`, as
    /// `[tables, values]`, becomes default content when nobody does), then auto-save. Returns
    /// once the initial load has finished.
    pub fn start_sync(&self, initial_content_json: Option<&str>) {
        self.shared.syncing.store(true, Ordering::Release);
        self.command(Command::StartSync(initial_content_json.map(str::to_string)));
    }
    /// `stopSync`: stops auto-loading and auto-saving.
    pub fn stop_sync(&self) {
        self.shared.syncing.store(false, Ordering::Release);
        self.command(Command::StopSync);
    }
    /// `load`: pulls the first answering peer's changes once.
    pub fn load(&self, initial_content_json: Option<&str>) {
        self.command(Command::Load(initial_content_json.map(str::to_string)));
    }
    /// `save`: announces this store's content hashes once.
    pub fn save(&self) {
        self.command(Command::Save);
    }
    /// `startAutoLoad`: acts on peers' ContentHashes and ContentDiff messages, then loads.
    pub fn start_auto_load(&self, initial_content_json: Option<&str>) {
        self.command(Command::StartAutoLoad(initial_content_json.map(str::to_string)));
    }
    /// `stopAutoLoad`.
    pub fn stop_auto_load(&self) {
        self.command(Command::StopAutoLoad);
    }
    /// `startAutoSave`: saves, then broadcasts a ContentDiff after every local transaction.
    pub fn start_auto_save(&self) {
        self.command(Command::StartAutoSave);
    }
    /// `stopAutoSave`.
    pub fn stop_auto_save(&self) {
        self.command(Command::StopAutoSave);
    }

    /// `getSynchronizerStats`.
    pub fn get_synchronizer_stats(&self) -> SynchronizerStats {
        SynchronizerStats { sends: self.shared.sends.load(Ordering::Acquire), receives: self.shared.receives.load(Ordering::Acquire) }
    }

    /// `getStatus`.
    pub fn get_status(&self) -> Status {
        match self.shared.status.load(Ordering::Acquire) {
            1 => Status::Loading,
            2 => Status::Saving,
            _ => Status::Idle,
        }
    }

    /// The store this synchronizer synchronizes.
    pub fn get_store(&self) -> &MergeableStore {
        &self.store
    }

    /// Whether the worker has handled everything queued so far (local changes included), even if
    /// requests still wait for responses.
    pub fn is_settled(&self) -> bool {
        self.shared.busy.load(Ordering::Acquire) == 0
    }

    /// Whether nothing is queued, running or waiting for a response right now.
    pub fn is_idle(&self) -> bool {
        self.shared.busy.load(Ordering::Acquire) == 0 && self.shared.pending.load(Ordering::Acquire) == 0
    }

    /// Waits until this synchronizer has stayed idle briefly (see [`Synchronizer::is_idle`]);
    /// false on timeout.
    pub fn wait_for_idle(&self, timeout: Duration) -> bool {
        wait_until(timeout, || self.is_idle())
    }

    /// `destroy`: fails pending requests (`tinybase:3:destroyed`), stops syncing, destroys the
    /// transport and ends the worker thread.
    pub fn destroy(&self) {
        // Held until the worker has stopped, so that every caller returns only after that.
        let mut worker = self.worker.lock();
        let Some(handle) = worker.take() else { return };
        self.store.del_commit_hook(self.hook);
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.post(Work::Destroy(tx));
        if std::thread::current().id() != self.worker_thread {
            let _ = rx.recv();
            let _ = handle.join();
        }
    }

    /// This synchronizer's process-unique number.
    pub fn id(&self) -> usize {
        self.id
    }
}

impl Drop for Synchronizer {
    fn drop(&mut self) {
        self.destroy();
    }
}

/// Polls `idle` until it has held on a few consecutive checks; false on timeout.
pub fn wait_until(timeout: Duration, idle: impl Fn() -> bool) -> bool {
    let end = Instant::now() + timeout;
    let mut quiet = 0;
    while Instant::now() < end {
        if idle() {
            quiet += 1;
            if quiet >= 3 {
                return true;
            }
        } else {
            quiet = 0;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

impl Worker {
    fn run(mut self, rx: Receiver<Work>) {
        loop {
            let deadline = self.pending.values().map(|p| p.deadline).chain(self.next_announce).min();
            let work = match deadline {
                Some(d) => match rx.recv_timeout(d.saturating_duration_since(Instant::now())) {
                    Ok(w) => Some(w),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                },
                None => match rx.recv() {
                    Ok(w) => Some(w),
                    Err(_) => return,
                },
            };
            match work {
                Some(Work::Destroy(done)) => {
                    self.destroy();
                    // Work queued behind the destroy is dropped; it is no longer pending.
                    drop(rx);
                    self.shared.busy.store(0, Ordering::Release);
                    self.shared.pending.store(0, Ordering::Release);
                    let _ = done.send(());
                    return;
                }
                Some(work) => {
                    self.handle(work);
                    self.shared.unbusy();
                }
                None => {}
            }
            self.expire();
            self.announce();
            self.shared.pending.store(self.pending.len(), Ordering::Release);
            self.report();
        }
    }

    fn report(&mut self) {
        let Some(hook) = self.options.on_status.clone() else { return };
        let state = if self.last_error.is_some() {
            SyncState::Error
        } else if !self.pending.is_empty() || self.status == Status::Loading {
            SyncState::Syncing
        } else {
            SyncState::Idle
        };
        if state != self.reported {
            self.reported = state;
            hook(&SyncStatus {
                state,
                pending_requests: self.pending.len(),
                sends: self.shared.sends.load(Ordering::Acquire),
                receives: self.shared.receives.load(Ordering::Acquire),
                last_error: self.last_error.clone(),
            });
        }
    }

    fn set_status(&mut self, status: Status) {
        self.status = status;
        self.shared.status.store(status as u8, Ordering::Release);
    }

    fn ignored(&mut self, error: &str) {
        self.last_error = Some(error.to_string());
        if let Some(hook) = &self.options.on_ignored_error {
            hook(error);
        }
    }

    fn handle(&mut self, work: Work) {
        match work {
            Work::Receive(from, text) => self.receive(&from, &text),
            Work::Local(changes) => {
                if self.auto_save && !self.destroyed {
                    self.save(Some(changes));
                }
            }
            Work::Command(command, reply) => {
                let then: Then = Box::new(move |_| {
                    if let Some(reply) = reply {
                        let _ = reply.send(());
                    }
                });
                self.command(command, then);
            }
            Work::Destroy(_) => {}
        }
    }

    fn command(&mut self, command: Command, then: Then) {
        match command {
            Command::StartSync(initial) => {
                self.syncing = true;
                self.start_auto_load(
                    initial,
                    Box::new(move |w: &mut Worker| {
                        w.start_auto_save();
                        then(w);
                    }),
                );
            }
            Command::StopSync => {
                self.syncing = false;
                self.auto_load = false;
                self.auto_save = false;
                self.next_announce = None;
                then(self);
            }
            Command::Load(initial) => self.load(initial, then),
            Command::Save => {
                self.save(None);
                then(self);
            }
            Command::StartAutoLoad(initial) => self.start_auto_load(initial, then),
            Command::StopAutoLoad => {
                self.auto_load = false;
                then(self);
            }
            Command::StartAutoSave => {
                self.start_auto_save();
                then(self);
            }
            Command::StopAutoSave => {
                self.auto_save = false;
                then(self);
            }
        }
    }

    fn start_auto_load(&mut self, initial: Option<String>, then: Then) {
        self.auto_load = true;
        self.load(initial, then);
    }

    fn start_auto_save(&mut self) {
        self.save(None);
        self.auto_save = true;
        if let Some(every) = self.options.anti_entropy {
            self.next_announce = Some(Instant::now() + every);
        }
    }

    fn announce(&mut self) {
        if let (Some(at), Some(every)) = (self.next_announce, self.options.anti_entropy) {
            if Instant::now() >= at {
                if self.syncing || self.auto_save {
                    self.save(None);
                }
                self.next_announce = Some(Instant::now() + every);
            }
        }
    }

    fn destroy(&mut self) {
        self.destroyed = true;
        let pending: Vec<Pending> = self.pending.drain().map(|(_, p)| p).collect();
        for p in pending {
            (p.cont)(self, Err("tinybase:3:destroyed".into()));
        }
        self.syncing = false;
        self.shared.syncing.store(false, Ordering::Release);
        self.auto_load = false;
        self.auto_save = false;
        self.transport.destroy();
    }

    // ------------------------------------------------------------------ sending

    fn send(&mut self, to: Option<&str>, request_id: Option<&str>, message: Message, body: &str) {
        self.shared.sends.fetch_add(1, Ordering::AcqRel);
        if let Some(hook) = &self.options.on_send {
            hook(to, request_id, message, body);
        }
        self.transport.send(to, &payload(request_id, message, body));
    }

    fn request(&mut self, to: Option<String>, message: Message, body: &str, tx: &str, cont: Cont) {
        if self.pending.len() >= MAX_PENDING_REQUESTS {
            cont(self, Err("tinybase:15:requests".into()));
            return;
        }
        let request_id = format!("{tx}.{}", crate::util::random_id(4));
        self.pending.insert(
            request_id.clone(),
            Pending { to: to.clone(), deadline: Instant::now() + self.options.request_timeout, message, cont },
        );
        self.shared.pending.store(self.pending.len(), Ordering::Release);
        self.send(to.as_deref(), Some(&request_id), message, body);
    }

    fn expire(&mut self) {
        let now = Instant::now();
        let expired: Vec<String> = self.pending.iter().filter(|(_, p)| p.deadline <= now).map(|(k, _)| k.clone()).collect();
        for id in expired {
            if let Some(p) = self.pending.remove(&id) {
                let error = format!("tinybase:3:{}.{id}.{}", p.to.as_deref().unwrap_or(""), p.message as u8);
                (p.cont)(self, Err(error));
            }
        }
    }

    // ------------------------------------------------------------------ receiving

    fn receive(&mut self, from: &str, text: &str) {
        if self.destroyed {
            return;
        }
        let received = match parse_payload(text) {
            Ok(r) => r,
            Err(_) => {
                self.ignored("tinybase:14");
                return;
            }
        };
        let auto_loading = self.syncing || self.auto_load || self.shared.syncing.load(Ordering::Acquire);
        self.shared.receives.fetch_add(1, Ordering::AcqRel);
        // A valid message from a peer: the link works again.
        self.last_error = None;
        if let Some(hook) = &self.options.on_receive {
            hook(Some(from), received.request_id.as_deref(), received.message, &to_json_string(&received.body));
        }
        let store = self.store.clone();
        let body = &received.body;
        let body_text = || to_json_string(body);
        let response = match received.message {
            Message::Response => {
                if let Some(id) = &received.request_id {
                    let matches = self.pending.get(id).is_some_and(|p| p.to.as_deref().is_none_or(|to| to == from));
                    if matches {
                        if let Some(p) = self.pending.remove(id) {
                            (p.cont)(self, Ok((received.body, from.to_string())));
                        }
                    }
                }
                return;
            }
            Message::ContentHashes if auto_loading => {
                let tx = received.request_id.clone().unwrap_or_else(|| crate::util::random_id(11));
                self.pull(
                    Some(from.to_string()),
                    Some(received.body),
                    tx,
                    Box::new(|w: &mut Worker, result| match result {
                        Ok(changes) => {
                            w.set_status(Status::Loading);
                            w.apply(&changes);
                            w.set_status(Status::Idle);
                        }
                        Err(e) => {
                            w.ignored(&e);
                            if w.status != Status::Saving {
                                w.load(None, Box::new(|_| {}));
                            }
                        }
                    }),
                );
                return;
            }
            Message::ContentDiff if auto_loading => {
                self.set_status(Status::Loading);
                self.apply(&received.body);
                self.set_status(Status::Idle);
                return;
            }
            Message::GetContentHashes if self.syncing || self.auto_save || self.shared.syncing.load(Ordering::Acquire) => {
                let (t, v) = store.get_mergeable_content_hashes();
                Some(format!("[{t},{v}]"))
            }
            Message::GetTableDiff => store.get_mergeable_table_diff_json(&body_text()).ok(),
            Message::GetRowDiff => store.get_mergeable_row_diff_json(&body_text()).ok(),
            Message::GetCellDiff => store.get_mergeable_cell_diff_json(&body_text()).ok(),
            Message::GetValueDiff => store.get_mergeable_value_diff_json(&body_text()).ok(),
            _ => None,
        };
        if let Some(response) = response {
            self.send(Some(from), received.request_id.as_deref(), Message::Response, &response);
        }
    }

    /// Applies changes from peers through the wire-form path; they are not echoed.
    fn apply(&mut self, changes: &Json) {
        // Without the trailing 1, TinyBase takes the body for full content, which needs hashes
        // that no valid protocol message carries: it is ignored, silently.
        if changes.as_array().is_none_or(|a| a.len() != 3) {
            return;
        }
        APPLYING.with(|a| a.set(self.id));
        let result = self.store.apply_mergeable_changes_value(changes);
        APPLYING.with(|a| a.set(0));
        if let Err(e) = result {
            self.ignored(&format!("tinybase:13:{e}"));
        }
    }

    // ------------------------------------------------------------------ load and save

    fn load(&mut self, initial: Option<String>, then: Then) {
        if self.status == Status::Saving {
            then(self);
            return;
        }
        self.set_status(Status::Loading);
        self.shared.load_in_flight.store(true, Ordering::Release);
        let tx = crate::util::random_id(11);
        self.pull(
            None,
            None,
            tx,
            Box::new(move |w: &mut Worker, result| {
                match result {
                    Ok(changes) => {
                        let empty = changes.get(0).and_then(|t| t.get(0)).is_some_and(is_empty_obj)
                            && changes.get(1).and_then(|v| v.get(0)).is_some_and(is_empty_obj);
                        if !empty {
                            w.apply(&changes);
                        } else if let Some(initial) = &initial {
                            w.set_default(initial);
                        }
                    }
                    Err(e) => {
                        w.ignored(&e);
                        if let Some(initial) = &initial {
                            w.set_default(initial);
                        }
                    }
                }
                w.shared.load_in_flight.store(false, Ordering::Release);
                w.set_status(Status::Idle);
                then(w);
            }),
        );
    }

    fn set_default(&mut self, initial: &str) {
        if let Err(e) = self.store.set_default_content_json(initial) {
            self.ignored(&e.to_string());
        }
    }

    fn save(&mut self, changes: Option<String>) {
        if self.status == Status::Loading {
            return;
        }
        let previous = self.status;
        self.set_status(Status::Saving);
        let tx = crate::util::random_id(11);
        match changes {
            Some(changes) => self.send(None, Some(&tx), Message::ContentDiff, &changes),
            None => {
                let (t, v) = self.store.get_mergeable_content_hashes();
                self.send(None, Some(&tx), Message::ContentHashes, &format!("[{t},{v}]"));
            }
        }
        self.set_status(previous);
    }

    // ------------------------------------------------------------------ the pull procedure

    /// TinyBase's `getChangesFromOtherStore`: asks for content hashes (unless given), then for
    /// the table, row, cell and value diffs as needed; `done` gets `[tables, values, 1]`.
    fn pull(&mut self, other: Option<String>, hashes: Option<Json>, tx: String, done: Done) {
        match hashes {
            Some(h) => self.pull_with(other, h, tx, done),
            None => self.request(
                None,
                Message::GetContentHashes,
                "\"\"",
                &tx.clone(),
                Box::new(move |w: &mut Worker, r| match r {
                    Ok((hashes, from)) => w.pull_with(Some(from), hashes, tx, done),
                    Err(e) => done(w, Err(e)),
                }),
            ),
        }
    }

    fn pull_with(&mut self, other: Option<String>, hashes: Json, tx: String, done: Done) {
        let hash = |i: usize| hashes.get(i).and_then(Json::as_f64).unwrap_or(-1.0);
        let (their_tables, their_values) = (hash(0), hash(1));
        let (tables_hash, _) = self.store.get_mergeable_content_hashes();
        // The pull finishes once: with the changes, or with the first error.
        let done: SharedDone = Arc::new(Mutex::new(Some(done)));
        let values_step: Step = {
            let (other, tx, done) = (other.clone(), tx.clone(), done.clone());
            Arc::new(move |w: &mut Worker, tables: Json| {
                let (_, values_hash) = w.store.get_mergeable_content_hashes();
                if values_hash as f64 == their_values {
                    finish(w, &done, Ok(Json::Array(vec![tables, Json::Array(vec![Json::Object(Map::new())]), Json::from(1)])));
                } else {
                    let body = w.store.get_mergeable_value_hashes_json();
                    let done = done.clone();
                    w.request(
                        other.clone(),
                        Message::GetValueDiff,
                        &body,
                        &tx,
                        Box::new(move |w: &mut Worker, r| {
                            finish(w, &done, r.map(|(values, _)| Json::Array(vec![tables, values, Json::from(1)])))
                        }),
                    );
                }
            })
        };
        if tables_hash as f64 == their_tables {
            values_step(self, Json::Array(vec![Json::Object(Map::new())]));
            return;
        }
        let body = self.store.get_mergeable_table_hashes_json();
        let (other2, tx2) = (other.clone(), tx.clone());
        self.request(
            other,
            Message::GetTableDiff,
            &body,
            &tx,
            Box::new(move |w: &mut Worker, r| {
                let (response, _) = match r {
                    Ok(r) => r,
                    Err(e) => return finish(w, &done, Err(e)),
                };
                let (mut tables, differing) = split_diff(response);
                if is_empty_obj(&differing) {
                    return values_step(w, tables);
                }
                let body = match w.store.get_mergeable_row_hashes_json(&to_json_string(&differing)) {
                    Ok(b) => b,
                    Err(e) => return finish(w, &done, Err(e.to_string())),
                };
                let (other3, tx3) = (other2.clone(), tx2.clone());
                w.request(
                    other2,
                    Message::GetRowDiff,
                    &body,
                    &tx2,
                    Box::new(move |w: &mut Worker, r| {
                        let (response, _) = match r {
                            Ok(r) => r,
                            Err(e) => return finish(w, &done, Err(e)),
                        };
                        let (rows, differing) = split_diff(response);
                        merge_tables_stamps(&mut tables, rows);
                        if is_empty_obj(&differing) {
                            return values_step(w, tables);
                        }
                        let body = match w.store.get_mergeable_cell_hashes_json(&to_json_string(&differing)) {
                            Ok(b) => b,
                            Err(e) => return finish(w, &done, Err(e.to_string())),
                        };
                        w.request(
                            other3,
                            Message::GetCellDiff,
                            &body,
                            &tx3,
                            Box::new(move |w: &mut Worker, r| match r {
                                Ok((cells, _)) => {
                                    merge_tables_stamps(&mut tables, cells);
                                    values_step(w, tables)
                                }
                                Err(e) => finish(w, &done, Err(e)),
                            }),
                        );
                    }),
                );
            }),
        );
    }
}

type SharedDone = Arc<Mutex<Option<Done>>>;
type Step = Arc<dyn Fn(&mut Worker, Json) + Send + Sync>;

fn finish(w: &mut Worker, done: &SharedDone, result: std::result::Result<Json, String>) {
    if let Some(done) = done.lock().take() {
        done(w, result);
    }
}

/// `[stamp, differingHashes]` from a diff response.
fn split_diff(response: Json) -> (Json, Json) {
    match response {
        Json::Array(mut parts) if parts.len() == 2 => {
            let differing = parts.pop().unwrap_or(Json::Null);
            (parts.pop().unwrap_or(Json::Null), differing)
        }
        other => (other, Json::Object(Map::new())),
    }
}

/// TinyBase's `mergeTablesStamps`: adds tables, rows and cells of `from` into `into`, taking the
/// later container HLC.
fn merge_tables_stamps(into: &mut Json, from: Json) {
    fn latest(a: Option<&Json>, b: Option<&Json>) -> Option<Json> {
        let (a, b) = (a.and_then(Json::as_str).unwrap_or(""), b.and_then(Json::as_str).unwrap_or(""));
        let l = if a > b { a } else { b };
        (!l.is_empty()).then(|| Json::String(l.to_string()))
    }
    fn set_hlc(stamp: &mut Vec<Json>, hlc: Option<Json>) {
        stamp.truncate(1);
        if let Some(h) = hlc {
            stamp.push(h);
        }
    }
    let Json::Array(from) = from else { return };
    let Some(Json::Array(into)) = Some(into) else { return };
    if into.is_empty() {
        into.push(Json::Object(Map::new()));
    }
    if let Some(Json::Object(tables)) = from.first() {
        for (t, table) in tables {
            let Some(table) = table.as_array() else { continue };
            let target = into[0].as_object_mut().map(|m| m.entry(t.clone()).or_insert_with(|| Json::Array(vec![Json::Object(Map::new())])));
            let Some(Json::Array(target)) = target else { continue };
            if let Some(Json::Object(rows)) = table.first() {
                for (r, row) in rows {
                    let Some(row) = row.as_array() else { continue };
                    let rt = target[0].as_object_mut().map(|m| m.entry(r.clone()).or_insert_with(|| Json::Array(vec![Json::Object(Map::new())])));
                    let Some(Json::Array(rt)) = rt else { continue };
                    if let (Some(Json::Object(cells)), Some(Json::Object(out))) = (row.first(), rt.first_mut()) {
                        for (c, cell) in cells {
                            out.insert(c.clone(), cell.clone());
                        }
                    }
                    let hlc = latest(rt.get(1), row.get(1));
                    set_hlc(rt, hlc);
                }
            }
            let hlc = latest(target.get(1), table.get(1));
            set_hlc(target, hlc);
        }
    }
    let hlc = latest(into.get(1), from.get(1));
    set_hlc(into, hlc);
}
