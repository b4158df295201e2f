package org.tinybase

import com.sun.jna.Callback
import com.sun.jna.Native
import com.sun.jna.Pointer
import com.sun.jna.ptr.NativeLongByReference
import com.sun.jna.ptr.PointerByReference

/**
 * The C API's listener and event-queue functions (tb_store_add_listener ... tb_event_free),
 * bound with JNA's direct mapping like [Lib].
 */
@Suppress("FunctionName", "ktlint:standard:function-naming")
internal object LibListen {
    init {
        Native.register(LibListen::class.java, TinyBaseLibrary.library)
    }

    /** The C `tb_listener_fn`: (user_data, borrowed store view, borrowed event). */
    fun interface ListenerFn : Callback {
        fun invoke(userData: Pointer?, store: Pointer?, event: Pointer?)
    }

    /** The C `tb_notify_fn`: (user_data). */
    fun interface NotifyFn : Callback {
        fun invoke(userData: Pointer?)
    }

    @JvmStatic external fun tb_store_add_listener(
        store: Pointer,
        kind: Int,
        id1: ByteArray?,
        id2: ByteArray?,
        id3: ByteArray?,
        callback: ListenerFn,
        userData: Pointer,
        release: Callbacks.ReleaseFn,
        outId: LongArray,
    ): Int

    @JvmStatic external fun tb_store_del_listener(store: Pointer, listenerId: Long): Int

    @JvmStatic external fun tb_store_call_listener(store: Pointer, listenerId: Long): Int

    @JvmStatic external fun tb_store_get_listener_count(store: Pointer, out: NativeLongByReference): Int

    @JvmStatic external fun tb_event_queue_new(
        notify: NotifyFn?,
        userData: Pointer?,
        release: Callbacks.ReleaseFn?,
        out: PointerByReference,
    ): Int

    @JvmStatic external fun tb_event_queue_free(queue: Pointer)

    @JvmStatic external fun tb_store_add_buffered_listener(
        store: Pointer,
        queue: Pointer,
        kind: Int,
        id1: ByteArray?,
        id2: ByteArray?,
        id3: ByteArray?,
        outId: LongArray,
    ): Int

    @JvmStatic external fun tb_event_queue_poll(queue: Pointer, out: PointerByReference): Int

    @JvmStatic external fun tb_event_queue_wait(queue: Pointer, timeoutMs: Int, out: PointerByReference): Int

    @JvmStatic external fun tb_event_queue_len(queue: Pointer, out: NativeLongByReference): Int

    @JvmStatic external fun tb_event_free(event: Pointer?)
}
