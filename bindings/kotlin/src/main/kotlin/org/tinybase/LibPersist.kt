package org.tinybase

import com.sun.jna.Callback
import com.sun.jna.Memory
import com.sun.jna.Native
import com.sun.jna.Pointer
import com.sun.jna.Structure
import com.sun.jna.ptr.PointerByReference

/**
 * The C API's persister functions (tb_file_persister_new ... tb_persister_free), bound with
 * JNA's direct mapping. `bool*` and integer out-parameters are one-element primitive arrays
 * (the cheapest out-parameter direct mapping passes).
 */
@Suppress("FunctionName", "ktlint:standard:function-naming")
internal object LibPersist {
    init {
        Native.register(LibPersist::class.java, TinyBaseLibrary.library)
    }

    /** TB_SQLITE_JSON. */
    const val SQLITE_JSON: Int = 0

    /** TB_SQLITE_INCREMENTAL. */
    const val SQLITE_INCREMENTAL: Int = 1

    @JvmStatic external fun tb_file_persister_new(store: Pointer, path: ByteArray, options: TbPersisterOptions?, out: PointerByReference): Int

    @JvmStatic external fun tb_sqlite_persister_new(
        store: Pointer,
        path: ByteArray,
        mode: Int,
        options: TbPersisterOptions?,
        out: PointerByReference,
    ): Int

    @JvmStatic external fun tb_postgres_persister_new(
        store: Pointer,
        dsn: ByteArray,
        room: ByteArray,
        options: TbPersisterOptions?,
        out: PointerByReference,
    ): Int

    @JvmStatic external fun tb_persister_load(p: Pointer, outLoaded: ByteArray): Int

    @JvmStatic external fun tb_persister_save(p: Pointer): Int

    @JvmStatic external fun tb_persister_start_auto_load(p: Pointer): Int

    @JvmStatic external fun tb_persister_stop_auto_load(p: Pointer): Int

    @JvmStatic external fun tb_persister_start_auto_save(p: Pointer): Int

    @JvmStatic external fun tb_persister_stop_auto_save(p: Pointer): Int

    @JvmStatic external fun tb_persister_is_auto_loading(p: Pointer, out: ByteArray): Int

    @JvmStatic external fun tb_persister_is_auto_saving(p: Pointer, out: ByteArray): Int

    @JvmStatic external fun tb_persister_get_status(p: Pointer, out: IntArray): Int

    @JvmStatic external fun tb_persister_get_stats(p: Pointer, outLoads: LongArray, outSaves: LongArray): Int

    @JvmStatic external fun tb_persister_flush(p: Pointer, timeoutSeconds: Double, outDurable: ByteArray): Int

    @JvmStatic external fun tb_persister_move_aside_unreadable(p: Pointer, outPath: PointerByReference): Int

    @JvmStatic external fun tb_persister_describe(p: Pointer, out: PointerByReference): Int

    @JvmStatic external fun tb_persister_destroy(p: Pointer): Int

    @JvmStatic external fun tb_persister_free(p: Pointer?)
}

/** The C `tb_persister_durable_fn`: `info` points at a `tb_durable_info`. */
internal fun interface PersisterDurableFn : Callback {
    fun invoke(userData: Pointer?, info: Pointer?)
}

/** The C `tb_persister_error_fn`. */
internal fun interface PersisterErrorFn : Callback {
    fun invoke(userData: Pointer?, status: Int, message: Pointer?)
}

/**
 * The C `tb_persister_options`, filled for one creating call (the library reads it during
 * that call only, so the strings' [Memory] only has to outlive the call: the struct holds it).
 */
@Structure.FieldOrder(
    "on_durable",
    "on_ignored_error",
    "user_data",
    "release",
    "auto_load_interval_seconds",
    "lock_timeout_seconds",
    "sqlite_table_name",
    "sqlite_id_column_name",
    "sqlite_store_column_name",
)
@Suppress("PropertyName", "ktlint:standard:property-naming")
internal class TbPersisterOptions : Structure() {
    @JvmField var on_durable: PersisterDurableFn? = null

    @JvmField var on_ignored_error: PersisterErrorFn? = null

    @JvmField var user_data: Pointer? = null

    @JvmField var release: Callbacks.ReleaseFn? = null

    @JvmField var auto_load_interval_seconds: Double = 0.0

    @JvmField var lock_timeout_seconds: Double = 0.0

    @JvmField var sqlite_table_name: Pointer? = null

    @JvmField var sqlite_id_column_name: Pointer? = null

    @JvmField var sqlite_store_column_name: Pointer? = null

    // The native copies of the SQLite names, referenced here so they live as long as the struct.
    private val strings = ArrayList<Memory>(3)

    /** A native copy of [bytes] (from [cstr]) that lives as long as this struct. */
    fun nativeString(bytes: ByteArray): Pointer {
        val m = Memory(bytes.size.toLong())
        m.write(0, bytes, 0, bytes.size)
        strings.add(m)
        return m
    }
}

/**
 * The persister hooks' single native entry points (one per C signature, never collected),
 * dispatching to the [PersisterHooks] registered as user_data.
 */
internal object PersisterCallbacks {
    /** on_durable: reads the borrowed tb_durable_info (u32, u32, u64) into a [DurableInfo]. */
    val DURABLE: PersisterDurableFn = PersisterDurableFn { userData, info ->
        guardCallback {
            val hooks = Callbacks.get(userData) as? PersisterHooks ?: return@guardCallback
            val onDurable = hooks.onDurable ?: return@guardCallback
            if (info == null) return@guardCallback
            onDurable(
                DurableInfo(
                    tablesHash = info.getInt(0).toUInt().toLong(),
                    valuesHash = info.getInt(4).toUInt().toLong(),
                    saves = info.getLong(8),
                ),
            )
        }
    }.also(Callbacks::keepAttached)

    /** on_ignored_error: the status and a copy of the borrowed message. */
    val ERROR: PersisterErrorFn = PersisterErrorFn { userData, status, message ->
        guardCallback {
            val hooks = Callbacks.get(userData) as? PersisterHooks ?: return@guardCallback
            val onIgnoredError = hooks.onIgnoredError ?: return@guardCallback
            onIgnoredError(Status.of(status), borrowedString(message) ?: "")
        }
    }.also(Callbacks::keepAttached)
}

/** What a persister's user_data stands for while the library may call its hooks. */
internal class PersisterHooks(
    val onDurable: ((DurableInfo) -> Unit)?,
    val onIgnoredError: ((Status, String) -> Unit)?,
)
