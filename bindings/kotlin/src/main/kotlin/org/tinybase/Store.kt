package org.tinybase

import com.sun.jna.Pointer

/**
 * TinyBase's Store: tables of rows of cells, plus key-values, with transactions and
 * listeners. Thread-safe: any thread may read or write it at any time. [close] it when done
 * (an unreachable store is freed eventually as a backstop); calls after close throw
 * [TinyBaseException] with [Status.NULL_PARAMETER].
 */
public open class Store internal constructor(
    internal val handle: NativeHandle,
    /** The tb_store* the tb_store_* functions take (for a mergeable store, its borrowed view). */
    private val storeView: Pointer,
) : AutoCloseable {
    /** Creates an empty Store (createStore). */
    public constructor() : this(newHandle { Lib.tb_store_new(it) }.let { p -> NativeHandle(p, "store") { Lib.tb_store_free(it) } })

    private constructor(handle: NativeHandle) : this(handle, handle.raw)

    init {
        NativeCleaner.register(this, handle)
    }

    /** Runs [block] with this store's tb_store* (valid until it returns). */
    internal inline fun <T> withStore(block: (Pointer) -> T): T {
        handle.enter()
        try {
            return block(storeView)
        } finally {
            handle.exit()
        }
    }

    /** Whether [close] was called. */
    public val isClosed: Boolean get() = handle.isClosed

    /**
     * Releases this store's native reference (listeners added through it are removed). Calls
     * in flight on other threads finish first. Idempotent.
     */
    override fun close() {
        handle.close()
    }

    // --- data API (kotlin-store): cells, values, tables, rows, JSON, transactions ---

    // --- listeners (kotlin-listen) ---

    // Typed listeners receive the Store they were added on (the same object, so a
    // MergeableStore stays one); see ListenerRecord for the borrowed view used when that Store
    // was closed or collected while the native store lives on.

    /**
     * Adds a listener of any [kind]. [id1]..[id3] are the ids the kind takes in TinyBase's
     * order (table, row, cell; table, cell for [ListenerKind.HAS_TABLE_CELL]; or the value id),
     * null meaning any (a wildcard); ids the kind does not take are ignored. [listener] is
     * called on the thread that committed the change (any thread, possibly several at once)
     * with a copy of the event; exceptions it throws go to [setCallbackExceptionHandler].
     */
    public fun addListener(kind: ListenerKind, id1: String?, id2: String?, id3: String?, listener: (ListenerEvent) -> Unit): Listener =
        addRecord(kind, id1, id2, id3, ListenerRecord(null, null) { _, event -> listener(event) })

    /**
     * Adds a buffered listener: instead of calling back, each call queues a [ListenerEvent]
     * into [queue], drained on a thread of the host's choosing ([EventQueue.poll],
     * [EventQueue.drain]). Kinds and ids as in [addListener]. Closing the listener discards
     * its queued events.
     */
    public fun addBufferedListener(queue: EventQueue, kind: ListenerKind, id1: String? = null, id2: String? = null, id3: String? = null): Listener {
        val a = cstrOrNull(id1)
        val b = cstrOrNull(id2)
        val c = cstrOrNull(id3)
        val out = LongArray(1)
        queue.handle.use { q -> withStore { check(LibListen.tb_store_add_buffered_listener(it, q, kind.code, a, b, c, out)) } }
        return Listener(this, out[0], kind)
    }

    /**
     * delListener: removes the listener [listenerId] (unknown or already removed ids are
     * ignored; ids are never reused). Synchronous: it waits for calls of the listener in flight
     * on other threads, so once it returns the listener is never called again. Called from
     * inside a listener callback or a transaction it does not wait (that could deadlock): the
     * listener is then not called again after those calls in flight. Prefer [Listener.close].
     */
    public fun delListener(listenerId: Long): Store {
        withStore { check(LibListen.tb_store_del_listener(it, listenerId)) }
        return this
    }

    /** callListener: calls listener [listenerId] now, on this thread, once for everything its ids match. */
    public fun callListener(listenerId: Long): Store {
        withStore { check(LibListen.tb_store_call_listener(it, listenerId)) }
        return this
    }

    /** The number of listeners registered on the store (through any reference, buffered ones included). */
    public fun getListenerCount(): Int {
        val out = com.sun.jna.ptr.NativeLongByReference()
        withStore { check(LibListen.tb_store_get_listener_count(it, out)) }
        return out.value.toInt()
    }

    /** addHasTablesListener: `listener(store, hasTables)` when the store gets its first table or loses its last. */
    public fun addHasTablesListener(listener: (Store, Boolean) -> Unit): Listener =
        addTyped(ListenerKind.HAS_TABLES, null, null, null) { s, e -> listener(s, e.has) }

    /** addTablesListener: `listener(store)` after any change to any table. */
    public fun addTablesListener(listener: (Store) -> Unit): Listener =
        addTyped(ListenerKind.TABLES, null, null, null) { s, _ -> listener(s) }

    /** addTableIdsListener: `listener(store)` when the set of table ids changes. */
    public fun addTableIdsListener(listener: (Store) -> Unit): Listener =
        addTyped(ListenerKind.TABLE_IDS, null, null, null) { s, _ -> listener(s) }

    /** addHasTableListener: `listener(store, tableId, hasTable)`; null [tableId]: any table. */
    public fun addHasTableListener(tableId: String?, listener: (Store, String, Boolean) -> Unit): Listener =
        addTyped(ListenerKind.HAS_TABLE, tableId, null, null) { s, e -> listener(s, e.tableId!!, e.has) }

    /** addTableListener: `listener(store, tableId)` after any change in the table; null [tableId]: any table. */
    public fun addTableListener(tableId: String?, listener: (Store, String) -> Unit): Listener =
        addTyped(ListenerKind.TABLE, tableId, null, null) { s, e -> listener(s, e.tableId!!) }

    /** addTableCellIdsListener: `listener(store, tableId)` when the cell ids used in the table change. */
    public fun addTableCellIdsListener(tableId: String?, listener: (Store, String) -> Unit): Listener =
        addTyped(ListenerKind.TABLE_CELL_IDS, tableId, null, null) { s, e -> listener(s, e.tableId!!) }

    /** addHasTableCellListener: `listener(store, tableId, cellId, hasTableCell)`; null ids: any. */
    public fun addHasTableCellListener(tableId: String?, cellId: String?, listener: (Store, String, String, Boolean) -> Unit): Listener =
        addTyped(ListenerKind.HAS_TABLE_CELL, tableId, cellId, null) { s, e -> listener(s, e.tableId!!, e.cellId!!, e.has) }

    /** addRowCountListener: `listener(store, tableId, count)` with the table's new row count. */
    public fun addRowCountListener(tableId: String?, listener: (Store, String, Int) -> Unit): Listener =
        addTyped(ListenerKind.ROW_COUNT, tableId, null, null) { s, e -> listener(s, e.tableId!!, e.rowCount) }

    /** addRowIdsListener: `listener(store, tableId)` when the table's row ids change. */
    public fun addRowIdsListener(tableId: String?, listener: (Store, String) -> Unit): Listener =
        addTyped(ListenerKind.ROW_IDS, tableId, null, null) { s, e -> listener(s, e.tableId!!) }

    /** addHasRowListener: `listener(store, tableId, rowId, hasRow)`; null ids: any. */
    public fun addHasRowListener(tableId: String?, rowId: String?, listener: (Store, String, String, Boolean) -> Unit): Listener =
        addTyped(ListenerKind.HAS_ROW, tableId, rowId, null) { s, e -> listener(s, e.tableId!!, e.rowId!!, e.has) }

    /** addRowListener: `listener(store, tableId, rowId)` after any change in the row; null ids: any. */
    public fun addRowListener(tableId: String?, rowId: String?, listener: (Store, String, String) -> Unit): Listener =
        addTyped(ListenerKind.ROW, tableId, rowId, null) { s, e -> listener(s, e.tableId!!, e.rowId!!) }

    /** addCellIdsListener: `listener(store, tableId, rowId)` when the row's cell ids change. */
    public fun addCellIdsListener(tableId: String?, rowId: String?, listener: (Store, String, String) -> Unit): Listener =
        addTyped(ListenerKind.CELL_IDS, tableId, rowId, null) { s, e -> listener(s, e.tableId!!, e.rowId!!) }

    /** addHasCellListener: `listener(store, tableId, rowId, cellId, hasCell)`; null ids: any. */
    public fun addHasCellListener(tableId: String?, rowId: String?, cellId: String?, listener: (Store, String, String, String, Boolean) -> Unit): Listener =
        addTyped(ListenerKind.HAS_CELL, tableId, rowId, cellId) { s, e -> listener(s, e.tableId!!, e.rowId!!, e.cellId!!, e.has) }

    /**
     * addCellListener: `listener(store, tableId, rowId, cellId, newCell, oldCell)` when a cell
     * changes; newCell is null when it was deleted, oldCell null when it is new. Null ids: any.
     */
    public fun addCellListener(tableId: String?, rowId: String?, cellId: String?, listener: (Store, String, String, String, Cell?, Cell?) -> Unit): Listener =
        addTyped(ListenerKind.CELL, tableId, rowId, cellId) { s, e -> listener(s, e.tableId!!, e.rowId!!, e.cellId!!, e.newCell, e.oldCell) }

    /** addHasValuesListener: `listener(store, hasValues)` when the store gets its first value or loses its last. */
    public fun addHasValuesListener(listener: (Store, Boolean) -> Unit): Listener =
        addTyped(ListenerKind.HAS_VALUES, null, null, null) { s, e -> listener(s, e.has) }

    /** addValuesListener: `listener(store)` after any change to any value. */
    public fun addValuesListener(listener: (Store) -> Unit): Listener =
        addTyped(ListenerKind.VALUES, null, null, null) { s, _ -> listener(s) }

    /** addValueIdsListener: `listener(store)` when the set of value ids changes. */
    public fun addValueIdsListener(listener: (Store) -> Unit): Listener =
        addTyped(ListenerKind.VALUE_IDS, null, null, null) { s, _ -> listener(s) }

    /** addHasValueListener: `listener(store, valueId, hasValue)`; null [valueId]: any value. */
    public fun addHasValueListener(valueId: String?, listener: (Store, String, Boolean) -> Unit): Listener =
        addTyped(ListenerKind.HAS_VALUE, valueId, null, null) { s, e -> listener(s, e.valueId!!, e.has) }

    /**
     * addValueListener: `listener(store, valueId, newValue, oldValue)` when a value changes;
     * newValue is null when it was deleted, oldValue null when it is new. Null [valueId]: any.
     */
    public fun addValueListener(valueId: String?, listener: (Store, String, Cell?, Cell?) -> Unit): Listener =
        addTyped(ListenerKind.VALUE, valueId, null, null) { s, e -> listener(s, e.valueId!!, e.newCell, e.oldCell) }

    /**
     * addStartTransactionListener: `listener(store)` as every transaction starts, inside it with
     * the store locked (other threads wait; its writes join the transaction).
     */
    public fun addStartTransactionListener(listener: (Store) -> Unit): Listener =
        addTyped(ListenerKind.START_TRANSACTION, null, null, null) { s, _ -> listener(s) }

    /**
     * addWillFinishTransactionListener: `listener(store)` as every transaction is about to
     * finish, inside it with the store locked (its writes join the transaction).
     */
    public fun addWillFinishTransactionListener(listener: (Store) -> Unit): Listener =
        addTyped(ListenerKind.WILL_FINISH_TRANSACTION, null, null, null) { s, _ -> listener(s) }

    /** addDidFinishTransactionListener: `listener(store)` after every transaction committed (or rolled back). */
    public fun addDidFinishTransactionListener(listener: (Store) -> Unit): Listener =
        addTyped(ListenerKind.DID_FINISH_TRANSACTION, null, null, null) { s, _ -> listener(s) }
}

/**
 * TinyBase's MergeableStore: a [Store] whose every cell and value carries an HLC stamp, so
 * that replicas merge deterministically (and sync, through synchronizers).
 */
public class MergeableStore private constructor(handle: NativeHandle) :
    Store(handle, Lib.tb_mergeable_store_as_store(handle.raw) ?: throw TinyBaseException(Status.PANIC, "no store view")) {
    /**
     * Creates an empty MergeableStore (createMergeableStore). [uniqueId] fixes the HLC client
     * id (give every replica its own); null picks a random one.
     */
    public constructor(uniqueId: String? = null) : this(
        newHandle { Lib.tb_mergeable_store_new(cstrOrNull(uniqueId), it) }.let { p ->
            NativeHandle(p, "mergeable store") { Lib.tb_mergeable_store_free(it) }
        },
    )

    /** Runs [block] with this store's tb_mergeable_store* (valid until it returns). */
    internal inline fun <T> withMergeable(block: (Pointer) -> T): T = handle.use(block)

    // --- mergeable API (kotlin-store) ---
}
