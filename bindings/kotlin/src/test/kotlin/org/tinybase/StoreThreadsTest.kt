package org.tinybase

import kotlinx.coroutines.DelicateCoroutinesApi
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.newFixedThreadPoolContext
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.yield
import org.junit.jupiter.api.Test
import kotlin.test.assertEquals

/** Coroutines on several dispatchers write one store at once; transactions keep it exact. */
class StoreThreadsTest {
    @OptIn(DelicateCoroutinesApi::class)
    @Test
    fun coroutinesOnSeveralDispatchersWriteOneStore() {
        val handles = debugLiveHandles()
        val pool = newFixedThreadPoolContext(3, "tb-writers")
        try {
            MergeableStore("shared").use { store ->
                store.setValue("count", 0)
                val dispatchers = listOf(Dispatchers.Default, Dispatchers.IO, pool)
                val writers = 12
                val rounds = 200
                runBlocking {
                    (0 until writers).map { w ->
                        async(dispatchers[w % dispatchers.size]) {
                            for (i in 0 until rounds) {
                                // A read-modify-write: exact only if transactions are atomic.
                                store.transaction {
                                    val n = (store.getValue("count") as Cell.Number).value
                                    store.setValue("count", n + 1)
                                    store.setCell("w$w", "r$i", "n", i)
                                    store.setCell("w$w", "r$i", "s", "w$w-$i")
                                }
                                if (i % 10 == 0) {
                                    // Started and finished on this thread, before any suspension.
                                    store.startTransaction()
                                    try {
                                        store.setCell("w$w", "marks", "m$i", true)
                                    } finally {
                                        store.finishTransaction()
                                    }
                                    yield()
                                }
                                // Readers interleave: never half of another writer's transaction.
                                val row = store.getRow("w$w", "r$i")
                                assertEquals(mapOf("n" to Cell.Number(i.toDouble()), "s" to Cell.Text("w$w-$i")), row)
                            }
                        }
                    }.awaitAll()
                }
                assertEquals(Cell.Number((writers * rounds).toDouble()), store.getValue("count"))
                assertEquals(writers, store.getTableIds().size)
                for (w in 0 until writers) {
                    assertEquals(rounds + 1, store.getRowCount("w$w"))
                    assertEquals(Cell.Text("w$w-${rounds - 1}"), store.getCell("w$w", "r${rounds - 1}", "s"))
                    assertEquals(rounds / 10, store.getCellIds("w$w", "marks").size)
                }
                assertEquals(store.getMergeableContentHashes(), store.computeContentHashes())
            }
        } finally {
            pool.close()
        }
        assertEquals(handles, debugLiveHandles())
    }

    @Test
    fun hotCallsOnManyThreadsUseTheirOwnScratch() {
        MergeableStore("hot").use { store ->
            val threads = (0 until 6).map { t ->
                Thread {
                    for (i in 0 until 2000) {
                        store.setCell("t$t", "r${i % 50}", "c", "v$t-$i-é")
                        store.setCell("t$t", "r${i % 50}", "n", i)
                        assertEquals(Cell.Text("v$t-$i-é"), store.getCell("t$t", "r${i % 50}", "c"))
                        assertEquals(Cell.Number(i.toDouble()), store.getCell("t$t", "r${i % 50}", "n"))
                    }
                }
            }
            val errors = java.util.concurrent.CopyOnWriteArrayList<Throwable>()
            threads.forEach { it.setUncaughtExceptionHandler { _, e -> errors.add(e) }; it.start() }
            threads.forEach { it.join() }
            assertEquals(emptyList(), errors)
            assertEquals(6, store.getTableIds().size)
        }
    }
}
