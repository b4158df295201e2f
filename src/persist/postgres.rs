//! PostgreSQL persistence for servers that outgrow one machine: the incremental layout of
//! [`incremental`](super::incremental) with `room TEXT NOT NULL` as the first key column of every
//! table, so several server processes share one database and a room can move between them.
//!
//! # Schema (version 1)
//!
//! ```sql
//! CREATE TABLE tinybase_cells (room TEXT NOT NULL, table_id TEXT NOT NULL, row_id TEXT NOT NULL,
//!   cell_id TEXT NOT NULL, value TEXT NOT NULL, hlc TEXT NOT NULL, hash BIGINT NOT NULL,
//!   seq BIGSERIAL, PRIMARY KEY (room, table_id, row_id, cell_id));
//! CREATE TABLE tinybase_values (room TEXT NOT NULL, value_id TEXT NOT NULL, value TEXT NOT NULL,
//!   hlc TEXT NOT NULL, hash BIGINT NOT NULL, seq BIGSERIAL, PRIMARY KEY (room, value_id));
//! CREATE TABLE tinybase_containers (room TEXT NOT NULL, kind INTEGER NOT NULL, table_id TEXT NOT NULL,
//!   row_id TEXT NOT NULL, hlc TEXT NOT NULL, hash BIGINT NOT NULL, seq BIGSERIAL,
//!   PRIMARY KEY (room, kind, table_id, row_id));
//! CREATE TABLE tinybase_meta (room TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
//!   PRIMARY KEY (room, key));                          -- key 'version': the room's write counter
//! CREATE TABLE tinybase_schema (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
//! ```
//!
//! Columns mean what they mean in SQLite's incremental mode; `seq` keeps the order rows were
//! first written, which is the store's insertion order, so a reload keeps TinyBase's iteration
//! order. The schema version is one row for the whole database (`tinybase_schema`), since every
//! room shares the tables.
//!
//! # Several processes, one room
//!
//! Every write of a room takes a transaction-scoped advisory lock on the room
//! (`pg_advisory_xact_lock(class, hashtext(room))`), so writes of one room never interleave.
//! Under that lock a transaction's changes are *merged* into the stored rows rather than pasted
//! over them ([`merge_rows`], over the stored stamps fetched in one query): a cell or value is
//! replaced only by a newer stamp, container HLCs only grow, and each touched container hash is
//! updated with XOR from the stored one, so the stored rows always verify, whichever process
//! wrote last and whatever its store held. Every write bumps the room's `version` in `tinybase_meta`:
//! [`Storage::changed`] is one primary-key read compared with the last version this storage
//! wrote or read.
//!
//! Ids and strings are `TEXT`: PostgreSQL refuses U+0000 in them (such a write fails with
//! `Error::Io`; values are JSON text, where U+0000 is escaped, so only ids are affected).

use super::incremental::{
    content_from_rows, merge_rows, rows_from_json, CellRow, ContainerKind, ContainerRow, Rows, StoredStamps, ValueRow,
};
use super::{Content, Persister, PersisterOptions, Storage};
use crate::error::{Error, Result};
use crate::store::Store;
use super::pg::{self, Client, Config, Host, Statement};
use std::collections::HashMap;
use std::time::Duration;

/// The schema version this code writes and reads (`tinybase_schema.version`).
pub const SCHEMA_VERSION: i32 = 1;

/// The first key of every advisory lock taken here ("tb" in ASCII, then 0x7072 "pr"): a room's
/// lock is `(LOCK_CLASS, hashtext(room))`, the schema's `(LOCK_CLASS + 1, 0)`.
const LOCK_CLASS: i32 = 0x7462_7072;

const DDL: &str = "\
CREATE TABLE IF NOT EXISTS tinybase_cells (room TEXT NOT NULL, table_id TEXT NOT NULL, row_id TEXT NOT NULL, \
cell_id TEXT NOT NULL, value TEXT NOT NULL, hlc TEXT NOT NULL, hash BIGINT NOT NULL, seq BIGSERIAL, \
PRIMARY KEY (room, table_id, row_id, cell_id));
CREATE TABLE IF NOT EXISTS tinybase_values (room TEXT NOT NULL, value_id TEXT NOT NULL, value TEXT NOT NULL, \
hlc TEXT NOT NULL, hash BIGINT NOT NULL, seq BIGSERIAL, PRIMARY KEY (room, value_id));
CREATE TABLE IF NOT EXISTS tinybase_containers (room TEXT NOT NULL, kind INTEGER NOT NULL, table_id TEXT NOT NULL, \
row_id TEXT NOT NULL, hlc TEXT NOT NULL, hash BIGINT NOT NULL, seq BIGSERIAL, \
PRIMARY KEY (room, kind, table_id, row_id));
CREATE TABLE IF NOT EXISTS tinybase_meta (room TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, \
PRIMARY KEY (room, key));
CREATE TABLE IF NOT EXISTS tinybase_schema (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
";

/// The statements of every write and read, prepared once per connection (a one-cell write is
/// then a handful of round trips with no parsing).
struct Statements {
    version: Statement,
    bump: Statement,
    stored: Statement,
    write_merged: Statement,
    read_cells: Statement,
    read_values: Statement,
    read_containers: Statement,
}

impl Statements {
    fn prepare(client: &mut Client) -> std::result::Result<Statements, pg::Error> {
        Ok(Statements {
            version: client.prepare("SELECT value FROM tinybase_meta WHERE room = $1 AND key = 'version'")?,
            bump: client.prepare(
                "INSERT INTO tinybase_meta (room, key, value) VALUES ($1, 'version', '1') \
                 ON CONFLICT (room, key) DO UPDATE SET value = (tinybase_meta.value::bigint + 1)::text \
                 RETURNING value",
            )?,
            // Every stamp a transaction's merge may look up, in one round trip: cells (what 0),
            // values (1) and containers (2) by their keys.
            stored: client.prepare(
                "SELECT 0, 0, c.table_id, c.row_id, c.cell_id, c.hlc, c.hash FROM tinybase_cells c \
                 JOIN unnest($2::text[], $3::text[], $4::text[]) AS k (t, r, i) \
                 ON c.table_id = k.t AND c.row_id = k.r AND c.cell_id = k.i WHERE c.room = $1 \
                 UNION ALL SELECT 1, 0, '', '', v.value_id, v.hlc, v.hash FROM tinybase_values v \
                 JOIN unnest($5::text[]) AS k (i) ON v.value_id = k.i WHERE v.room = $1 \
                 UNION ALL SELECT 2, c.kind, c.table_id, c.row_id, '', c.hlc, c.hash FROM tinybase_containers c \
                 JOIN unnest($6::int4[], $7::text[], $8::text[]) AS k (kind, t, r) \
                 ON c.kind = k.kind AND c.table_id = k.t AND c.row_id = k.r WHERE c.room = $1",
            )?,
            // The merged rows and the version bump, in one round trip (data-modifying WITH
            // clauses always run to completion).
            write_merged: client.prepare(
                "WITH cells AS (INSERT INTO tinybase_cells (room, table_id, row_id, cell_id, value, hlc, hash) \
                 SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int8[]) \
                 ON CONFLICT (room, table_id, row_id, cell_id) DO UPDATE \
                 SET value = EXCLUDED.value, hlc = EXCLUDED.hlc, hash = EXCLUDED.hash), \
                 vals AS (INSERT INTO tinybase_values (room, value_id, value, hlc, hash) \
                 SELECT $1, * FROM unnest($8::text[], $9::text[], $10::text[], $11::int8[]) \
                 ON CONFLICT (room, value_id) DO UPDATE \
                 SET value = EXCLUDED.value, hlc = EXCLUDED.hlc, hash = EXCLUDED.hash), \
                 containers AS (INSERT INTO tinybase_containers (room, kind, table_id, row_id, hlc, hash) \
                 SELECT $1, * FROM unnest($12::int4[], $13::text[], $14::text[], $15::text[], $16::int8[]) \
                 ON CONFLICT (room, kind, table_id, row_id) DO UPDATE SET hlc = EXCLUDED.hlc, hash = EXCLUDED.hash) \
                 INSERT INTO tinybase_meta (room, key, value) VALUES ($1, 'version', '1') \
                 ON CONFLICT (room, key) DO UPDATE SET value = (tinybase_meta.value::bigint + 1)::text \
                 RETURNING value",
            )?,
            read_cells: client.prepare(
                "SELECT table_id, row_id, cell_id, value, hlc, hash FROM tinybase_cells WHERE room = $1 ORDER BY seq",
            )?,
            read_values: client
                .prepare("SELECT value_id, value, hlc, hash FROM tinybase_values WHERE room = $1 ORDER BY seq")?,
            read_containers: client.prepare(
                "SELECT kind, table_id, row_id, hlc, hash FROM tinybase_containers WHERE room = $1 ORDER BY seq",
            )?,
        })
    }
}

/// A room of a PostgreSQL database as a persister's [`Storage`] (incremental: each committed
/// transaction is one PostgreSQL transaction touching only the rows it changed).
pub struct PostgresStorage {
    config: Config,
    room: String,
    described: String,
    client: Client,
    statements: Statements,
    /// `hashtext(room)`, the second key of the room's advisory lock.
    lock_key: i32,
    /// The room's version this storage last read or wrote (None: not yet, or moved aside).
    seen: Option<i64>,
    /// Inside [`Storage::lock`] ... [`Storage::unlock`]: the open transaction, and whether a
    /// statement in it failed (it then rolls back at unlock).
    locked: Option<bool>,
}

fn connect_client(config: &Config) -> std::result::Result<(Client, Statements), pg::Error> {
    let mut client = Client::connect(config)?;
    // Two processes connecting to a fresh database at once would race on CREATE TABLE IF NOT
    // EXISTS (it is not atomic against another one): the schema lock orders them. A failure
    // drops the new connection, and the open transaction with it.
    client.batch_execute("BEGIN")?;
    client.execute("SELECT pg_advisory_xact_lock($1, 0)", &[&(LOCK_CLASS + 1)])?;
    client.batch_execute(DDL)?;
    client.execute(
        "INSERT INTO tinybase_schema (id, version) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
        &[&SCHEMA_VERSION],
    )?;
    client.batch_execute("COMMIT")?;
    let statements = Statements::prepare(&mut client)?;
    Ok((client, statements))
}

fn describe_config(config: &Config, room: &str) -> String {
    // Never the password: describe() ends up in logs and error messages.
    let host = match config.first_host() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.first_port();
    let db = config.dbname.as_deref().or(config.user.as_deref()).unwrap_or("postgres");
    format!("postgres {host}:{port}/{db} room {room:?}")
}

impl PostgresStorage {
    /// Connects to the database `dsn` (`host=... port=... user=... dbname=...` or a
    /// `postgresql://` URL; no TLS), creates the tables if they do not exist and checks the
    /// schema version. `room` names the store's content in the shared tables (any string).
    /// `Error::Io` when the server cannot be reached or refuses; `Error::InvalidValue` for a DSN
    /// that does not parse; `Error::Corrupt` for a database written by a newer schema.
    pub fn connect(dsn: &str, room: &str) -> Result<PostgresStorage> {
        let config: Config = dsn.parse().map_err(|e| Error::InvalidValue(format!("not a PostgreSQL connection string: {e}")))?;
        let described = describe_config(&config, room);
        let io = |e: pg::Error| io_error(&described, e);
        let (mut client, statements) = connect_client(&config).map_err(io)?;
        let version = client.query_one("SELECT version FROM tinybase_schema WHERE id = 1", &[]).and_then(|r| r.i32(0)).map_err(io)?;
        if version != SCHEMA_VERSION {
            return Err(Error::Corrupt(format!(
                "{described}: the database has schema version {version}; this build reads version {SCHEMA_VERSION}"
            )));
        }
        let lock_key = client.query_one("SELECT hashtext($1)", &[&room]).and_then(|r| r.i32(0)).map_err(io)?;
        Ok(PostgresStorage { config, room: room.to_string(), described, client, statements, lock_key, seen: None, locked: None })
    }

    /// The room this storage reads and writes.
    pub fn room(&self) -> &str {
        &self.room
    }

    fn io(&self, e: pg::Error) -> Error {
        io_error(&self.described, e)
    }

    /// A new connection when the old one broke (a server restart, a network cut), so that one
    /// failure does not end persistence for good. Never inside a transaction.
    fn reconnect_if_closed(&mut self) -> Result<()> {
        if self.locked.is_none() && self.client.is_closed() {
            let (client, statements) = connect_client(&self.config).map_err(|e| io_error(&self.described, e))?;
            self.client = client;
            self.statements = statements;
        }
        Ok(())
    }

    /// Runs `f` in a transaction holding the room's write lock: the one [`Storage::lock`]
    /// opened, or a new one committed when `f` returns Ok.
    fn in_write_transaction<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if let Some(failed) = self.locked {
            if failed {
                return Err(Error::Io(format!("{}: an earlier statement of this save failed", self.described)));
            }
            let result = f(self);
            if result.is_err() {
                self.locked = Some(true);
            }
            return result;
        }
        self.reconnect_if_closed()?;
        self.begin_locked(None)?;
        let result = f(self);
        match result {
            Ok(v) => {
                self.client.batch_execute("COMMIT").map_err(|e| self.io(e))?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.client.batch_execute("ROLLBACK");
                Err(e)
            }
        }
    }

    /// `BEGIN` and the room's advisory lock, waiting at most `timeout` (None: the server's
    /// `lock_timeout`, by default forever; a writer holds it for one short transaction).
    fn begin_locked(&mut self, timeout: Option<Duration>) -> Result<()> {
        let mut sql = String::from("BEGIN;");
        if let Some(t) = timeout {
            sql.push_str(&format!("SET LOCAL lock_timeout = '{}ms';", t.as_millis().max(1)));
        }
        sql.push_str(&format!("SELECT pg_advisory_xact_lock({LOCK_CLASS}, {});", self.lock_key));
        if let Err(e) = self.client.batch_execute(&sql) {
            let _ = self.client.batch_execute("ROLLBACK");
            if e.code() == Some(pg::LOCK_NOT_AVAILABLE) {
                return Err(Error::Io(format!(
                    "{}: another process held the room's write lock for more than {:?}",
                    self.described,
                    timeout.unwrap_or_default()
                )));
            }
            return Err(self.io(e));
        }
        Ok(())
    }

    fn stored_version(&mut self) -> Result<Option<i64>> {
        let row = self.client.query_opt(&self.statements.version, &[&self.room]).map_err(|e| self.io(e))?;
        row.map(|r| {
            let text = r.string(0).map_err(|e| self.io(e))?;
            text.parse::<i64>().map_err(|_| Error::Corrupt(format!("{}: the room's version {text:?} is not a number", self.described)))
        })
        .transpose()
    }

    /// Bumps the room's version inside the write transaction. The version this storage has seen
    /// follows only if it was current: a write by another process since stays visible to
    /// [`Storage::changed`].
    fn bump_version(&mut self) -> Result<()> {
        let row = self.client.query_one(&self.statements.bump, &[&self.room]).map_err(|e| self.io(e))?;
        self.version_written(row.string(0).map_err(|e| self.io(e))?)
    }

    fn version_written(&mut self, text: String) -> Result<()> {
        let new = text.parse::<i64>().map_err(|_| Error::Corrupt(format!("{}: the room's version {text:?} is not a number", self.described)))?;
        let before = if new == 1 { None } else { Some(new - 1) };
        if before == self.seen {
            self.seen = Some(new);
        }
        Ok(())
    }

    fn delete_room_rows(&mut self) -> Result<()> {
        self.client
            .batch_execute(&format!(
                "DELETE FROM tinybase_cells WHERE room = {r}; DELETE FROM tinybase_values WHERE room = {r}; \
                 DELETE FROM tinybase_containers WHERE room = {r};",
                r = quote_literal(&self.room)
            ))
            .map_err(|e| self.io(e))
    }

    /// Upserts merged rows and bumps the version, in one statement.
    fn write_merged(&mut self, rows: &Rows) -> Result<()> {
        let cells = cell_columns(&rows.cells);
        let v_ids: Vec<&str> = rows.values.iter().map(|v| v.value_id.as_str()).collect();
        let v_values: Vec<&str> = rows.values.iter().map(|v| v.value.as_str()).collect();
        let v_hlcs: Vec<&str> = rows.values.iter().map(|v| v.hlc.as_str()).collect();
        let v_hashes: Vec<i64> = rows.values.iter().map(|v| v.hash as i64).collect();
        let kinds: Vec<i32> = rows.containers.iter().map(|c| c.kind as i32).collect();
        let c_tables: Vec<&str> = rows.containers.iter().map(|c| c.table_id.as_str()).collect();
        let c_rows: Vec<&str> = rows.containers.iter().map(|c| c.row_id.as_str()).collect();
        let c_hlcs: Vec<&str> = rows.containers.iter().map(|c| c.hlc.as_str()).collect();
        let c_hashes: Vec<i64> = rows.containers.iter().map(|c| c.hash as i64).collect();
        let row = self
            .client
            .query_one(
                &self.statements.write_merged,
                &[
                    &self.room, &cells.0, &cells.1, &cells.2, &cells.3, &cells.4, &cells.5, &v_ids, &v_values, &v_hlcs,
                    &v_hashes, &kinds, &c_tables, &c_rows, &c_hlcs, &c_hashes,
                ],
            )
            .map_err(|e| self.io(e))?;
        self.version_written(row.string(0).map_err(|e| self.io(e))?)
    }

    /// Inserts a whole content's rows into the (emptied) room with `COPY`, PostgreSQL's bulk
    /// path: several times faster than row inserts for a large store.
    fn copy_in(&mut self, rows: &Rows) -> Result<()> {
        let room = self.room.clone();
        let mut cells = String::with_capacity(rows.cells.len() * 96);
        for c in &rows.cells {
            copy_line(&mut cells, &[&room, &c.table_id, &c.row_id, &c.cell_id, &c.value, &c.hlc], c.hash);
        }
        let mut values = String::new();
        for v in &rows.values {
            copy_line(&mut values, &[&room, &v.value_id, &v.value, &v.hlc], v.hash);
        }
        let mut containers = String::with_capacity(rows.containers.len() * 64);
        for c in &rows.containers {
            copy_line(&mut containers, &[&room, &(c.kind as i32).to_string(), &c.table_id, &c.row_id, &c.hlc], c.hash);
        }
        for (sql, data) in [
            ("COPY tinybase_containers (room, kind, table_id, row_id, hlc, hash) FROM STDIN", containers),
            ("COPY tinybase_cells (room, table_id, row_id, cell_id, value, hlc, hash) FROM STDIN", cells),
            ("COPY tinybase_values (room, value_id, value, hlc, hash) FROM STDIN", values),
        ] {
            if data.is_empty() {
                continue;
            }
            self.client.copy_in(sql, data.as_bytes()).map_err(|e| self.io(e))?;
        }
        Ok(())
    }

    /// What is stored for the leaves and containers `changes` touches: (hlc, hash) by key.
    fn stored_for(&mut self, changes: &Rows) -> Result<Stored> {
        let ct: Vec<&str> = changes.cells.iter().map(|c| c.table_id.as_str()).collect();
        let cr: Vec<&str> = changes.cells.iter().map(|c| c.row_id.as_str()).collect();
        let ci: Vec<&str> = changes.cells.iter().map(|c| c.cell_id.as_str()).collect();
        let vi: Vec<&str> = changes.values.iter().map(|v| v.value_id.as_str()).collect();
        // The containers the changes list, and (should a path lack its stamps) every container
        // above a changed cell, and the two top-level ones.
        let mut keys: Vec<(i32, &str, &str)> = vec![(ContainerKind::Tables as i32, "", ""), (ContainerKind::Values as i32, "", "")];
        keys.extend(changes.containers.iter().map(|c| (c.kind as i32, c.table_id.as_str(), c.row_id.as_str())));
        for c in &changes.cells {
            keys.push((ContainerKind::Table as i32, c.table_id.as_str(), ""));
            keys.push((ContainerKind::Row as i32, c.table_id.as_str(), c.row_id.as_str()));
        }
        keys.sort_unstable();
        keys.dedup();
        let kinds: Vec<i32> = keys.iter().map(|k| k.0).collect();
        let kt: Vec<&str> = keys.iter().map(|k| k.1).collect();
        let kr: Vec<&str> = keys.iter().map(|k| k.2).collect();
        let rows = self
            .client
            .query(&self.statements.stored, &[&self.room, &ct, &cr, &ci, &vi, &kinds, &kt, &kr])
            .map_err(|e| self.io(e))?;
        let mut stored = Stored::default();
        for row in rows {
            let io = |e| io_error(&self.described, e);
            let stamp = self.stamp(row.string(5).map_err(io)?, row.i64(6).map_err(io)?)?;
            let text = |i| row.string(i).map_err(io);
            match row.i32(0).map_err(io)? {
                0 => stored.cells.insert((text(2)?, text(3)?, text(4)?), stamp),
                1 => stored.values.insert(text(4)?, stamp),
                _ => stored.containers.insert((row.i32(1).map_err(io)?, text(2)?, text(3)?), stamp),
            };
        }
        Ok(stored)
    }

    fn stamp(&self, hlc: String, hash: i64) -> Result<(String, u32)> {
        let hash = u32::try_from(hash).map_err(|_| Error::Corrupt(format!("{}: a stored hash {hash} is not a 32-bit hash", self.described)))?;
        Ok((hlc, hash))
    }

    fn read_rows(&mut self) -> Result<Rows> {
        let corrupt = |what: String| Error::Corrupt(format!("{}: {what}", self.described));
        let hash = |h: i64| u32::try_from(h).map_err(|_| format!("a stored hash {h} is not a 32-bit hash"));
        let mut rows = Rows::default();
        let io = |e| io_error(&self.described, e);
        let st = &self.statements;
        for row in self.client.query(&st.read_containers, &[&self.room]).map_err(io)? {
            let kind = row.i32(0).map_err(io)?;
            rows.containers.push(ContainerRow {
                kind: ContainerKind::from_i64(kind as i64).ok_or_else(|| corrupt(format!("unknown container kind {kind}")))?,
                table_id: row.string(1).map_err(io)?,
                row_id: row.string(2).map_err(io)?,
                hlc: row.string(3).map_err(io)?,
                hash: hash(row.i64(4).map_err(io)?).map_err(corrupt)?,
            });
        }
        for row in self.client.query(&st.read_cells, &[&self.room]).map_err(io)? {
            rows.cells.push(CellRow {
                table_id: row.string(0).map_err(io)?,
                row_id: row.string(1).map_err(io)?,
                cell_id: row.string(2).map_err(io)?,
                value: row.string(3).map_err(io)?,
                hlc: row.string(4).map_err(io)?,
                hash: hash(row.i64(5).map_err(io)?).map_err(corrupt)?,
            });
        }
        for row in self.client.query(&st.read_values, &[&self.room]).map_err(io)? {
            rows.values.push(ValueRow {
                value_id: row.string(0).map_err(io)?,
                value: row.string(1).map_err(io)?,
                hlc: row.string(2).map_err(io)?,
                hash: hash(row.i64(3).map_err(io)?).map_err(corrupt)?,
            });
        }
        Ok(rows)
    }

    fn mergeable_only(&self) -> Error {
        Error::InvalidState(format!("{} keeps a MergeableStore's content (incremental); a plain Store cannot use it", self.described))
    }
}

fn io_error(described: &str, e: pg::Error) -> Error {
    match e.as_db_error() {
        Some(db) => Error::Io(format!("{described}: PostgreSQL: {} ({})", db.message(), db.code())),
        None => Error::Io(format!("{described}: PostgreSQL: {e}")),
    }
}

/// A string as an SQL literal (for the few statements sent as simple queries).
fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// One line of `COPY ... FROM STDIN` in text format: tab-separated fields, backslash escapes.
fn copy_line(out: &mut String, fields: &[&str], hash: u32) {
    for field in fields {
        for ch in field.chars() {
            match ch {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                _ => out.push(ch),
            }
        }
        out.push('\t');
    }
    out.push_str(&hash.to_string());
    out.push('\n');
}

type CellColumns<'a> = (Vec<&'a str>, Vec<&'a str>, Vec<&'a str>, Vec<&'a str>, Vec<&'a str>, Vec<i64>);

fn cell_columns(cells: &[CellRow]) -> CellColumns<'_> {
    (
        cells.iter().map(|c| c.table_id.as_str()).collect(),
        cells.iter().map(|c| c.row_id.as_str()).collect(),
        cells.iter().map(|c| c.cell_id.as_str()).collect(),
        cells.iter().map(|c| c.value.as_str()).collect(),
        cells.iter().map(|c| c.hlc.as_str()).collect(),
        cells.iter().map(|c| c.hash as i64).collect(),
    )
}

/// Stored stamps `(hlc, hash)` of what a transaction touches.
#[derive(Default)]
struct Stored {
    cells: HashMap<(String, String, String), (String, u32)>,
    values: HashMap<String, (String, u32)>,
    containers: HashMap<(i32, String, String), (String, u32)>,
}

impl StoredStamps for Stored {
    fn cell(&mut self, table_id: &str, row_id: &str, cell_id: &str) -> Result<Option<(String, u32)>> {
        Ok(self.cells.get(&(table_id.to_string(), row_id.to_string(), cell_id.to_string())).cloned())
    }

    fn value(&mut self, value_id: &str) -> Result<Option<(String, u32)>> {
        Ok(self.values.get(value_id).cloned())
    }

    fn container(&mut self, kind: ContainerKind, table_id: &str, row_id: &str) -> Result<Option<(String, u32)>> {
        Ok(self.containers.get(&(kind as i32, table_id.to_string(), row_id.to_string())).cloned())
    }
}

impl Storage for PostgresStorage {
    fn describe(&self) -> String {
        self.described.clone()
    }

    fn read(&mut self, mergeable: bool) -> Result<Option<Content>> {
        if !mergeable {
            return Err(self.mergeable_only());
        }
        let (rows, version) = if self.locked.is_some() {
            // Under the room's lock no other writer can commit between the statements.
            let result = self.read_rows().and_then(|rows| Ok((rows, self.stored_version()?)));
            if result.is_err() {
                self.locked = Some(true);
            }
            result?
        } else {
            self.reconnect_if_closed()?;
            // One snapshot for all three tables and the version, without blocking writers.
            // work_mem: the rows are sorted by `seq` in memory rather than through temporary
            // files (the default 4 MB holds about 40,000 cells).
            self.client
                .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL work_mem = '64MB'")
                .map_err(|e| self.io(e))?;
            let result = self.read_rows().and_then(|rows| Ok((rows, self.stored_version()?)));
            let _ = self.client.batch_execute("COMMIT");
            result?
        };
        let content = content_from_rows(&rows).map_err(|e| match e {
            Error::Corrupt(m) => Error::Corrupt(format!("{}: {m}", self.described)),
            other => other,
        })?;
        self.seen = version;
        Ok(content.map(Content::Mergeable))
    }

    fn write(&mut self, content: &Content) -> Result<()> {
        let text = match content {
            Content::Mergeable(text) => text,
            Content::Plain(_) => return Err(self.mergeable_only()),
        };
        let rows = rows_from_json(text)?;
        self.in_write_transaction(|s| {
            s.delete_room_rows()?;
            s.copy_in(&rows)?;
            s.bump_version()
        })
    }

    fn lock(&mut self, timeout: Duration) -> Result<()> {
        if self.locked.is_some() {
            return Err(Error::InvalidState(format!("{}: already locked", self.described)));
        }
        self.reconnect_if_closed()?;
        self.begin_locked(Some(timeout))?;
        self.locked = Some(false);
        Ok(())
    }

    fn unlock(&mut self) -> Result<()> {
        match self.locked.take() {
            None => Ok(()),
            Some(false) => self.client.batch_execute("COMMIT").map_err(|e| self.io(e)),
            Some(true) => {
                let _ = self.client.batch_execute("ROLLBACK");
                Err(Error::Io(format!("{}: the save failed and was rolled back", self.described)))
            }
        }
    }

    fn changed(&mut self) -> Result<bool> {
        if self.locked.is_none() {
            self.reconnect_if_closed()?;
        }
        let version = self.stored_version();
        if version.is_err() && self.locked.is_some() {
            self.locked = Some(true);
        }
        Ok(version? != self.seen)
    }

    fn is_incremental(&self) -> bool {
        true
    }

    fn write_changes(&mut self, changes: &str) -> Result<()> {
        let rows = rows_from_json(changes)?;
        self.in_write_transaction(|s| {
            // Every stamp merge_rows may look up, fetched in one query per table.
            let mut stored = s.stored_for(&rows)?;
            let merged = merge_rows(&rows, &mut stored)?;
            s.write_merged(&merged)
        })
    }

    fn move_aside(&mut self) -> Result<String> {
        let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let moved = self.in_write_transaction(|s| {
            // Another move-aside of this room in the same second gets a suffix.
            let mut name = format!("{}.corrupt-{unix}", s.room);
            let mut n = 1;
            while s
                .client
                .query_opt("SELECT 1 FROM tinybase_containers WHERE room = $1 LIMIT 1", &[&name])
                .map_err(|e| s.io(e))?
                .is_some()
            {
                n += 1;
                name = format!("{}.corrupt-{unix}-{n}", s.room);
            }
            for table in ["tinybase_cells", "tinybase_values", "tinybase_containers"] {
                s.client
                    .execute(&format!("UPDATE {table} SET room = $2 WHERE room = $1"), &[&s.room, &name])
                    .map_err(|e| s.io(e))?;
            }
            // The version stays with the room (bumped), so other processes see the change.
            s.bump_version()?;
            Ok(name)
        })?;
        self.seen = None;
        Ok(format!("{} moved to room {moved:?}", self.described))
    }
}

/// A persister of `store` (a MergeableStore) in room `room` of the PostgreSQL database `dsn`
/// (see [`PostgresStorage::connect`]). Several processes may persist the same room in one
/// database: their writes merge, and auto-load brings each the others'.
pub fn create_postgres_persister(store: &Store, dsn: &str, room: &str, options: PersisterOptions) -> Result<Persister> {
    Persister::new(store, Box::new(PostgresStorage::connect(dsn, room)?), options)
}
