package org.tinybase

import com.sun.jna.NativeLong
import com.sun.jna.Pointer
import com.sun.jna.Structure
import java.lang.ref.WeakReference
import java.util.concurrent.atomic.AtomicBoolean

/**
 * The kind of a listener, after TinyBase's add…Listener methods (the C TB_LISTENER_*
 * constants). [idCount] is how many ids the kind takes (table, row, cell; table and cell for
 * [HAS_TABLE_CELL]; the value id for the value kinds).
 */
public enum class ListenerKind(
    /** The C value (TB_LISTENER_HAS_TABLES = 0 ... TB_LISTENER_DID_FINISH_TRANSACTION = 21). */
    public val code: Int,
    /** How many ids ([Store.addListener]'s id1..id3) the kind takes; the others are ignored. */
    public val idCount: Int,
) {
    /** addHasTablesListener: whether the store has any tables. */
    HAS_TABLES(0, 0),

    /** addTablesListener: any change to any table. */
    TABLES(1, 0),

    /** addTableIdsListener. */
    TABLE_IDS(2, 0),

    /** addHasTableListener (table). */
    HAS_TABLE(3, 1),

    /** addTableListener (table). */
    TABLE(4, 1),

    /** addTableCellIdsListener (table). */
    TABLE_CELL_IDS(5, 1),

    /** addHasTableCellListener (table, cell). */
    HAS_TABLE_CELL(6, 2),

    /** addRowCountListener (table); the event's [ListenerEvent.rowCount] is the new count. */
    ROW_COUNT(7, 1),

    /** addRowIdsListener (table). */
    ROW_IDS(8, 1),

    /** addHasRowListener (table, row). */
    HAS_ROW(9, 2),

    /** addRowListener (table, row). */
    ROW(10, 2),

    /** addCellIdsListener (table, row). */
    CELL_IDS(11, 2),

    /** addHasCellListener (table, row, cell). */
    HAS_CELL(12, 3),

    /** addCellListener (table, row, cell); the event carries the new and old cell. */
    CELL(13, 3),

    /** addHasValuesListener. */
    HAS_VALUES(14, 0),

    /** addValuesListener. */
    VALUES(15, 0),

    /** addValueIdsListener. */
    VALUE_IDS(16, 0),

    /** addHasValueListener (value). */
    HAS_VALUE(17, 1),

    /** addValueListener (value); the event carries the new and old value. */
    VALUE(18, 1),

    /** addStartTransactionListener: called inside the transaction, with the store locked. */
    START_TRANSACTION(19, 0),

    /** addWillFinishTransactionListener: called inside the transaction, with the store locked. */
    WILL_FINISH_TRANSACTION(20, 0),

    /** addDidFinishTransactionListener: called after the transaction committed. */
    DID_FINISH_TRANSACTION(21, 0),
    ;

    /** Whether the kind reports existence ([ListenerEvent.has] is meaningful). */
    public val isHas: Boolean
        get() = this == HAS_TABLES || this == HAS_TABLE || this == HAS_TABLE_CELL || this == HAS_ROW ||
            this == HAS_CELL || this == HAS_VALUES || this == HAS_VALUE

    /** Lookup of kinds by their C value. */
    public companion object {
        private val byCode = entries.toTypedArray()

        /** The kind for a C value; [TinyBaseException] ([Status.INVALID_ARGUMENT]) for an unknown one. */
        public fun of(code: Int): ListenerKind = byCode.getOrNull(code)?.takeIf { it.code == code }
            ?: throw TinyBaseException(Status.INVALID_ARGUMENT, "unknown listener kind $code")
    }
}

/**
 * One call of a listener, copied out of the library's event (which is borrowed for the call
 * only), so it may be kept, queued or sent to another thread. Fields the [kind] does not use
 * are null, false or 0.
 */
public data class ListenerEvent(
    /** The kind of the listener called. */
    val kind: ListenerKind,
    /** The id of the listener called ([Listener.id]). */
    val listenerId: Long,
    /** The table id, for table, row and cell kinds. */
    val tableId: String?,
    /** The row id, for row and cell kinds. */
    val rowId: String?,
    /** The cell id, for cell kinds and [ListenerKind.HAS_TABLE_CELL]. */
    val cellId: String?,
    /** The value id, for [ListenerKind.HAS_VALUE] and [ListenerKind.VALUE]. */
    val valueId: String?,
    /** [ListenerKind.CELL] / [ListenerKind.VALUE]: the new cell or value (null: deleted). */
    val newCell: Cell?,
    /** [ListenerKind.CELL] / [ListenerKind.VALUE]: the old cell or value (null: it is new). */
    val oldCell: Cell?,
    /** Has-kinds: whether the thing exists now. */
    val has: Boolean,
    /** [ListenerKind.ROW_COUNT]: the table's new row count. */
    val rowCount: Int,
)

/**
 * The C `tb_event`, used only to learn its field offsets on this ABI (JNA lays it out as the C
 * compiler does, 32- or 64-bit): events are then read field by field from the pointer, which
 * is much cheaper than a reflective Structure.read() on every call.
 */
@Structure.FieldOrder(
    "kind", "listenerId", "tableId", "rowId", "cellId", "valueId", "newValue", "oldValue", "has", "rowCount",
)
internal class TbEvent : Structure() {
    @JvmField var kind: Int = 0

    @JvmField var listenerId: Long = 0

    @JvmField var tableId: Pointer? = null

    @JvmField var rowId: Pointer? = null

    @JvmField var cellId: Pointer? = null

    @JvmField var valueId: Pointer? = null

    @JvmField var newValue: TbValue = TbValue()

    @JvmField var oldValue: TbValue = TbValue()

    @JvmField var has: Byte = 0

    @JvmField var rowCount: NativeLong = NativeLong(0)

    /** The byte offset of field [name]. */
    fun offsetOf(name: String): Long = fieldOffset(name).toLong()

    companion object {
        private val layout = TbEvent()
        private val KIND = layout.offsetOf("kind")
        private val LISTENER_ID = layout.offsetOf("listenerId")
        private val TABLE_ID = layout.offsetOf("tableId")
        private val ROW_ID = layout.offsetOf("rowId")
        private val CELL_ID = layout.offsetOf("cellId")
        private val VALUE_ID = layout.offsetOf("valueId")
        private val NEW_VALUE = layout.offsetOf("newValue")
        private val OLD_VALUE = layout.offsetOf("oldValue")
        private val HAS = layout.offsetOf("has")
        private val ROW_COUNT = layout.offsetOf("rowCount")

        /** Copies the event at [p] (borrowed or owned; not freed here). */
        fun read(p: Pointer): ListenerEvent {
            val kind = ListenerKind.of(p.getInt(KIND))
            val cells = kind == ListenerKind.CELL || kind == ListenerKind.VALUE
            return ListenerEvent(
                kind = kind,
                listenerId = p.getLong(LISTENER_ID),
                tableId = borrowedString(p.getPointer(TABLE_ID)),
                rowId = borrowedString(p.getPointer(ROW_ID)),
                cellId = borrowedString(p.getPointer(CELL_ID)),
                valueId = borrowedString(p.getPointer(VALUE_ID)),
                newCell = if (cells) ValueScratch.read(p, NEW_VALUE) else null,
                oldCell = if (cells) ValueScratch.read(p, OLD_VALUE) else null,
                has = p.getByte(HAS).toInt() != 0,
                rowCount = p.getNativeLong(ROW_COUNT).toLong().toInt(),
            )
        }
    }
}

/**
 * What the registry holds for one native listener: its body, the store it was added on
 * (weakly, so that a store nobody closed can still be collected and freed by the backstop,
 * which removes its listeners), and what to do once the library released it.
 */
internal class ListenerRecord(
    owner: Store?,
    private val onRelease: (() -> Unit)?,
    private val body: (Store?, ListenerEvent) -> Unit,
) {
    private val ownerRef: WeakReference<Store>? = owner?.let(::WeakReference)

    /** Delivers one native call: [storePtr] and [eventPtr] are borrowed for its duration. */
    fun fire(storePtr: Pointer?, eventPtr: Pointer) {
        val event = TbEvent.read(eventPtr)
        if (ownerRef == null) {
            body(null, event)
            return
        }
        val owner = ownerRef.get()
        if (owner != null && !owner.isClosed) {
            body(owner, event)
        } else if (storePtr != null) {
            // The Store it was added on was closed or collected while the native store lives on
            // (another reference, a synchronizer): hand a view valid for this call only.
            val view = Store(NativeHandle(storePtr, "borrowed store (valid only during its listener call)") {}, storePtr)
            try {
                body(view, event)
            } finally {
                view.close()
            }
        }
    }

    /** The library let go of this listener: it is never called again. */
    fun released() {
        onRelease?.invoke()
    }

    companion object {
        /** The one tb_listener_fn for every listener: dispatches through the registry. */
        val CALLBACK: LibListen.ListenerFn = LibListen.ListenerFn { userData, store, event ->
            guardCallback {
                val record = Callbacks.get(userData) as? ListenerRecord
                if (record != null && event != null) record.fire(store, event)
            }
        }.also(Callbacks::keepAttached)

        /**
         * The tb_release_fn for listeners: [Callbacks.RELEASE]'s work, then tells the record,
         * so that a Flow completes when its store is closed under it.
         */
        val RELEASE: Callbacks.ReleaseFn = Callbacks.ReleaseFn { userData ->
            if (userData != null) {
                val record = Callbacks.get(userData) as? ListenerRecord
                Callbacks.unregister(userData)
                if (record != null) guardCallback { record.released() }
            }
        }.also(Callbacks::keepAttached)
    }
}

/**
 * A registered listener (native or buffered). [close] removes it (TinyBase's delListener):
 * synchronous, so once it returns the listener is never called again (except when called
 * from inside a listener callback or a transaction: then calls in flight on other threads may
 * still finish, see [Store.delListener]). Idempotent; a no-op once its store is closed (which
 * removed it already).
 */
public class Listener internal constructor(
    private val store: Store,
    /** The library's listener id (for [Store.delListener] and [Store.callListener]). */
    public val id: Long,
    /** What kind of listener this is. */
    public val kind: ListenerKind,
) : AutoCloseable {
    private val removed = AtomicBoolean(false)

    /** Whether [close] was called or the store was closed (either way it is gone). */
    public val isClosed: Boolean get() = removed.get() || store.isClosed

    /** Calls the listener now, once for everything its ids match (TinyBase's callListener). */
    public fun call() {
        store.callListener(id)
    }

    /** Removes the listener (delListener). Idempotent; a no-op after the store was closed. */
    override fun close() {
        if (!removed.compareAndSet(false, true)) return
        try {
            store.delListener(id)
        } catch (e: TinyBaseException) {
            // The store was closed meanwhile: its listeners are gone already.
            if (!store.isClosed) throw e
        }
    }

    /** For logs: the id, the kind, and whether it is closed. */
    override fun toString(): String = "Listener(id=$id, kind=$kind${if (isClosed) ", closed" else ""})"
}

/** Registers a native listener of [kind] with [record] as its user_data. */
internal fun Store.addRecord(kind: ListenerKind, id1: String?, id2: String?, id3: String?, record: ListenerRecord): Listener {
    val a = cstrOrNull(id1)
    val b = cstrOrNull(id2)
    val c = cstrOrNull(id3)
    val out = LongArray(1)
    val userData = Callbacks.register(record)
    val status = try {
        withStore { LibListen.tb_store_add_listener(it, kind.code, a, b, c, ListenerRecord.CALLBACK, userData, ListenerRecord.RELEASE, out) }
    } catch (t: Throwable) {
        Callbacks.unregister(userData)
        throw t
    }
    if (status != 0) {
        // Not taken over: the library will not call release.
        Callbacks.unregister(userData)
        throw failure(status)
    }
    return Listener(this, out[0], kind)
}

/** A typed listener: [body] gets the store ([ListenerRecord] says which) and the event. */
internal fun Store.addTyped(kind: ListenerKind, id1: String?, id2: String?, id3: String?, body: (Store, ListenerEvent) -> Unit): Listener =
    addRecord(kind, id1, id2, id3, ListenerRecord(this, null) { store, event -> body(store!!, event) })
