package org.tinybase

import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.asCoroutineDispatcher
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.count
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.isActive
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.yield
import org.junit.jupiter.api.Test
import java.util.concurrent.Executors
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicInteger
import kotlin.concurrent.thread
import kotlin.test.assertEquals
import kotlin.test.assertTrue

/** Listeners and Flows under concurrent writers: exact counts, concurrent add/remove, close under load, no leak. */
class ListenerThreadsTest : LeakCheckedTest() {
    @Test
    fun coroutinesOnSeveralDispatchersWriteOneStoreAndEveryEventIsCounted() = runBlocking {
        Executors.newSingleThreadExecutor().asCoroutineDispatcher().use { single ->
            MergeableStore("threads").use { store ->
                val dispatchers = listOf(Dispatchers.Default, Dispatchers.IO, single)
                val writersPerDispatcher = 2
                val perWriter = 300
                val total = dispatchers.size * writersPerDispatcher * perWriter
                val cells = AtomicInteger()
                val finished = AtomicInteger()
                val rowsAdded = AtomicInteger()
                store.addCellListener(null, null, "c") { _, _, _, _, new, old -> if (new != null && old == null) cells.incrementAndGet() }
                store.addDidFinishTransactionListener { finished.incrementAndGet() }
                store.addHasRowListener(null, null) { _, _, _, has -> if (has) rowsAdded.incrementAndGet() }
                val flowCount = async(Dispatchers.Default) { store.cellFlow(null, null, null).take(total).count() }
                val bufferedCount = EventQueue().use { queue ->
                    store.addBufferedListener(queue, ListenerKind.CELL).use {
                        store.awaitListeners(5)
                        coroutineScope {
                            for (d in dispatchers.indices) {
                                repeat(writersPerDispatcher) { w ->
                                    launch(dispatchers[d]) {
                                        for (i in 1..perWriter) {
                                            store.setCellJson("t$d", "w$w-r$i", "c", "$i")
                                            if (i % 50 == 0) yield()
                                        }
                                    }
                                }
                            }
                        }
                        queue.drain { }
                    }
                }
                assertEquals(total, cells.get())
                assertEquals(total, finished.get())
                assertEquals(total, rowsAdded.get())
                assertEquals(total, bufferedCount)
                assertEquals(total, withTimeout(10_000) { flowCount.await() })
                assertEquals(3, store.getListenerCount())
            }
        }
    }

    @Test
    fun listenersAndFlowsComeAndGoWhileOthersWrite() = runBlocking {
        Store().use { store ->
            val stop = AtomicBoolean(false)
            val writes = AtomicInteger()
            val writer = thread {
                var i = 0
                while (!stop.get()) {
                    store.setValueJson("v", "${i++}")
                    writes.incrementAndGet()
                }
            }
            try {
                val seen = AtomicInteger()
                repeat(100) {
                    val l = store.addValueListener("v") { _, _, _, _ -> seen.incrementAndGet() }
                    val job = launch(Dispatchers.Default) { store.valueFlow("v").collect { seen.incrementAndGet() } }
                    yield()
                    job.cancel()
                    l.close()
                    job.join()
                }
                withTimeout(5_000) { while (writes.get() < 1000 && isActive) delay(1) }
                // Once removed, a listener is never called again: the count stays put.
                val after = seen.get()
                Thread.sleep(20)
                assertEquals(after, seen.get())
                assertEquals(0, store.getListenerCount())
            } finally {
                stop.set(true)
                writer.join()
            }
        }
    }

    @Test
    fun closingAStoreWhileThreadsWriteAndListenersRunLeaksNothing() {
        val store = Store()
        val calls = AtomicInteger()
        repeat(3) { store.addCellListener(null, null, null) { _, _, _, _, _, _ -> calls.incrementAndGet() } }
        val queue = EventQueue()
        store.addBufferedListener(queue, ListenerKind.TABLES)
        val refused = AtomicInteger()
        val writers = (1..3).map { w ->
            thread {
                var i = 0
                while (true) {
                    try {
                        store.setCellJson("t", "r$w", "c", "${i++}")
                    } catch (e: TinyBaseException) {
                        assertEquals(Status.NULL_PARAMETER, e.status)
                        refused.incrementAndGet()
                        return@thread
                    }
                }
            }
        }
        while (calls.get() < 300) Thread.sleep(1)
        store.close()
        writers.forEach { it.join(10_000) }
        assertEquals(3, refused.get())
        val final = calls.get()
        assertTrue(final >= 300)
        queue.close()
        assertEquals(final, calls.get())
    }
}
