package org.tinybase

import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.CoroutineStart
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import java.util.Collections
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicReference
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNotEquals
import kotlin.test.assertTrue

/** Custom transports, the local bus and named channels, misuse and leaks. */
class SyncTest : LeakCheckedTest() {
    @Test
    fun twoStoresConvergeBeforeDuringAndAfterSync() {
        MergeableStore("a").use { a ->
            MergeableStore("b").use { b ->
                Net().use { net ->
                    a.setCellJson("pets", "fido", "species", "\"dog\"")
                    b.setCellJson("pets", "felix", "species", "\"cat\"")
                    val sa = net.add("A", a)
                    val sb = net.add("B", b)
                    startAll(sa, sb)
                    assertConverge(a, b)
                    assertEquals(
                        listOf(mapOf("pets" to mapOf("fido" to mapOf("species" to "dog"), "felix" to mapOf("species" to "cat"))), emptyMap<String, Any>()),
                        a.contentTree(),
                    )
                    // Edits while syncing, from several threads at once.
                    val writers = listOf(a, b).mapIndexed { i, s ->
                        Thread { repeat(50) { n -> s.setCellJson("t$i", "r$n", "c", "$n") } }.apply { start() }
                    }
                    writers.forEach { it.join() }
                    net.settle()
                    assertConverge(a, b)
                    assertEquals(50, ((a.contentTree() as List<*>)[0] as Map<*, *>).let { (it["t1"] as Map<*, *>).size })
                    // A deletion travels too.
                    b.delCell("pets", "fido", "species")
                    assertConverge(a, b)
                    assertFalse(((a.contentTree() as List<*>)[0] as Map<*, *>)["pets"].toString().contains("fido"))
                    assertTrue(sa.getSynchronizerStats().sends > 0 && sa.getSynchronizerStats().receives > 0)
                }
            }
        }
    }

    @Test
    fun threeStoresConvergeAndFramedVariant() {
        for (framed in listOf(false, true)) {
            (1..3).map { MergeableStore("s$it") }.useAll { stores ->
                Net(framed).use { net ->
                    val syncs = stores.mapIndexed { i, s -> net.add("P$i", s) }
                    stores.forEachIndexed { i, s -> s.setCellJson("t", "r$i", "c", "$i") }
                    startAll(*syncs.toTypedArray())
                    stores.forEachIndexed { i, s -> s.setCellJson("t", "late$i", "c", "true") }
                    net.settle()
                    assertConverge(*stores.toTypedArray())
                    assertEquals(6, (((stores[2].contentTree() as List<*>)[0] as Map<*, *>)["t"] as Map<*, *>).size)
                    assertTrue(syncs.all { it.isFramed == framed })
                    if (framed) {
                        assertTrue(net.frames.isNotEmpty())
                        assertTrue(net.frames.all { f -> f.contains('\n') && f.substringAfter('\n').startsWith("[") })
                        // A frame without a newline is refused.
                        assertEquals(Status.INVALID_SHAPE, assertFailsWith<TinyBaseException> { syncs[0].receiveFramed("[1,2,3]") }.status)
                    }
                }
            }
        }
    }

    @Test
    fun directDeliveryInsideSend() {
        // Each transport hands the payload straight to the other synchronizer, on the worker.
        MergeableStore("da").use { a ->
            MergeableStore("db").use { b ->
                val peers = arrayOfNulls<CustomSynchronizer>(2)
                val options = SynchronizerOptions(requestTimeoutSeconds = 0.5)
                listOf(
                    CustomSynchronizer(a, options) { _, payload -> peers[1]?.receive("A", payload) },
                    CustomSynchronizer(b, options) { _, payload -> peers[0]?.receive("B", payload) },
                ).useAll { syncs ->
                    syncs.forEachIndexed { i, s -> peers[i] = s }
                    a.setCellJson("t", "r", "c", "\"a\"")
                    startAll(*syncs.toTypedArray())
                    b.setCellJson("t", "r2", "c", "\"b\"")
                    assertConverge(a, b)
                    assertEquals(setOf("r", "r2"), (((b.contentTree() as List<*>)[0] as Map<*, *>)["t"] as Map<*, *>).keys)
                }
            }
        }
    }

    @Test
    fun hooksStatsStatusFlowAndIdle() = runBlocking {
        val sent = AtomicInteger()
        val received = AtomicInteger()
        val statuses = Collections.synchronizedList(ArrayList<SyncStatusInfo>())
        MergeableStore("a").use { a ->
            MergeableStore("b").use { b ->
                Net().use { net ->
                    val sa = net.add(
                        "A", a,
                        SynchronizerOptions(
                            requestTimeoutSeconds = 0.5,
                            onSend = { _, _, _, body -> assertTrue(body.isNotEmpty()); sent.incrementAndGet() },
                            onReceive = { from, _, _, _ -> assertEquals("B", from); received.incrementAndGet() },
                            onStatus = { statuses.add(it) },
                        ),
                    )
                    val sb = net.add("B", b)
                    val flowed = async(Dispatchers.Default, start = CoroutineStart.UNDISPATCHED) {
                        withTimeout(20_000) { sa.statusFlow().take(2).toList() }
                    }
                    // The flow's producer registers its collector on another thread: wait for it, or
                    // the first change (syncing) can pass before it listens.
                    assertTrue(waitUntil(5.0) { sa.hooks.statusCollectors.isNotEmpty() })
                    assertEquals(SyncStatus.IDLE, sa.getStatus())
                    assertEquals(Connection(ConnectionState.NONE), sa.getConnection())
                    startAll(sa, sb)
                    a.setCellJson("t", "r", "c", "1")
                    assertTrue(net.settle())
                    assertTrue(sa.waitForIdle(5.0))
                    assertTrue(sa.isIdle() && sa.isSettled())
                    val stats = sa.getSynchronizerStats()
                    // The hooks saw every message the stats count (the last hook may still be returning).
                    assertTrue(waitUntil(5.0) { stats.sends == sent.get().toLong() && stats.receives == received.get().toLong() }, "$stats vs $sent/$received")
                    assertTrue(stats.sends >= 2)
                    assertEquals(InboxStats(0, 0, 0), sa.getInboxStats())
                    val seen = flowed.await()
                    assertEquals(SyncState.SYNCING, seen[0].state)
                    // The end of syncing is reported by the worker, possibly just after waitForIdle
                    // returned: idle, or error when a request timed out on a busy machine.
                    assertTrue(waitUntil(5.0) { statuses.size >= 2 && statuses.last().state != SyncState.SYNCING }, "$statuses")
                    assertEquals(seen[0], statuses[0])
                    assertEquals(ConnectionState.NONE, seen[0].connection.state)
                }
            }
        }
    }

    @Test
    fun localBusThreeStoresEditedFromCoroutines() = runBlocking {
        LocalBus().use { bus ->
            (1..3).map { MergeableStore("bus$it") }.useAll { stores ->
                stores.map { bus.createSynchronizer(it, SynchronizerOptions(requestTimeoutSeconds = 0.5)) }.useAll { syncs ->
                    startAll(*syncs.toTypedArray())
                    val dispatchers = listOf(Dispatchers.Default, Dispatchers.IO, Dispatchers.Default)
                    stores.mapIndexed { i, s ->
                        (0 until 4).map { k ->
                            async(dispatchers[(i + k) % 3]) { repeat(25) { n -> s.setCellJson("t$i", "r$k-$n", "c", "\"$i$k$n\"") } }
                        }
                    }.flatten().awaitAll()
                    assertTrue(bus.waitForIdle(20.0))
                    assertConverge(*stores.toTypedArray())
                    val tables = (stores[0].contentTree() as List<*>)[0] as Map<*, *>
                    assertEquals(3, tables.size)
                    assertTrue(tables.values.all { (it as Map<*, *>).size == 100 })
                }
            }
        }
    }

    @Test
    fun namedChannelsReachTheSameNameOnly() {
        val options = SynchronizerOptions(requestTimeoutSeconds = 0.5)
        (1..3).map { MergeableStore("ch$it") }.useAll { stores ->
            listOf(
                createBroadcastChannelSynchronizer(stores[0], "kotlin-red", options),
                LocalBus.broadcastChannel("kotlin-red").use { it.createSynchronizer(stores[1], options) },
                createBroadcastChannelSynchronizer(stores[2], "kotlin-blue", options),
            ).useAll { (s1, s2, s3) ->
                startAll(s1, s2, s3)
                stores[0].setCellJson("t", "r", "c", "\"red\"")
                stores[2].setCellJson("t", "r", "c", "\"blue\"")
                assertConverge(stores[0], stores[1])
                assertTrue(s1.waitForIdle(5.0) && s3.waitForIdle(5.0))
                assertEquals(listOf(mapOf("t" to mapOf("r" to mapOf("c" to "red"))), emptyMap<String, Any>()), stores[1].contentTree())
                assertEquals(listOf(mapOf("t" to mapOf("r" to mapOf("c" to "blue"))), emptyMap<String, Any>()), stores[2].contentTree())
            }
        }
    }

    @Test
    fun garbageIsReportedAndNeverApplied() {
        val errors = Collections.synchronizedList(ArrayList<String>())
        MergeableStore("g").use { store ->
            val sync = CustomSynchronizer(store, SynchronizerOptions(onIgnoredError = { errors.add(it) })) { _, _ -> }
            val before = store.getMergeableContentHashesJson()
            val garbage = listOf(
                "not json",
                "[1,2]",
                "{}",
                "[\"r1\", 3, {\"bogus\": true}]",
                "[null, 3, [[{\"t\": [[{\"r\": [[{\"c\": [1, \"not-an-hlc\", 0]}, \"\", 0]]}, \"\", 0]]}, \"\", 0], [{}, \"\", 0]]]",
                "[null, 99, {}]",
            )
            garbage.forEach { sync.receive("x", it) }
            assertTrue(waitUntil(10.0) { errors.size >= garbage.size }, "errors: $errors")
            assertTrue(errors.all { it.startsWith("tinybase:") }, "errors: $errors")
            assertTrue(errors.any { it.startsWith("tinybase:14") }, "errors: $errors")
            assertEquals(before, store.getMergeableContentHashesJson())
            assertEquals(listOf(emptyMap<String, Any>(), emptyMap<String, Any>()), store.contentTree())
            assertEquals(0L, sync.getSynchronizerStats().receives)
            // Lone surrogates never reach the library.
            assertEquals(Status.INVALID_UTF8, assertFailsWith<TinyBaseException> { sync.receive("x", "\uD800") }.status)
            sync.close()
        }
    }

    @Test
    fun misuseOfClosedAndDestroyedSynchronizers() {
        MergeableStore("m").use { store ->
            val sync = CustomSynchronizer(store, SynchronizerOptions(requestTimeoutSeconds = 0.05)) { _, _ -> }
            sync.destroy()
            sync.destroy() // idempotent
            assertEquals(Status.INVALID_STATE, assertFailsWith<TinyBaseException> { sync.startSync() }.status)
            assertEquals(SyncStatus.IDLE, sync.getStatus())
            assertTrue(sync.isIdle())
            sync.receive("x", "[null, 1, null]") // ignored after destroy
            sync.close()
            sync.close()
            assertTrue(sync.isClosed)
            assertEquals(Status.NULL_PARAMETER, assertFailsWith<TinyBaseException> { sync.startSync() }.status)
            assertEquals(Status.NULL_PARAMETER, assertFailsWith<TinyBaseException> { sync.getSynchronizerStats() }.status)
            sync.receive("x", "[null, 1, null]") // ignored after close: a transport may still deliver
            // Bad options fail at once and keep nothing registered.
            for (bad in listOf(-1.0, Double.NaN, Double.POSITIVE_INFINITY)) {
                assertFailsWith<TinyBaseException> { CustomSynchronizer(store, SynchronizerOptions(requestTimeoutSeconds = bad)) { _, _ -> } }
            }
            assertEquals(Status.INVALID_ARGUMENT, assertFailsWith<TinyBaseException> { LocalBus().use { it.createSynchronizer(store, SynchronizerOptions(inboxMaxBytes = -1)) } }.status)
            assertEquals(startCallbacks, debugLiveCallbacks())
        }
        // A closed store cannot get a synchronizer.
        val closed = MergeableStore().apply { close() }
        assertEquals(Status.NULL_PARAMETER, assertFailsWith<TinyBaseException> { CustomSynchronizer(closed) { _, _ -> } }.status)
        assertEquals(startCallbacks, debugLiveCallbacks())
    }

    @Test
    fun exceptionsInTransportAndHooksGoToTheHandler() {
        val caught = Collections.synchronizedList(ArrayList<Throwable>())
        val previous = setCallbackExceptionHandler { caught.add(it) }
        try {
            MergeableStore("e").use { store ->
                val sync = CustomSynchronizer(
                    store,
                    SynchronizerOptions(requestTimeoutSeconds = 0.05, onSend = { _, _, _, _ -> throw IllegalStateException("hook") }),
                ) { _, _ -> throw IllegalArgumentException("send") }
                sync.startSync() // sends, times out, goes on
                store.setCellJson("t", "r", "c", "1")
                assertTrue(waitUntil(5.0) { caught.any { it.message == "send" } && caught.any { it.message == "hook" } })
                assertEquals("1", ((((store.contentTree() as List<*>)[0] as Map<*, *>)["t"] as Map<*, *>)["r"] as Map<*, *>)["c"].toString().substringBefore('.'))
                sync.close()
            }
        } finally {
            setCallbackExceptionHandler(previous)
        }
    }

    @Test
    fun closeFromInsideItsOwnSendIsDeferred() {
        MergeableStore("d").use { store ->
            val inside = CountDownLatch(1)
            val ref = AtomicReference<CustomSynchronizer>()
            val error = AtomicReference<Throwable>()
            val first = java.util.concurrent.atomic.AtomicBoolean(true)
            val sync = CustomSynchronizer(store, SynchronizerOptions(requestTimeoutSeconds = 0.05)) { _, _ ->
                // Later sends may come until the free happens (startSync still holds the handle).
                if (!first.getAndSet(false)) return@CustomSynchronizer
                try {
                    // Destroying its own synchronizer from its callback is refused...
                    assertEquals(Status.INVALID_STATE, assertFailsWith<TinyBaseException> { ref.get().destroy() }.status)
                    // ...closing it is deferred until the callback returned.
                    ref.get().close()
                } catch (t: Throwable) {
                    error.set(t)
                }
                inside.countDown()
            }
            ref.set(sync)
            Thread { runCatching { sync.startSync() } }.start()
            assertTrue(inside.await(10, TimeUnit.SECONDS))
            error.get()?.let { throw it }
            assertTrue(sync.isClosed)
            // The free, and the release of the Kotlin callbacks, happen once startSync returned.
            assertTrue(waitUntil(10.0) { debugLiveCallbacks() == startCallbacks })
        }
    }

    @Test
    fun closingTheStoreWhileItsSynchronizerRunsIsSafe() {
        val a = MergeableStore("ca")
        MergeableStore("cb").use { b ->
            Net().use { net ->
                val sa = net.add("A", a)
                val sb = net.add("B", b)
                startAll(sa, sb)
                a.setCellJson("t", "r", "c", "1")
                assertConverge(a, b)
                a.close() // the synchronizer keeps the store's content alive
                val received = sa.getSynchronizerStats().receives
                repeat(20) { b.setCellJson("t", "r$it", "c", "$it") }
                assertTrue(net.settle())
                assertTrue(sa.getSynchronizerStats().receives > received, "A still receives and applies")
                // A new peer still loads A's content (A answers from the store the Kotlin side closed).
                net.remove("B")
                assertTrue(sb.isClosed)
                MergeableStore("cc").use { c ->
                    val sc = net.add("C", c)
                    sc.startSync()
                    assertTrue(net.settle())
                    assertEquals(b.getMergeableContentHashesJson(), c.getMergeableContentHashesJson())
                }
            }
        }
    }

    @Test
    fun aFloodBeyondTheInboxIsRefused() {
        MergeableStore("f").use { store ->
            val errors = Collections.synchronizedList(ArrayList<String>())
            val hold = CountDownLatch(1)
            val sync = CustomSynchronizer(
                store,
                SynchronizerOptions(inboxMaxPayloads = 5, onIgnoredError = { errors.add(it) }, onReceive = { _, _, _, _ -> hold.await(5, TimeUnit.SECONDS) }),
            ) { _, _ -> }
            var refused = 0
            repeat(50) {
                try {
                    sync.receive("x", "[null, 2, [[0, 0], \"\", 0]]")
                } catch (e: TinyBaseException) {
                    assertEquals(Status.INVALID_STATE, e.status)
                    refused++
                }
            }
            hold.countDown()
            assertTrue(refused > 0)
            assertEquals(refused.toLong(), sync.getInboxStats().refused)
            assertTrue(waitUntil(5.0) { errors.any { it.startsWith("tinybase:15:inbox") } })
            sync.close()
        }
    }

    @Test
    fun unclosedSynchronizersAreFreedByTheBackstop() {
        MergeableStore("u").use { store ->
            repeat(20) { CustomSynchronizer(store) { _, _ -> } }
            assertTrue(waitUntil(10.0) { System.gc(); debugLiveCallbacks() == startCallbacks && debugLiveHandles() == startHandles + 1 })
        }
    }
}
