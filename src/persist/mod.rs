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
pub mod postgres;
pub mod incremental;
pub mod sqlite;

use crate::error::{Error, Result};
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;

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
    /// A plain Store's content `[tables, values]` (decoded JSON, as `Store::get_content_json`).
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
    _private: (),
}

impl Persister {
    /// A persister of `store` (a plain Store, or a MergeableStore through `Deref`) over
    /// `storage`. Incremental storages need a MergeableStore (`Error::InvalidState` otherwise).
    /// Nothing is read or written until a method is called.
    pub fn new(store: &Store, storage: Box<dyn Storage>, options: PersisterOptions) -> Result<Persister> {
        let _ = (store, storage, options);
        todo!("issue 9: the persister engine")
    }

    /// The store this persister persists.
    pub fn get_store(&self) -> Store {
        todo!()
    }

    /// Names the storage (`file /data/room.json`).
    pub fn describe(&self) -> String {
        todo!()
    }

    /// `load`: merges what is stored into the store (a MergeableStore merges stamps; a plain
    /// Store takes the stored cells and values over its own, keeping those only it has).
    /// `Ok(false)` when nothing is stored yet (the store is left as it is). Unreadable data is
    /// `Err(Error::Corrupt)`, and from then on the persister refuses to save over it until a
    /// load succeeds or [`Persister::move_aside_unreadable`] is called.
    pub fn load(&self) -> Result<bool> {
        todo!()
    }

    /// `save`: writes the whole content (under the storage's cross-process lock; stored data
    /// another process wrote since is merged in first, so neither loses a change) and returns
    /// once it is durable.
    pub fn save(&self) -> Result<()> {
        todo!()
    }

    /// `startAutoLoad`: loads now, then merges whatever another process writes to the storage
    /// (checked every `auto_load_interval`). Returns the first load's error, if any (auto-load
    /// then stays off).
    pub fn start_auto_load(&self) -> Result<()> {
        todo!()
    }

    /// `stopAutoLoad`.
    pub fn stop_auto_load(&self) {
        todo!()
    }

    /// `isAutoLoading`.
    pub fn is_auto_loading(&self) -> bool {
        todo!()
    }

    /// `startAutoSave`: saves now, then after every committed transaction (on the persister's
    /// thread: whole content, coalescing transactions that queued meanwhile, or each
    /// transaction on its own for incremental storages). Refused while stored data could not be
    /// loaded.
    pub fn start_auto_save(&self) -> Result<()> {
        todo!()
    }

    /// `stopAutoSave`: writes what is queued first.
    pub fn stop_auto_save(&self) {
        todo!()
    }

    /// `isAutoSaving`.
    pub fn is_auto_saving(&self) -> bool {
        todo!()
    }

    /// `getStatus`.
    pub fn get_status(&self) -> PersisterStatus {
        todo!()
    }

    /// `getStats`.
    pub fn get_stats(&self) -> PersisterStats {
        todo!()
    }

    /// Waits until every transaction committed before the call is durable (auto-save) or
    /// `timeout` passes: `Ok(true)` when durable. The first auto-save error since the last
    /// call is returned instead.
    pub fn flush(&self, timeout: Duration) -> Result<bool> {
        let _ = timeout;
        todo!()
    }

    /// After a load failed with `Error::Corrupt`: moves the unreadable data aside (see
    /// [`Storage::move_aside`]) so saves may write afresh; returns where it went, or None when
    /// no load has failed.
    pub fn move_aside_unreadable(&self) -> Result<Option<String>> {
        todo!()
    }

    /// `destroy`: stops auto-load and auto-save (writing what is queued), releases the
    /// storage. Later calls fail with `Error::InvalidState`. Idempotent.
    pub fn destroy(&self) {
        todo!()
    }
}
