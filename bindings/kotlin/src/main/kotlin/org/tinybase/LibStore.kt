package org.tinybase

import com.sun.jna.Callback
import com.sun.jna.Native
import com.sun.jna.Pointer
import com.sun.jna.ptr.NativeLongByReference
import com.sun.jna.ptr.PointerByReference

/**
 * The C API's data functions (tb_store_* getters, setters, deleters, JSON, transactions and the
 * tb_mergeable_store_* CRDT operations), direct-mapped like [Lib]. Ids and JSON go in as
 * [cstr] byte arrays; `char**` results come back through a [PointerByReference] read with
 * [takeString]; `bool*` as a one-byte array; tb_value in and out as a [Pointer] to native
 * memory laid out as [TbValue] (see [ValueScratch]). The hot getCell / setCell
 * take their strings as pointers into per-thread native memory ([withNativeStrings]).
 */
@Suppress("FunctionName", "ktlint:standard:function-naming", "LongParameterList")
internal object LibStore {
    init {
        Native.register(LibStore::class.java, TinyBaseLibrary.library)
    }

    /** The C `tb_now_fn`: a mergeable store's clock, in milliseconds since the epoch. */
    fun interface NowFn : Callback {
        fun invoke(userData: Pointer?): Double
    }

    /** The C `tb_transaction_fn`: a transaction body; returns true to roll back. */
    fun interface TransactionFn : Callback {
        fun invoke(userData: Pointer?, store: Pointer?): Boolean
    }

    @JvmStatic external fun tb_mergeable_store_new_with_clock(uniqueId: ByteArray?, now: NowFn, userData: Pointer?, release: Callbacks.ReleaseFn, out: PointerByReference): Int

    @JvmStatic external fun tb_mergeable_store_get_mergeable_content_json(store: Pointer?, out: PointerByReference): Int

    @JvmStatic external fun tb_mergeable_store_get_encoded_mergeable_content_json(store: Pointer?, out: PointerByReference): Int

    @JvmStatic external fun tb_mergeable_store_get_mergeable_content_hashes(store: Pointer?, outTablesHash: IntArray, outValuesHash: IntArray): Int

    @JvmStatic external fun tb_mergeable_store_get_mergeable_content_hashes_json(store: Pointer?, out: PointerByReference): Int

    @JvmStatic external fun tb_mergeable_store_get_transaction_mergeable_changes_json(store: Pointer?, withHashes: Boolean, out: PointerByReference): Int

    @JvmStatic external fun tb_mergeable_store_get_encoded_transaction_mergeable_changes_json(store: Pointer?, withHashes: Boolean, out: PointerByReference): Int

    @JvmStatic external fun tb_mergeable_store_apply_mergeable_changes_json(store: Pointer?, json: ByteArray?): Int

    @JvmStatic external fun tb_mergeable_store_apply_decoded_mergeable_changes_json(store: Pointer?, json: ByteArray?): Int

    @JvmStatic external fun tb_mergeable_store_set_mergeable_content_json(store: Pointer?, json: ByteArray?): Int

    @JvmStatic external fun tb_mergeable_store_set_decoded_mergeable_content_json(store: Pointer?, json: ByteArray?): Int

    @JvmStatic external fun tb_mergeable_store_set_default_content_json(store: Pointer?, json: ByteArray?): Int

    @JvmStatic external fun tb_mergeable_store_merge(store: Pointer?, other: Pointer?): Int

    @JvmStatic external fun tb_mergeable_store_get_mergeable_table_hashes_json(store: Pointer?, out: PointerByReference): Int

    @JvmStatic external fun tb_mergeable_store_get_mergeable_table_diff_json(store: Pointer?, otherHashesJson: ByteArray?, out: PointerByReference): Int

    @JvmStatic external fun tb_mergeable_store_get_mergeable_row_hashes_json(store: Pointer?, otherHashesJson: ByteArray?, out: PointerByReference): Int

    @JvmStatic external fun tb_mergeable_store_get_mergeable_row_diff_json(store: Pointer?, otherHashesJson: ByteArray?, out: PointerByReference): Int

    @JvmStatic external fun tb_mergeable_store_get_mergeable_cell_hashes_json(store: Pointer?, otherHashesJson: ByteArray?, out: PointerByReference): Int

    @JvmStatic external fun tb_mergeable_store_get_mergeable_cell_diff_json(store: Pointer?, otherHashesJson: ByteArray?, out: PointerByReference): Int

    @JvmStatic external fun tb_mergeable_store_get_mergeable_value_hashes_json(store: Pointer?, out: PointerByReference): Int

    @JvmStatic external fun tb_mergeable_store_get_mergeable_value_diff_json(store: Pointer?, otherHashesJson: ByteArray?, out: PointerByReference): Int

    @JvmStatic external fun tb_mergeable_store_compute_content_hashes(store: Pointer?, outTablesHash: IntArray, outValuesHash: IntArray): Int

    @JvmStatic external fun tb_store_get_tables_json(store: Pointer?, out: PointerByReference): Int

    @JvmStatic external fun tb_store_get_values_json(store: Pointer?, out: PointerByReference): Int

    @JvmStatic external fun tb_store_get_json(store: Pointer?, out: PointerByReference): Int

    @JvmStatic external fun tb_store_get_content_json(store: Pointer?, out: PointerByReference): Int

    @JvmStatic external fun tb_store_get_table_json(store: Pointer?, tableId: ByteArray?, out: PointerByReference): Int

    @JvmStatic external fun tb_store_get_row_json(store: Pointer?, tableId: ByteArray?, rowId: ByteArray?, out: PointerByReference): Int

    @JvmStatic external fun tb_store_get_table_ids_json(store: Pointer?, out: PointerByReference): Int

    @JvmStatic external fun tb_store_get_table_cell_ids_json(store: Pointer?, tableId: ByteArray?, out: PointerByReference): Int

    @JvmStatic external fun tb_store_get_row_ids_json(store: Pointer?, tableId: ByteArray?, out: PointerByReference): Int

    @JvmStatic external fun tb_store_get_cell_ids_json(store: Pointer?, tableId: ByteArray?, rowId: ByteArray?, out: PointerByReference): Int

    @JvmStatic external fun tb_store_get_value_ids_json(store: Pointer?, out: PointerByReference): Int

    @JvmStatic external fun tb_store_get_row_count(store: Pointer?, tableId: ByteArray?, out: NativeLongByReference): Int

    @JvmStatic external fun tb_store_get_cell(store: Pointer?, tableId: Pointer?, rowId: Pointer?, cellId: Pointer?, out: Pointer?): Int

    @JvmStatic external fun tb_store_get_value(store: Pointer?, valueId: ByteArray?, out: Pointer?): Int

    @JvmStatic external fun tb_store_has_tables(store: Pointer?, out: ByteArray): Int

    @JvmStatic external fun tb_store_has_table(store: Pointer?, tableId: ByteArray?, out: ByteArray): Int

    @JvmStatic external fun tb_store_has_table_cell(store: Pointer?, tableId: ByteArray?, cellId: ByteArray?, out: ByteArray): Int

    @JvmStatic external fun tb_store_has_row(store: Pointer?, tableId: ByteArray?, rowId: ByteArray?, out: ByteArray): Int

    @JvmStatic external fun tb_store_has_cell(store: Pointer?, tableId: ByteArray?, rowId: ByteArray?, cellId: ByteArray?, out: ByteArray): Int

    @JvmStatic external fun tb_store_has_values(store: Pointer?, out: ByteArray): Int

    @JvmStatic external fun tb_store_has_value(store: Pointer?, valueId: ByteArray?, out: ByteArray): Int

    @JvmStatic external fun tb_store_set_tables_json(store: Pointer?, json: ByteArray?): Int

    @JvmStatic external fun tb_store_set_values_json(store: Pointer?, json: ByteArray?): Int

    @JvmStatic external fun tb_store_set_json(store: Pointer?, json: ByteArray?): Int

    @JvmStatic external fun tb_store_set_content_json(store: Pointer?, json: ByteArray?): Int

    @JvmStatic external fun tb_store_set_partial_values_json(store: Pointer?, json: ByteArray?): Int

    @JvmStatic external fun tb_store_apply_changes_json(store: Pointer?, json: ByteArray?): Int

    @JvmStatic external fun tb_store_set_table_json(store: Pointer?, tableId: ByteArray?, json: ByteArray?): Int

    @JvmStatic external fun tb_store_set_row_json(store: Pointer?, tableId: ByteArray?, rowId: ByteArray?, json: ByteArray?): Int

    @JvmStatic external fun tb_store_set_partial_row_json(store: Pointer?, tableId: ByteArray?, rowId: ByteArray?, json: ByteArray?): Int

    @JvmStatic external fun tb_store_add_row_json(store: Pointer?, tableId: ByteArray?, json: ByteArray?, reuseRowIds: Boolean, outRowId: PointerByReference): Int

    @JvmStatic external fun tb_store_set_cell(store: Pointer?, tableId: Pointer?, rowId: Pointer?, cellId: Pointer?, cell: Pointer?): Int

    @JvmStatic external fun tb_store_set_cell_string(store: Pointer?, tableId: Pointer?, rowId: Pointer?, cellId: Pointer?, cell: Pointer?): Int

    @JvmStatic external fun tb_store_set_cell_json(store: Pointer?, tableId: ByteArray?, rowId: ByteArray?, cellId: ByteArray?, json: ByteArray?): Int

    @JvmStatic external fun tb_store_set_value(store: Pointer?, valueId: ByteArray?, value: Pointer?): Int

    @JvmStatic external fun tb_store_set_value_json(store: Pointer?, valueId: ByteArray?, json: ByteArray?): Int

    @JvmStatic external fun tb_store_del_tables(store: Pointer?): Int

    @JvmStatic external fun tb_store_del_table(store: Pointer?, tableId: ByteArray?): Int

    @JvmStatic external fun tb_store_del_row(store: Pointer?, tableId: ByteArray?, rowId: ByteArray?): Int

    @JvmStatic external fun tb_store_del_cell(store: Pointer?, tableId: ByteArray?, rowId: ByteArray?, cellId: ByteArray?): Int

    @JvmStatic external fun tb_store_del_values(store: Pointer?): Int

    @JvmStatic external fun tb_store_del_value(store: Pointer?, valueId: ByteArray?): Int

    @JvmStatic external fun tb_store_transaction(store: Pointer?, actions: TransactionFn, userData: Pointer?): Int

    @JvmStatic external fun tb_store_start_transaction(store: Pointer?): Int

    @JvmStatic external fun tb_store_finish_transaction(store: Pointer?, rollback: Boolean): Int

    @JvmStatic external fun tb_store_get_abandoned_transaction_count(store: Pointer?, out: LongArray): Int

    @JvmStatic external fun tb_store_get_transaction_changes_json(store: Pointer?, out: PointerByReference): Int

    @JvmStatic external fun tb_value_free(value: Pointer?)
}
