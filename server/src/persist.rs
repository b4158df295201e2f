//! Where rooms are kept (`--store`): the choice of storage, and each loaded room's
//! [`Persister`] over it.
//!
//! * **file** (the default, with a data folder): one file per room in TinyBase's file format
//!   ([`crate::files::room_file_name`]). A whole-content storage: the server saves a room once its
//!   changes pause for the save delay (at least every 4 delays while they go on), so a busy room
//!   is rewritten a few times a second at most rather than after every transaction.
//! * **sqlite**: one incremental SQLite database per room in the data folder
//!   ([`crate::files::room_database_name`]). The persister's auto-save writes each committed
//!   transaction as one SQLite transaction, at a cost that does not grow with the room: no save
//!   delay, durable as soon as it commits. One database per room rather than one for all: the
//!   incremental schema keeps one store per database (as TinyBase's layout does); SQLite has one
//!   writer per database, so busy rooms never wait on each other's commits; a corrupt database
//!   takes down one room and is kept and moved aside on its own; rooms load and unload, and are
//!   backed up or deleted, file by file.
//! * **postgres**: one PostgreSQL database for every room (rooms as keys), shared by any number
//!   of server processes. Auto-save writes each transaction; auto-load merges what another
//!   server writes to a room both have loaded, so their clients see each other's changes, and a
//!   room moves between servers by unloading on one and loading on the other.

use crate::server::Shared;
use parking_lot::Mutex;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tinybase::persist::{Durable, Persister, PersisterOptions};
use tinybase::MergeableStore;

/// How long a save at unload or shutdown waits for the auto-save's queue to be durable.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Where rooms are kept ([`crate::ServerOptions::store`]).
#[derive(Clone, PartialEq, Eq, Default)]
pub enum StoreKind {
    /// One file per room in the data folder, TinyBase's file format (the default).
    #[default]
    File,
    /// One incremental SQLite database per room in the data folder.
    Sqlite,
    /// One PostgreSQL database (rooms as keys), which several servers may share.
    Postgres {
        /// A `postgres://` or `postgresql://` URL, or a `key=value` connection string.
        dsn: String,
    },
}

impl std::fmt::Debug for StoreKind {
    // The DSN may hold a password: never in logs or panics.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreKind::File => f.write_str("File"),
            StoreKind::Sqlite => f.write_str("Sqlite"),
            StoreKind::Postgres { dsn } => write!(f, "Postgres({})", redact_dsn(dsn)),
        }
    }
}

impl StoreKind {
    /// Parses `--store`: `file`, `sqlite`, a `postgres://` / `postgresql://` URL, or a libpq
    /// `key=value` connection string (`host=... dbname=...`).
    pub fn parse(text: &str) -> Result<StoreKind, String> {
        match text {
            "file" => Ok(StoreKind::File),
            "sqlite" => Ok(StoreKind::Sqlite),
            dsn if dsn.starts_with("postgres://") || dsn.starts_with("postgresql://") || (dsn.contains('=') && !dsn.contains("://")) => {
                Ok(StoreKind::Postgres { dsn: dsn.to_string() })
            }
            other => Err(format!("--store is file, sqlite or a postgres:// URL, not {:?}", redact_dsn(other))),
        }
    }

    /// Whether rooms are kept in the data folder (file and sqlite) rather than a database server.
    pub fn uses_data_dir(&self) -> bool {
        !matches!(self, StoreKind::Postgres { .. })
    }

    /// Whether each transaction is written as it commits (sqlite, postgres) rather than the whole
    /// room after the save delay (file).
    pub fn is_incremental(&self) -> bool {
        !matches!(self, StoreKind::File)
    }

    /// Where rooms are kept, for the start-up line (a DSN's password left out); None: in memory.
    pub fn describe(&self, data_dir: Option<&Path>) -> Option<String> {
        match (self, data_dir) {
            (StoreKind::Postgres { dsn }, _) => Some(format!("PostgreSQL {}", redact_dsn(dsn))),
            (StoreKind::File, Some(dir)) => Some(format!("{} (one file per room)", dir.display())),
            (StoreKind::Sqlite, Some(dir)) => Some(format!("{} (one SQLite database per room)", dir.display())),
            (_, None) => None,
        }
    }
}

/// A DSN with its password replaced by `***` (URL user info, or a `password=` parameter).
pub fn redact_dsn(dsn: &str) -> String {
    let mut out = dsn.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest = scheme_end + 3;
        let authority_end = out[rest..].find(['/', '?']).map_or(out.len(), |i| rest + i);
        if let Some(at) = out[rest..authority_end].rfind('@') {
            let userinfo = &out[rest..rest + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest + colon + 1..rest + at, "***");
            }
        }
    }
    if let Some(at) = out.find("password=") {
        let start = at + "password=".len();
        let end = out[start..].find(['&', ' ']).map_or(out.len(), |i| start + i);
        out.replace_range(start..end, "***");
    }
    out
}

/// Checks at start-up that the store can be reached (a PostgreSQL server that refuses the
/// connection is an error then, not at each room's load).
pub(crate) fn check(kind: &StoreKind) -> std::io::Result<()> {
    if let StoreKind::Postgres { dsn } = kind {
        // The schema is created here once, rather than raced for by the first rooms.
        tinybase::persist::postgres::PostgresStorage::connect(dsn, "")
            .map_err(|e| std::io::Error::other(format!("cannot use PostgreSQL {}: {e}", redact_dsn(dsn))))?;
    }
    Ok(())
}

/// A loaded room's persister and the server's bookkeeping around it.
pub(crate) struct RoomPersister {
    pub(crate) persister: Persister,
    /// Auto-saving (incremental storages): each transaction is written as it commits.
    auto: bool,
    /// Auto-loading (PostgreSQL): other servers write to this room too.
    shared: bool,
    /// The content hashes last made durable by a whole-content save (file; for auto-saving
    /// storages, the content written whole when auto-save started).
    saved: Mutex<(u32, u32)>,
    /// One save at a time per room.
    saving: AtomicBool,
}

/// How a room's persister opens, for the log.
pub(crate) enum Opened {
    /// Nothing kept: the server keeps rooms in memory.
    Memory,
    /// Loaded (or nothing stored yet).
    Kept(RoomPersister),
    /// The stored room cannot be loaded (or the storage cannot be opened): the room runs in
    /// memory, and its stored data is left exactly as it is.
    Failed(String),
}

/// Opens and loads a room's persister into `store` (blocking), and starts its auto-save (and,
/// for PostgreSQL, auto-load).
pub(crate) fn open(shared: &Arc<Shared>, room: &str, store: &MergeableStore) -> Opened {
    let options = &shared.options;
    let persister_options = persister_options(shared, room);
    let created = match (&options.store, &options.data_dir) {
        (StoreKind::Postgres { dsn }, _) => tinybase::persist::postgres::create_postgres_persister(store, dsn, room, persister_options),
        (_, None) => return Opened::Memory,
        (StoreKind::File, Some(dir)) => {
            tinybase::persist::file::create_file_persister(store, dir.join(crate::files::room_file_name(room)), persister_options)
        }
        (StoreKind::Sqlite, Some(dir)) => {
            let config = tinybase::persist::sqlite::SqliteConfig {
                mode: tinybase::persist::sqlite::SqliteMode::Incremental,
                ..Default::default()
            };
            tinybase::persist::sqlite::create_sqlite_persister(store, dir.join(crate::files::room_database_name(room)), config, persister_options)
        }
    };
    let persister = match created {
        Ok(p) => p,
        Err(e) => return Opened::Failed(format!("cannot open its {}: {e}", options.store.describe(options.data_dir.as_deref()).unwrap_or_default())),
    };
    let auto = options.store.is_incremental();
    let loaded = match options.store {
        // Auto-load loads first, then follows what other servers write.
        StoreKind::Postgres { .. } => persister.start_auto_load(),
        _ => persister.load().map(drop),
    };
    let started = loaded.and_then(|()| if auto { persister.start_auto_save() } else { Ok(()) });
    if let Err(e) = started {
        let why = format!("cannot load {}: {e}", persister.describe());
        persister.destroy();
        return Opened::Failed(why);
    }
    Opened::Kept(RoomPersister {
        persister,
        auto,
        shared: matches!(options.store, StoreKind::Postgres { .. }),
        saved: Mutex::new(store.get_mergeable_content_hashes()),
        saving: AtomicBool::new(false),
    })
}

fn persister_options(shared: &Arc<Shared>, room: &str) -> PersisterOptions {
    let metrics = shared.metrics.clone();
    // Weak: the persister lives inside the server's rooms; a strong reference would be a cycle.
    let weak: Weak<Shared> = Arc::downgrade(shared);
    let room = room.to_string();
    // Set from an error until the next durable write: a database that is down fails every
    // retry and every poll, and is logged once for all of them.
    let failing = Arc::new(AtomicBool::new(false));
    let recovered = failing.clone();
    PersisterOptions {
        on_durable: Some(Arc::new(move |_: &Durable| {
            recovered.store(false, Ordering::Release);
            metrics.saved(true);
        })),
        on_ignored_error: Some(Arc::new(move |e: &tinybase::Error| {
            let first = !failing.swap(true, Ordering::AcqRel);
            if let Some(shared) = weak.upgrade() {
                shared.metrics.saved(false);
                if first {
                    // The persister keeps what failed queued and tries again.
                    shared.log_error(&format!("room {room:?}: {e}; retrying"));
                }
            }
        })),
        ..PersisterOptions::default()
    }
}

impl RoomPersister {
    /// Makes what the room holds durable (blocking). Whole-content storages save when the
    /// content changed since the last save; with `wait`, auto-saving ones wait until every
    /// transaction is durable (they retry failed writes themselves). When
    /// another save is running: returns at once, or with `wait`, waits for it and saves after it
    /// (so that nothing committed before the call is left out).
    pub(crate) fn save(&self, shared: &Shared, room: &str, store: &MergeableStore, wait: bool) {
        while self.saving.swap(true, Ordering::AcqRel) {
            if !wait {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if self.auto {
            if wait {
                self.flush(shared, room);
            }
        } else {
            let hashes = store.get_mergeable_content_hashes();
            if hashes != *self.saved.lock() {
                match self.persister.save() {
                    Ok(()) => *self.saved.lock() = hashes,
                    Err(e) => {
                        shared.metrics.saved(false);
                        shared.log_error(&format!("room {room:?}: cannot save {}: {e}", self.persister.describe()));
                    }
                }
            }
        }
        self.saving.store(false, Ordering::Release);
    }

    /// Auto-saving storages: waits until every transaction is durable.
    fn flush(&self, shared: &Shared, room: &str) {
        match self.persister.flush(FLUSH_TIMEOUT) {
            Ok(true) => {}
            Ok(false) => shared.log_error(&format!("room {room:?}: {} not durable after {FLUSH_TIMEOUT:?}", self.persister.describe())),
            // Counted and logged by the error hook when it happened.
            Err(_) => {}
        }
    }

    /// The last save before the persister is destroyed (blocking). Auto-saving storages also
    /// write the whole room once if it changed since it loaded: a merge can bring stamps that
    /// change no visible value (the deletion of a cell this store never had), which a
    /// transaction's changes leave out, as TinyBase's `getTransactionMergeableChanges` does, so
    /// no incremental write carries them.
    pub(crate) fn finish(&self, shared: &Shared, room: &str, store: &MergeableStore) {
        self.save(shared, room, store, true);
        if self.auto && store.get_mergeable_content_hashes() != *self.saved.lock() {
            while self.saving.swap(true, Ordering::AcqRel) {
                std::thread::sleep(Duration::from_millis(2));
            }
            if let Err(e) = self.persister.save() {
                shared.metrics.saved(false);
                shared.log_error(&format!("room {room:?}: cannot save {}: {e}", self.persister.describe()));
            }
            self.saving.store(false, Ordering::Release);
        }
    }

    /// Whether the room holds something not yet durable.
    pub(crate) fn dirty(&self, store: &MergeableStore) -> bool {
        if !self.auto {
            return store.get_mergeable_content_hashes() != *self.saved.lock();
        }
        // An error (reported by the hook already) means something is still to be written.
        !matches!(self.persister.flush(Duration::ZERO), Ok(true))
    }

    /// Whether the server's ticker saves this room after the save delay (whole-content
    /// storages; auto-saving ones write each transaction themselves).
    pub(crate) fn debounced(&self) -> bool {
        !self.auto
    }

    /// Whether other servers write to this room (PostgreSQL): what they wrote is merged in
    /// by the persister, and the room's clients must hear of it.
    pub(crate) fn is_shared(&self) -> bool {
        self.shared
    }

    /// Whether a save is running.
    pub(crate) fn is_saving(&self) -> bool {
        self.saving.load(Ordering::Acquire)
    }

    /// The content hashes last saved whole (debounced storages).
    pub(crate) fn saved_hashes(&self) -> (u32, u32) {
        *self.saved.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_flags_parse_and_passwords_never_show() {
        assert_eq!(StoreKind::parse("file"), Ok(StoreKind::File));
        assert_eq!(StoreKind::parse("sqlite"), Ok(StoreKind::Sqlite));
        let url = "postgresql://tb:s3cret@db.example:5433/rooms?sslmode=disable";
        assert_eq!(StoreKind::parse(url), Ok(StoreKind::Postgres { dsn: url.into() }));
        let shown = format!("{:?} {}", StoreKind::parse(url).unwrap(), StoreKind::parse(url).unwrap().describe(None).unwrap());
        assert!(!shown.contains("s3cret") && shown.contains("tb:***@db.example:5433/rooms"), "{shown}");
        assert_eq!(redact_dsn("postgres://u@h/d?password=x&a=b"), "postgres://u@h/d?password=***&a=b");
        assert_eq!(redact_dsn("postgres://h/d"), "postgres://h/d");
        let e = StoreKind::parse("mysql://u:pw@h/d").unwrap_err();
        assert!(!e.contains("pw@"), "{e}");
        assert!(StoreKind::parse("SQLite").is_err());
        let kv = "host=127.0.0.1 port=5432 user=tb password=pw dbname=rooms";
        assert_eq!(StoreKind::parse(kv), Ok(StoreKind::Postgres { dsn: kv.into() }));
        assert_eq!(redact_dsn(kv), "host=127.0.0.1 port=5432 user=tb password=*** dbname=rooms");
    }
}
