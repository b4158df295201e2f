package org.tinybase

import com.sun.jna.Pointer

/**
 * An in-process bus (TinyBase's LocalSynchronizer medium): every synchronizer created on it
 * reaches the others. [broadcastChannel] opens a named one (TinyBase's BroadcastChannel
 * medium): buses opened with the same name are one channel.
 *
 * [close] releases this handle only: synchronizers created on the bus keep working until
 * they are closed (they hold the bus).
 */
public class LocalBus private constructor(raw: Pointer) : AutoCloseable {
    private val handle = NativeHandle(raw, "local bus") { LibSync.tb_local_bus_free(it) }

    init {
        NativeCleaner.register(this, handle)
    }

    /** Creates an empty bus. */
    public constructor() : this(newHandle { LibSync.tb_local_bus_new(it) })

    /**
     * createLocalSynchronizer: a synchronizer for [store] on this bus, with a random client
     * id. The request timeout defaults to TinyBase's 0.01 s here (a busy machine may exceed
     * it: the timeouts are ignored errors and the stores still converge).
     */
    public fun createSynchronizer(store: MergeableStore, options: SynchronizerOptions = SynchronizerOptions()): Synchronizer {
        val hooks = SyncHooks(options)
        val opts = SyncOptionsStruct()
        val created = createSync(hooks) { hooksData, _, out ->
            opts.fill(options, hooks, hooksData)
            handle.use { bus -> store.withMergeable { m -> LibSync.tb_local_bus_create_synchronizer(bus, m, opts, out) } }
        }
        return Synchronizer(created, store)
    }

    /**
     * Waits until every synchronizer on the bus has stayed idle briefly: true then, false when
     * [timeoutSeconds] passed first. Not from a synchronizer's hooks.
     */
    public fun waitForIdle(timeoutSeconds: Double = 10.0): Boolean {
        val out = ByteArray(1)
        handle.use { check(LibSync.tb_local_bus_wait_for_idle(it, timeoutSeconds, out)) }
        return out[0].toInt() != 0
    }

    /** Whether [close] was called. */
    public val isClosed: Boolean get() = handle.isClosed

    /** Releases this handle on the bus; its synchronizers keep working. Idempotent. */
    override fun close() {
        handle.close()
    }

    /** Named channels. */
    public companion object {
        /**
         * The bus of the in-process channel [name]: stores whose synchronizers are created on
         * buses opened with the same name sync with each other, and with no other.
         */
        public fun broadcastChannel(name: String): LocalBus {
            val bytes = cstr(name)
            return LocalBus(newHandle { LibSync.tb_broadcast_channel_open(bytes, it) })
        }
    }
}

/**
 * createBroadcastChannelSynchronizer: a synchronizer for [store] on the in-process channel
 * [channelName] (see [LocalBus.broadcastChannel]); the channel lives while it does.
 */
public fun createBroadcastChannelSynchronizer(
    store: MergeableStore,
    channelName: String,
    options: SynchronizerOptions = SynchronizerOptions(),
): Synchronizer = LocalBus.broadcastChannel(channelName).use { it.createSynchronizer(store, options) }
