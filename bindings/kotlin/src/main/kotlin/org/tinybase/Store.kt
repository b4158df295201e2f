package org.tinybase

import com.sun.jna.Pointer
import com.sun.jna.ptr.NativeLongByReference
import com.sun.jna.ptr.PointerByReference

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

    /** Calls a C getter that returns a string through `char**`, and returns the text. */
    private inline fun text(call: (Pointer, PointerByReference) -> Int): String = withStore { p ->
        val out = PointerByReference()
        check(call(p, out))
        takeString(out.value) ?: ""
    }

    /** Calls a C function that returns a `bool` through `bool*`. */
    private inline fun flag(call: (Pointer, ByteArray) -> Int): Boolean = withStore { p ->
        val out = ByteArray(1)
        check(call(p, out))
        out[0].toInt() != 0
    }

    /** Calls a C function that changes the store; returns this store for chaining. */
    private inline fun change(call: (Pointer) -> Int): Store {
        withStore { check(call(it)) }
        return this
    }

    /** getTables: every table, `{tableId: {rowId: {cellId: cell}}}`. */
    public fun getTables(): Map<String, Map<String, Map<String, Cell>>> = StoreJson.content(getContentJson()).first

    /** getTablesJson: the tables as JSON text, object and array cells in wire form (U+FFFD-prefixed strings). */
    public fun getTablesJson(): String = text { p, out -> LibStore.tb_store_get_tables_json(p, out) }

    /** getTable: `{rowId: {cellId: cell}}` (empty when the table does not exist). */
    public fun getTable(tableId: String): Map<String, Map<String, Cell>> = StoreJson.table(getTableJson(tableId))

    /** getTable as JSON text (decoded: object and array cells as plain JSON; `{}` when absent). */
    public fun getTableJson(tableId: String): String {
        val t = cstr(tableId)
        return text { p, out -> LibStore.tb_store_get_table_json(p, t, out) }
    }

    /** getRow: `{cellId: cell}` (empty when the row does not exist). */
    public fun getRow(tableId: String, rowId: String): Map<String, Cell> = StoreJson.row(getRowJson(tableId, rowId))

    /** getRow as JSON text (decoded; `{}` when absent). */
    public fun getRowJson(tableId: String, rowId: String): String {
        val t = cstr(tableId)
        val r = cstr(rowId)
        return text { p, out -> LibStore.tb_store_get_row_json(p, t, r, out) }
    }

    /** getCell: the cell, or null when there is none ([Cell.Null] is a stored JSON null). */
    public fun getCell(tableId: String, rowId: String, cellId: String): Cell? {
        val value = ValueScratch.get()
        withNativeStrings(tableId, rowId, cellId, null) { t, r, c, _ ->
            withStore { p -> check(LibStore.tb_store_get_cell(p, t, r, c, value.value)) }
        }
        return value.take()
    }

    /** getValues: every value, `{valueId: value}`. */
    public fun getValues(): Map<String, Cell> = StoreJson.content(getContentJson()).second

    /** getValuesJson: the values as JSON text (wire form). */
    public fun getValuesJson(): String = text { p, out -> LibStore.tb_store_get_values_json(p, out) }

    /** getValue: the value, or null when there is none ([Cell.Null] is a stored JSON null). */
    public fun getValue(valueId: String): Cell? {
        val v = cstr(valueId)
        val scratch = ValueScratch.get()
        withStore { p -> check(LibStore.tb_store_get_value(p, v, scratch.value)) }
        return scratch.take()
    }

    /** getContent: the tables and the values. */
    public fun getContent(): Pair<Map<String, Map<String, Map<String, Cell>>>, Map<String, Cell>> =
        StoreJson.content(getContentJson())

    /** getContent as JSON text `[tables, values]`, object and array cells decoded (plain JSON). */
    public fun getContentJson(): String = text { p, out -> LibStore.tb_store_get_content_json(p, out) }

    /** getJson: `[tables, values]` as JSON text in wire form (TinyBase's getJson). */
    public fun getJson(): String = text { p, out -> LibStore.tb_store_get_json(p, out) }

    /** getTableIds. */
    public fun getTableIds(): List<String> =
        StoreJson.ids(text { p, out -> LibStore.tb_store_get_table_ids_json(p, out) })

    /** getTableCellIds: every cell id used in a table. */
    public fun getTableCellIds(tableId: String): List<String> {
        val t = cstr(tableId)
        return StoreJson.ids(text { p, out -> LibStore.tb_store_get_table_cell_ids_json(p, t, out) })
    }

    /** getRowIds. */
    public fun getRowIds(tableId: String): List<String> {
        val t = cstr(tableId)
        return StoreJson.ids(text { p, out -> LibStore.tb_store_get_row_ids_json(p, t, out) })
    }

    /** getRowCount. */
    public fun getRowCount(tableId: String): Int {
        val t = cstr(tableId)
        return withStore { p ->
            val out = NativeLongByReference()
            check(LibStore.tb_store_get_row_count(p, t, out))
            out.value.toInt()
        }
    }

    /** getCellIds. */
    public fun getCellIds(tableId: String, rowId: String): List<String> {
        val t = cstr(tableId)
        val r = cstr(rowId)
        return StoreJson.ids(text { p, out -> LibStore.tb_store_get_cell_ids_json(p, t, r, out) })
    }

    /** getValueIds. */
    public fun getValueIds(): List<String> =
        StoreJson.ids(text { p, out -> LibStore.tb_store_get_value_ids_json(p, out) })

    /** hasTables. */
    public fun hasTables(): Boolean = flag { p, out -> LibStore.tb_store_has_tables(p, out) }

    /** hasTable. */
    public fun hasTable(tableId: String): Boolean {
        val t = cstr(tableId)
        return flag { p, out -> LibStore.tb_store_has_table(p, t, out) }
    }

    /** hasTableCell: whether a cell id is used anywhere in a table. */
    public fun hasTableCell(tableId: String, cellId: String): Boolean {
        val t = cstr(tableId)
        val c = cstr(cellId)
        return flag { p, out -> LibStore.tb_store_has_table_cell(p, t, c, out) }
    }

    /** hasRow. */
    public fun hasRow(tableId: String, rowId: String): Boolean {
        val t = cstr(tableId)
        val r = cstr(rowId)
        return flag { p, out -> LibStore.tb_store_has_row(p, t, r, out) }
    }

    /** hasCell. */
    public fun hasCell(tableId: String, rowId: String, cellId: String): Boolean {
        val t = cstr(tableId)
        val r = cstr(rowId)
        val c = cstr(cellId)
        return flag { p, out -> LibStore.tb_store_has_cell(p, t, r, c, out) }
    }

    /** hasValues. */
    public fun hasValues(): Boolean = flag { p, out -> LibStore.tb_store_has_values(p, out) }

    /** hasValue. */
    public fun hasValue(valueId: String): Boolean {
        val v = cstr(valueId)
        return flag { p, out -> LibStore.tb_store_has_value(p, v, out) }
    }

    /**
     * setTables: replaces every table. Cells are [Cell]s or plain values (see [cellOf]). As
     * TinyBase's, empty tables are refused ([Status.INVALID_SHAPE]; use [delTables]).
     */
    public fun setTables(tables: Map<String, Map<String, Map<String, Any?>>>): Store {
        if (tables.isEmpty()) throw TinyBaseException(Status.INVALID_SHAPE, "setTables: empty tables (use delTables)")
        return setTablesJson(StoreJson.tables(tables))
    }

    /** setTablesJson: replaces every table from JSON text (object and array cells plain or in wire form; `{}` deletes them all). */
    public fun setTablesJson(json: String): Store {
        val j = cstr(json)
        return change { LibStore.tb_store_set_tables_json(it, j) }
    }

    /** setTable: replaces a table. */
    public fun setTable(tableId: String, table: Map<String, Map<String, Any?>>): Store =
        setTableJson(tableId, StoreJson.table(table))

    /** setTable from JSON text `{rowId: {cellId: cell}}`. */
    public fun setTableJson(tableId: String, json: String): Store {
        val t = cstr(tableId)
        val j = cstr(json)
        return change { LibStore.tb_store_set_table_json(it, t, j) }
    }

    /** setRow: replaces a row. */
    public fun setRow(tableId: String, rowId: String, row: Map<String, Any?>): Store =
        setRowJson(tableId, rowId, StoreJson.row(row))

    /** setRow from JSON text `{cellId: cell}`. */
    public fun setRowJson(tableId: String, rowId: String, json: String): Store {
        val t = cstr(tableId)
        val r = cstr(rowId)
        val j = cstr(json)
        return change { LibStore.tb_store_set_row_json(it, t, r, j) }
    }

    /** setPartialRow: sets the given cells of a row, leaving the others. */
    public fun setPartialRow(tableId: String, rowId: String, partialRow: Map<String, Any?>): Store =
        setPartialRowJson(tableId, rowId, StoreJson.row(partialRow))

    /** setPartialRow from JSON text `{cellId: cell}`. */
    public fun setPartialRowJson(tableId: String, rowId: String, json: String): Store {
        val t = cstr(tableId)
        val r = cstr(rowId)
        val j = cstr(json)
        return change { LibStore.tb_store_set_partial_row_json(it, t, r, j) }
    }

    /**
     * addRow: adds a row with a new id and returns that id. With [reuseRowIds], ids of deleted
     * rows are used first (TinyBase's default).
     */
    public fun addRow(tableId: String, row: Map<String, Any?>, reuseRowIds: Boolean = true): String =
        addRowJson(tableId, StoreJson.row(row), reuseRowIds)

    /** addRow from JSON text `{cellId: cell}`; returns the new row's id. */
    public fun addRowJson(tableId: String, json: String, reuseRowIds: Boolean = true): String {
        val t = cstr(tableId)
        val j = cstr(json)
        return text { p, out -> LibStore.tb_store_add_row_json(p, t, j, reuseRowIds, out) }
    }

    /** setCell. */
    public fun setCell(tableId: String, rowId: String, cellId: String, cell: Cell): Store {
        when (cell) {
            is Cell.Text -> return setCell(tableId, rowId, cellId, cell.value)
            is Cell.Json -> return setCellJson(tableId, rowId, cellId, cell.json)
            else -> {
                val v = ValueScratch.get().put(cell)
                withNativeStrings(tableId, rowId, cellId, null) { t, r, c, _ ->
                    withStore { p -> check(LibStore.tb_store_set_cell(p, t, r, c, v)) }
                }
                return this
            }
        }
    }

    /**
     * setCell with a plain value: String, Number, Boolean, null (JSON null), or a Map / List
     * (an object or array cell). See [cellOf].
     */
    public fun setCell(tableId: String, rowId: String, cellId: String, cell: Any?): Store =
        setCell(tableId, rowId, cellId, cellOf(cell))

    /** setCell with a string (the fastest path). */
    public fun setCell(tableId: String, rowId: String, cellId: String, cell: String): Store {
        // The common case, without a tb_value. The C string would end at a NUL character:
        // such a string goes as JSON text, where it is escaped.
        if (cell.indexOf('\u0000') >= 0) return setCellJson(tableId, rowId, cellId, JsonWriter.write(cell))
        withNativeStrings(tableId, rowId, cellId, cell) { t, r, c, v ->
            withStore { p -> check(LibStore.tb_store_set_cell_string(p, t, r, c, v)) }
        }
        return this
    }

    /** setCell from the JSON text of the cell (`"text"`, `1`, `true`, `null`, `{...}`, `[...]`). */
    public fun setCellJson(tableId: String, rowId: String, cellId: String, json: String): Store {
        val t = cstr(tableId)
        val r = cstr(rowId)
        val c = cstr(cellId)
        val j = cstr(json)
        return change { LibStore.tb_store_set_cell_json(it, t, r, c, j) }
    }

    /** setValues: replaces every value. As TinyBase's, empty values are refused ([Status.INVALID_SHAPE]; use [delValues]). */
    public fun setValues(values: Map<String, Any?>): Store {
        if (values.isEmpty()) throw TinyBaseException(Status.INVALID_SHAPE, "setValues: empty values (use delValues)")
        return setValuesJson(StoreJson.row(values))
    }

    /** setValuesJson: replaces every value from JSON text `{valueId: value}` (`{}` deletes them all). */
    public fun setValuesJson(json: String): Store {
        val j = cstr(json)
        return change { LibStore.tb_store_set_values_json(it, j) }
    }

    /** setPartialValues: sets the given values, leaving the others. */
    public fun setPartialValues(partialValues: Map<String, Any?>): Store =
        setPartialValuesJson(StoreJson.row(partialValues))

    /** setPartialValues from JSON text `{valueId: value}`. */
    public fun setPartialValuesJson(json: String): Store {
        val j = cstr(json)
        return change { LibStore.tb_store_set_partial_values_json(it, j) }
    }

    /** setValue. */
    public fun setValue(valueId: String, value: Cell): Store {
        // A NUL character would end the C string: such a string goes as (escaped) JSON text.
        if (value is Cell.Text && value.value.indexOf('\u0000') >= 0) return setValueJson(valueId, JsonWriter.write(value))
        val id = cstr(valueId)
        val v = ValueScratch.get().put(value)
        return change { LibStore.tb_store_set_value(it, id, v) }
    }

    /** setValue with a plain value (see [cellOf]). */
    public fun setValue(valueId: String, value: Any?): Store = setValue(valueId, cellOf(value))

    /** setValue from the JSON text of the value. */
    public fun setValueJson(valueId: String, json: String): Store {
        val id = cstr(valueId)
        val j = cstr(json)
        return change { LibStore.tb_store_set_value_json(it, id, j) }
    }

    /** setContent: replaces the tables and the values. */
    public fun setContent(tables: Map<String, Map<String, Map<String, Any?>>>, values: Map<String, Any?>): Store =
        setContentJson("[" + StoreJson.tables(tables) + "," + StoreJson.row(values) + "]")

    /** setContent from JSON text `[tables, values]` (plain form). */
    public fun setContentJson(json: String): Store {
        val j = cstr(json)
        return change { LibStore.tb_store_set_content_json(it, j) }
    }

    /** setJson: `[tables, values]` JSON text (wire form accepted); a JSON object sets only the tables. */
    public fun setJson(json: String): Store {
        val j = cstr(json)
        return change { LibStore.tb_store_set_json(it, j) }
    }

    /** applyChanges: a null table, row, cell or value deletes it (TinyBase's undefined). */
    public fun applyChanges(changes: Changes): Store = applyChangesJson(StoreJson.changes(changes))

    /** applyChanges with `[tables, values, 1]` JSON text (the string "\uFFFC" deletes). */
    public fun applyChangesJson(json: String): Store {
        val j = cstr(json)
        return change { LibStore.tb_store_apply_changes_json(it, j) }
    }

    /** delTables. */
    public fun delTables(): Store = change { LibStore.tb_store_del_tables(it) }

    /** delTable. */
    public fun delTable(tableId: String): Store {
        val t = cstr(tableId)
        return change { LibStore.tb_store_del_table(it, t) }
    }

    /** delRow. */
    public fun delRow(tableId: String, rowId: String): Store {
        val t = cstr(tableId)
        val r = cstr(rowId)
        return change { LibStore.tb_store_del_row(it, t, r) }
    }

    /** delCell. */
    public fun delCell(tableId: String, rowId: String, cellId: String): Store {
        val t = cstr(tableId)
        val r = cstr(rowId)
        val c = cstr(cellId)
        return change { LibStore.tb_store_del_cell(it, t, r, c) }
    }

    /** delValues. */
    public fun delValues(): Store = change { LibStore.tb_store_del_values(it) }

    /** delValue. */
    public fun delValue(valueId: String): Store {
        val v = cstr(valueId)
        return change { LibStore.tb_store_del_value(it, v) }
    }

    /**
     * transaction: runs [actions] with this store inside a transaction and returns its result.
     * Other threads never see part of it and listeners run once, after it commits. When
     * [actions] throws, every change it made is rolled back and the exception rethrown; when
     * [doRollback] returns true after it, the changes are rolled back too. Nested calls join
     * the outer transaction. The block runs on the calling thread (it cannot suspend: the
     * transaction holds the store's lock, other threads wait).
     */
    public fun <T> transaction(doRollback: ((Store) -> Boolean)? = null, actions: (Store) -> T): T {
        val body = TransactionBody(this, actions, doRollback)
        val userData = Callbacks.register(body)
        val code = try {
            withStore { p -> LibStore.tb_store_transaction(p, TransactionBody.FN, userData) }
        } finally {
            Callbacks.unregister(userData)
        }
        body.error?.let { throw it }
        check(code)
        @Suppress("UNCHECKED_CAST")
        return body.result as T
    }

    // Per thread: how many startTransaction() calls on this store wait for their finish (each
    // holds the handle, so close() frees the store only once they are finished).
    private val openTransactions = object : ThreadLocal<IntArray>() {
        override fun initialValue() = IntArray(1)
    }

    /**
     * startTransaction: begins a transaction that [finishTransaction] ends on the same thread
     * (other threads wait for the store until then; nested starts each need their finish).
     * Prefer [transaction]. A thread that ends with it open has it rolled back as it exits.
     */
    public fun startTransaction(): Store {
        handle.enter()
        val code = try {
            LibStore.tb_store_start_transaction(storeView)
        } catch (t: Throwable) {
            handle.exit()
            throw t
        }
        if (code != 0) {
            handle.exit()
            throw failure(code)
        }
        openTransactions.get()[0]++
        return this
    }

    /**
     * finishTransaction: ends the transaction this thread began with [startTransaction],
     * rolling it back when [rollback] is true, then calls the listeners. Works after [close]
     * for a transaction started before it. [Status.INVALID_STATE] when this thread has none open.
     */
    public fun finishTransaction(rollback: Boolean = false): Store {
        val open = openTransactions.get()
        if (open[0] == 0) return change { LibStore.tb_store_finish_transaction(it, rollback) }
        check(LibStore.tb_store_finish_transaction(storeView, rollback))
        open[0]--
        handle.exit()
        return this
    }

    /** How many started transactions were rolled back because their thread ended first. */
    public fun getAbandonedTransactionCount(): Long = withStore { p ->
        val out = LongArray(1)
        check(LibStore.tb_store_get_abandoned_transaction_count(p, out))
        out[0]
    }

    /**
     * getTransactionChanges of the transaction open on this thread (or whose did-finish
     * listeners are running); empty otherwise. Deletions are nulls.
     */
    public fun getTransactionChanges(): Changes = StoreJson.parseChanges(getTransactionChangesJson())

    /** getTransactionChanges as `[tables, values, 1]` JSON text ("\uFFFC" for deletions). */
    public fun getTransactionChangesJson(): String =
        text { p, out -> LibStore.tb_store_get_transaction_changes_json(p, out) }

    /** Another reference to the same store (closed on its own; the store lives while any is open). */
    public open fun clone(): Store = Store(
        withStore { p -> newHandle { Lib.tb_store_clone(p, it) } }.let { p -> NativeHandle(p, "store") { Lib.tb_store_free(it) } },
    )

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
    public fun addListener(kind: ListenerKind, id1: String? = null, id2: String? = null, id3: String? = null, listener: (ListenerEvent) -> Unit): Listener =
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

    /**
     * Creates an empty MergeableStore whose clock is [getNow] (TinyBase's getNow: milliseconds
     * since the epoch, as Date.now()). It is called with the store's lock held, on any thread
     * that writes or merges the store, and must not call into this library. If it throws,
     * the exception goes to the callback exception handler and the system clock is used.
     */
    public constructor(uniqueId: String? = null, getNow: () -> Double) : this(newClockHandle(uniqueId, getNow))

    /** Calls a C getter of a mergeable store that returns a string through `char**`. */
    private inline fun mtext(call: (Pointer, PointerByReference) -> Int): String = withMergeable { p ->
        val out = PointerByReference()
        check(call(p, out))
        takeString(out.value) ?: ""
    }

    /** Calls a C getter of a mergeable store that takes JSON text and returns a string. */
    private inline fun withJson(json: String, call: (Pointer, ByteArray, PointerByReference) -> Int): String {
        val j = cstr(json)
        return mtext { p, out -> call(p, j, out) }
    }

    /** Calls a C function that changes a mergeable store; returns this store for chaining. */
    private inline fun mchange(call: (Pointer) -> Int): MergeableStore {
        withMergeable { check(call(it)) }
        return this
    }

    /** Calls a C function that writes two hashes. */
    private inline fun hashes(call: (Pointer, IntArray, IntArray) -> Int): Pair<Long, Long> = withMergeable { p ->
        val t = IntArray(1)
        val v = IntArray(1)
        check(call(p, t, v))
        (t[0].toLong() and 0xffffffffL) to (v[0].toLong() and 0xffffffffL)
    }

    /** getMergeableContent, decoded: `[[tables, hlc, hash], [values, hlc, hash]]` as lists and maps. */
    public fun getMergeableContent(): Any? = JsonReader(getMergeableContentJson()).document()

    /** getMergeableContent as JSON text with hashes, object and array cells decoded (plain JSON). */
    public fun getMergeableContentJson(): String =
        mtext { p, out -> LibStore.tb_mergeable_store_get_mergeable_content_json(p, out) }

    /**
     * getMergeableContent in wire form (object and array cells as U+FFFD-prefixed strings):
     * what a synchronizer sends and a persisted file holds; [setMergeableContentJson] and
     * [applyMergeableChangesJson] take it.
     */
    public fun getEncodedMergeableContentJson(): String =
        mtext { p, out -> LibStore.tb_mergeable_store_get_encoded_mergeable_content_json(p, out) }

    /** setMergeableContent with wire-form JSON text (as from [getEncodedMergeableContentJson]). */
    public fun setMergeableContentJson(json: String): MergeableStore {
        val j = cstr(json)
        return mchange { LibStore.tb_mergeable_store_set_mergeable_content_json(it, j) }
    }

    /** setMergeableContent with decoded-form JSON text (as from [getMergeableContentJson]). */
    public fun setDecodedMergeableContentJson(json: String): MergeableStore {
        val j = cstr(json)
        return mchange { LibStore.tb_mergeable_store_set_decoded_mergeable_content_json(it, j) }
    }

    /** setMergeableContent with decoded content (as [getMergeableContent] returns it). */
    public fun setMergeableContent(content: Any?): MergeableStore = setDecodedMergeableContentJson(JsonWriter.write(content))

    /**
     * setDefaultContent: sets [tables] and [values] with empty HLCs, only where nothing is
     * stamped yet.
     */
    public fun setDefaultContent(tables: Map<String, Map<String, Map<String, Any?>>>, values: Map<String, Any?> = emptyMap()): MergeableStore =
        setDefaultContentJson("[" + StoreJson.tables(tables) + "," + StoreJson.row(values) + "]")

    /** setDefaultContent with `[tables, values]` JSON text. */
    public fun setDefaultContentJson(json: String): MergeableStore {
        val j = cstr(json)
        return mchange { LibStore.tb_mergeable_store_set_default_content_json(it, j) }
    }

    /**
     * getTransactionMergeableChanges (decoded form), for the transaction open on this thread
     * or whose did-finish listeners are running.
     */
    public fun getTransactionMergeableChanges(withHashes: Boolean = false): Any? =
        JsonReader(getTransactionMergeableChangesJson(withHashes)).document()

    /** getTransactionMergeableChanges as JSON text (decoded form). */
    public fun getTransactionMergeableChangesJson(withHashes: Boolean = false): String =
        mtext { p, out -> LibStore.tb_mergeable_store_get_transaction_mergeable_changes_json(p, withHashes, out) }

    /**
     * getTransactionMergeableChanges in wire form (without hashes: the body of a ContentDiff
     * sync message; apply it elsewhere with [applyMergeableChangesJson]).
     */
    public fun getEncodedTransactionMergeableChangesJson(withHashes: Boolean = false): String =
        mtext { p, out -> LibStore.tb_mergeable_store_get_encoded_transaction_mergeable_changes_json(p, withHashes, out) }

    /**
     * applyMergeableChanges with wire-form JSON text (mergeable changes `[tables, values, 1]`
     * or mergeable content). All or nothing: any invalid part refuses the whole input.
     */
    public fun applyMergeableChangesJson(json: String): MergeableStore {
        val j = cstr(json)
        return mchange { LibStore.tb_mergeable_store_apply_mergeable_changes_json(it, j) }
    }

    /** applyMergeableChanges with decoded-form JSON text. */
    public fun applyDecodedMergeableChangesJson(json: String): MergeableStore {
        val j = cstr(json)
        return mchange { LibStore.tb_mergeable_store_apply_decoded_mergeable_changes_json(it, j) }
    }

    /** applyMergeableChanges with decoded changes or content (lists and maps). */
    public fun applyMergeableChanges(changes: Any?): MergeableStore = applyDecodedMergeableChangesJson(JsonWriter.write(changes))

    /** merge: both stores apply each other's full content (merging a store with itself changes nothing). */
    public fun merge(other: MergeableStore): MergeableStore {
        withMergeable { p -> other.withMergeable { o -> check(LibStore.tb_mergeable_store_merge(p, o)) } }
        return this
    }

    /** getMergeableContentHashes: the tables hash and the values hash (unsigned 32-bit). */
    public fun getMergeableContentHashes(): Pair<Long, Long> =
        hashes { p, t, v -> LibStore.tb_mergeable_store_get_mergeable_content_hashes(p, t, v) }

    /** getMergeableContentHashes as JSON text `[tablesHash, valuesHash]`. */
    public fun getMergeableContentHashesJson(): String =
        mtext { p, out -> LibStore.tb_mergeable_store_get_mergeable_content_hashes_json(p, out) }

    /** Recomputes both hashes from scratch (a consistency check: equal to [getMergeableContentHashes]). */
    public fun computeContentHashes(): Pair<Long, Long> =
        hashes { p, t, v -> LibStore.tb_mergeable_store_compute_content_hashes(p, t, v) }

    /** getMergeableTableHashes as JSON text `{tableId: hash}`. */
    public fun getMergeableTableHashesJson(): String =
        mtext { p, out -> LibStore.tb_mergeable_store_get_mergeable_table_hashes_json(p, out) }

    /** getMergeableTableDiff(otherTableHashes) as JSON text `[newTables, differingTableHashes]`. */
    public fun getMergeableTableDiffJson(otherTableHashesJson: String): String =
        withJson(otherTableHashesJson) { p, j, out -> LibStore.tb_mergeable_store_get_mergeable_table_diff_json(p, j, out) }

    /** getMergeableRowHashes(otherTableHashes) as JSON text `{tableId: {rowId: hash}}`. */
    public fun getMergeableRowHashesJson(otherTableHashesJson: String): String =
        withJson(otherTableHashesJson) { p, j, out -> LibStore.tb_mergeable_store_get_mergeable_row_hashes_json(p, j, out) }

    /** getMergeableRowDiff(otherRowHashes) as JSON text `[newRows, differingRowHashes]`. */
    public fun getMergeableRowDiffJson(otherRowHashesJson: String): String =
        withJson(otherRowHashesJson) { p, j, out -> LibStore.tb_mergeable_store_get_mergeable_row_diff_json(p, j, out) }

    /** getMergeableCellHashes(otherRowHashes) as JSON text `{tableId: {rowId: {cellId: hash}}}`. */
    public fun getMergeableCellHashesJson(otherRowHashesJson: String): String =
        withJson(otherRowHashesJson) { p, j, out -> LibStore.tb_mergeable_store_get_mergeable_cell_hashes_json(p, j, out) }

    /** getMergeableCellDiff(otherCellHashes) as JSON text: a TablesStamp of the differing cells. */
    public fun getMergeableCellDiffJson(otherCellHashesJson: String): String =
        withJson(otherCellHashesJson) { p, j, out -> LibStore.tb_mergeable_store_get_mergeable_cell_diff_json(p, j, out) }

    /** getMergeableValueHashes as JSON text `{valueId: hash}`. */
    public fun getMergeableValueHashesJson(): String =
        mtext { p, out -> LibStore.tb_mergeable_store_get_mergeable_value_hashes_json(p, out) }

    /** getMergeableValueDiff(otherValueHashes) as JSON text: a ValuesStamp of the differing values. */
    public fun getMergeableValueDiffJson(otherValueHashesJson: String): String =
        withJson(otherValueHashesJson) { p, j, out -> LibStore.tb_mergeable_store_get_mergeable_value_diff_json(p, j, out) }

    /** getMergeableTableHashes: `{tableId: hash}`. */
    public fun getMergeableTableHashes(): Map<String, Long> = StoreJson.hashes(getMergeableTableHashesJson())

    /** getMergeableRowHashes(otherTableHashes): `{tableId: {rowId: hash}}` of the tables whose hash differs. */
    public fun getMergeableRowHashes(otherTableHashes: Map<String, Long>): Map<String, Map<String, Long>> =
        StoreJson.hashes2(getMergeableRowHashesJson(JsonWriter.write(otherTableHashes)))

    /** getMergeableCellHashes(otherRowHashes): `{tableId: {rowId: {cellId: hash}}}` of the rows whose hash differs. */
    public fun getMergeableCellHashes(otherRowHashes: Map<String, Map<String, Long>>): Map<String, Map<String, Map<String, Long>>> =
        StoreJson.hashes3(getMergeableCellHashesJson(JsonWriter.write(otherRowHashes)))

    /** getMergeableValueHashes: `{valueId: hash}`. */
    public fun getMergeableValueHashes(): Map<String, Long> = StoreJson.hashes(getMergeableValueHashesJson())

    /** Another reference to the same mergeable store (closed on its own). */
    override fun clone(): MergeableStore = MergeableStore(
        withMergeable { p -> newHandle { Lib.tb_mergeable_store_clone(p, it) } }.let { p ->
            NativeHandle(p, "mergeable store") { Lib.tb_mergeable_store_free(it) }
        },
    )

    private companion object {
        /** The one tb_now_fn: calls the clock registered as user_data. */
        val NOW_FN: LibStore.NowFn = LibStore.NowFn { userData ->
            var now = Double.NaN
            guardCallback {
                @Suppress("UNCHECKED_CAST")
                now = (Callbacks.get(userData) as () -> Double)()
            }
            if (now.isNaN()) System.currentTimeMillis().toDouble() else now
        }.also(Callbacks::keepAttached)

        fun newClockHandle(uniqueId: String?, getNow: () -> Double): NativeHandle {
            val id = cstrOrNull(uniqueId)
            val userData = Callbacks.register(getNow)
            val out = PointerByReference()
            val code = LibStore.tb_mergeable_store_new_with_clock(id, NOW_FN, userData, Callbacks.RELEASE, out)
            if (code != 0) {
                Callbacks.unregister(userData)
                throw failure(code)
            }
            val p = out.value ?: throw TinyBaseException(Status.PANIC, "the library returned no handle")
            return NativeHandle(p, "mergeable store") { Lib.tb_mergeable_store_free(it) }
        }
    }
}
