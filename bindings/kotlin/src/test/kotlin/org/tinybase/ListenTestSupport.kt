package org.tinybase

import com.sun.jna.Native
import com.sun.jna.Pointer

/**
 * The few writes the listener tests make, bound directly until the data API (kotlin-store)
 * is merged into this branch.
 */
@Suppress("FunctionName")
internal object TestWrites {
    init {
        Native.register(TestWrites::class.java, TinyBaseLibrary.library)
    }

    @JvmStatic external fun tb_store_set_cell_json(store: Pointer, t: ByteArray, r: ByteArray, c: ByteArray, json: ByteArray): Int

    @JvmStatic external fun tb_store_set_value_json(store: Pointer, v: ByteArray, json: ByteArray): Int

    @JvmStatic external fun tb_store_del_cell(store: Pointer, t: ByteArray, r: ByteArray, c: ByteArray): Int

    @JvmStatic external fun tb_store_del_value(store: Pointer, v: ByteArray): Int

    @JvmStatic external fun tb_store_start_transaction(store: Pointer): Int

    @JvmStatic external fun tb_store_finish_transaction(store: Pointer, rollback: Boolean): Int
}

internal fun Store.setCellJson(t: String, r: String, c: String, json: String): Store = apply {
    withStore { check(TestWrites.tb_store_set_cell_json(it, cstr(t), cstr(r), cstr(c), cstr(json))) }
}

internal fun Store.setValueJson(v: String, json: String): Store = apply {
    withStore { check(TestWrites.tb_store_set_value_json(it, cstr(v), cstr(json))) }
}

internal fun Store.delCellT(t: String, r: String, c: String): Store = apply {
    withStore { check(TestWrites.tb_store_del_cell(it, cstr(t), cstr(r), cstr(c))) }
}

internal fun Store.delValueT(v: String): Store = apply {
    withStore { check(TestWrites.tb_store_del_value(it, cstr(v))) }
}

internal fun <T> Store.inTransaction(block: () -> T): T {
    withStore { check(TestWrites.tb_store_start_transaction(it)) }
    try {
        return block()
    } finally {
        withStore { check(TestWrites.tb_store_finish_transaction(it, false)) }
    }
}
