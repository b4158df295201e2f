package org.tinybase

import com.sun.jna.Pointer
import java.lang.ref.PhantomReference
import java.lang.ref.ReferenceQueue
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicLong

/**
 * One owned native reference (a store, a synchronizer, a persister...). The C API forbids
 * freeing a reference while another thread uses it; this makes that safe in Kotlin: every
 * call runs inside [use], and [close] frees the reference once no call is in flight (at once,
 * or when the last one returns). After close, calls throw [TinyBaseException] with
 * [Status.NULL_PARAMETER] ("closed").
 */
internal class NativeHandle(
    /** The raw pointer (valid only inside [use]). */
    val raw: Pointer,
    private val what: String,
    private val free: (Pointer) -> Unit,
) {
    // Bit 62: closed; bit 61: freed; low bits: calls in flight.
    private val state = AtomicLong(0)

    /** Whether [close] was called. */
    val isClosed: Boolean get() = state.get() and CLOSED != 0L

    /** Counts a call in; throws when closed. Pair with [exit]. */
    fun enter() {
        while (true) {
            val s = state.get()
            if (s and CLOSED != 0L) throw TinyBaseException(Status.NULL_PARAMETER, "$what is closed")
            if (state.compareAndSet(s, s + 1)) return
        }
    }

    /** Counts a call out; frees when it was the last one after [close]. */
    fun exit() {
        if (state.decrementAndGet() == CLOSED) freeOnce()
    }

    /** Runs [block] with the raw pointer, which stays valid until it returns. */
    inline fun <T> use(block: (Pointer) -> T): T {
        enter()
        try {
            return block(raw)
        } finally {
            exit()
        }
    }

    /** Marks the handle closed; frees now, or when the calls in flight return. Idempotent. */
    fun close() {
        while (true) {
            val s = state.get()
            if (s and CLOSED != 0L) return
            if (state.compareAndSet(s, s or CLOSED)) {
                if (s == 0L) freeOnce()
                return
            }
        }
    }

    /**
     * [close] for an object with a destroy step (a synchronizer, a persister): [destroy] first,
     * so that blocking calls in flight on other threads return now and the free that follows
     * them is not held up, then close. A destroy refused (closed meanwhile by another thread;
     * or, from the object's own callback, deferred by the library) is not an error here.
     */
    fun closeAfter(destroy: (Pointer) -> Int) {
        if (isClosed) return
        try {
            use { destroy(it) }
        } catch (_: TinyBaseException) {
            // Closed meanwhile by another thread: nothing left to destroy.
        }
        close()
    }

    private fun freeOnce() {
        if (state.compareAndSet(CLOSED, CLOSED or FREED)) free(raw)
    }

    private companion object {
        const val CLOSED = 1L shl 62
        const val FREED = 1L shl 61
    }
}

/**
 * The backstop for objects never closed: when [owner] becomes unreachable, its handle is
 * closed on a daemon thread. Uses PhantomReference (not java.lang.ref.Cleaner, which
 * Android has only from API 33). close() stays the way to free at a known time.
 */
internal object NativeCleaner {
    private val queue = ReferenceQueue<Any>()
    private val pending = ConcurrentHashMap.newKeySet<Ref>()

    private class Ref(owner: Any, val handle: NativeHandle) : PhantomReference<Any>(owner, queue)

    init {
        Thread({
            while (true) {
                val ref = try {
                    queue.remove() as Ref
                } catch (_: InterruptedException) {
                    continue
                }
                pending.remove(ref)
                try {
                    ref.handle.close()
                } catch (_: Throwable) {
                    // A backstop must never kill its thread.
                }
            }
        }, "tinybase-cleaner").apply {
            isDaemon = true
            start()
        }
    }

    /** Closes [handle] when [owner] is collected. [owner] must not be reachable from [handle]. */
    fun register(owner: Any, handle: NativeHandle) {
        pending.add(Ref(owner, handle))
    }
}
