package org.tinybase

import com.sun.jna.Native
import com.sun.jna.Pointer
import com.sun.jna.ptr.PointerByReference

/**
 * The C API's core functions (errors, strings, handles), bound with JNA's direct mapping
 * (static native methods: the cheapest call JNA makes). Other areas bind their own objects
 * the same way (one `internal object` per area, registered against [TinyBaseLibrary.library]).
 * Strings go in as NUL-terminated UTF-8 byte arrays ([cstr]); `char*` results come back as
 * [Pointer]s read with [takeString].
 */
@Suppress("FunctionName", "ktlint:standard:function-naming")
internal object Lib {
    init {
        Native.register(Lib::class.java, TinyBaseLibrary.library)
    }

    @JvmStatic external fun tb_version(): String

    @JvmStatic external fun tb_debug_live_handles(): Long

    @JvmStatic external fun tb_last_error_message(): String?

    @JvmStatic external fun tb_last_error_status(): Int

    @JvmStatic external fun tb_string_free(s: Pointer?)

    @JvmStatic external fun tb_store_new(out: PointerByReference): Int

    @JvmStatic external fun tb_store_clone(store: Pointer?, out: PointerByReference): Int

    @JvmStatic external fun tb_store_free(store: Pointer?)

    @JvmStatic external fun tb_store_as_mergeable(store: Pointer?, out: PointerByReference): Int

    @JvmStatic external fun tb_mergeable_store_new(uniqueId: ByteArray?, out: PointerByReference): Int

    @JvmStatic external fun tb_mergeable_store_clone(store: Pointer?, out: PointerByReference): Int

    @JvmStatic external fun tb_mergeable_store_free(store: Pointer?)

    @JvmStatic external fun tb_mergeable_store_as_store(store: Pointer?): Pointer?
}

/** The library's version ("MAJOR.MINOR.PATCH"), equal to [BINDING_VERSION]. */
public fun version(): String = Lib.tb_version()

/**
 * Objects the host owns in the native library (handles, strings, events, queues, registered
 * callbacks not yet released). Tests assert it returns to its start value: nothing leaked.
 */
public fun debugLiveHandles(): Long = Lib.tb_debug_live_handles()

/** Host callbacks the native library can still call (tests: back to its start value). */
public fun debugLiveCallbacks(): Int = Callbacks.count()

/** Calls a C constructor that writes its result into an out-pointer, and returns it. */
internal inline fun newHandle(create: (PointerByReference) -> Int): Pointer {
    val out = PointerByReference()
    check(create(out))
    return out.value ?: throw TinyBaseException(Status.PANIC, "the library returned no handle")
}
