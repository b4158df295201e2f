package org.tinybase

import com.sun.jna.Pointer

/**
 * TinyBase's Store: tables of rows of cells, plus key-values, with transactions and
 * listeners. Thread-safe: any thread may read or write it at any time. [close] it when done
 * (an unreachable store is freed eventually as a backstop); calls after close throw
 * [TinyBaseException] with [Status.NULL_PARAMETER].
 */
public open class Store internal constructor(
    internal val handle: NativeHandle,
    /** The tb_store* the tb_store_* functions take (for a mergeable store, its borrowed view). */
    private val storeView: Pointer,
) : AutoCloseable {
    /** Creates an empty Store (createStore). */
    public constructor() : this(newHandle { Lib.tb_store_new(it) }.let { p -> NativeHandle(p, "store") { Lib.tb_store_free(it) } })

    private constructor(handle: NativeHandle) : this(handle, handle.raw)

    init {
        NativeCleaner.register(this, handle)
    }

    /** Runs [block] with this store's tb_store* (valid until it returns). */
    internal inline fun <T> withStore(block: (Pointer) -> T): T {
        handle.enter()
        try {
            return block(storeView)
        } finally {
            handle.exit()
        }
    }

    /** Whether [close] was called. */
    public val isClosed: Boolean get() = handle.isClosed

    /**
     * Releases this store's native reference (listeners added through it are removed). Calls
     * in flight on other threads finish first. Idempotent.
     */
    override fun close() {
        handle.close()
    }

    // --- data API (kotlin-store): cells, values, tables, rows, JSON, transactions ---

    // --- listeners (kotlin-listen) ---
}

/**
 * TinyBase's MergeableStore: a [Store] whose every cell and value carries an HLC stamp, so
 * that replicas merge deterministically (and sync, through synchronizers).
 */
public class MergeableStore private constructor(handle: NativeHandle) :
    Store(handle, Lib.tb_mergeable_store_as_store(handle.raw) ?: throw TinyBaseException(Status.PANIC, "no store view")) {
    /**
     * Creates an empty MergeableStore (createMergeableStore). [uniqueId] fixes the HLC client
     * id (give every replica its own); null picks a random one.
     */
    public constructor(uniqueId: String? = null) : this(
        newHandle { Lib.tb_mergeable_store_new(cstrOrNull(uniqueId), it) }.let { p ->
            NativeHandle(p, "mergeable store") { Lib.tb_mergeable_store_free(it) }
        },
    )

    /** Runs [block] with this store's tb_mergeable_store* (valid until it returns). */
    internal inline fun <T> withMergeable(block: (Pointer) -> T): T = handle.use(block)

    // --- mergeable API (kotlin-store) ---
}
