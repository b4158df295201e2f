//! The synchronizer's worker thread: its inbox loop, receiving, sending, requests and their
//! timeouts, load and save. The pull procedure is in `pull.rs`.

use super::message::{parse_payload, payload, scan_payload, Message, Received};
use super::{ConnectionState, Status, SyncState, SyncStatus, SynchronizerOptions, Transport, TransportEvent, MAX_PENDING_REQUESTS};
use crate::mergeable::parse::{parse_diff_body, parse_table_diff_body};
use crate::mergeable::wire::{MergeIn, StampIn};
use crate::mergeable::MergeableStore;
use crate::value::{parse_json, to_json_string};
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

pub(super) type Cont = Box<dyn FnOnce(&mut Worker, std::result::Result<(Body, String), String>) + Send>;
pub(super) type Done = Box<dyn FnOnce(&mut Worker, std::result::Result<Body, String>) + Send>;

/// A received body (or the changes a pull collects): a JSON tree, or a diff read straight from
/// the payload's text, which saves building and walking a tree of a multi-megabyte diff.
pub(super) enum Body {
    Json(Json),
    Parsed(Box<Parsed>),
}

/// A diff read from its payload's text, valid as `parse_payload` then `parse_merge_in` would find
/// it, bar the five-minute future check (made when it is applied, as the reference path does).
pub(super) struct Parsed {
    input: MergeIn,
    /// The latest HLC time in it.
    max_time: Option<u64>,
    /// The payload, and where in it is what the reference path reads: a ContentDiff's body, or a
    /// table diff's tables.
    text: String,
    range: std::ops::Range<usize>,
    /// A table diff's tables: the changes are `[tables, [{}], 1]`.
    tables_only: bool,
}

impl Parsed {
    fn json(&self) -> Json {
        // The text was checked as valid JSON already.
        parse_json(&self.text[self.range.clone()]).unwrap_or(Json::Null)
    }

    /// The changes as the reference path reads them.
    fn changes_json(&self) -> Json {
        if self.tables_only {
            Json::Array(vec![self.json(), Json::Array(vec![Json::Object(Map::new())]), Json::from(1)])
        } else {
            self.json()
        }
    }

    /// A table diff's tables as a tree.
    pub(super) fn tables_json(&self) -> Json {
        self.json()
    }

    pub(super) fn is_table_diff(&self) -> bool {
        self.tables_only
    }
}

impl Body {
    /// The body as a tree (a table diff: `[tables, {}]`).
    pub(super) fn into_json(self) -> Json {
        match self {
            Body::Json(j) => j,
            Body::Parsed(p) if p.tables_only => Json::Array(vec![p.json(), Json::Object(Map::new())]),
            Body::Parsed(p) => p.json(),
        }
    }
}
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
            Work::Receive(from, text) => self.receive(&from, text),
            Work::Parsed(from, received) => self.receive_parsed(&from, received.request_id, received.message, Body::Json(received.body)),
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

    fn receive(&mut self, from: &str, text: String) {
        if self.destroyed {
            return;
        }
        match self.read_diff(text) {
            Ok((request_id, message, body)) => self.receive_parsed(from, request_id, message, body),
            Err(text) => match parse_payload(&text) {
                Ok(Received { request_id, message, body }) => self.receive_parsed(from, request_id, message, Body::Json(body)),
                Err(_) => self.ignored("tinybase:14"),
            },
        }
    }

    /// A ContentDiff, or a table diff `[tables, {}]` answering our GetTableDiff, read straight
    /// from its text; anything else (and everything when an on_receive hook wants the body's
    /// text as the tree prints it) is handed back for `parse_payload`.
    fn read_diff(&self, text: String) -> std::result::Result<(Option<String>, Message, Body), String> {
        if self.options.on_receive.is_some() {
            return Err(text);
        }
        let Some((request_id, message, range)) = scan_payload(&text) else { return Err(text) };
        let body = &text[range.clone()];
        let parsed = match message {
            Message::ContentDiff => parse_diff_body(body).map(|(input, max_time)| (input, max_time, range, false)),
            // Also when nothing waits for it any more (it timed out): it is only checked, then.
            Message::Response if request_id.as_ref().and_then(|id| self.pending.get(id)).is_none_or(|p| p.message == Message::GetTableDiff) => {
                parse_table_diff_body(body).map(|(tables, max_time, r)| {
                    let values = StampIn { thing: Default::default(), hlc: crate::hlc::Hlc::EMPTY };
                    (MergeIn { tables, values }, max_time, range.start + r.start..range.start + r.end, true)
                })
            }
            _ => None,
        };
        match parsed {
            Some((input, max_time, range, tables_only)) => {
                Ok((request_id, message, Body::Parsed(Box::new(Parsed { input, max_time, text, range, tables_only }))))
            }
            None => Err(text),
        }
    }

    fn receive_parsed(&mut self, from: &str, request_id: Option<String>, message: Message, body: Body) {
        if self.destroyed {
            return;
        }
        let auto_loading = self.syncing || self.auto_load || self.shared.syncing.load(Ordering::Acquire);
        self.shared.receives.fetch_add(1, Ordering::AcqRel);
        // A valid message from a peer: the link works again.
        self.last_error = None;
        if let Some(hook) = &self.options.on_receive {
            let text = match &body {
                Body::Json(j) => to_json_string(j),
                Body::Parsed(p) => to_json_string(&p.json()),
            };
            hook(Some(from), request_id.as_deref(), message, &text);
        }
        let store = self.store.clone();
        let body_text = || match &body {
            Body::Json(j) => to_json_string(j),
            Body::Parsed(p) => to_json_string(&p.json()),
        };
        let response = match message {
            Message::Response => {
                if let Some(id) = &request_id {
                    let matches = self.pending.get(id).is_some_and(|p| p.to.as_deref().is_none_or(|to| to == from));
                    if matches {
                        if let Some(p) = self.pending.remove(id) {
                            (p.cont)(self, Ok((body, from.to_string())));
                        }
                    }
                }
                return;
            }
            Message::ContentHashes if auto_loading => {
                let tx = request_id.clone().unwrap_or_else(|| crate::util::random_id(11));
                self.pull(
                    Some(from.to_string()),
                    Some(body.into_json()),
                    tx,
                    Box::new(|w: &mut Worker, result| match result {
                        Ok(changes) => {
                            w.set_status(Status::Loading);
                            w.apply(changes);
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
                self.apply(body);
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
            self.send(Some(from), request_id.as_deref(), Message::Response, &response);
        }
    }

    /// Applies changes from peers through the wire-form path; they are not echoed.
    fn apply(&mut self, changes: Body) {
        let input = match changes {
            // Without the trailing 1, TinyBase takes the body for full content, which needs
            // hashes that no valid protocol message carries: it is ignored, silently.
            Body::Json(changes) if changes.as_array().is_none_or(|a| a.len() != 3) => return,
            Body::Json(changes) => Err(changes),
            // An HLC too far ahead: the reference path reports which.
            Body::Parsed(p) if p.max_time.is_some_and(|t| t as f64 > self.store.now() + crate::hlc::HLC_MAX_FUTURE_OFFSET) => Err(p.changes_json()),
            Body::Parsed(p) => Ok(p.input),
        };
        APPLYING.with(|a| a.set(self.id));
        let result = match input {
            Ok(input) => self.store.apply_merge_in(input),
            Err(changes) => self.store.apply_mergeable_changes_value(&changes),
        };
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
                        let empty = match &changes {
                            Body::Json(changes) => {
                                changes.get(0).and_then(|t| t.get(0)).is_some_and(is_empty_obj)
                                    && changes.get(1).and_then(|v| v.get(0)).is_some_and(is_empty_obj)
                            }
                            Body::Parsed(p) => p.input.tables.thing.is_empty() && p.input.values.thing.is_empty(),
                        };
                        if !empty {
                            w.apply(changes);
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

    /// Default content is part of the load, as in TinyBase: it is not sent as a ContentDiff
    /// (which, queued behind the load, would race the caller's next step); an auto-save that
    /// is already on announces it through the hashes once the load ends.
    fn set_default(&mut self, initial: &str) {
        APPLYING.with(|a| a.set(self.id));
        let result = self.store.set_default_content_json(initial);
        APPLYING.with(|a| a.set(0));
        match result {
            Ok(()) => self.unsent = true,
            // TinyBase's content error.
            Err(e) => self.ignored(&format!("tinybase:1:{e}")),
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
