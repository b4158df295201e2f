package org.tinybase

import com.sun.jna.NativeLong
import com.sun.jna.Pointer
import com.sun.jna.ptr.NativeLongByReference
import com.sun.jna.ptr.PointerByReference
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow
import java.util.concurrent.CopyOnWriteArrayList

/**
 * What the options' user_data of a synchronizer stands for in [Callbacks]: the host's hooks,
 * plus the collectors of [Synchronizer.statusFlow] (which is why on_status is always set).
 */
internal class SyncHooks(options: SynchronizerOptions) {
    val onSend: MessageHook? = options.onSend
    val onReceive: MessageHook? = options.onReceive
    val onIgnoredError: ((String) -> Unit)? = options.onIgnoredError
    private val onStatus: ((SyncStatusInfo) -> Unit)? = options.onStatus
    val statusCollectors = CopyOnWriteArrayList<(SyncStatusInfo) -> Unit>()

    /** Hands [info] to the hook and every collector; one failing does not stop the others. */
    fun status(info: SyncStatusInfo) {
        onStatus?.let { guardCallback { it(info) } }
        for (collector in statusCollectors) guardCallback { collector(info) }
    }
}

/** The C options for [options], with [userData] (the registered [SyncHooks]) and RELEASE. */
internal fun SyncOptionsStruct.fill(options: SynchronizerOptions, hooks: SyncHooks, userData: Pointer) {
    requestTimeoutSeconds = options.requestTimeoutSeconds
    antiEntropySeconds = options.antiEntropySeconds
    inboxMaxPayloads = NativeLong(options.inboxMaxPayloads)
    inboxMaxBytes = NativeLong(options.inboxMaxBytes)
    if (options.inboxMaxPayloads < 0 || options.inboxMaxBytes < 0) {
        throw TinyBaseException(Status.INVALID_ARGUMENT, "inbox limits must not be negative")
    }
    onSend = if (hooks.onSend != null) LibSync.ON_SEND else null
    onReceive = if (hooks.onReceive != null) LibSync.ON_RECEIVE else null
    onIgnoredError = if (hooks.onIgnoredError != null) LibSync.ON_IGNORED_ERROR else null
    onStatus = LibSync.ON_STATUS
    this.userData = userData
    release = Callbacks.RELEASE
}

/** A native synchronizer just created, with its hooks: what a [Synchronizer] is built from. */
internal class CreatedSync(val raw: Pointer, val hooks: SyncHooks)

/**
 * Creates a synchronizer through [create] (given the options' user_data and the out-pointer),
 * registering [hooks] and the [extra] user_data (a transport) for native code; when the call
 * fails nothing stays registered (the library releases nothing then).
 */
internal inline fun createSync(
    hooks: SyncHooks,
    extra: Any? = null,
    create: (hooksData: Pointer, extraData: Pointer?, out: PointerByReference) -> Int,
): CreatedSync {
    val hooksData = Callbacks.register(hooks)
    val extraData = extra?.let(Callbacks::register)
    val out = PointerByReference()
    val code = try {
        create(hooksData, extraData, out)
    } catch (t: Throwable) {
        Callbacks.unregister(hooksData)
        extraData?.let(Callbacks::unregister)
        throw t
    }
    if (code != 0) {
        val error = failure(code)
        Callbacks.unregister(hooksData)
        extraData?.let(Callbacks::unregister)
        throw error
    }
    val raw = out.value ?: throw TinyBaseException(Status.PANIC, "the library returned no synchronizer")
    return CreatedSync(raw, hooks)
}

/** Reads a connection state through [call] (state, close code, close reason out-parameters). */
internal inline fun readConnection(call: (IntArray, ShortArray, PointerByReference) -> Int): Connection {
    val state = IntArray(1)
    val code = ShortArray(1)
    val reason = PointerByReference()
    check(call(state, code, reason))
    return Connection.of(state[0], code[0], takeString(reason.value))
}

/**
 * TinyBase's Synchronizer for one [MergeableStore]: made by [CustomSynchronizer],
 * [LocalBus.createSynchronizer], [createBroadcastChannelSynchronizer], [WsSynchronizer] or
 * [WsClient.createSynchronizer]. It starts stopped: call [startSync].
 *
 * Each synchronizer has a worker thread of the library, where the transport and the hooks of
 * [SynchronizerOptions] run. [startSync], [load] and [startAutoLoad] block until their load
 * finished (up to the request timeout, a few times at most, when no peer answers; call them
 * from a background thread or `Dispatchers.IO`); the other commands block briefly. The store
 * may be written from any thread meanwhile, and closed: the synchronizer keeps its content.
 *
 * [close] destroys and frees it (calls in flight on other threads return first) and releases
 * its Kotlin callbacks; keep a reference while it should run, since an unreachable
 * synchronizer is closed eventually as a backstop.
 */
public open class Synchronizer internal constructor(
    created: CreatedSync,
    /** The store this synchronizer synchronizes. */
    public val store: MergeableStore,
) : AutoCloseable {
    internal val handle = NativeHandle(created.raw, "synchronizer") { LibSync.tb_synchronizer_free(it) }
    internal val hooks = created.hooks

    init {
        NativeCleaner.register(this, handle)
    }

    private inline fun call(block: (Pointer) -> Int) {
        handle.use { check(block(it)) }
    }

    private inline fun flag(block: (Pointer, ByteArray) -> Int): Boolean {
        val out = ByteArray(1)
        call { block(it, out) }
        return out[0].toInt() != 0
    }

    /**
     * startSync: a first load (the changes of whichever peer answers first), then auto-load
     * and auto-save. [initialContentJson] (`[tables, values]`) becomes the content when no
     * peer answers. BLOCKS until the first load finished.
     */
    public fun startSync(initialContentJson: String? = null): Synchronizer = apply {
        val initial = cstrOrNull(initialContentJson)
        call { LibSync.tb_synchronizer_start_sync(it, initial) }
    }

    /** stopSync: stops auto-loading and auto-saving (requests in flight still complete). */
    public fun stopSync(): Synchronizer = apply { call { LibSync.tb_synchronizer_stop_sync(it) } }

    /** load: pulls the first answering peer's changes once. BLOCKS until done. */
    public fun load(initialContentJson: String? = null): Synchronizer = apply {
        val initial = cstrOrNull(initialContentJson)
        call { LibSync.tb_synchronizer_load(it, initial) }
    }

    /** save: announces this store's content hashes once (auto-loading peers then pull). */
    public fun save(): Synchronizer = apply { call { LibSync.tb_synchronizer_save(it) } }

    /** startAutoLoad: a first load, then acts on peers' announcements. BLOCKS for that load. */
    public fun startAutoLoad(initialContentJson: String? = null): Synchronizer = apply {
        val initial = cstrOrNull(initialContentJson)
        call { LibSync.tb_synchronizer_start_auto_load(it, initial) }
    }

    /** stopAutoLoad. */
    public fun stopAutoLoad(): Synchronizer = apply { call { LibSync.tb_synchronizer_stop_auto_load(it) } }

    /** startAutoSave: saves, then sends the changes of every local transaction. */
    public fun startAutoSave(): Synchronizer = apply { call { LibSync.tb_synchronizer_start_auto_save(it) } }

    /** stopAutoSave. */
    public fun stopAutoSave(): Synchronizer = apply { call { LibSync.tb_synchronizer_stop_auto_save(it) } }

    /** getStatus: idle, loading or saving ([SyncStatus.IDLE] after destroy). */
    public fun getStatus(): SyncStatus {
        val out = IntArray(1)
        call { LibSync.tb_synchronizer_get_status(it, out) }
        return SyncStatus.of(out[0])
    }

    /** getSynchronizerStats: messages sent and valid messages received so far. */
    public fun getSynchronizerStats(): SynchronizerStats {
        val sends = LongArray(1)
        val receives = LongArray(1)
        call { LibSync.tb_synchronizer_get_stats(it, sends, receives) }
        return SynchronizerStats(sends[0], receives[0])
    }

    /** The received payloads waiting for the worker, and how many were refused (beyond TinyBase). */
    public fun getInboxStats(): InboxStats {
        val queued = NativeLongByReference()
        val bytes = NativeLongByReference()
        val refused = LongArray(1)
        call { LibSync.tb_synchronizer_get_inbox_stats(it, queued, bytes, refused) }
        return InboxStats(queued.value.toLong(), bytes.value.toLong(), refused[0])
    }

    /**
     * The connection (beyond TinyBase): [ConnectionState.NONE] for custom transports and
     * local buses; for WebSockets connecting, open or closed (with the close code and reason).
     */
    public fun getConnection(): Connection = handle.use { p ->
        readConnection { state, code, reason -> LibSync.tb_synchronizer_get_connection_state(p, state, code, reason) }
    }

    /**
     * Whether nothing is queued, running or waiting for a response (true after destroy).
     * Messages inside the host's own transport are not seen: check those too.
     */
    public fun isIdle(): Boolean = flag { p, out -> LibSync.tb_synchronizer_is_idle(p, out) }

    /** Whether the worker has handled everything queued so far, local transactions included. */
    public fun isSettled(): Boolean = flag { p, out -> LibSync.tb_synchronizer_is_settled(p, out) }

    /**
     * Waits until the synchronizer has stayed idle briefly: true then, false when
     * [timeoutSeconds] passed first. Not from its own hooks ([Status.INVALID_STATE]).
     */
    public fun waitForIdle(timeoutSeconds: Double = 10.0): Boolean =
        flag { p, out -> LibSync.tb_synchronizer_wait_for_idle(p, timeoutSeconds, out) }

    /**
     * destroy: fails pending requests, stops syncing and the worker; afterwards no hook runs.
     * Status and stats stay readable until [close]; other commands throw
     * [Status.INVALID_STATE]. Idempotent; [Status.INVALID_STATE] from its own hooks.
     */
    public fun destroy() {
        call { LibSync.tb_synchronizer_destroy(it) }
    }

    /**
     * The [SyncStatusInfo] of every later change of the sync state or connection, as the
     * status hook sees it (from the worker thread); collection stops on cancel. Buffered
     * without bound (status changes are few); `conflate()` it to keep only the latest.
     */
    public fun statusFlow(): Flow<SyncStatusInfo> = callbackFlow {
        val collector: (SyncStatusInfo) -> Unit = { trySend(it) }
        hooks.statusCollectors.add(collector)
        awaitClose { hooks.statusCollectors.remove(collector) }
    }.buffer(Channel.UNLIMITED)

    /** Whether [close] was called. */
    public val isClosed: Boolean get() = handle.isClosed

    /**
     * Destroys and frees the synchronizer and releases its Kotlin callbacks. Blocking calls
     * in flight on other threads ([startSync] waiting for a peer...) return first. From one
     * of its own hooks, the library finishes it once that hook returned. Idempotent.
     */
    override fun close() {
        handle.closeAfter { LibSync.tb_synchronizer_destroy(it) }
    }
}

/**
 * A custom transport's send (TinyBase's createCustomSynchronizer send): deliver [payload]
 * (JSON text `[requestId, message, body]` in TinyBase's wire encoding) to the client
 * [toClientId], or to every other client when it is null.
 *
 * Called on the synchronizer's worker thread, never concurrently for one synchronizer: hand
 * the payload over (a queue, a socket) and return quickly. It may call
 * [CustomSynchronizer.receive] of any synchronizer and store functions; it must not close
 * synchronizers. An exception goes to the handler of [setCallbackExceptionHandler].
 */
public fun interface Transport {
    /** Delivers one payload. */
    public fun send(toClientId: String?, payload: String)
}

/**
 * A framed custom transport's send, for media that carry TinyBase's WebSocket frames:
 * [frame] is `toClientId\n[requestId, message, body]` (an empty client id: every other
 * client). Same thread and rules as [Transport].
 */
public fun interface FramedTransport {
    /** Delivers one frame. */
    public fun send(frame: String)
}

/**
 * createCustomSynchronizer: TinyBase's sync protocol over a transport of the host's. Outgoing
 * messages go to [Transport.send] (or [FramedTransport.send]); push what arrives with
 * [receive] (or [receiveFramed]) from any thread.
 *
 * ```
 * val sync = CustomSynchronizer(store) { to, payload -> socket.send(to, payload) }
 * socket.onMessage { from, payload -> sync.receive(from, payload) }
 * sync.startSync()
 * ```
 */
public class CustomSynchronizer private constructor(
    created: CreatedSync,
    store: MergeableStore,
    /** Whether this synchronizer speaks frames ([FramedTransport], [receiveFramed]). */
    public val isFramed: Boolean,
) : Synchronizer(created, store) {
    /** A synchronizer for [store] whose messages go out through [transport]. */
    public constructor(
        store: MergeableStore,
        options: SynchronizerOptions = SynchronizerOptions(),
        transport: Transport,
    ) : this(create(store, options, transport), store, false)

    /**
     * Hands a payload `[requestId, message, body]` received from [fromClientId] to the
     * synchronizer. Any thread, hooks included; never blocks: the worker validates it later
     * (an invalid payload goes to onIgnoredError and is never applied). Ignored once the
     * synchronizer is destroyed or closed (a transport may still be delivering). Throws
     * [Status.INVALID_STATE] when the inbox is full (see [SynchronizerOptions.inboxMaxPayloads]).
     */
    public fun receive(fromClientId: String, payload: String) {
        val from = cstr(fromClientId)
        val bytes = cstr(payload)
        deliver { LibSync.tb_synchronizer_receive(it, from, bytes) }
    }

    /**
     * Hands a frame `fromClientId\n[requestId, message, body]` to the synchronizer, as
     * [receive]; [Status.INVALID_SHAPE] when it has no newline.
     */
    public fun receiveFramed(frame: String) {
        val bytes = cstr(frame)
        deliver { LibSync.tb_synchronizer_receive_framed(it, bytes) }
    }

    private inline fun deliver(block: (Pointer) -> Int) {
        try {
            handle.enter()
        } catch (_: TinyBaseException) {
            return // closed: ignored, as the library ignores payloads after destroy
        }
        try {
            check(block(handle.raw))
        } finally {
            handle.exit()
        }
    }

    /** Framed synchronizers. */
    public companion object {
        /** A synchronizer for [store] whose messages go out as frames through [transport]. */
        public fun framed(
            store: MergeableStore,
            options: SynchronizerOptions = SynchronizerOptions(),
            transport: FramedTransport,
        ): CustomSynchronizer = CustomSynchronizer(create(store, options, transport), store, true)

        private fun create(store: MergeableStore, options: SynchronizerOptions, transport: Any): CreatedSync {
            val hooks = SyncHooks(options)
            val opts = SyncOptionsStruct()
            return createSync(hooks, transport) { hooksData, transportData, out ->
                opts.fill(options, hooks, hooksData)
                store.withMergeable { m ->
                    when (transport) {
                        is Transport ->
                            LibSync.tb_synchronizer_new_custom(m, LibSync.SEND, transportData!!, Callbacks.RELEASE, opts, out)
                        else ->
                            LibSync.tb_synchronizer_new_custom_framed(m, LibSync.SEND_FRAME, transportData!!, Callbacks.RELEASE, opts, out)
                    }
                }
            }
        }
    }
}
