//! Synchronizers: TinyBase's sync protocol between MergeableStores over any transport.
//!
//! A [`Synchronizer`] binds one [`MergeableStore`] to one [`Transport`] and speaks TinyBase's
//! protocol message for message (PROTOCOL.md section 6): load (pull the other side's changes
//! through GetContentHashes and the diff requests), save (broadcast ContentHashes, or a
//! ContentDiff after each local transaction), answering requests, timeouts and the 100
//! pending-request bound. Each synchronizer owns one worker thread with a bounded inbox:
//! payloads may be received from any thread, the transport's `send` runs on the worker (never
//! under a store lock), and local transactions reach the worker without blocking the writer.

pub mod framed;
mod inbox;
pub mod local;
pub mod message;
pub mod ws;
mod pull;
mod worker;

use crate::error::{Error, Result};
use crate::mergeable::MergeableStore;
use crossbeam_channel::Receiver;
use inbox::{Inbox, Refusal};
use message::Message;
use parking_lot::Mutex;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};
use worker::{Command, Shared, Work, Worker, APPLYING};

/// At most this many requests wait for a response at once (TinyBase's MAX_PENDING_REQUESTS).
pub const MAX_PENDING_REQUESTS: usize = 100;

/// Default bound on the payloads received and not yet handled by the worker.
pub const DEFAULT_INBOX_MAX_PAYLOADS: usize = 10_000;
/// Default bound on the bytes those payloads hold (64 MiB).
pub const DEFAULT_INBOX_MAX_BYTES: usize = 64 << 20;

/// How a synchronizer reaches its peers: `send` is called on the synchronizer's worker thread
/// with a payload `[requestId, message, body]` (JSON text in TinyBase's wire encoding) for one
/// client, or for every other client when `to` is None.
pub trait Transport: Send + Sync + 'static {
    /// Sends a payload.
    fn send(&self, to: Option<&str>, payload: &str);
    /// Called once when the synchronizer is destroyed.
    fn destroy(&self) {}
    /// The connection's state, for transports that have one (WebSockets); None otherwise.
    fn connection_state(&self) -> Option<ConnectionState> {
        None
    }
}

/// What a transport with a connection tells its synchronizer (through [`Inlet::transport_event`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransportEvent {
    /// [`Transport::connection_state`] changed: the status hook is called with the new state.
    StateChanged,
    /// The connection (re)opened: while syncing, the synchronizer announces its hashes and
    /// loads (PROTOCOL.md 12.5), so what was missed while away is exchanged both ways.
    Reopened,
    /// A connection error to report to the ignored-error hook (`tinybase:5...`, `tinybase:14`,
    /// `tinybase:15:...`).
    Error(String),
}

/// The state of a synchronizer's connection (beyond TinyBase; WebSocket synchronizers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// Opening (or re-opening after a loss) the connection.
    Connecting,
    /// Open: messages flow.
    Open,
    /// Closed, with the WebSocket close code and reason (1006 and an explanation when the
    /// connection was lost or never opened). Reconnecting synchronizers go back to
    /// `Connecting` after a backoff.
    Closed {
        /// The WebSocket close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
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
    /// The connection's state, for transports that have one (WebSockets); None otherwise.
    pub connection: Option<ConnectionState>,
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
    /// Beyond TinyBase, off by default: this often while syncing, re-announce the content
    /// hashes and pull from a peer (a load), so a lost or never-sent message is repaired
    /// without a restart. Recommended whenever TinyBase peers take part (they never send what
    /// they commit while loading).
    pub anti_entropy: Option<Duration>,
    /// Beyond TinyBase, off by default: called when the sync state changes.
    pub on_status: Option<StatusHook>,
    /// Beyond TinyBase: at most this many received payloads wait for the worker; more are
    /// refused (see [`Synchronizer::receive`]).
    pub inbox_max_payloads: usize,
    /// Beyond TinyBase: at most this many bytes of received payloads wait for the worker (one
    /// payload is always taken when no other waits, whatever its size).
    pub inbox_max_bytes: usize,
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
            inbox_max_payloads: DEFAULT_INBOX_MAX_PAYLOADS,
            inbox_max_bytes: DEFAULT_INBOX_MAX_BYTES,
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

/// The inbox of received payloads (beyond TinyBase).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InboxStats {
    /// Payloads received and not yet handled by the worker.
    pub queued_payloads: usize,
    /// The bytes they hold.
    pub queued_bytes: usize,
    /// Payloads refused so far because the inbox was full.
    pub refused_payloads: u64,
}

/// Where a transport hands what arrives for a synchronizer: a handle on its inbox that does not
/// keep the synchronizer alive (so a transport's own threads never end up dropping it, and
/// after destroy everything handed in is ignored). Cloneable, any thread, never blocks.
#[derive(Clone)]
pub struct Inlet {
    inbox: Arc<Inbox<Work>>,
    shared: Arc<Shared>,
}

impl Inlet {
    /// See [`Synchronizer::receive`].
    pub fn receive(&self, from: &str, payload: &str) -> Result<()> {
        self.push_payload(Work::Receive(from.to_string(), payload.to_string()), from.len() + payload.len())
    }

    fn push_payload(&self, work: Work, bytes: usize) -> Result<()> {
        self.shared.busy.fetch_add(1, Ordering::AcqRel);
        match self.inbox.push_bounded(work, bytes) {
            Ok(()) => Ok(()),
            Err(refusal) => {
                self.shared.unbusy();
                if refusal == Refusal::Closed {
                    return Ok(());
                }
                self.shared.refused.fetch_add(1, Ordering::AcqRel);
                self.shared.refused_unreported.fetch_add(1, Ordering::AcqRel);
                Err(Error::InvalidState(format!("tinybase:15:inbox: the synchronizer's inbox is full ({bytes} bytes refused)")))
            }
        }
    }

    /// [`Inlet::receive`] for a payload the transport has parsed and validated already
    /// ([`message::parse_payload`]); `bytes` is its text's length (for the inbox bound).
    pub fn receive_parsed(&self, from: &str, bytes: usize, received: message::Received) -> Result<()> {
        self.push_payload(Work::Parsed(from.to_string(), received), from.len() + bytes)
    }

    /// Tells the synchronizer's worker about its connection (handled in order with what was
    /// received before). Ignored after destroy.
    pub fn transport_event(&self, event: TransportEvent) {
        self.shared.busy.fetch_add(1, Ordering::AcqRel);
        if self.inbox.push(Work::Transport(event)).is_err() {
            self.shared.unbusy();
        }
    }
}

/// A synchronizer: TinyBase's protocol between one MergeableStore and its peers.
pub struct Synchronizer {
    id: usize,
    inbox: Arc<Inbox<Work>>,
    shared: Arc<Shared>,
    worker: Mutex<Option<JoinHandle<()>>>,
    worker_thread: ThreadId,
    store: MergeableStore,
    hook: u64,
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

impl Synchronizer {
    /// A synchronizer for `store` over `transport` (TinyBase's `createCustomSynchronizer`).
    /// Messages from peers are handed to [`Synchronizer::receive`].
    pub fn new(store: &MergeableStore, transport: Arc<dyn Transport>, options: SynchronizerOptions) -> Synchronizer {
        let inbox = Arc::new(Inbox::new(options.inbox_max_payloads, options.inbox_max_bytes));
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(Shared {
            sends: AtomicU64::new(0),
            receives: AtomicU64::new(0),
            status: AtomicU8::new(0),
            busy: AtomicUsize::new(0),
            pending: AtomicUsize::new(0),
            syncing: std::sync::atomic::AtomicBool::new(false),
            closed: std::sync::atomic::AtomicBool::new(false),
            refused: AtomicU64::new(0),
            refused_unreported: AtomicU64::new(0),
        });
        let worker = Worker::new(id, store.clone(), transport, options, shared.clone());
        let handle = std::thread::Builder::new()
            .name("tinybase-sync".into())
            .spawn({
                let inbox = inbox.clone();
                move || worker.run(&inbox)
            })
            .expect("spawn the synchronizer's worker thread");
        let worker_thread = handle.thread().id();
        // Local transactions reach the worker through the inbox, without blocking the writer.
        let (hook_inbox, hook_shared) = (inbox.clone(), shared.clone());
        let hook = store.add_commit_hook(Arc::new(crate::store::CommitHookFns {
            // Changes this synchronizer is applying are not sent back (no echo). Every other
            // transaction reaches the worker, loading or not (a local change is never dropped).
            wants: Box::new(move || APPLYING.with(Cell::get) != id),
            with_hashes: false,
            // A ContentDiff lists visible changes only, as TinyBase's; peers reconcile the
            // rest through the hash comparison.
            stamps: false,
            call: Box::new(move |_, changes: &str| {
                hook_shared.busy.fetch_add(1, Ordering::AcqRel);
                if hook_inbox.push(Work::Local(changes.to_string())).is_err() {
                    hook_shared.unbusy();
                }
            }),
        }));
        Synchronizer { id, inbox, shared, worker: Mutex::new(Some(handle)), worker_thread, store: store.clone(), hook }
    }

    fn post(&self, work: Work) {
        self.shared.busy.fetch_add(1, Ordering::AcqRel);
        if self.inbox.push(work).is_err() {
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
    /// (any thread; never blocks). When the inbox already holds
    /// [`SynchronizerOptions::inbox_max_payloads`] payloads or
    /// [`SynchronizerOptions::inbox_max_bytes`] bytes (a flooding peer, or a worker held up),
    /// the payload is refused: `Error::InvalidState` here, the ignored-error hook gets
    /// `tinybase:15:inbox` on the worker, and [`InboxStats::refused_payloads`] counts it. What
    /// it carried is repaired by the next load (anti-entropy). Ignored (`Ok`) after destroy.
    pub fn receive(&self, from: &str, payload: &str) -> Result<()> {
        self.inlet().receive(from, payload)
    }

    /// A handle for the transport to hand in payloads and connection events.
    pub fn inlet(&self) -> Inlet {
        Inlet { inbox: self.inbox.clone(), shared: self.shared.clone() }
    }

    /// Hands a framed payload (`fromClientId\n[...]`, TinyBase's WebSocket form) to the
    /// synchronizer.
    pub fn receive_framed(&self, frame: &str) -> Result<()> {
        let (from, payload) = message::unframe(frame)?;
        self.receive(from.unwrap_or(""), payload)
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

    /// The inbox: payloads and bytes waiting for the worker, payloads refused so far.
    pub fn get_inbox_stats(&self) -> InboxStats {
        let (queued_payloads, queued_bytes) = self.inbox.queued();
        InboxStats { queued_payloads, queued_bytes, refused_payloads: self.shared.refused.load(Ordering::Acquire) }
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
    /// transport and ends the worker thread. Nothing is sent once it has begun; work queued
    /// before it is dropped. Called on the worker thread itself (from a store listener while
    /// the worker applies a peer's changes) it returns at once: the worker stops when that
    /// callback returns, and drops the transport and hooks as it exits.
    pub fn destroy(&self) {
        // Held until the worker has stopped, so that every caller returns only after that.
        let mut worker = self.worker.lock();
        let Some(handle) = worker.take() else { return };
        self.shared.closed.store(true, Ordering::Release);
        self.store.del_commit_hook(self.hook);
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.shared.busy.fetch_add(1, Ordering::AcqRel);
        let _ = self.inbox.close_with(Work::Destroy(tx));
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
