//! The synchronizer's worker thread: its inbox loop, receiving, sending, requests and their
//! timeouts, load and save. The pull procedure is in `pull.rs`.

use super::message::{parse_payload, payload, Message, Received};
use super::{ConnectionState, Status, SyncState, SyncStatus, SynchronizerOptions, Transport, TransportEvent, MAX_PENDING_REQUESTS};
use crate::mergeable::MergeableStore;
use crate::value::to_json_string;
use super::inbox::{Inbox, Next};
use crossbeam_channel::Sender;
use serde_json::{Map, Value as Json};
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

thread_local! {
    /// The synchronizer whose worker is applying peers' changes on this thread (no echo).
    pub(super) static APPLYING: Cell<usize> = const { Cell::new(0) };
}

pub(super) type Cont = Box<dyn FnOnce(&mut Worker, std::result::Result<(Json, String), String>) + Send>;
pub(super) type Done = Box<dyn FnOnce(&mut Worker, std::result::Result<Json, String>) + Send>;
pub(super) type Then = Box<dyn FnOnce(&mut Worker) + Send>;

pub(super) enum Command {
    StartSync(Option<String>),
    StopSync,
    Load(Option<String>),
    Save,
    StartAutoLoad(Option<String>),
    StopAutoLoad,
    StartAutoSave,
    StopAutoSave,
}

pub(super) enum Work {
    Receive(String, String),
    /// A payload the transport has validated already (WebSocket frames are parsed to be
    /// reassembled): not parsed twice.
    Parsed(String, Received),
    Local(String),
    Command(Command, Option<Sender<()>>),
    Transport(TransportEvent),
    Destroy(Sender<()>),
}

pub(super) struct Shared {
    pub(super) sends: AtomicU64,
    pub(super) receives: AtomicU64,
    pub(super) status: AtomicU8,
    /// Work queued or running, plus requests waiting for a response.
    pub(super) busy: AtomicUsize,
    pub(super) pending: AtomicUsize,
    /// Set by `start_sync` before its command is queued (TinyBase sets `syncing` synchronously),
    /// so peers' GetContentHashes are answered from the start.
    pub(super) syncing: std::sync::atomic::AtomicBool,
    /// Destroy has begun (possibly from the worker thread itself, inside a store listener):
    /// the worker handles nothing but the destroy and sends nothing more.
    pub(super) closed: std::sync::atomic::AtomicBool,
    /// Payloads refused because the inbox was full: in all, and not yet reported to the
    /// ignored-error hook (which runs on the worker).
    pub(super) refused: AtomicU64,
    pub(super) refused_unreported: AtomicU64,
}

impl Shared {
    /// One piece of work is done (never below zero: a destroy resets the count).
    pub(super) fn unbusy(&self) {
        let _ = self.busy.fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| Some(b.saturating_sub(1)));
    }
}

pub(super) struct Pending {
    pub(super) to: Option<String>,
    pub(super) deadline: Instant,
    pub(super) message: Message,
    pub(super) cont: Cont,
}

pub(super) struct Worker {
    pub(super) id: usize,
    pub(super) store: MergeableStore,
    pub(super) transport: Arc<dyn Transport>,
    pub(super) options: SynchronizerOptions,
    pub(super) shared: Arc<Shared>,
    pub(super) syncing: bool,
    pub(super) auto_load: bool,
    pub(super) auto_save: bool,
    pub(super) status: Status,
    pub(super) destroyed: bool,
    pub(super) pending: HashMap<String, Pending>,
    pub(super) next_announce: Option<Instant>,
    pub(super) last_error: Option<String>,
    pub(super) reported: SyncState,
    pub(super) reported_connection: Option<ConnectionState>,
    /// The connection reopened while a load was in flight (whose requests may have been lost
    /// with the old connection): load again when it ends.
    pub(super) reload: bool,
    /// A local transaction arrived while a load was in flight: announce our hashes when it
    /// ends (PROTOCOL.md 12.6; TinyBase drops such a transaction).
    pub(super) unsent: bool,
}

pub(super) fn is_empty_obj(j: &Json) -> bool {
    j.as_object().is_some_and(Map::is_empty)
}

impl Worker {
    /// A worker for `store` over `transport`, idle until commands arrive.
    pub(super) fn new(
        id: usize,
        store: MergeableStore,
        transport: Arc<dyn Transport>,
        options: SynchronizerOptions,
        shared: Arc<Shared>,
    ) -> Worker {
        Worker {
            id,
            store,
            transport,
            options,
            shared,
            syncing: false,
            auto_load: false,
            auto_save: false,
            status: Status::Idle,
            destroyed: false,
            pending: HashMap::new(),
            next_announce: None,
            last_error: None,
            reported: SyncState::Idle,
            reported_connection: None,
            reload: false,
            unsent: false,
        }
    }

    pub(super) fn run(mut self, inbox: &Inbox<Work>) {
        loop {
            let deadline = self.pending.values().map(|p| p.deadline).chain(self.next_announce).min();
            let work = match inbox.pop(deadline) {
                Next::Item(w) => Some(w),
                Next::Timeout => None,
                Next::Closed => return,
            };
            match work {
                Some(Work::Destroy(done)) => {
                    self.destroy();
                    // The destroy closed the inbox: it was the last item.
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
            if self.shared.refused_unreported.swap(0, Ordering::AcqRel) > 0 && !self.stopped() {
                self.ignored("tinybase:15:inbox");
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
        let connection = self.transport.connection_state();
        if state != self.reported || connection != self.reported_connection {
            self.reported = state;
            self.reported_connection = connection.clone();
            hook(&SyncStatus {
                state,
                pending_requests: self.pending.len(),
                sends: self.shared.sends.load(Ordering::Acquire),
                receives: self.shared.receives.load(Ordering::Acquire),
                last_error: self.last_error.clone(),
                connection,
            });
        }
    }

    fn set_status(&mut self, status: Status) {
        self.status = status;
        self.shared.status.store(status as u8, Ordering::Release);
    }

    /// Reports an error the protocol ignores; every one starts with its `tinybase:` code.
    fn ignored(&mut self, error: &str) {
        debug_assert!(error.starts_with("tinybase:"), "{error}");
        self.last_error = Some(error.to_string());
        if let Some(hook) = &self.options.on_ignored_error {
            hook(error);
        }
    }

    /// Destroyed, or destroy has begun: nothing goes out any more.
    fn stopped(&self) -> bool {
        self.destroyed || self.shared.closed.load(Ordering::Acquire)
    }

    fn handle(&mut self, work: Work) {
        if self.shared.closed.load(Ordering::Acquire) {
            // Dropping a command's reply channel releases whoever waits on it.
            return;
        }
        match work {
            Work::Receive(from, text) => self.receive(&from, &text),
            Work::Parsed(from, received) => self.receive_parsed(&from, received),
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
            Work::Transport(event) => self.transport_event(event),
            Work::Destroy(_) => {}
        }
    }

    fn transport_event(&mut self, event: TransportEvent) {
        match event {
            // `report` compares the connection state after every piece of work.
            TransportEvent::StateChanged => {}
            TransportEvent::Reopened => {
                // Save first: a save is skipped while loading.
                if self.syncing || self.auto_save {
                    self.save(None);
                }
                if self.syncing || self.auto_load {
                    if self.status == Status::Loading {
                        self.reload = true;
                    } else {
                        self.load(None, Box::new(|_| {}));
                    }
                }
            }
            TransportEvent::Error(error) => self.ignored(&error),
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

    /// Anti-entropy, once per period: re-announce our hashes (peers pull from us), then load
    /// (we pull from a peer), which repairs what a peer never sent (PROTOCOL.md 12.7).
    fn announce(&mut self) {
        if let (Some(at), Some(every)) = (self.next_announce, self.options.anti_entropy) {
            if Instant::now() >= at {
                if self.syncing || self.auto_save {
                    self.save(None);
                }
                if (self.syncing || self.auto_load) && self.status != Status::Loading {
                    self.load(None, Box::new(|_| {}));
                }
                self.next_announce = Some(Instant::now() + every);
            }
        }
    }

    /// Fails pending requests and stops; from here on nothing is sent (`send`, `request`,
    /// `load` and `save` refuse), so the continuations cannot retry, announce or save.
    fn destroy(&mut self) {
        self.destroyed = true;
        self.syncing = false;
        self.shared.syncing.store(false, Ordering::Release);
        self.auto_load = false;
        self.auto_save = false;
        let pending: Vec<Pending> = self.pending.drain().map(|(_, p)| p).collect();
        for p in pending {
            (p.cont)(self, Err("tinybase:3:destroyed".into()));
        }
        self.set_status(Status::Idle);
        self.transport.destroy();
    }

    // ------------------------------------------------------------------ sending

    fn send(&mut self, to: Option<&str>, request_id: Option<&str>, message: Message, body: &str) {
        if self.stopped() {
            return;
        }
        self.shared.sends.fetch_add(1, Ordering::AcqRel);
        if let Some(hook) = &self.options.on_send {
            hook(to, request_id, message, body);
        }
        self.transport.send(to, &payload(request_id, message, body));
    }

    pub(super) fn request(&mut self, to: Option<String>, message: Message, body: &str, tx: &str, cont: Cont) {
        if self.stopped() {
            cont(self, Err("tinybase:3:destroyed".into()));
            return;
        }
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
        match parse_payload(text) {
            Ok(received) => self.receive_parsed(from, received),
            Err(_) => self.ignored("tinybase:14"),
        }
    }

    fn receive_parsed(&mut self, from: &str, received: Received) {
        if self.destroyed {
            return;
        }
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
        match result {
            Ok(()) => {}
            // TinyBase's HLC error; any other refusal means the message's content was invalid.
            Err(e @ crate::error::Error::InvalidHlc(_)) => self.ignored(&format!("tinybase:13:{e}")),
            Err(e) => self.ignored(&format!("tinybase:14:{e}")),
        }
    }

    // ------------------------------------------------------------------ load and save

    fn load(&mut self, initial: Option<String>, then: Then) {
        if self.status == Status::Saving || self.stopped() {
            then(self);
            return;
        }
        self.set_status(Status::Loading);
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
                w.set_status(Status::Idle);
                // What was committed meanwhile, coalesced: peers pull the differences.
                if std::mem::take(&mut w.unsent) && w.auto_save {
                    w.save(None);
                }
                if std::mem::take(&mut w.reload) && (w.syncing || w.auto_load) {
                    w.load(None, Box::new(|_| {}));
                }
                then(w);
            }),
        );
    }

    fn set_default(&mut self, initial: &str) {
        if let Err(e) = self.store.set_default_content_json(initial) {
            // TinyBase's content error.
            self.ignored(&format!("tinybase:1:{e}"));
        }
    }

    fn save(&mut self, changes: Option<String>) {
        if self.stopped() {
            return;
        }
        if self.status == Status::Loading {
            // Only a load's pull spans messages: a local transaction waits for its end.
            self.unsent |= changes.is_some();
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
}
