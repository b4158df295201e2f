//! Rooms: the clients sharing a path, the relay rules (PROTOCOL.md 8.1), and the room's server
//! store (client id `S`, 8.2) with its persister.

use crate::outbox::Outbox;
use crate::persist::{self, Opened, RoomPersister};
use crate::server::Shared;
use axum::extract::ws::Utf8Bytes;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;
use tinybase::sync::message::{self, Message};
use tinybase::sync::ws::codec::{self, Payload};
use tinybase::sync::{Inlet, Synchronizer, SynchronizerOptions, Transport};
use tinybase::MergeableStore;

/// At most this many client payloads wait for a room's server store to be ready (8.2).
pub(crate) const MAX_PENDING_PAYLOADS: usize = 1000;
/// At most this many bytes of them.
pub(crate) const MAX_PENDING_BYTES: usize = 16 << 20;

/// One client's membership of a room.
pub(crate) struct Member {
    pub(crate) outbox: Arc<Outbox>,
    /// The channel id a multiplexed client reaches this room by; None for a legacy client.
    pub(crate) channel: Option<Arc<str>>,
    /// Whether what it sends may change anyone (PROTOCOL.md 12.9).
    pub(crate) read_only: bool,
}

struct Pending {
    from: Arc<str>,
    payload: Payload,
}

pub(crate) struct RoomInner {
    pub(crate) members: HashMap<Arc<str>, Member>,
    /// Client payloads waiting for the server store (8.2).
    pending: Vec<Pending>,
    pending_bytes: usize,
    /// When the last client left (for unloading after `room_idle`).
    pub(crate) empty_since: Option<Instant>,
}

/// A room's server store: a MergeableStore synchronized as client `S`, and its persister.
pub(crate) struct RoomStore {
    pub(crate) store: MergeableStore,
    pub(crate) sync: Synchronizer,
    /// Where client payloads go in, already parsed.
    inlet: Inlet,
    /// The room's persister, when rooms are kept and the room's stored data was loaded (or
    /// there was none): stored data that could not be loaded is never written over
    /// (PROTOCOL.md 12.8).
    pub(crate) persister: Option<RoomPersister>,
    /// For debouncing saves: the hashes seen at the last check, when they last changed, and
    /// since when the content has differed from the file.
    pub(crate) seen: Mutex<Seen>,
    /// Set when the synchronizer's inbox was full and refused a client payload: the saver then
    /// has it pull again from a client once it has caught up.
    pub(crate) missed: AtomicBool,
}

/// What the saver saw of a room's content at its last check.
pub(crate) struct Seen {
    pub(crate) hashes: (u32, u32),
    pub(crate) changed: Instant,
    pub(crate) unsaved_since: Option<Instant>,
    /// The hashes the room's clients were last told of (rooms shared between servers).
    pub(crate) announced: (u32, u32),
}

/// A room: the clients on one path.
pub(crate) struct Room {
    pub(crate) path: Arc<str>,
    pub(crate) inner: RwLock<RoomInner>,
    ready: AtomicBool,
    pub(crate) store: std::sync::OnceLock<RoomStore>,
    /// Set when the room was unloaded; a late store initialization then destroys itself.
    pub(crate) gone: AtomicBool,
    fragment_size: Option<usize>,
}

/// A relay frame per recipient kind: the legacy frame, and multiplexed envelopes by channel id.
struct Frames {
    legacy: Vec<Utf8Bytes>,
    mux: Vec<(Arc<str>, Vec<Utf8Bytes>)>,
}

impl Frames {
    fn new(legacy: Vec<String>) -> Frames {
        Frames { legacy: legacy.into_iter().map(Utf8Bytes::from).collect(), mux: Vec::new() }
    }

    fn send(&mut self, member: &Member) {
        let frames = match &member.channel {
            None => &self.legacy,
            Some(channel) => {
                let at = match self.mux.iter().position(|(c, _)| c == channel) {
                    Some(at) => at,
                    None => {
                        let framed = self.legacy.iter().map(|f| Utf8Bytes::from(codec::data_frame(channel, f))).collect();
                        self.mux.push((channel.clone(), framed));
                        self.mux.len() - 1
                    }
                };
                &self.mux[at].1
            }
        };
        for frame in frames {
            if !member.outbox.send(frame.clone()) {
                break;
            }
        }
    }
}

impl Room {
    pub(crate) fn new(path: Arc<str>, with_store: bool, fragment_size: Option<usize>) -> Room {
        Room {
            path,
            inner: RwLock::new(RoomInner { members: HashMap::new(), pending: Vec::new(), pending_bytes: 0, empty_since: None }),
            ready: AtomicBool::new(!with_store),
            store: std::sync::OnceLock::new(),
            gone: AtomicBool::new(false),
            fragment_size,
        }
    }

    /// Whether client messages flow (the server store, if any, has started).
    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Relays a validated payload from member `from` (8.1), or keeps it until the room is ready.
    /// Err: the sender must be closed (too much waiting for the server store).
    pub(crate) fn relay(&self, from: &Arc<str>, payload: Payload) -> Result<(), codec::Close> {
        if !self.is_ready() {
            let mut inner = self.inner.write();
            if !self.is_ready() {
                let bytes = payload.remainder.len();
                // A newer ContentHashes announcement from the same client to the same target
                // makes the waiting one pointless (8.2).
                if payload.received.message == Message::ContentHashes {
                    let same = |p: &Pending| {
                        p.from == *from && p.payload.client_id == payload.client_id && p.payload.received.message == Message::ContentHashes
                    };
                    if let Some(at) = inner.pending.iter().position(same) {
                        let old = inner.pending.remove(at);
                        inner.pending_bytes -= old.payload.remainder.len();
                    }
                }
                if inner.pending.len() >= MAX_PENDING_PAYLOADS || inner.pending_bytes + bytes > MAX_PENDING_BYTES {
                    return Err(codec::Close::overload("server"));
                }
                inner.pending_bytes += bytes;
                inner.pending.push(Pending { from: from.clone(), payload });
                return Ok(());
            }
            drop(inner);
        }
        let inner = self.inner.read();
        self.deliver(&inner, from, payload);
        Ok(())
    }

    fn deliver(&self, inner: &RoomInner, from: &Arc<str>, payload: Payload) {
        let Some(sender) = inner.members.get(from) else { return };
        // A read-only client's requests go through; its answers, announcements and changes
        // never reach anyone (PROTOCOL.md 12.9).
        if sender.read_only && matches!(payload.received.message, Message::Response | Message::ContentHashes | Message::ContentDiff) {
            return;
        }
        let to = payload.client_id.as_str();
        if to == codec::SERVER_CLIENT_ID {
            self.to_store(from, payload);
            return;
        }
        let frames = if payload.fragments.is_empty() {
            vec![message::frame(Some(from), &payload.remainder)]
        } else {
            payload.fragments.iter().map(|f| message::frame(Some(from), f)).collect()
        };
        let mut frames = Frames::new(frames);
        if to.is_empty() {
            for (id, member) in &inner.members {
                if id != from {
                    frames.send(member);
                }
            }
            self.to_store(from, payload);
        } else if let Some(member) = inner.members.get(to) {
            frames.send(member);
        }
    }

    /// Hands a payload to the room's store as it was parsed on arrival (never parsed again).
    fn to_store(&self, from: &str, payload: Payload) {
        if let Some(rs) = self.store.get() {
            // A full inbox drops the payload; a pull once the store has caught up repairs it.
            if rs.inlet.receive_parsed(from, payload.remainder.len(), payload.received).is_err() {
                rs.missed.store(true, Ordering::Release);
            }
        }
    }

    /// Marks the room ready: the payloads kept meanwhile are relayed in order.
    pub(crate) fn set_ready(&self) {
        let mut inner = self.inner.write();
        let pending = std::mem::take(&mut inner.pending);
        inner.pending_bytes = 0;
        for p in pending {
            self.deliver(&inner, &p.from, p.payload);
        }
        self.ready.store(true, Ordering::Release);
    }

    /// Sends the server store's payload to one member or all (as client `S`).
    fn send_from_store(&self, to: Option<&str>, payload: &str) {
        let mut frames = Frames::new(codec::fragment(codec::SERVER_CLIENT_ID, payload, self.fragment_size));
        let inner = self.inner.read();
        match to {
            None => inner.members.values().for_each(|m| frames.send(m)),
            Some(to) => {
                if let Some(m) = inner.members.get(to) {
                    frames.send(m);
                }
            }
        }
    }
}

/// The server store's transport: payloads go to the room's clients as client `S`.
struct RoomTransport {
    room: Weak<Room>,
}

impl Transport for RoomTransport {
    fn send(&self, to: Option<&str>, payload: &str) {
        if let Some(room) = self.room.upgrade() {
            room.send_from_store(to, payload);
        }
    }
}

/// Starts a room's server store (blocking: reads the room's stored data): loads it, then
/// starts syncing as client `S` (8.2), then marks the room ready.
pub(crate) fn start_store(shared: &Arc<Shared>, room: &Arc<Room>) {
    let store = MergeableStore::new(None);
    // Loaded (and auto-saving) before the synchronizer exists: every change a client makes
    // is then persisted.
    let persister = match persist::open(shared, &room.path, &store) {
        Opened::Memory => None,
        Opened::Kept(p) => Some(p),
        Opened::Failed(why) => {
            shared.metrics.saved(false);
            shared.log_error(&format!("room {:?}: {why}; the room runs in memory, its stored data is kept as it is", room.path));
            None
        }
    };
    let options = SynchronizerOptions {
        request_timeout: shared.options.request_timeout,
        anti_entropy: shared.options.anti_entropy,
        ..SynchronizerOptions::default()
    };
    let sync = Synchronizer::new(&store, Arc::new(RoomTransport { room: Arc::downgrade(room) }), options);
    let hashes = store.get_mergeable_content_hashes();
    // Queued first, so it comes before any client payload handed over from now on.
    let _ = sync.start_sync_async(None);
    let rs = RoomStore {
        store,
        inlet: sync.inlet(),
        sync,
        persister,
        seen: Mutex::new(Seen { hashes, changed: Instant::now(), unsaved_since: None, announced: hashes }),
        missed: AtomicBool::new(false),
    };
    if room.store.set(rs).is_err() {
        return;
    }
    room.set_ready();
    if room.gone.load(Ordering::Acquire) {
        // Unloaded (shutdown) while loading: what clients sent meanwhile is kept too.
        if let Some(rs) = room.store.get() {
            rs.close(shared, &room.path);
        }
    }
}

impl RoomStore {
    /// Makes what the room holds durable (blocking); see [`RoomPersister::save`].
    pub(crate) fn save(&self, shared: &Shared, room: &str, wait: bool) {
        if let Some(p) = &self.persister {
            p.save(shared, room, &self.store, wait);
        }
    }

    /// Whether the room holds something not yet durable.
    pub(crate) fn dirty(&self) -> bool {
        self.persister.as_ref().is_some_and(|p| p.dirty(&self.store))
    }

    /// Whether a save is running.
    pub(crate) fn is_saving(&self) -> bool {
        self.persister.as_ref().is_some_and(RoomPersister::is_saving)
    }

    /// Stops the room store for good (blocking): the synchronizer first, so that nothing
    /// changes after the last save, then the persister once that save is durable.
    pub(crate) fn close(&self, shared: &Shared, room: &str) {
        self.sync.destroy();
        if let Some(p) = &self.persister {
            p.finish(shared, room, &self.store);
            p.persister.destroy();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn payload(frame: &str) -> Payload {
        codec::Reassembler::new(Duration::from_secs(1)).push(frame, Instant::now()).unwrap().unwrap()
    }

    #[test]
    fn waiting_payloads_are_bounded_and_announcements_replace_each_other() {
        let room = Room::new("r".into(), true, None);
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        room.relay(&a, payload("\n[\"t1\",2,[1,2]]")).unwrap();
        room.relay(&b, payload("\n[\"t2\",2,[1,2]]")).unwrap();
        room.relay(&a, payload("\n[\"t3\",1,\"\"]")).unwrap();
        room.relay(&a, payload("\n[\"t4\",2,[3,4]]")).unwrap();
        let ids: Vec<Option<String>> = room.inner.read().pending.iter().map(|p| p.payload.received.request_id.clone()).collect();
        assert_eq!(ids, ["t2", "t3", "t4"].map(|s| Some(s.to_string())));
        for i in 3..MAX_PENDING_PAYLOADS {
            room.relay(&b, payload(&format!("\n[\"x{i}\",1,\"\"]"))).unwrap();
        }
        assert_eq!(room.relay(&b, payload("\n[\"y\",1,\"\"]")), Err(codec::Close::overload("server")));
    }

    #[test]
    fn the_store_takes_payloads_as_parsed_on_arrival() {
        // The text of this payload is garbage: only its parsed form (the one the connection
        // validated) can reach the store.
        let room = Arc::new(Room::new("r".into(), true, None));
        let store = MergeableStore::new(None);
        let sync = Synchronizer::new(&store, Arc::new(RoomTransport { room: Arc::downgrade(&room) }), SynchronizerOptions::default());
        let hashes = store.get_mergeable_content_hashes();
        let _ = sync.start_sync_async(None);
        let rs = RoomStore {
            inlet: sync.inlet(),
            store,
            sync,
            persister: None,
            seen: Mutex::new(Seen { hashes, changed: Instant::now(), unsaved_since: None, announced: hashes }),
            missed: AtomicBool::new(false),
        };
        assert!(room.store.set(rs).is_ok());
        room.set_ready();
        let a: Arc<str> = "a".into();
        let outbox = crate::outbox::Outbox::new(1 << 20, Arc::new(crate::metrics::Metrics::default()));
        room.inner.write().members.insert(a.clone(), Member { outbox, channel: None, read_only: false });
        let diff = "[\"tx2\",3,[[{\"pets\":[{\"fido\":[{\"species\":[\"dog\",\"P7o4uYi----7JQY8\"]}]}]}],[{}],1]]";
        let mut p = payload(&format!("S\n{diff}"));
        p.remainder = "not json".into();
        room.relay(&a, p).unwrap();
        let rs = room.store.get().unwrap();
        assert!(tinybase::sync::wait_until(Duration::from_secs(5), || rs.store.get_encoded_mergeable_content_json().contains("dog")));
        rs.sync.destroy();
    }
}
