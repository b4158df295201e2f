package org.tinybase

import com.sun.jna.Callback
import com.sun.jna.Memory
import com.sun.jna.Native
import com.sun.jna.NativeLong
import com.sun.jna.Pointer
import com.sun.jna.Structure
import com.sun.jna.ptr.NativeLongByReference
import com.sun.jna.ptr.PointerByReference

/**
 * The synchronizer functions of the C API (tb_synchronizer_*, tb_local_bus_*,
 * tb_broadcast_channel_open, tb_ws_*), direct-mapped like [Lib]. Out `bool*` are ByteArray(1),
 * `uint32_t*` IntArray(1), `uint16_t*` ShortArray(1), `uint64_t*` LongArray(1), `size_t*`
 * [NativeLongByReference].
 */
@Suppress("FunctionName", "ktlint:standard:function-naming", "LongParameterList")
internal object LibSync {
    init {
        Native.register(LibSync::class.java, TinyBaseLibrary.library)
    }

    @JvmStatic external fun tb_synchronizer_new_custom(
        store: Pointer,
        send: SendFn,
        userData: Pointer,
        release: Callbacks.ReleaseFn,
        options: SyncOptionsStruct?,
        out: PointerByReference,
    ): Int

    @JvmStatic external fun tb_synchronizer_new_custom_framed(
        store: Pointer,
        send: SendFrameFn,
        userData: Pointer,
        release: Callbacks.ReleaseFn,
        options: SyncOptionsStruct?,
        out: PointerByReference,
    ): Int

    @JvmStatic external fun tb_synchronizer_receive(sync: Pointer, from: ByteArray, payload: ByteArray): Int

    @JvmStatic external fun tb_synchronizer_receive_framed(sync: Pointer, frame: ByteArray): Int

    @JvmStatic external fun tb_synchronizer_start_sync(sync: Pointer, initial: ByteArray?): Int

    @JvmStatic external fun tb_synchronizer_stop_sync(sync: Pointer): Int

    @JvmStatic external fun tb_synchronizer_load(sync: Pointer, initial: ByteArray?): Int

    @JvmStatic external fun tb_synchronizer_save(sync: Pointer): Int

    @JvmStatic external fun tb_synchronizer_start_auto_load(sync: Pointer, initial: ByteArray?): Int

    @JvmStatic external fun tb_synchronizer_stop_auto_load(sync: Pointer): Int

    @JvmStatic external fun tb_synchronizer_start_auto_save(sync: Pointer): Int

    @JvmStatic external fun tb_synchronizer_stop_auto_save(sync: Pointer): Int

    @JvmStatic external fun tb_synchronizer_get_status(sync: Pointer, out: IntArray): Int

    @JvmStatic external fun tb_synchronizer_get_connection_state(
        sync: Pointer,
        state: IntArray,
        closeCode: ShortArray,
        closeReason: PointerByReference,
    ): Int

    @JvmStatic external fun tb_synchronizer_get_stats(sync: Pointer, sends: LongArray, receives: LongArray): Int

    @JvmStatic external fun tb_synchronizer_get_inbox_stats(
        sync: Pointer,
        queued: NativeLongByReference,
        queuedBytes: NativeLongByReference,
        refused: LongArray,
    ): Int

    @JvmStatic external fun tb_synchronizer_is_idle(sync: Pointer, out: ByteArray): Int

    @JvmStatic external fun tb_synchronizer_is_settled(sync: Pointer, out: ByteArray): Int

    @JvmStatic external fun tb_synchronizer_wait_for_idle(sync: Pointer, timeoutSeconds: Double, idle: ByteArray): Int

    @JvmStatic external fun tb_synchronizer_destroy(sync: Pointer): Int

    @JvmStatic external fun tb_synchronizer_free(sync: Pointer?)

    @JvmStatic external fun tb_local_bus_new(out: PointerByReference): Int

    @JvmStatic external fun tb_local_bus_free(bus: Pointer?)

    @JvmStatic external fun tb_local_bus_create_synchronizer(
        bus: Pointer,
        store: Pointer,
        options: SyncOptionsStruct?,
        out: PointerByReference,
    ): Int

    @JvmStatic external fun tb_local_bus_wait_for_idle(bus: Pointer, timeoutSeconds: Double, idle: ByteArray): Int

    @JvmStatic external fun tb_broadcast_channel_open(name: ByteArray, out: PointerByReference): Int

    @JvmStatic external fun tb_ws_synchronizer_new(
        store: Pointer,
        url: ByteArray,
        options: WsOptionsStruct?,
        out: PointerByReference,
    ): Int

    @JvmStatic external fun tb_ws_client_new(url: ByteArray, options: WsOptionsStruct?, out: PointerByReference): Int

    @JvmStatic external fun tb_ws_client_free(client: Pointer?)

    @JvmStatic external fun tb_ws_client_create_synchronizer(
        client: Pointer,
        store: Pointer,
        channelId: ByteArray,
        options: SyncOptionsStruct?,
        out: PointerByReference,
    ): Int

    @JvmStatic external fun tb_ws_client_get_connection_state(
        client: Pointer,
        state: IntArray,
        closeCode: ShortArray,
        closeReason: PointerByReference,
    ): Int

    /** The C `tb_sync_send_fn`. */
    fun interface SendFn : Callback {
        fun invoke(userData: Pointer?, toClientId: Pointer?, payload: Pointer?, len: NativeLong)
    }

    /** The C `tb_sync_send_frame_fn`. */
    fun interface SendFrameFn : Callback {
        fun invoke(userData: Pointer?, frame: Pointer?, len: NativeLong)
    }

    /** The C `tb_sync_message_fn` (on_send, on_receive). */
    fun interface MessageFn : Callback {
        fun invoke(userData: Pointer?, clientId: Pointer?, requestId: Pointer?, message: Int, body: Pointer?, len: NativeLong)
    }

    /** The C `tb_sync_error_fn`. */
    fun interface ErrorFn : Callback {
        fun invoke(userData: Pointer?, error: Pointer?)
    }

    /** The C `tb_sync_status_fn`. */
    fun interface StatusFn : Callback {
        fun invoke(userData: Pointer?, info: Pointer?)
    }

    // One static callback object per C signature (never collected), dispatching by user_data.

    /** The transport send of every [CustomSynchronizer]. */
    val SEND: SendFn = SendFn { userData, to, payload, len ->
        guardCallback {
            val transport = Callbacks.get(userData) as? Transport ?: return@guardCallback
            transport.send(borrowedString(to), TbValue.utf8(payload, len.toLong()))
        }
    }.also(Callbacks::keepAttached)

    /** The framed transport send of every framed [CustomSynchronizer]. */
    val SEND_FRAME: SendFrameFn = SendFrameFn { userData, frame, len ->
        guardCallback {
            val transport = Callbacks.get(userData) as? FramedTransport ?: return@guardCallback
            transport.send(TbValue.utf8(frame, len.toLong()))
        }
    }.also(Callbacks::keepAttached)

    /** on_send of every synchronizer whose options have an onSend hook. */
    val ON_SEND: MessageFn = messageFn { it.onSend }

    /** on_receive of every synchronizer whose options have an onReceive hook. */
    val ON_RECEIVE: MessageFn = messageFn { it.onReceive }

    private fun messageFn(pick: (SyncHooks) -> MessageHook?): MessageFn = MessageFn { userData, client, request, message, body, len ->
        guardCallback {
            val hooks = Callbacks.get(userData) as? SyncHooks ?: return@guardCallback
            val hook = pick(hooks) ?: return@guardCallback
            hook.onMessage(borrowedString(client), borrowedString(request), SyncMessage.of(message), TbValue.utf8(body, len.toLong()))
        }
    }.also(Callbacks::keepAttached)

    /** on_ignored_error of every synchronizer with an onIgnoredError hook. */
    val ON_IGNORED_ERROR: ErrorFn = ErrorFn { userData, error ->
        guardCallback {
            val hooks = Callbacks.get(userData) as? SyncHooks ?: return@guardCallback
            hooks.onIgnoredError?.invoke(borrowedString(error) ?: "")
        }
    }.also(Callbacks::keepAttached)

    /** on_status of every synchronizer (it also feeds [Synchronizer.statusFlow]). */
    val ON_STATUS: StatusFn = StatusFn { userData, info ->
        guardCallback {
            val hooks = Callbacks.get(userData) as? SyncHooks ?: return@guardCallback
            if (info != null) hooks.status(SyncStatusInfoStruct(info).toInfo())
        }
    }.also(Callbacks::keepAttached)
}

/** The C `tb_synchronizer_options`; zero fields mean the library's defaults. */
@Structure.FieldOrder(
    "requestTimeoutSeconds", "antiEntropySeconds", "onSend", "onReceive", "onIgnoredError", "userData",
    "release", "inboxMaxPayloads", "inboxMaxBytes", "onStatus",
)
internal open class SyncOptionsStruct : Structure() {
    @JvmField var requestTimeoutSeconds: Double = 0.0

    @JvmField var antiEntropySeconds: Double = 0.0

    @JvmField var onSend: LibSync.MessageFn? = null

    @JvmField var onReceive: LibSync.MessageFn? = null

    @JvmField var onIgnoredError: LibSync.ErrorFn? = null

    @JvmField var userData: Pointer? = null

    @JvmField var release: Callbacks.ReleaseFn? = null

    @JvmField var inboxMaxPayloads: NativeLong = NativeLong(0)

    @JvmField var inboxMaxBytes: NativeLong = NativeLong(0)

    @JvmField var onStatus: LibSync.StatusFn? = null

    /** The same fields, embedded by value in [WsOptionsStruct]. */
    class ByValue : SyncOptionsStruct(), Structure.ByValue
}

/** The C `tb_ws_synchronizer_options`; its strings point into [strings], kept by this struct. */
@Structure.FieldOrder(
    "sync", "channelId", "fragmentSize", "noReconnect", "reconnectMinSeconds", "reconnectMaxSeconds",
    "pingIntervalSeconds", "connectTimeoutSeconds", "caFile", "headers", "headerCount",
)
internal class WsOptionsStruct : Structure() {
    @JvmField var sync: SyncOptionsStruct.ByValue = SyncOptionsStruct.ByValue()

    @JvmField var channelId: Pointer? = null

    @JvmField var fragmentSize: NativeLong = NativeLong(0)

    // C bool: one byte (JNA would map a Boolean field as a 4-byte int).
    @JvmField var noReconnect: Byte = 0

    @JvmField var reconnectMinSeconds: Double = 0.0

    @JvmField var reconnectMaxSeconds: Double = 0.0

    @JvmField var pingIntervalSeconds: Double = 0.0

    @JvmField var connectTimeoutSeconds: Double = 0.0

    @JvmField var caFile: Pointer? = null

    @JvmField var headers: Pointer? = null

    @JvmField var headerCount: NativeLong = NativeLong(0)

    /** The native copies of the strings (not a C field: a private JVM field JNA ignores). */
    val strings: NativeStrings = NativeStrings()
}

/** The C `tb_sync_status_info`, read from the pointer a status callback borrows. */
@Structure.FieldOrder(
    "state", "pendingRequests", "sends", "receives", "lastError", "connection", "closeCode", "closeReason",
)
internal class SyncStatusInfoStruct(p: Pointer) : Structure(p) {
    @JvmField var state: Int = 0

    @JvmField var pendingRequests: NativeLong = NativeLong(0)

    @JvmField var sends: Long = 0

    @JvmField var receives: Long = 0

    @JvmField var lastError: Pointer? = null

    @JvmField var connection: Int = 0

    @JvmField var closeCode: Short = 0

    @JvmField var closeReason: Pointer? = null

    init {
        read()
    }

    /** A Kotlin copy (the strings are borrowed for the callback only). */
    fun toInfo(): SyncStatusInfo = SyncStatusInfo(
        state = SyncState.of(state),
        pendingRequests = pendingRequests.toLong(),
        sends = sends,
        receives = receives,
        lastError = borrowedString(lastError),
        connection = Connection.of(connection, closeCode, borrowedString(closeReason)),
    )
}

/**
 * NUL-terminated UTF-8 copies in native memory for the string fields of an options struct,
 * reachable from the struct through the creating call (the library copies what it keeps).
 */
internal class NativeStrings {
    private val kept = ArrayList<Memory>()

    /** [s] in native memory (null for null). */
    fun string(s: String?): Pointer? = s?.let { copy(cstr(it)) }

    /** A `const char *const *` array of [items] (null when empty). */
    fun array(items: List<String>): Pointer? {
        if (items.isEmpty()) return null
        val arr = Memory(Native.POINTER_SIZE.toLong() * items.size)
        items.forEachIndexed { i, s -> arr.setPointer(Native.POINTER_SIZE.toLong() * i, string(s)) }
        kept.add(arr)
        return arr
    }

    private fun copy(bytes: ByteArray): Memory = Memory(bytes.size.toLong()).also {
        it.write(0, bytes, 0, bytes.size)
        kept.add(it)
    }
}
