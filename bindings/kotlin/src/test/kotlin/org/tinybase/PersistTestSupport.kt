package org.tinybase

import com.sun.jna.Native
import com.sun.jna.Pointer
import com.sun.jna.ptr.PointerByReference
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.BeforeEach
import kotlin.test.assertEquals

/**
 * The few store functions the persister tests need to fill stores and compare them: content
 * as JSON, one cell from JSON, and a MergeableStore's content hashes (what on_durable reports).
 */
@Suppress("FunctionName")
internal object PersistTestLib {
    init {
        Native.register(PersistTestLib::class.java, TinyBaseLibrary.library)
    }

    @JvmStatic external fun tb_store_set_content_json(store: Pointer, json: ByteArray): Int

    @JvmStatic external fun tb_store_get_content_json(store: Pointer, out: PointerByReference): Int

    @JvmStatic external fun tb_store_set_cell_json(store: Pointer, tableId: ByteArray, rowId: ByteArray, cellId: ByteArray, json: ByteArray): Int

    @JvmStatic external fun tb_mergeable_store_get_mergeable_content_hashes(store: Pointer, outTables: IntArray, outValues: IntArray): Int
}

/** setContent from `[tables, values]` JSON. */
internal fun Store.putContent(json: String) {
    withStore { check(PersistTestLib.tb_store_set_content_json(it, cstr(json))) }
}

/** getContent as `[tables, values]` JSON. */
internal fun Store.contentJson(): String {
    val out = PointerByReference()
    withStore { check(PersistTestLib.tb_store_get_content_json(it, out)) }
    return takeString(out.value)!!
}

/** setCell from the cell's JSON text. */
internal fun Store.putCell(tableId: String, rowId: String, cellId: String, json: String) {
    withStore { check(PersistTestLib.tb_store_set_cell_json(it, cstr(tableId), cstr(rowId), cstr(cellId), cstr(json))) }
}

/** The mergeable content hashes (tables, values). */
internal fun MergeableStore.contentHashes(): Pair<UInt, UInt> {
    val t = IntArray(1)
    val v = IntArray(1)
    withMergeable { check(PersistTestLib.tb_mergeable_store_get_mergeable_content_hashes(it, t, v)) }
    return t[0].toUInt() to v[0].toUInt()
}

/**
 * A test class whose every test must end with the library's live handles and the callback
 * registry back at their values from before it (nothing leaked).
 */
abstract class LeakCheckedTest {
    /** [debugLiveHandles] before the test. */
    protected var handlesAtStart: Long = 0L

    /** [debugLiveCallbacks] before the test. */
    protected var callbacksAtStart: Int = 0

    @BeforeEach
    fun recordLiveObjects() {
        handlesAtStart = debugLiveHandles()
        callbacksAtStart = debugLiveCallbacks()
    }

    @AfterEach
    fun nothingLeaked() {
        assertEquals(handlesAtStart, debugLiveHandles(), "native objects leaked")
        assertEquals(callbacksAtStart, debugLiveCallbacks(), "callbacks leaked")
    }
}
