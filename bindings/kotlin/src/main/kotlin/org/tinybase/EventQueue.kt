package org.tinybase

import com.sun.jna.Pointer
import com.sun.jna.ptr.PointerByReference
import kotlin.time.Duration

/**
 * A queue of listener events for buffered delivery, for hosts that handle notifications on a
 * thread of their own (Android's main looper, a UI thread, an actor): listeners added with
 * [Store.addBufferedListener] queue [ListenerEvent]s here instead of calling back, and the
 * host drains them with [poll], [drain] or [wait] on any thread.
 *
 * [notify], if given, is called whenever the queue goes from empty to non-empty, on the
 * thread that wrote the store, with no lock of the library held: it must not block for long
 * (post a task to the host's loop, which then [drain]s everything). Exceptions it throws go
 * to [setCallbackExceptionHandler]. It stays registered until the queue is closed and its
 * last buffered listener removed.
 *
 * Thread-safe. [close] discards queued events and stops the buffered listeners still attached
 * from queueing (close them too: they hold the native queue until removed).
 */
public class EventQueue(notify: (() -> Unit)? = null) : AutoCloseable {
    internal val handle: NativeHandle

    init {
        val out = PointerByReference()
        val raw = if (notify == null) {
            check(LibListen.tb_event_queue_new(null, null, null, out))
            out.value
        } else {
            val userData = Callbacks.register(notify)
            val status = LibListen.tb_event_queue_new(NOTIFY, userData, Callbacks.RELEASE, out)
            if (status != 0) {
                Callbacks.unregister(userData)
                throw failure(status)
            }
            out.value
        }
        handle = NativeHandle(raw ?: throw TinyBaseException(Status.PANIC, "the library returned no queue"), "event queue") {
            LibListen.tb_event_queue_free(it)
        }
        NativeCleaner.register(this, handle)
    }

    /** Whether [close] was called. */
    public val isClosed: Boolean get() = handle.isClosed

    /** The oldest queued event, or null when the queue is empty (never waits). */
    public fun poll(): ListenerEvent? {
        val out = PointerByReference()
        handle.use { check(LibListen.tb_event_queue_poll(it, out)) }
        return take(out.value)
    }

    /**
     * The oldest queued event, waiting up to [timeout] for one (an infinite Duration: as long
     * as needed); null on timeout or once the queue is closed. Blocks the calling thread: not
     * for a UI thread or a coroutine dispatcher's threads (use [poll] or [drain] there).
     */
    public fun wait(timeout: Duration): ListenerEvent? {
        // Waits in slices, entering the handle for each: close() frees the native queue only
        // when no call is in flight (no other call may start once tb_event_queue_free has), so
        // a waiter must come out regularly for close() to take effect (within one slice).
        val deadline = if (timeout.isInfinite()) Long.MAX_VALUE else System.nanoTime() + timeout.inWholeNanoseconds
        val out = PointerByReference()
        while (true) {
            val left = deadline - System.nanoTime()
            val slice = if (left <= 0) 0 else minOf(left / 1_000_000, WAIT_SLICE_MS).toInt()
            try {
                handle.use { check(LibListen.tb_event_queue_wait(it, slice, out)) }
            } catch (e: TinyBaseException) {
                if (handle.isClosed) return null
                throw e
            }
            val event = take(out.value)
            if (event != null || slice == 0 || deadline - System.nanoTime() <= 0) return event
        }
    }

    /**
     * Takes every event queued now, oldest first, and hands each to [block] on this thread;
     * returns how many. Events queued while it runs are taken too. An exception from [block]
     * propagates (the events not yet taken stay queued).
     */
    public fun drain(block: (ListenerEvent) -> Unit): Int {
        var n = 0
        while (true) {
            val event = poll() ?: return n
            n++
            block(event)
        }
    }

    /** How many events are waiting. */
    public val size: Int
        get() {
            val out = com.sun.jna.ptr.NativeLongByReference()
            handle.use { check(LibListen.tb_event_queue_len(it, out)) }
            return out.value.toInt()
        }

    /**
     * Closes the queue: queued events are discarded, buffered listeners still attached stop
     * queueing, a [wait] in progress returns null (within 0.1 s). Idempotent; later calls
     * throw [TinyBaseException] ([Status.NULL_PARAMETER]).
     */
    override fun close() {
        handle.close()
    }

    private companion object {
        /** The longest single native wait, so that close() is noticed promptly. */
        const val WAIT_SLICE_MS: Long = 100

        /** The one tb_notify_fn for every queue: dispatches through the registry. */
        val NOTIFY: LibListen.NotifyFn = LibListen.NotifyFn { userData ->
            guardCallback {
                @Suppress("UNCHECKED_CAST")
                (Callbacks.get(userData) as? () -> Unit)?.invoke()
            }
        }.also(Callbacks::keepAttached)

        /** Copies and frees an owned event (null stays null). */
        fun take(p: Pointer?): ListenerEvent? {
            if (p == null) return null
            try {
                return TbEvent.read(p)
            } finally {
                LibListen.tb_event_free(p)
            }
        }
    }
}
