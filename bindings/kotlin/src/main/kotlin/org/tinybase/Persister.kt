package org.tinybase

import com.sun.jna.Pointer
import com.sun.jna.ptr.PointerByReference

/** What a persister is doing (TinyBase's getStatus()). */
public enum class PersisterStatus {
    /** Neither loading nor saving. */
    IDLE,

    /** Loading. */
    LOADING,

    /** Saving. */
    SAVING,
}

/** TinyBase's getStats(): loads and saves completed so far. */
public data class PersisterStats(
    /** Loads completed (including those that found nothing stored). */
    public val loads: Long,
    /** Saves completed (whole-content saves and incremental transaction writes). */
    public val saves: Long,
)

/**
 * What [PersisterOptions.onDurable] is told: the content just made durable. For a
 * [MergeableStore] the hashes are its content hashes at that save (for an incremental SQLite or
 * PostgreSQL write, the hashes of that transaction's changes); 0 and 0 for a plain [Store].
 */
public data class DurableInfo(
    /** The tables hash of the durable content (unsigned 32-bit, as [MergeableStore.getMergeableContentHashes]). */
    public val tablesHash: Long,
    /** The values hash of the durable content (unsigned 32-bit). */
    public val valuesHash: Long,
    /** Saves completed so far (as [PersisterStats.saves]). */
    public val saves: Long,
)

/** How a [SqlitePersister] lays the store out. */
public enum class SqliteMode(internal val code: Int) {
    /**
     * TinyBase's layout: the whole content as JSON in one row, readable and writable by
     * TinyBase's own SQLite persisters.
     */
    JSON(LibPersist.SQLITE_JSON),

    /**
     * Beyond TinyBase: one row per cell and value with its HLC and hash, each committed
     * transaction written as one SQLite transaction (WAL). A [MergeableStore] only.
     */
    INCREMENTAL(LibPersist.SQLITE_INCREMENTAL),
}

/**
 * Options of every persister.
 *
 * [onDurable] and [onIgnoredError] run on the persister's own thread (or on the thread calling
 * [Persister.save] or [Persister.startAutoSave], for the save it makes), one at a time, with
 * no lock of the library held. They may read and write stores and call the persister's
 * getters ([Persister.getStatus], [Persister.getStats], [Persister.isAutoLoading],
 * [Persister.isAutoSaving], [Persister.describe]) and [Persister.close]; its other methods throw
 * [TinyBaseException] with [Status.INVALID_STATE] there (they would wait for the very thread
 * running the hook). Exceptions they throw go to the handler of [setCallbackExceptionHandler].
 * The library holds the hooks until the persister is closed (so a hook that refers to its own
 * persister keeps it reachable: close it rather than rely on the garbage collector).
 */
public class PersisterOptions(
    /** How often auto-load checks the storage for another process's writes, in seconds (positive). */
    public val autoLoadIntervalSeconds: Double = 0.25,
    /**
     * How long a save waits for another process's write lock before failing with
     * [StorageException], in seconds (positive).
     */
    public val lockTimeoutSeconds: Double = 10.0,
    /** Called each time content becomes durable (synced to disk or committed). */
    public val onDurable: ((DurableInfo) -> Unit)? = null,
    /**
     * Called with an error auto-load or auto-save met and could not throw (TinyBase's
     * onIgnoredError): its status ([Status.IO], [Status.CORRUPT], ...) and message.
     */
    public val onIgnoredError: ((status: Status, message: String) -> Unit)? = null,
)

/**
 * TinyBase's Persister: keeps one store's content in a file ([FilePersister]), a SQLite
 * database ([SqlitePersister]) or a PostgreSQL room ([PostgresPersister]).
 *
 * Nothing is read or written until a method is called; each blocks until done ([save] until
 * what it saved is durable), so call them off an Android main thread. Beyond TinyBase, [load]
 * merges what is stored into the store, loaded hashes are verified, and stored data that could
 * not be loaded ([CorruptDataException]) is never written over: saves are refused until a load
 * succeeds or [moveAsideUnreadable] moved it aside. Thread-safe: any thread may call any
 * method. The persister keeps its store's native content alive until it is closed.
 *
 * [close] it when done: it destroys the persister (writing what auto-save queued) and frees it;
 * an unreachable persister is closed eventually as a backstop. Calls after close throw
 * [TinyBaseException] with [Status.NULL_PARAMETER].
 */
public abstract class Persister internal constructor(
    /** The store this persister persists (TinyBase's getStore()). */
    public val store: Store,
    options: PersisterOptions,
    sqliteNames: Array<String>?,
    create: (store: Pointer, options: TbPersisterOptions, out: PointerByReference) -> Int,
) : AutoCloseable {
    private val handle: NativeHandle = open(store, options, sqliteNames, create)

    init {
        NativeCleaner.register(this, handle)
    }

    /**
     * load: merges what is stored into the store (a [MergeableStore] merges stamps; a plain
     * [Store] takes the stored cells and values over its own, keeping those only it has).
     * Returns false when nothing is stored yet (the store is left as it is). Throws
     * [CorruptDataException] when the stored data cannot be loaded (nothing is loaded, the data
     * is kept, saves are refused from then on until a load succeeds or [moveAsideUnreadable]),
     * [StorageException] when reading failed.
     */
    public fun load(): Boolean = flag { p, out -> LibPersist.tb_persister_load(p, out) }

    /**
     * save: writes the whole content (merging in first, under the storage's lock, what another
     * process wrote since) and returns once it is durable. Throws [StorageException] when
     * writing failed, [TinyBaseException] with [Status.INVALID_STATE] while stored data could
     * not be loaded or after [destroy].
     */
    public fun save(): Persister = command { LibPersist.tb_persister_save(it) }

    /**
     * startAutoLoad: loads now (throwing that load's errors; auto-load then stays off), then
     * merges what other processes write to the storage, checked every
     * [PersisterOptions.autoLoadIntervalSeconds] on the persister's thread (errors then go to
     * [PersisterOptions.onIgnoredError]).
     */
    public fun startAutoLoad(): Persister = command { LibPersist.tb_persister_start_auto_load(it) }

    /** stopAutoLoad (waits for a check in progress). */
    public fun stopAutoLoad(): Persister = command { LibPersist.tb_persister_stop_auto_load(it) }

    /**
     * startAutoSave: saves now (throwing that save's errors; auto-save then stays off), then
     * writes after every committed transaction on the persister's thread (errors then go to
     * [PersisterOptions.onIgnoredError] and to the next [flush]). Refused while stored data
     * could not be loaded.
     */
    public fun startAutoSave(): Persister = command { LibPersist.tb_persister_start_auto_save(it) }

    /** stopAutoSave: writes what is queued first, and returns once that is durable. */
    public fun stopAutoSave(): Persister = command { LibPersist.tb_persister_stop_auto_save(it) }

    /** isAutoLoading (never blocks). */
    public fun isAutoLoading(): Boolean = flag { p, out -> LibPersist.tb_persister_is_auto_loading(p, out) }

    /** isAutoSaving (never blocks). */
    public fun isAutoSaving(): Boolean = flag { p, out -> LibPersist.tb_persister_is_auto_saving(p, out) }

    /** getStatus: idle, loading or saving (never blocks). */
    public fun getStatus(): PersisterStatus {
        val out = IntArray(1)
        handle.use { check(LibPersist.tb_persister_get_status(it, out)) }
        return PersisterStatus.entries.getOrNull(out[0])
            ?: throw TinyBaseException(Status.PANIC, "unknown persister status ${out[0]}")
    }

    /** getStats: loads and saves completed so far (never blocks). */
    public fun getStats(): PersisterStats {
        val loads = LongArray(1)
        val saves = LongArray(1)
        handle.use { check(LibPersist.tb_persister_get_stats(it, loads, saves)) }
        return PersisterStats(loads[0], saves[0])
    }

    /**
     * Waits until every transaction committed before the call is durable (auto-save), or
     * [timeoutSeconds] passed: true when durable, false on timeout. The first auto-save error
     * since the last call is thrown instead. [timeoutSeconds] must be finite and not negative.
     */
    public fun flush(timeoutSeconds: Double = 10.0): Boolean =
        flag { p, out -> LibPersist.tb_persister_flush(p, timeoutSeconds, out) }

    /**
     * After a load threw [CorruptDataException]: moves the unreadable data aside (a file renamed
     * `<name>.corrupt...`, a database's data kept under another name) so that saves may start
     * afresh, and returns where it went; null when no load has failed. Throws
     * [StorageException] when it cannot be moved.
     */
    public fun moveAsideUnreadable(): String? {
        val out = PointerByReference()
        handle.use { check(LibPersist.tb_persister_move_aside_unreadable(it, out)) }
        return takeString(out.value)
    }

    /** Names the storage (`file /data/room.json`, `sqlite /x.db (json)`, ...). */
    public fun describe(): String {
        val out = PointerByReference()
        handle.use { check(LibPersist.tb_persister_describe(it, out)) }
        return takeString(out.value) ?: ""
    }

    /**
     * destroy: stops auto-load and auto-save (writing what is queued, [PersisterOptions.onDurable]
     * included) and releases the storage (its lock, its connection). The persister stays
     * readable (status, stats); commands then throw [TinyBaseException] with
     * [Status.INVALID_STATE]. Idempotent.
     */
    public fun destroy() {
        handle.use { check(LibPersist.tb_persister_destroy(it)) }
    }

    /** Whether [close] was called. */
    public val isClosed: Boolean get() = handle.isClosed

    /**
     * Destroys the persister (writing what auto-save queued) and frees it, releasing its
     * hooks; idempotent. Calls in flight on other threads return first ([flush] at once).
     * Allowed inside the persister's own hooks: the destroy and free then happen once the hook
     * (and the call it ran in) returned.
     */
    override fun close() {
        // Inside the persister's own hook the library refuses the destroy (INVALID_STATE) and
        // defers the free instead, which is what is wanted there.
        handle.closeAfter { LibPersist.tb_persister_destroy(it) }
    }

    override fun toString(): String =
        if (handle.isClosed) "${this::class.simpleName}(closed)" else "${this::class.simpleName}(${runCatching { describe() }.getOrDefault("?")})"

    private inline fun command(call: (Pointer) -> Int): Persister {
        handle.use { check(call(it)) }
        return this
    }

    private inline fun flag(call: (Pointer, ByteArray) -> Int): Boolean {
        val out = ByteArray(1)
        handle.use { check(call(it, out)) }
        return out[0].toInt() != 0
    }

    private companion object {
        /**
         * Fills the C options from [options] (and the SQLite names), runs [create] with the
         * store's tb_store* and takes the new persister. The hooks are registered only when
         * given, and unregistered when creation fails (the library then never releases them).
         */
        fun open(
            store: Store,
            options: PersisterOptions,
            sqliteNames: Array<String>?,
            create: (Pointer, TbPersisterOptions, PointerByReference) -> Int,
        ): NativeHandle {
            val o = TbPersisterOptions()
            o.auto_load_interval_seconds = positiveSeconds(options.autoLoadIntervalSeconds, "autoLoadIntervalSeconds")
            o.lock_timeout_seconds = positiveSeconds(options.lockTimeoutSeconds, "lockTimeoutSeconds")
            if (sqliteNames != null) {
                o.sqlite_table_name = o.nativeString(cstr(sqliteNames[0]))
                o.sqlite_id_column_name = o.nativeString(cstr(sqliteNames[1]))
                o.sqlite_store_column_name = o.nativeString(cstr(sqliteNames[2]))
            }
            var userData: Pointer? = null
            if (options.onDurable != null || options.onIgnoredError != null) {
                userData = Callbacks.register(PersisterHooks(options.onDurable, options.onIgnoredError))
                if (options.onDurable != null) o.on_durable = PersisterCallbacks.DURABLE
                if (options.onIgnoredError != null) o.on_ignored_error = PersisterCallbacks.ERROR
                o.user_data = userData
                o.release = Callbacks.RELEASE
            }
            val raw = try {
                store.withStore { s -> newHandle { out -> create(s, o, out) } }
            } catch (t: Throwable) {
                userData?.let(Callbacks::unregister)
                throw t
            }
            return NativeHandle(raw, "persister") { LibPersist.tb_persister_free(it) }
        }

        /** [s] for an option where the library reads 0 as "default": refuses <= 0, NaN, infinity. */
        fun positiveSeconds(s: Double, what: String): Double {
            if (!(s > 0) || s.isInfinite()) {
                throw TinyBaseException(Status.INVALID_ARGUMENT, "$what must be a positive, finite number of seconds, not $s")
            }
            return s
        }
    }
}

/**
 * createFilePersister: [store] (a [Store] or a [MergeableStore]) in the file at [path], in
 * TinyBase's format (a MergeableStore's content with its stamps and hashes, a Store's
 * `[tables, values]`), written atomically and durably (temporary file, fsync, rename, fsync of
 * the folder) under a lock file that keeps two processes from writing at once. Nothing is read
 * or written until a method is called.
 */
public class FilePersister(
    store: Store,
    /** The file's path. */
    public val path: String,
    options: PersisterOptions = PersisterOptions(),
) : Persister(store, options, null, { s, o, out -> LibPersist.tb_file_persister_new(s, cstr(path), o, out) })

/**
 * createSqlitePersister: [store] in the SQLite database at [path] (created if missing; SQLite
 * is built into the library) in [mode]: [SqliteMode.JSON] is TinyBase's layout (table
 * [tableName] with columns [idColumnName] and [storeColumnName], one row holding the content as
 * JSON, so databases move between TinyBase's SQLite persisters and this one);
 * [SqliteMode.INCREMENTAL] needs a [MergeableStore] (else [TinyBaseException] with
 * [Status.INVALID_STATE]). Throws [StorageException] when the database cannot be opened.
 */
public class SqlitePersister(
    store: Store,
    /** The database file's path. */
    public val path: String,
    /** The layout. */
    public val mode: SqliteMode = SqliteMode.JSON,
    options: PersisterOptions = PersisterOptions(),
    /** JSON mode: the table's name. */
    tableName: String = "tinybase",
    /** JSON mode: the id column's name. */
    idColumnName: String = "_id",
    /** JSON mode: the content column's name. */
    storeColumnName: String = "store",
) : Persister(
    store,
    options,
    arrayOf(tableName, idColumnName, storeColumnName),
    { s, o, out -> LibPersist.tb_sqlite_persister_new(s, cstr(path), mode.code, o, out) },
)

/**
 * A PostgreSQL persister (beyond TinyBase, for servers): [store] in the room [room] of the
 * database at [dsn] (a libpq connection string `host=... port=... dbname=...` or a
 * `postgresql://` URL), in the incremental layout keyed by room, so several processes can share
 * one database. Connects now (blocking): [StorageException] when the database cannot be
 * reached, [TinyBaseException] with [Status.INVALID_STATE] when the library was built without
 * PostgreSQL.
 */
public class PostgresPersister(
    store: MergeableStore,
    dsn: String,
    /** The room (the key of this store's rows). */
    public val room: String,
    options: PersisterOptions = PersisterOptions(),
) : Persister(store, options, null, { s, o, out -> LibPersist.tb_postgres_persister_new(s, cstr(dsn), cstr(room), o, out) })

