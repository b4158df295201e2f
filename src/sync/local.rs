//! In-process transports: a local bus (TinyBase's LocalSynchronizer) and named channels
//! (its BroadcastChannelSynchronizer).

use super::{Synchronizer, SynchronizerOptions, Transport};
use crate::mergeable::MergeableStore;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// TinyBase's request timeout for in-process transports.
pub const LOCAL_REQUEST_TIMEOUT: Duration = Duration::from_millis(10);

type Members = Mutex<Vec<(String, Weak<Synchronizer>)>>;

/// An in-process bus: every synchronizer created on it reaches the others. A send picks its
/// recipients when it is made; delivery is asynchronous (each recipient's worker thread).
#[derive(Clone, Default)]
pub struct LocalBus {
    members: Arc<Members>,
}

struct BusTransport {
    /// Keeps the bus (and a named channel) alive while a synchronizer uses it.
    members: Arc<Members>,
    client_id: String,
}

impl Transport for BusTransport {
    fn send(&self, to: Option<&str>, payload: &str) {
        let recipients: Vec<Arc<Synchronizer>> = self
            .members
            .lock()
            .iter()
            .filter(|(id, _)| *id != self.client_id && to.is_none_or(|to| to == id))
            .filter_map(|(_, s)| s.upgrade())
            .collect();
        for r in recipients {
            // A full inbox is reported to its synchronizer's ignored-error hook.
            let _ = r.receive(&self.client_id, payload);
        }
    }

    fn destroy(&self) {
        self.members.lock().retain(|(id, _)| *id != self.client_id);
    }
}

impl LocalBus {
    /// A new, empty bus.
    pub fn new() -> LocalBus {
        LocalBus::default()
    }

    /// Creates a synchronizer for `store` on this bus, with a random 16-character client id
    /// (TinyBase's `createLocalSynchronizer`; request timeout 10 ms unless `options` says
    /// otherwise).
    pub fn create_synchronizer(&self, store: &MergeableStore, options: Option<SynchronizerOptions>) -> Arc<Synchronizer> {
        let client_id = crate::util::random_id(16);
        let options = options.unwrap_or(SynchronizerOptions { request_timeout: LOCAL_REQUEST_TIMEOUT, ..Default::default() });
        let transport = Arc::new(BusTransport { members: self.members.clone(), client_id: client_id.clone() });
        let sync = Arc::new(Synchronizer::new(store, transport, options));
        self.members.lock().push((client_id, Arc::downgrade(&sync)));
        sync
    }

    /// The client ids of the synchronizers on the bus.
    pub fn client_ids(&self) -> Vec<String> {
        self.members.lock().iter().filter(|(_, s)| s.strong_count() > 0).map(|(id, _)| id.clone()).collect()
    }

    /// Waits until every synchronizer on the bus has stayed idle briefly; false on timeout.
    pub fn wait_for_idle(&self, timeout: Duration) -> bool {
        let members = self.members.clone();
        super::wait_until(timeout, move || members.lock().iter().filter_map(|(_, s)| s.upgrade()).all(|s| s.is_idle()))
    }
}

/// Named in-process channels: any number of stores that open the same name sync.
pub struct BroadcastChannel;

static CHANNELS: Mutex<Option<HashMap<String, Weak<Members>>>> = Mutex::new(None);

impl BroadcastChannel {
    /// The bus of the channel `name` (created on first use, kept while anyone uses it).
    pub fn open(name: &str) -> LocalBus {
        let mut channels = CHANNELS.lock();
        let map = channels.get_or_insert_with(HashMap::new);
        map.retain(|_, m| m.strong_count() > 0);
        if let Some(members) = map.get(name).and_then(Weak::upgrade) {
            return LocalBus { members };
        }
        let bus = LocalBus::new();
        map.insert(name.to_string(), Arc::downgrade(&bus.members));
        bus
    }
}
