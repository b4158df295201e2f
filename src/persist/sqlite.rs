//! SQLite persistence (rusqlite with SQLite compiled in), in two modes.
//!
//! **JSON mode** is TinyBase's layout, so a database written by TinyBase's SQLite persisters
//! (`createSqliteWasmPersister`, `createSqlite3Persister`, ... with the default JSON config) loads
//! here and the reverse: one table (`tinybase`, configurable) created as TinyBase creates it,
//! `CREATE TABLE"tinybase"("_id" PRIMARY KEY,"store");`, holding one row `_id = '_'` whose
//! `store` column is the JSON text TinyBase writes: a MergeableStore's wire content with hashes
//! (the same text as its file format), a plain Store's `[tables, values]`. The whole text is
//! rewritten on every save; the database keeps SQLite's default rollback journal (a database
//! file in WAL mode cannot be handed to TinyBase's sqlite-wasm as bytes).
//!
//! **Incremental mode** (beyond TinyBase; MergeableStore only) keeps one row per cell, value and
//! container stamp (the schema of [`incremental`](super::incremental#schema-version-1)), writes each committed
//! transaction as one SQLite transaction that merges it into the stored rows (a few primary-key
//! lookups and upserts through cached statements, so a one-cell save costs the same whatever the
//! store's size, and several processes may write one database), and verifies every hash when it
//! loads. The database is in WAL mode with `synchronous = NORMAL`: what committed survives a
//! killed process; [`SqliteStorage::set_power_loss_safe`] makes it survive a power loss too
//! (see [`SqliteStorage::open`]).
//!
//! Both modes: a save's lock is `BEGIN IMMEDIATE` (it waits for another connection's write up to
//! the lock timeout) and its unlock is `COMMIT`, so a save is durable once unlock returned;
//! auto-load notices other connections' commits through `PRAGMA data_version`. A file that is
//! not a database, a table of the wrong shape, text that is not TinyBase content, a bad hash or
//! an HLC from the far future is `Error::Corrupt`; SQLite failing otherwise is `Error::Io`.

use super::incremental::{self, CellRow, ContainerKind, ContainerRow, Rows, ValueRow};
use super::{Content, Persister, PersisterOptions, Storage};
use crate::error::{Error, Result};
use crate::hash::get_hash;
use crate::store::Store;
use crate::value::to_json_string;
use rusqlite::{params, Connection, ErrorCode, OptionalExtension};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How a SQLite database holds the store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SqliteMode {
    /// TinyBase's layout: one row holding the whole content as JSON.
    #[default]
    Json,
    /// One row per cell, value and container stamp; each transaction saved on its own
    /// (MergeableStore only).
    Incremental,
}

/// Where and how a SQLite database holds the store. The names are TinyBase's
/// `DatabasePersisterConfig` (`storeTableName`, `storeIdColumnName`, `storeColumnName`), used by
/// JSON mode only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqliteConfig {
    /// JSON or incremental.
    pub mode: SqliteMode,
    /// JSON mode: the table (`tinybase`).
    pub store_table_name: String,
    /// JSON mode: the id column (`_id`).
    pub store_id_column_name: String,
    /// JSON mode: the content column (`store`).
    pub store_column_name: String,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        SqliteConfig {
            mode: SqliteMode::Json,
            store_table_name: "tinybase".into(),
            store_id_column_name: "_id".into(),
            store_column_name: "store".into(),
        }
    }
}

impl SqliteConfig {
    /// The default config in `mode`.
    pub fn with_mode(mode: SqliteMode) -> SqliteConfig {
        SqliteConfig { mode, ..SqliteConfig::default() }
    }
}

/// TinyBase's single row id in JSON mode.
const SINGLE_ROW_ID: &str = "_";
/// How long a write without the save lock (an incremental transaction) waits for another
/// connection's write before failing.
const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `f` again while SQLite reports the database busy, for at most [`DEFAULT_BUSY_TIMEOUT`]:
/// some busy cases skip the busy handler (switching to WAL while other connections open the
/// database, a write beginning during another connection's first WAL recovery).
fn retry_busy<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let deadline = std::time::Instant::now() + DEFAULT_BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(1);
    loop {
        match f() {
            Err(e) if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) && std::time::Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            result => return result,
        }
    }
}

/// TinyBase's `escapeId`: each dot-separated part double-quoted, quotes doubled.
fn escape_id(name: &str) -> String {
    name.split('.').map(|part| format!("\"{}\"", part.replace('"', "\"\""))).collect::<Vec<_>>().join(".")
}

/// A SQLite database as a persister's [`Storage`].
pub struct SqliteStorage {
    path: PathBuf,
    config: SqliteConfig,
    conn: Option<Connection>,
    /// The connection's pragmas are set (a file that is not a database fails them until it is
    /// moved aside).
    configured: bool,
    /// The incremental schema exists and has been checked on this connection.
    schema_ready: bool,
    /// Inside `lock` ... `unlock` (a `BEGIN IMMEDIATE` transaction is open).
    locked: bool,
    /// `locked` with a `BEGIN IMMEDIATE` transaction open (not when the file is not a database).
    lock_txn: bool,
    /// Incremental mode: the database is in WAL mode.
    wal_ready: bool,
    /// Incremental mode: `synchronous = FULL` instead of `NORMAL`.
    power_loss_safe: bool,
    /// `PRAGMA data_version` when the stored data was last read.
    read_version: Option<i64>,
    /// JSON mode: `quick_check` passed on this connection (see [`SqliteStorage::check_pages`]).
    pages_checked: bool,
}

impl SqliteStorage {
    /// Opens (creating when missing) the database at `path`. Nothing is read or written until
    /// the persister asks; a file that is not a SQLite database opens, and then every read and
    /// write is `Error::Corrupt` until [`Storage::move_aside`] moves it away.
    ///
    /// Incremental mode puts the database in WAL mode (at its first write) with
    /// `synchronous = NORMAL`: a commit has written its WAL frames to the operating system
    /// before it returns, so a committed transaction survives the process being killed (SIGKILL,
    /// a crash) at any moment; after a power loss or an OS crash the database is still
    /// consistent but the last transactions before it may be gone (the WAL is synced only at
    /// checkpoints). [`SqliteStorage::set_power_loss_safe`] makes every commit sync the WAL
    /// (`synchronous = FULL`) at the price of one fsync per transaction (about 4 ms per one-cell
    /// write on the machine the README's figures come from, against 0.05 ms). JSON mode keeps
    /// the rollback journal with `synchronous = FULL`: its saves survive a power loss.
    pub fn open(path: impl AsRef<Path>, config: SqliteConfig) -> Result<SqliteStorage> {
        let path = path.as_ref().to_path_buf();
        let mut storage =
            SqliteStorage {
                path,
                config,
                conn: None,
                configured: false,
                schema_ready: false,
                locked: false,
                lock_txn: false,
                wal_ready: false,
                power_loss_safe: false,
                read_version: None,
                pages_checked: false,
            };
        storage.connect()?;
        Ok(storage)
    }

    /// Incremental mode: whether each commit syncs the WAL so that it survives a power loss,
    /// not only a killed process (`synchronous = FULL`; see [`SqliteStorage::open`]).
    pub fn set_power_loss_safe(&mut self, on: bool) -> Result<()> {
        self.power_loss_safe = on;
        self.configured = false;
        self.configure()
    }

    fn mode_name(&self) -> &'static str {
        match self.config.mode {
            SqliteMode::Json => "json",
            SqliteMode::Incremental => "incremental",
        }
    }

    fn connect(&mut self) -> Result<()> {
        let conn = Connection::open(&self.path).map_err(|e| self.db_error(e))?;
        conn.set_prepared_statement_cache_capacity(32);
        conn.busy_timeout(DEFAULT_BUSY_TIMEOUT).map_err(|e| self.db_error(e))?;
        self.conn = Some(conn);
        self.configured = false;
        self.schema_ready = false;
        self.locked = false;
        self.lock_txn = false;
        self.wal_ready = false;
        self.read_version = None;
        self.pages_checked = false;
        // A file that is not a database fails here; that is reported by the first read or write.
        let _ = self.configure();
        Ok(())
    }

    fn configure(&mut self) -> Result<()> {
        if self.configured {
            return Ok(());
        }
        let sync = if self.config.mode == SqliteMode::Incremental && !self.power_loss_safe {
            "PRAGMA synchronous = NORMAL"
        } else {
            "PRAGMA synchronous = FULL"
        };
        let result = (|| {
            let conn = self.conn()?;
            conn.execute_batch(sync)?;
            // Whole-content writes and loads of large stores touch every page: a 64 MiB page
            // cache instead of SQLite's 2 MiB keeps the primary-key B-trees in memory.
            conn.execute_batch("PRAGMA cache_size = -65536")?;
            // Forces SQLite to read the header, so that a file that is not a database is known now.
            conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0))?;
            Ok(())
        })();
        result.map_err(|e| self.db_error(e))?;
        self.configured = true;
        Ok(())
    }

    fn conn(&self) -> std::result::Result<&Connection, rusqlite::Error> {
        self.conn.as_ref().ok_or(rusqlite::Error::InvalidQuery)
    }

    /// A database that is not one, or whose stored data has the wrong types, is corrupt; any
    /// other failure (busy, I/O, full disk) is an I/O error.
    fn db_error(&self, e: rusqlite::Error) -> Error {
        let what = format!("{}: {e}", self.describe());
        match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => Error::Corrupt(what),
            _ => match e {
                rusqlite::Error::FromSqlConversionFailure(..)
                | rusqlite::Error::InvalidColumnType(..)
                | rusqlite::Error::IntegralValueOutOfRange(..)
                | rusqlite::Error::Utf8Error(..) => Error::Corrupt(what),
                _ => Error::Io(what),
            },
        }
    }

    fn corrupt(&self, why: impl std::fmt::Display) -> Error {
        Error::Corrupt(format!("{}: {why}", self.describe()))
    }

    /// Runs `f` as one write transaction: a savepoint inside the save lock (committed by
    /// `unlock`), else `BEGIN IMMEDIATE` ... `COMMIT`. On any error nothing of it stays.
    fn write_txn<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.configure()?;
        self.ensure_wal()?;
        let (begin, commit, rollback) = if self.locked {
            ("SAVEPOINT tinybase_write", "RELEASE tinybase_write", "ROLLBACK TO tinybase_write; RELEASE tinybase_write")
        } else {
            ("BEGIN IMMEDIATE", "COMMIT", "ROLLBACK")
        };
        self.conn().and_then(|c| retry_busy(|| c.execute_batch(begin))).map_err(|e| self.db_error(e))?;
        let result = f(self).and_then(|v| self.conn().and_then(|c| c.execute_batch(commit)).map(|_| v).map_err(|e| self.db_error(e)));
        if result.is_err() {
            if let Ok(c) = self.conn() {
                // The transaction may already be gone (a failed COMMIT rolls back by itself).
                let _ = c.execute_batch(rollback);
            }
        }
        result
    }

    /// Incremental mode: WAL, set by the first write (reading a database changes nothing in
    /// it; the journal mode cannot change inside the save lock's transaction, which is why
    /// `lock` sets it too).
    fn ensure_wal(&mut self) -> Result<()> {
        if self.config.mode != SqliteMode::Incremental || self.wal_ready || self.locked {
            return Ok(());
        }
        let mode: String =
            self.conn().and_then(|c| retry_busy(|| c.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)))).map_err(|e| self.db_error(e))?;
        // Checkpoints (copying the WAL into the database, with syncs) are what a one-cell write
        // occasionally waits for: ten times SQLite's default makes them rarer (the WAL grows to
        // about 40 MB between them).
        self.conn().and_then(|c| c.execute_batch("PRAGMA wal_autocheckpoint = 10000")).map_err(|e| self.db_error(e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Io(format!("{}: the journal mode stays {mode}, not wal", self.describe())));
        }
        self.wal_ready = true;
        Ok(())
    }

    /// Runs `f` in one read transaction (a consistent snapshot), then records `data_version`.
    fn read_txn<T>(&mut self, f: impl FnOnce(&Self) -> Result<T>) -> Result<T> {
        self.configure()?;
        if !self.locked {
            self.conn().and_then(|c| c.execute_batch("BEGIN")).map_err(|e| self.db_error(e))?;
        }
        let result = f(self).and_then(|v| {
            let version = self.data_version()?;
            Ok((v, version))
        });
        if !self.locked {
            let _ = self.conn().and_then(|c| c.execute_batch(if result.is_ok() { "COMMIT" } else { "ROLLBACK" }));
        }
        let (v, version) = result?;
        self.read_version = Some(version);
        Ok(v)
    }

    fn data_version(&self) -> Result<i64> {
        self.conn().and_then(|c| c.query_row("PRAGMA data_version", [], |r| r.get(0))).map_err(|e| self.db_error(e))
    }

    /// The column names of `table` (empty when there is no such table).
    fn columns(&self, table: &str) -> Result<Vec<String>> {
        let conn = self.conn().map_err(|e| self.db_error(e))?;
        let mut stmt = conn.prepare_cached("SELECT name FROM pragma_table_info(?1)").map_err(|e| self.db_error(e))?;
        let names = stmt.query_map([table], |r| r.get::<_, String>(0)).and_then(|rows| rows.collect()).map_err(|e| self.db_error(e))?;
        Ok(names)
    }

    // ---------------------------------------------------------------------------- JSON mode

    /// Whether the store table exists with its two columns: Ok(false) when it does not exist,
    /// Corrupt when it exists without them.
    fn json_table(&self) -> Result<bool> {
        let c = &self.config;
        let columns = self.columns(&c.store_table_name)?;
        if columns.is_empty() {
            return Ok(false);
        }
        for needed in [&c.store_id_column_name, &c.store_column_name] {
            if !columns.iter().any(|name| name == needed) {
                return Err(self.corrupt(format!("the table {:?} has no column {needed:?} (columns: {columns:?})", c.store_table_name)));
            }
        }
        Ok(true)
    }

    /// Whether the id column is the primary key.
    fn json_id_is_key(&self) -> Result<bool> {
        let conn = self.conn().map_err(|e| self.db_error(e))?;
        conn.query_row("SELECT pk FROM pragma_table_info(?1) WHERE name = ?2", [&self.config.store_table_name, &self.config.store_id_column_name], |r| {
            r.get::<_, i64>(0)
        })
        .map(|pk| pk > 0)
        .map_err(|e| self.db_error(e))
    }

    /// SQLite reads some damage as a missing row rather than an error: with the end of the
    /// file cut off, the primary key index's page comes back partly zeroed and the `_` row's
    /// lookup finds nothing, which would read as nothing stored and then be saved over.
    /// `quick_check` (every page's structure; linear in the database's size, and JSON mode's
    /// database is the one row) finds it, once per connection, before the first read.
    fn check_pages(&mut self) -> Result<()> {
        if self.pages_checked {
            return Ok(());
        }
        self.configure()?;
        let verdict: String = self.conn().and_then(|c| c.query_row("PRAGMA quick_check(1)", [], |r| r.get(0))).map_err(|e| self.db_error(e))?;
        if verdict != "ok" {
            return Err(self.corrupt(format!("the database is damaged (SQLite's quick_check: {verdict})")));
        }
        self.pages_checked = true;
        Ok(())
    }

    fn json_read(&mut self) -> Result<Option<Content>> {
        self.check_pages()?;
        let text = self.read_txn(|s| {
            if !s.json_table()? {
                return Ok(None);
            }
            let c = &s.config;
            let sql = format!(
                "SELECT {} FROM {} WHERE {} = ?1",
                escape_id(&c.store_column_name),
                escape_id(&c.store_table_name),
                escape_id(&c.store_id_column_name)
            );
            let conn = s.conn().map_err(|e| s.db_error(e))?;
            let value: Option<rusqlite::types::Value> = conn
                .prepare_cached(&sql)
                .and_then(|mut stmt| stmt.query_row([SINGLE_ROW_ID], |r| r.get(0)).optional())
                .map_err(|e| s.db_error(e))?;
            match value {
                None | Some(rusqlite::types::Value::Null) => Ok(None),
                Some(rusqlite::types::Value::Text(text)) => Ok(Some(text)),
                Some(other) => Err(s.corrupt(format!("the stored content is a {:?}, not JSON text", other.data_type()))),
            }
        })?;
        let Some(text) = text else { return Ok(None) };
        // TinyBase stores `null` for nothing (`getContent() ?? null`).
        let trimmed = text.trim_start();
        if text.trim() == "null" {
            return Ok(None);
        }
        if !trimmed.starts_with('[') {
            return Err(self.corrupt("the stored content is not a JSON array"));
        }
        // A MergeableStore's content starts with its tables stamp, an array; a plain Store's
        // with its tables, an object.
        Ok(Some(if trimmed[1..].trim_start().starts_with('[') { Content::Mergeable(text) } else { Content::Plain(text) }))
    }

    fn json_write(&mut self, text: &str) -> Result<()> {
        self.write_txn(|s| {
            let c = &s.config;
            let table = escape_id(&c.store_table_name);
            let id = escape_id(&c.store_id_column_name);
            let store = escape_id(&c.store_column_name);
            if !s.json_table()? {
                // The DDL TinyBase issues, byte for byte, so that TinyBase sees the table it
                // would have made.
                let sql = format!("CREATE TABLE{table}({id} PRIMARY KEY,{store});");
                s.conn().and_then(|conn| conn.execute_batch(&sql)).map_err(|e| s.db_error(e))?;
            } else if !s.json_id_is_key()? {
                // A table made elsewhere: the upsert needs the id unique, and TinyBase adds this
                // same index in this case.
                let name = format!("tinybase_pk_{}", get_hash(&to_json_string(&serde_json::json!([c.store_table_name, c.store_id_column_name]))));
                let sql = format!("CREATE UNIQUE INDEX IF NOT EXISTS{}ON{table}({id})", escape_id(&name));
                s.conn().and_then(|conn| conn.execute_batch(&sql)).map_err(|e| s.db_error(e))?;
            }
            // TinyBase's upsert: the id column is the primary key (or has a unique index).
            let sql = format!("INSERT INTO {table}({id},{store})VALUES(?1,?2)ON CONFLICT({id})DO UPDATE SET {store}=excluded.{store}");
            s.conn()
                .and_then(|conn| conn.prepare_cached(&sql)?.execute(params![SINGLE_ROW_ID, text]))
                .map_err(|e| s.db_error(e))?;
            Ok(())
        })
    }

    /// Keeps the unreadable row under `_.corrupt` (`_.corrupt.2`, ... when taken).
    fn json_move_aside(&mut self) -> Result<String> {
        let shape_ok = self.configure().and_then(|_| self.check_pages()).and_then(|_| self.json_table());
        match shape_ok {
            // Not a database, or a damaged one: nothing in it is written to; the files go aside.
            Err(Error::Corrupt(_)) if !self.configured || !self.pages_checked => return self.move_file_aside(),
            Err(Error::Corrupt(_)) => return self.json_move_table_aside(),
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        self.write_txn(|s| {
            let c = &s.config;
            let table = escape_id(&c.store_table_name);
            let id = escape_id(&c.store_id_column_name);
            let conn = s.conn().map_err(|e| s.db_error(e))?;
            let taken = |candidate: &str| -> rusqlite::Result<bool> {
                conn.query_row(&format!("SELECT count(*) FROM {table} WHERE {id} = ?1"), [candidate], |r| r.get::<_, i64>(0)).map(|n| n > 0)
            };
            let mut n = 1;
            let name = loop {
                let candidate = if n == 1 { format!("{SINGLE_ROW_ID}.corrupt") } else { format!("{SINGLE_ROW_ID}.corrupt.{n}") };
                if !taken(&candidate).map_err(|e| s.db_error(e))? {
                    break candidate;
                }
                n += 1;
            };
            conn.execute(&format!("UPDATE {table} SET {id} = ?1 WHERE {id} = ?2"), params![name, SINGLE_ROW_ID]).map_err(|e| s.db_error(e))?;
            Ok(format!("{} table {:?} row {name:?}", s.describe(), c.store_table_name))
        })
    }

    /// A store table of the wrong shape is renamed `<table>_corrupt` (`_corrupt2`, ...).
    fn json_move_table_aside(&mut self) -> Result<String> {
        self.write_txn(|s| {
            let old = s.config.store_table_name.clone();
            let mut n = 1;
            let name = loop {
                let candidate = if n == 1 { format!("{old}_corrupt") } else { format!("{old}_corrupt{n}") };
                if s.columns(&candidate)?.is_empty() {
                    break candidate;
                }
                n += 1;
            };
            let sql = format!("ALTER TABLE {} RENAME TO {}", escape_id(&old), escape_id(&name));
            s.conn().and_then(|c| c.execute_batch(&sql)).map_err(|e| s.db_error(e))?;
            Ok(format!("{} table {name:?}", s.describe()))
        })
    }

    // --------------------------------------------------------------------- incremental mode

    /// Creates the incremental schema when missing and checks that existing tables have its
    /// columns and version.
    fn ensure_schema(&mut self) -> Result<()> {
        if self.schema_ready {
            return Ok(());
        }
        self.conn().and_then(|c| c.execute_batch(incremental::SQLITE_DDL)).map_err(|e| self.db_error(e))?;
        self.check_schema()?;
        self.schema_ready = true;
        Ok(())
    }

    /// Ok(false) when there is no incremental schema; Corrupt when it is not version 1's.
    fn check_schema(&self) -> Result<bool> {
        let meta = self.columns("tinybase_meta")?;
        if meta.is_empty() {
            return Ok(false);
        }
        let expected: [(&str, &[&str]); 4] = [
            ("tinybase_meta", &["key", "value"]),
            ("tinybase_cells", &["table_id", "row_id", "cell_id", "value", "hlc", "hash"]),
            ("tinybase_values", &["value_id", "value", "hlc", "hash"]),
            ("tinybase_containers", &["kind", "table_id", "row_id", "hlc", "hash"]),
        ];
        for (table, needed) in expected {
            let columns = self.columns(table)?;
            if let Some(missing) = needed.iter().find(|n| !columns.iter().any(|c| c == *n)) {
                return Err(self.corrupt(format!("the table {table} has no column {missing} (columns: {columns:?})")));
            }
        }
        let version: Option<String> = self
            .conn()
            .and_then(|c| c.query_row("SELECT value FROM tinybase_meta WHERE key = 'schema_version'", [], |r| r.get(0)).optional())
            .map_err(|e| self.db_error(e))?;
        if version.as_deref() != Some("1") {
            return Err(self.corrupt(format!("schema_version is {version:?}, this version reads 1")));
        }
        Ok(true)
    }

    fn incremental_read(&mut self) -> Result<Option<Content>> {
        let rows = self.read_txn(|s| {
            if !s.check_schema()? {
                return Ok(None);
            }
            let hash = |n: i64| u32::try_from(n).map_err(|_| s.corrupt(format!("the hash {n} is not an unsigned 32-bit integer")));
            let conn = s.conn().map_err(|e| s.db_error(e))?;
            let mut rows = Rows::default();
            let err = |e| s.db_error(e);
            let mut stmt = conn.prepare("SELECT kind, table_id, row_id, hlc, hash FROM tinybase_containers ORDER BY rowid").map_err(err)?;
            let mut q = stmt.query([]).map_err(err)?;
            while let Some(r) = q.next().map_err(err)? {
                let kind: i64 = r.get(0).map_err(err)?;
                let kind = ContainerKind::from_i64(kind).ok_or_else(|| s.corrupt(format!("a container of kind {kind}")))?;
                rows.containers.push(ContainerRow {
                    kind,
                    table_id: r.get(1).map_err(err)?,
                    row_id: r.get(2).map_err(err)?,
                    hlc: r.get(3).map_err(err)?,
                    hash: hash(r.get(4).map_err(err)?)?,
                });
            }
            let mut stmt = conn.prepare("SELECT table_id, row_id, cell_id, value, hlc, hash FROM tinybase_cells ORDER BY rowid").map_err(err)?;
            let mut q = stmt.query([]).map_err(err)?;
            while let Some(r) = q.next().map_err(err)? {
                rows.cells.push(CellRow {
                    table_id: r.get(0).map_err(err)?,
                    row_id: r.get(1).map_err(err)?,
                    cell_id: r.get(2).map_err(err)?,
                    value: r.get(3).map_err(err)?,
                    hlc: r.get(4).map_err(err)?,
                    hash: hash(r.get(5).map_err(err)?)?,
                });
            }
            let mut stmt = conn.prepare("SELECT value_id, value, hlc, hash FROM tinybase_values ORDER BY rowid").map_err(err)?;
            let mut q = stmt.query([]).map_err(err)?;
            while let Some(r) = q.next().map_err(err)? {
                rows.values.push(ValueRow {
                    value_id: r.get(0).map_err(err)?,
                    value: r.get(1).map_err(err)?,
                    hlc: r.get(2).map_err(err)?,
                    hash: hash(r.get(3).map_err(err)?)?,
                });
            }
            Ok(Some(rows))
        })?;
        let Some(rows) = rows else { return Ok(None) };
        match incremental::content_from_rows(&rows) {
            Ok(content) => Ok(content.map(Content::Mergeable)),
            Err(Error::Corrupt(why)) => Err(self.corrupt(why)),
            Err(e) => Err(e),
        }
    }

    /// Upserts rows (one transaction's changes, or whole content after the tables were
    /// emptied) through cached statements.
    fn upsert_rows(&self, rows: &Rows) -> Result<()> {
        let err = |e| self.db_error(e);
        let conn = self.conn().map_err(err)?;
        let mut stmt = conn
            .prepare_cached(
                "INSERT INTO tinybase_containers (kind, table_id, row_id, hlc, hash) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (kind, table_id, row_id) DO UPDATE SET hlc = excluded.hlc, hash = excluded.hash",
            )
            .map_err(err)?;
        for c in &rows.containers {
            stmt.execute(params![c.kind as i64, c.table_id, c.row_id, c.hlc, c.hash as i64]).map_err(err)?;
        }
        let mut stmt = conn
            .prepare_cached(
                "INSERT INTO tinybase_cells (table_id, row_id, cell_id, value, hlc, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (table_id, row_id, cell_id) DO UPDATE SET value = excluded.value, hlc = excluded.hlc, hash = excluded.hash",
            )
            .map_err(err)?;
        for c in &rows.cells {
            stmt.execute(params![c.table_id, c.row_id, c.cell_id, c.value, c.hlc, c.hash as i64]).map_err(err)?;
        }
        let mut stmt = conn
            .prepare_cached(
                "INSERT INTO tinybase_values (value_id, value, hlc, hash) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (value_id) DO UPDATE SET value = excluded.value, hlc = excluded.hlc, hash = excluded.hash",
            )
            .map_err(err)?;
        for v in &rows.values {
            stmt.execute(params![v.value_id, v.value, v.hlc, v.hash as i64]).map_err(err)?;
        }
        Ok(())
    }

    fn incremental_rows(&self, json: &str) -> Result<Rows> {
        incremental::rows_from_json(json).map_err(|e| Error::InvalidState(format!("{}: not wire content with hashes: {e}", self.describe())))
    }

    /// Closes the connection, renames the database file and its WAL, shared-memory and journal
    /// files to `<path>.corrupt` (`.corrupt.2`, ... when taken), and opens a fresh database.
    fn move_file_aside(&mut self) -> Result<String> {
        let was_locked = self.locked;
        if let Some(conn) = self.conn.take() {
            if self.lock_txn {
                let _ = conn.execute_batch("ROLLBACK");
            }
            // A corrupt database may refuse to close cleanly; its files are moved all the same.
            let _ = conn.close();
        }
        let mut n = 1;
        let target = loop {
            let suffix = if n == 1 { ".corrupt".to_string() } else { format!(".corrupt.{n}") };
            let mut name = self.path.clone().into_os_string();
            name.push(&suffix);
            let candidate = PathBuf::from(name);
            if !candidate.exists() {
                break candidate;
            }
            n += 1;
        };
        let io = |e: std::io::Error| Error::Io(format!("{}: moving aside: {e}", self.describe()));
        for extra in ["-wal", "-shm", "-journal"] {
            let mut from = self.path.clone().into_os_string();
            from.push(extra);
            let mut to = target.clone().into_os_string();
            to.push(extra);
            if Path::new(&from).exists() {
                std::fs::rename(&from, &to).map_err(io)?;
            }
        }
        if self.path.exists() {
            std::fs::rename(&self.path, &target).map_err(io)?;
        }
        self.connect()?;
        if was_locked {
            // The caller holds the lock until its unlock: hold it on the fresh database.
            self.lock(DEFAULT_BUSY_TIMEOUT)?;
        }
        Ok(target.display().to_string())
    }
}

/// The stored stamps [`incremental::merge_rows`] asks for, read inside the write transaction.
struct Lookup<'a> {
    conn: &'a Connection,
    storage: &'a SqliteStorage,
}

impl Lookup<'_> {
    fn stamp(&self, sql: &str, params: &[&dyn rusqlite::ToSql]) -> Result<Option<(String, u32)>> {
        let row: Option<(String, i64)> = self
            .conn
            .prepare_cached(sql)
            .and_then(|mut stmt| stmt.query_row(params, |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .map_err(|e| self.storage.db_error(e))?;
        row.map(|(hlc, hash)| {
            u32::try_from(hash).map(|h| (hlc, h)).map_err(|_| self.storage.corrupt(format!("the hash {hash} is not an unsigned 32-bit integer")))
        })
        .transpose()
    }
}

impl incremental::StoredStamps for Lookup<'_> {
    fn cell(&mut self, table_id: &str, row_id: &str, cell_id: &str) -> Result<Option<(String, u32)>> {
        self.stamp("SELECT hlc, hash FROM tinybase_cells WHERE table_id = ?1 AND row_id = ?2 AND cell_id = ?3", params![table_id, row_id, cell_id])
    }
    fn value(&mut self, value_id: &str) -> Result<Option<(String, u32)>> {
        self.stamp("SELECT hlc, hash FROM tinybase_values WHERE value_id = ?1", params![value_id])
    }
    fn container(&mut self, kind: ContainerKind, table_id: &str, row_id: &str) -> Result<Option<(String, u32)>> {
        self.stamp(
            "SELECT hlc, hash FROM tinybase_containers WHERE kind = ?1 AND table_id = ?2 AND row_id = ?3",
            params![kind as i64, table_id, row_id],
        )
    }
}

impl Storage for SqliteStorage {
    fn describe(&self) -> String {
        format!("sqlite {} ({})", self.path.display(), self.mode_name())
    }

    /// JSON mode returns the variant the stored text is (a MergeableStore's wire content or a
    /// plain Store's `[tables, values]`), whatever `mergeable` asks, so the persister can say
    /// which it found.
    fn read(&mut self, mergeable: bool) -> Result<Option<Content>> {
        match self.config.mode {
            SqliteMode::Json => self.json_read(),
            SqliteMode::Incremental if !mergeable => {
                Err(Error::InvalidState(format!("{} holds a MergeableStore's content; a plain Store needs JSON mode", self.describe())))
            }
            SqliteMode::Incremental => self.incremental_read(),
        }
    }

    fn write(&mut self, content: &Content) -> Result<()> {
        match (self.config.mode, content) {
            (SqliteMode::Json, Content::Mergeable(text) | Content::Plain(text)) => self.json_write(text),
            (SqliteMode::Incremental, Content::Plain(_)) => {
                Err(Error::InvalidState(format!("{} needs a MergeableStore; a plain Store needs JSON mode", self.describe())))
            }
            (SqliteMode::Incremental, Content::Mergeable(text)) => {
                let rows = self.incremental_rows(text)?;
                self.write_txn(|s| {
                    s.ensure_schema()?;
                    s.conn()
                        .and_then(|c| c.execute_batch("DELETE FROM tinybase_cells; DELETE FROM tinybase_values; DELETE FROM tinybase_containers;"))
                        .map_err(|e| s.db_error(e))?;
                    s.upsert_rows(&rows)
                })
            }
        }
    }

    fn lock(&mut self, timeout: Duration) -> Result<()> {
        if self.locked {
            return Err(Error::InvalidState(format!("{} is already locked", self.describe())));
        }
        match self.configure() {
            // Not a database: there is nothing to lock, and the persister must still be able to
            // move the file aside under the lock (reads and writes keep failing as corrupt).
            Err(Error::Corrupt(_)) => {
                self.locked = true;
                self.lock_txn = false;
                return Ok(());
            }
            r => r?,
        }
        self.ensure_wal()?;
        let conn = self.conn().map_err(|e| self.db_error(e))?;
        conn.busy_timeout(timeout).map_err(|e| self.db_error(e))?;
        let begun = conn.execute_batch("BEGIN IMMEDIATE");
        let _ = conn.busy_timeout(DEFAULT_BUSY_TIMEOUT);
        match begun {
            Ok(()) => {
                self.locked = true;
                self.lock_txn = true;
                Ok(())
            }
            Err(e) if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) => Err(Error::Io(format!(
                "{}: another connection held the write lock for more than {timeout:?}",
                self.describe()
            ))),
            Err(e) => Err(self.db_error(e)),
        }
    }

    fn unlock(&mut self) -> Result<()> {
        if !self.locked {
            return Ok(());
        }
        self.locked = false;
        if !std::mem::take(&mut self.lock_txn) {
            return Ok(());
        }
        let conn = self.conn().map_err(|e| self.db_error(e))?;
        if let Err(e) = conn.execute_batch("COMMIT") {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(self.db_error(e));
        }
        Ok(())
    }

    /// Another connection committed since the last read (`PRAGMA data_version` moved; this
    /// connection's own commits do not move it). True before the first read.
    fn changed(&mut self) -> Result<bool> {
        self.configure()?;
        let now = self.data_version()?;
        Ok(self.read_version != Some(now))
    }

    fn is_incremental(&self) -> bool {
        self.config.mode == SqliteMode::Incremental
    }

    fn write_changes(&mut self, changes: &str) -> Result<()> {
        if self.config.mode != SqliteMode::Incremental {
            return Err(Error::InvalidState(format!("{} is not incremental", self.describe())));
        }
        let rows = self.incremental_rows(changes)?;
        self.write_txn(|s| {
            s.ensure_schema()?;
            let merged = {
                let conn = s.conn().map_err(|e| s.db_error(e))?;
                let mut lookup = Lookup { conn, storage: s };
                incremental::merge_rows(&rows, &mut lookup)?
            };
            s.upsert_rows(&merged)
        })
    }

    /// JSON mode keeps the unreadable row under another id (`_.corrupt`), or renames a table of
    /// the wrong shape (`tinybase_corrupt`); incremental mode, and a file that is not a database
    /// at all, renames the database files to `<path>.corrupt` and starts a fresh database.
    ///
    /// The persister calls it under the save lock: a row or table moved aside is part of the
    /// lock's transaction (committed by `unlock`); moving the files ends that transaction first.
    fn move_aside(&mut self) -> Result<String> {
        match self.config.mode {
            SqliteMode::Json => self.json_move_aside(),
            SqliteMode::Incremental => self.move_file_aside(),
        }
    }
}

/// A persister of `store` over the SQLite database at `path` (created when missing).
/// Incremental mode needs a MergeableStore (`Error::InvalidState` for a plain Store).
pub fn create_sqlite_persister(store: &Store, path: impl AsRef<Path>, config: SqliteConfig, options: PersisterOptions) -> Result<Persister> {
    Persister::new(store, Box::new(SqliteStorage::open(path, config)?), options)
}
