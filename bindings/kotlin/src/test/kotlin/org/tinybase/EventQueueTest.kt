package org.tinybase

import org.junit.jupiter.api.Test
import java.util.concurrent.CountDownLatch
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import kotlin.concurrent.thread
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds

/** Buffered delivery: events queued by any thread, drained on the host's own thread. */
class EventQueueTest : LeakCheckedTest() {
    @Test
    fun bufferedEventsArePolledInOrder() {
        Store().use { store ->
            EventQueue().use { queue ->
                val cells = store.addBufferedListener(queue, ListenerKind.CELL, "t")
                val rows = store.addBufferedListener(queue, ListenerKind.ROW_COUNT, null)
                assertEquals(2, store.getListenerCount())
                assertNull(queue.poll())
                store.setCellJson("t", "r", "c", "1").setCellJson("u", "r", "c", "2")
                assertEquals(3, queue.size)
                // In the order the library calls listeners (a row count before the cell), write by write.
                val events = mutableListOf<ListenerEvent>()
                assertEquals(3, queue.drain { events += it })
                assertEquals(
                    listOf(
                        ListenerEvent(ListenerKind.ROW_COUNT, rows.id, "t", null, null, null, null, null, false, 1),
                        ListenerEvent(ListenerKind.CELL, cells.id, "t", "r", "c", null, Cell.Number(1.0), null, false, 0),
                        ListenerEvent(ListenerKind.ROW_COUNT, rows.id, "u", null, null, null, null, null, false, 1),
                    ),
                    events,
                )
                assertEquals(0, queue.size)
                // Closing a buffered listener discards its queued events.
                store.setCellJson("t", "r", "c", "3")
                cells.close()
                assertNull(queue.poll())
                rows.close()
                assertEquals(0, store.getListenerCount())
            }
        }
    }

    @Test
    fun waitTimesOutWakesOnAnEventAndReturnsNullOnClose() {
        Store().use { store ->
            val queue = EventQueue()
            val listener = store.addBufferedListener(queue, ListenerKind.VALUE, "v")
            val t0 = System.nanoTime()
            assertNull(queue.wait(50.milliseconds))
            assertTrue(System.nanoTime() - t0 >= 45_000_000)
            val writer = thread { Thread.sleep(50); store.setValueJson("v", "\"hi\"") }
            assertEquals(Cell.Text("hi"), queue.wait(5.seconds)?.newCell)
            writer.join()
            var waited: ListenerEvent? = ListenerEvent(ListenerKind.VALUE, 0, null, null, null, null, null, null, false, 0)
            val waiter = thread { waited = queue.wait(Duration.INFINITE) }
            Thread.sleep(50)
            val c0 = System.nanoTime()
            queue.close()
            waiter.join(5_000)
            assertTrue(!waiter.isAlive && System.nanoTime() - c0 < 2_000_000_000L)
            assertNull(waited)
            val e = assertFailsWith<TinyBaseException> { queue.poll() }
            assertEquals(Status.NULL_PARAMETER, e.status)
            assertNull(queue.wait(1.seconds))
            listener.close()
        }
    }

    @Test
    fun notifyPostsADrainToTheHostsOwnThread() {
        // A single-thread executor stands for Android's main looper: notify posts a drain to it.
        val looper = Executors.newSingleThreadExecutor()
        val looperThread = looper.submit<Thread> { Thread.currentThread() }.get()
        val writers = 4
        val perWriter = 500
        val drained = AtomicInteger()
        val notifies = AtomicInteger()
        val wrongThread = AtomicInteger()
        val done = CountDownLatch(1)
        Store().use { store ->
            lateinit var queue: EventQueue
            queue = EventQueue {
                notifies.incrementAndGet()
                looper.execute {
                    queue.drain {
                        if (Thread.currentThread() !== looperThread) wrongThread.incrementAndGet()
                        if (drained.incrementAndGet() == writers * perWriter) done.countDown()
                    }
                }
            }
            val listener = store.addBufferedListener(queue, ListenerKind.CELL)
            assertEquals(startCallbacks + 1, debugLiveCallbacks()) // notify
            (1..writers).map { w -> thread { for (i in 1..perWriter) store.setCellJson("t$w", "r$i", "c", "$i") } }.forEach { it.join() }
            assertTrue(done.await(10, TimeUnit.SECONDS))
            looper.submit { }.get()
            assertEquals(writers * perWriter, drained.get())
            assertEquals(0, wrongThread.get())
            assertTrue(notifies.get() in 1..writers * perWriter)
            listener.close()
            queue.close()
        }
        looper.shutdown()
    }

    @Test
    fun aQueueOutlivingItsListenersOrStoreLeaksNothing() {
        val notified = AtomicInteger()
        val queue = EventQueue { notified.incrementAndGet() }
        val store = MergeableStore()
        store.addBufferedListener(queue, ListenerKind.TABLES)
        store.setCellJson("t", "r", "c", "1")
        assertEquals(1, notified.get())
        queue.close() // the listener still holds the native queue (and its notify) ...
        assertEquals(startCallbacks + 1, debugLiveCallbacks())
        store.setCellJson("t", "r", "c", "2") // ... but no longer queues into it
        assertEquals(1, notified.get())
        store.close() // ... until the store's close removes it
        assertEquals(startCallbacks, debugLiveCallbacks())
        val closed = Store().also { it.close() }
        EventQueue().use { q -> assertFailsWith<TinyBaseException> { closed.addBufferedListener(q, ListenerKind.TABLES) } }
    }

    @Test
    fun anExceptionInNotifyGoesToTheHandlerAndTheEventIsQueued() {
        withCallbackErrors { errors ->
            Store().use { store ->
                EventQueue { throw IllegalStateException("notify failed") }.use { queue ->
                    store.addBufferedListener(queue, ListenerKind.VALUE_IDS).use {
                        store.setValue("v", 1)
                        assertEquals(listOf("notify failed"), errors.map { it.message })
                        assertEquals(ListenerKind.VALUE_IDS, queue.poll()?.kind)
                        assertEquals(1, store.getValue("v").let { (it as Cell.Number).value.toInt() })
                    }
                }
            }
        }
    }
}
