package org.tinybase

/** A synchronizer's status, TinyBase's getStatus(). */
public enum class SyncStatus(
    /** The C value (TB_SYNC_STATUS_*). */
    public val code: Int,
) {
    /** Neither loading nor saving. */
    IDLE(0),

    /** Loading (pulling a peer's changes). */
    LOADING(1),

    /** Saving (announcing or sending this store's changes). */
    SAVING(2),
    ;

    internal companion object {
        fun of(code: Int): SyncStatus = entries.firstOrNull { it.code == code } ?: IDLE
    }
}

/** The coarse state [SyncStatusInfo] reports (beyond TinyBase, for UIs). */
public enum class SyncState(
    /** The C value (TB_SYNC_STATE_*). */
    public val code: Int,
) {
    /** Nothing in flight. */
    IDLE(0),

    /** Requests or messages in flight. */
    SYNCING(1),

    /** The last thing that happened was an ignored error ([SyncStatusInfo.lastError]). */
    ERROR(2),
    ;

    internal companion object {
        fun of(code: Int): SyncState = entries.firstOrNull { it.code == code } ?: ERROR
    }
}

/** The state of a synchronizer's connection (beyond TinyBase). */
public enum class ConnectionState(
    /** The C value (TB_CONNECTION_*). */
    public val code: Int,
) {
    /** No connection of its own (custom transports, local buses). */
    NONE(0),

    /** Connecting, or waiting to reconnect. */
    CONNECTING(1),

    /** Open (for a channel of a [WsClient]: subscribed). */
    OPEN(2),

    /** Closed; see [Connection.closeCode] and [Connection.closeReason]. */
    CLOSED(3),
    ;

    internal companion object {
        fun of(code: Int): ConnectionState = entries.firstOrNull { it.code == code } ?: CLOSED
    }
}

/** A connection's state, with the WebSocket close code and reason once it is [ConnectionState.CLOSED]. */
public data class Connection(
    /** The state. */
    val state: ConnectionState,
    /** The WebSocket close code when [state] is CLOSED, else 0. */
    val closeCode: Int = 0,
    /** The close reason when [state] is CLOSED (possibly ""), else null. */
    val closeReason: String? = null,
) {
    internal companion object {
        fun of(state: Int, closeCode: Short, closeReason: String?): Connection {
            val s = ConnectionState.of(state)
            return if (s == ConnectionState.CLOSED) {
                Connection(s, closeCode.toInt() and 0xFFFF, closeReason ?: "")
            } else {
                Connection(s)
            }
        }
    }
}

/** What a status hook is told (beyond TinyBase): a copy, safe to keep. */
public data class SyncStatusInfo(
    /** Idle, syncing or error. */
    val state: SyncState,
    /** Requests waiting for a response. */
    val pendingRequests: Long,
    /** Protocol messages sent so far. */
    val sends: Long,
    /** Valid messages received so far. */
    val receives: Long,
    /** The last ignored error while [state] is ERROR, else null. */
    val lastError: String?,
    /** The connection (state NONE for synchronizers without one). */
    val connection: Connection,
)

/** TinyBase's getSynchronizerStats(): protocol messages sent and valid messages received. */
public data class SynchronizerStats(
    /** Messages sent so far. */
    val sends: Long,
    /** Valid messages received so far. */
    val receives: Long,
)

/** The inbox of received payloads waiting for the worker (beyond TinyBase). */
public data class InboxStats(
    /** Payloads waiting. */
    val queued: Long,
    /** Bytes of the payloads waiting. */
    val queuedBytes: Long,
    /** Payloads refused so far because the inbox was full. */
    val refused: Long,
)

/** A protocol message type, numbered as TinyBase numbers them on the wire. */
public enum class SyncMessage(
    /** The wire number (TB_SYNC_MESSAGE_*). */
    public val code: Int,
) {
    /** A response to a request. */
    RESPONSE(0),

    /** A request for the content hashes. */
    GET_CONTENT_HASHES(1),

    /** The content hashes (an announcement, or a response). */
    CONTENT_HASHES(2),

    /** Changes. */
    CONTENT_DIFF(3),

    /** A request for table differences. */
    GET_TABLE_DIFF(4),

    /** A request for row differences. */
    GET_ROW_DIFF(5),

    /** A request for cell differences. */
    GET_CELL_DIFF(6),

    /** A request for value differences. */
    GET_VALUE_DIFF(7),
    ;

    internal companion object {
        fun of(code: Int): SyncMessage = entries.firstOrNull { it.code == code } ?: RESPONSE
    }
}

/**
 * A message hook (TinyBase's onSend / onReceive): [clientId] is the client sent to (null:
 * every other client) or received from, [requestId] the request or transaction id (may be
 * null), [bodyJson] the message body as JSON text. Runs on the synchronizer's worker thread.
 */
public fun interface MessageHook {
    /** Called for one message. */
    public fun onMessage(clientId: String?, requestId: String?, message: SyncMessage, bodyJson: String)
}

/**
 * Options of a synchronizer. Zero means the library's default for every number. Every hook
 * runs on the synchronizer's worker thread, never concurrently for one synchronizer; it may
 * read and write stores and call [CustomSynchronizer.receive], but must not close or destroy
 * synchronizers and should not call the blocking commands (start, load, waitForIdle...).
 * Exceptions they throw go to the handler of [setCallbackExceptionHandler].
 */
public data class SynchronizerOptions(
    /**
     * How long a request waits for its response (TinyBase's requestTimeoutSeconds); 0: 1 s
     * for custom transports and WebSockets, 0.01 s on a local bus (as TinyBase).
     */
    val requestTimeoutSeconds: Double = 0.0,
    /**
     * Beyond TinyBase, off with 0: while auto-saving, re-announce the hashes and pull from a
     * peer this often, so a lost message is repaired without a restart (recommended with
     * lossy transports or TinyBase peers).
     */
    val antiEntropySeconds: Double = 0.0,
    /** At most this many received payloads wait for the worker (0: 10,000); beyond, receive refuses. */
    val inboxMaxPayloads: Long = 0,
    /** At most this many bytes of received payloads wait (0: 64 MiB). */
    val inboxMaxBytes: Long = 0,
    /** Called for every message sent (TinyBase's onSend). */
    val onSend: MessageHook? = null,
    /** Called for every valid message received (TinyBase's onReceive). */
    val onReceive: MessageHook? = null,
    /**
     * Called for every error the protocol ignores (TinyBase's onIgnoredError), such as
     * "tinybase:14..." for an invalid message (never applied) or "tinybase:3..." for a timeout.
     */
    val onIgnoredError: ((String) -> Unit)? = null,
    /** Called when the sync state or the connection changes (beyond TinyBase). */
    val onStatus: ((SyncStatusInfo) -> Unit)? = null,
)
