package org.tinybase

import com.sun.jna.NativeLong
import com.sun.jna.Pointer

/**
 * How a WebSocket connection is made (tb_ws_synchronizer_options). Zero means the library's
 * default for every number.
 */
public data class WsOptions(
    /** Outgoing payloads are cut into fragments of at most this many bytes; 0: never. */
    val fragmentSize: Long = 0,
    /**
     * true (the default): a lost connection is re-opened with backoff and jitter, and the
     * store pulls again after each re-open. false: creating waits for the socket to open and
     * fails when it cannot; a later loss leaves the synchronizer closed.
     */
    val reconnect: Boolean = true,
    /** The first reconnect delay (doubled after each failure, with jitter). */
    val reconnectMinSeconds: Double = 0.0,
    /** The longest reconnect delay. */
    val reconnectMaxSeconds: Double = 0.0,
    /** How often a silent server is pinged (a dead one is noticed and the socket re-opened). */
    val pingIntervalSeconds: Double = 0.0,
    /** How long one connection attempt may take. */
    val connectTimeoutSeconds: Double = 0.0,
    /** A PEM file of CA certificates trusted for wss:// besides the built-in roots. */
    val caFile: String? = null,
    /** Extra headers of the upgrade request (name to value). */
    val headers: Map<String, String> = emptyMap(),
    /** Adds `Authorization: Bearer <authToken>` to the upgrade request. */
    val authToken: String? = null,
) {
    /** The C options (the struct keeps its strings' native copies). */
    internal fun toStruct(channelId: String?): WsOptionsStruct {
        if (fragmentSize < 0) throw TinyBaseException(Status.INVALID_ARGUMENT, "fragmentSize must not be negative")
        val lines = headers.map { (name, value) -> "$name: $value" } +
            listOfNotNull(authToken?.let { "Authorization: Bearer $it" })
        return WsOptionsStruct().also {
            val strings = it.strings
            it.channelId = strings.string(channelId)
            it.fragmentSize = NativeLong(fragmentSize)
            it.noReconnect = if (reconnect) 0 else 1
            it.reconnectMinSeconds = reconnectMinSeconds
            it.reconnectMaxSeconds = reconnectMaxSeconds
            it.pingIntervalSeconds = pingIntervalSeconds
            it.connectTimeoutSeconds = connectTimeoutSeconds
            it.caFile = strings.string(caFile)
            it.headers = strings.array(lines)
            it.headerCount = NativeLong(lines.size.toLong())
        }
    }
}

/**
 * createWsSynchronizer: [store] synced through the WebSocket server at [url] (`ws://` or
 * `wss://`; TinyBase's WsServer or tinybase-server). Without [channelId] it speaks
 * TinyBase's legacy framing (one store per socket, the room is the URL's path); with one, the
 * multiplexed protocol on that channel over a socket of its own ([WsClient] shares one).
 *
 * Creating BLOCKS for the first connection attempt; with [WsOptions.reconnect] false a
 * failed attempt throws, otherwise it keeps trying in the background. Start it with
 * [startSync]; [getConnection] and the status hook tell the connection's state; [close]
 * closes the socket cleanly (1000).
 */
public class WsSynchronizer private constructor(
    created: CreatedSync,
    store: MergeableStore,
    /** The server's URL. */
    public val url: String,
) : Synchronizer(created, store) {
    /** Connects [store] to [url]; see the class. */
    public constructor(
        store: MergeableStore,
        url: String,
        options: SynchronizerOptions = SynchronizerOptions(),
        connection: WsOptions = WsOptions(),
        channelId: String? = null,
    ) : this(create(store, url, options, connection, channelId), store, url)

    private companion object {
        fun create(store: MergeableStore, url: String, options: SynchronizerOptions, connection: WsOptions, channelId: String?): CreatedSync {
            val urlBytes = cstr(url)
            val opts = connection.toStruct(channelId)
            val hooks = SyncHooks(options)
            val created = createSync(hooks) { hooksData, _, out ->
                opts.sync.fill(options, hooks, hooksData)
                store.withMergeable { m -> LibSync.tb_ws_synchronizer_new(m, urlBytes, opts, out) }
            }
            return created
        }
    }
}

/**
 * One multiplexed connection to the WebSocket server at [url] for several stores: each
 * [createSynchronizer] joins a channel. The socket opens when the first synchronizer joins
 * and closes (1000) when the last one is closed. [close] releases this handle only: its
 * synchronizers keep the connection until they are closed.
 */
public class WsClient(
    /** The server's URL (`ws://` or `wss://`). */
    public val url: String,
    /** How the connection is made (shared by every channel). */
    connection: WsOptions = WsOptions(),
) : AutoCloseable {
    private val handle: NativeHandle

    init {
        val urlBytes = cstr(url)
        val opts = connection.toStruct(null)
        val raw: Pointer = newHandle { LibSync.tb_ws_client_new(urlBytes, opts, it) }
        handle = NativeHandle(raw, "WebSocket client") { LibSync.tb_ws_client_free(it) }
        NativeCleaner.register(this, handle)
    }

    /**
     * A synchronizer for [store] on channel [channelId] of this connection (TinyBase's
     * multiplexed createWsSynchronizer). Throws for an invalid or duplicate channel id; BLOCKS
     * for the connection as [WsSynchronizer] does. Closing it unsubscribes the channel.
     */
    public fun createSynchronizer(
        store: MergeableStore,
        channelId: String,
        options: SynchronizerOptions = SynchronizerOptions(),
    ): Synchronizer {
        val channel = cstr(channelId)
        val hooks = SyncHooks(options)
        val opts = SyncOptionsStruct()
        val created = createSync(hooks) { hooksData, _, out ->
            opts.fill(options, hooks, hooksData)
            handle.use { c -> store.withMergeable { m -> LibSync.tb_ws_client_create_synchronizer(c, m, channel, opts, out) } }
        }
        return Synchronizer(created, store)
    }

    /**
     * The shared socket's state (open from the upgrade on; each synchronizer's own
     * [Synchronizer.getConnection] is open once its channel is subscribed).
     */
    public fun getConnection(): Connection = handle.use { p ->
        readConnection { state, code, reason -> LibSync.tb_ws_client_get_connection_state(p, state, code, reason) }
    }

    /** Whether [close] was called. */
    public val isClosed: Boolean get() = handle.isClosed

    /** Releases this handle; synchronizers created on it keep working. Idempotent. */
    override fun close() {
        handle.close()
    }
}
