package org.tinybase

import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import org.junit.jupiter.params.ParameterizedTest
import org.junit.jupiter.params.provider.EnumSource
import java.io.File
import java.util.Collections
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNotEquals
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue

/**
 * Persisters: round trips through every storage, auto-load and auto-save between stores,
 * corrupt data, the hooks, misuse after close or destroy, and leaks (every test ends with the
 * library's live handles and the callback registry back where they started).
 */
class PersistTest : LeakCheckedTest() {
    @TempDir
    lateinit var dir: File

    private fun path(name: String) = File(dir, name).path

    @ParameterizedTest
    @EnumSource(Kind::class)
    fun roundTripWithAMergeableStore(kind: Kind) {
        val p = path("m")
        MergeableStore("a").use { a ->
            a.setContentJson(CONTENT)
            kind.persister(a, p).use { pa ->
                assertFalse(pa.load(), "nothing stored yet")
                assertEquals(CONTENT_CANONICAL, a.getContentJson(), "a load of nothing leaves the store as it is")
                pa.save()
                // (an incremental save counts the merge of what others stored as a load too)
                assertEquals(1, pa.getStats().saves)
                assertTrue(pa.getStats().loads >= 1)
                assertTrue(pa.describe().contains(p), pa.describe())
            }
            MergeableStore("b").use { b ->
                kind.persister(b, p).use { pb -> assertTrue(pb.load()) }
                assertEquals(a.getContentJson(), b.getContentJson())
                assertEquals(a.getMergeableContentHashes(), b.getMergeableContentHashes())
            }
        }
        if (kind == Kind.FILE) assertTrue(File("$p.json").readText().contains("\"fido\""), "TinyBase's format: JSON")
    }

    @Test
    fun fileRoundTripWithAPlainStore() {
        val p = path("s.json")
        Store().use { a ->
            a.setContentJson(CONTENT)
            FilePersister(a, p).use { it.save() }
            // TinyBase's format for a plain store: [tables, values].
            assertTrue(File(p).readText().startsWith("[{\"pets\":"), File(p).readText())
            Store().use { b ->
                b.setCellJson("other", "r", "c", "1")
                FilePersister(b, p).use { assertTrue(it.load()) }
                // A plain store takes the stored content over its own and keeps what only it has.
                assertEquals("[{\"other\":{\"r\":{\"c\":1}}," + CONTENT_CANONICAL.substring(2), b.getContentJson())
            }
        }
    }

    @Test
    fun sqliteJsonModeWithAPlainStoreAndOwnTableNames() {
        val p = path("names.sqlite")
        Store().use { a ->
            a.setContentJson(CONTENT)
            SqlitePersister(a, p, tableName = "my_table", idColumnName = "k", storeColumnName = "v").use { it.save() }
            Store().use { b ->
                // Other names: another table, where nothing is stored.
                SqlitePersister(b, p).use { assertFalse(it.load()) }
                SqlitePersister(b, p, tableName = "my_table", idColumnName = "k", storeColumnName = "v").use {
                    assertTrue(it.describe().startsWith("sqlite "), it.describe())
                    assertTrue(it.load())
                }
                assertEquals(CONTENT_CANONICAL, b.getContentJson())
            }
        }
    }

    @Test
    fun incrementalSqliteNeedsAMergeableStore() {
        Store().use { s ->
            val e = assertFailsWith<TinyBaseException> { SqlitePersister(s, path("i.sqlite"), SqliteMode.INCREMENTAL) }
            assertEquals(Status.INVALID_STATE, e.status)
        }
    }

    @ParameterizedTest
    @EnumSource(Kind::class)
    fun autoSaveThenAFreshStoreAutoLoadsTheChanges(kind: Kind) {
        val p = path("auto")
        MergeableStore("a").use { a ->
            kind.persister(a, p).use { pa ->
                pa.startAutoSave()
                assertTrue(pa.isAutoSaving())
                a.setCellJson("t", "r1", "c", "1")
                a.setCellJson("t", "r2", "c", "\"two\"")
                assertTrue(pa.flush(10.0), "auto-save made the changes durable")
                assertEquals(PersisterStatus.IDLE, pa.getStatus())
                pa.stopAutoSave()
                assertFalse(pa.isAutoSaving())
            }
            MergeableStore("b").use { b ->
                kind.persister(b, p).use { pb ->
                    pb.startAutoLoad()
                    assertTrue(pb.isAutoLoading())
                    assertEquals("[{\"t\":{\"r1\":{\"c\":1},\"r2\":{\"c\":\"two\"}}},{}]", b.getContentJson())
                    assertEquals(a.getMergeableContentHashes(), b.getMergeableContentHashes())
                    pb.stopAutoLoad()
                    assertFalse(pb.isAutoLoading())
                }
            }
        }
    }

    @ParameterizedTest
    @EnumSource(Kind::class)
    fun twoStoresOnOneStorageSeeEachOthersChanges(kind: Kind) {
        val p = path("shared")
        val options = PersisterOptions(autoLoadIntervalSeconds = 0.02)
        MergeableStore("a").use { a ->
            MergeableStore("b").use { b ->
                kind.persister(a, p, options).use { pa ->
                    kind.persister(b, p, options).use { pb ->
                        for (x in listOf(pa, pb)) x.startAutoLoad().startAutoSave()
                        a.setCellJson("t", "r", "fromA", "1")
                        assertTrue(pa.flush())
                        assertTrue(waitUntil { b.getContentJson().contains("fromA") }, "b auto-loads a's change")
                        b.setCellJson("t", "r", "fromB", "2")
                        assertTrue(pb.flush())
                        assertTrue(waitUntil { a.getContentJson().contains("fromB") }, "a auto-loads b's change")
                        assertEquals(a.getContentJson(), b.getContentJson())
                        assertEquals(a.getMergeableContentHashes(), b.getMergeableContentHashes())
                    }
                }
            }
        }
    }

    @Test
    fun persistingAndSynchronizingOneStoreAtOnce() {
        val p = path("synced.json")
        MergeableStore("a").use { a ->
            MergeableStore("b").use { b ->
                LocalBus().use { bus ->
                    bus.createSynchronizer(a).use { sa ->
                        bus.createSynchronizer(b).use { sb ->
                            FilePersister(a, p).use { pa ->
                                pa.startAutoLoad().startAutoSave()
                                sa.startSync()
                                sb.startSync()
                                // b's rows reach a only through the synchronizer, while a writes its own.
                                val writer = Thread { for (i in 0 until 50) b.setCellJson("t", "b$i", "c", "$i") }
                                writer.start()
                                for (i in 0 until 50) a.setCellJson("t", "a$i", "c", "$i")
                                writer.join()
                                assertTrue(
                                    waitUntil { a.getRowCount("t") == 100 && a.getMergeableContentHashes() == b.getMergeableContentHashes() },
                                    "a and b converge",
                                )
                                assertTrue(pa.flush(), "what the synchronizer merged in is saved like a local change")
                            }
                        }
                    }
                }
                MergeableStore("c").use { c ->
                    FilePersister(c, p).use { assertTrue(it.load()) }
                    assertEquals(100, c.getRowCount("t"))
                    assertEquals(b.getMergeableContentHashes(), c.getMergeableContentHashes())
                }
            }
        }
    }

    @Test
    fun corruptFileIsKeptUntilMovedAside() {
        val p = path("bad.json")
        val garbage = "{not tinybase".toByteArray()
        File(p).writeBytes(garbage)
        MergeableStore("a").use { a ->
            a.setCellJson("t", "r", "c", "1")
            val before = a.getContentJson()
            FilePersister(a, p).use { pa ->
                assertNull(pa.moveAsideUnreadable(), "no load has failed yet")
                assertFailsWith<CorruptDataException> { pa.load() }
                assertEquals(before, a.getContentJson(), "nothing was loaded")
                assertContentEquals(garbage, File(p).readBytes(), "the data was left as it was")
                assertEquals(Status.INVALID_STATE, assertFailsWith<TinyBaseException> { pa.save() }.status)
                assertEquals(Status.INVALID_STATE, assertFailsWith<TinyBaseException> { pa.startAutoSave() }.status)
                assertContentEquals(garbage, File(p).readBytes(), "refused saves wrote nothing")

                val aside = assertNotNull(pa.moveAsideUnreadable())
                assertNotEquals(p, aside)
                assertContentEquals(garbage, File(aside).readBytes(), "moved aside, not lost")
                pa.save()
            }
            MergeableStore("b").use { b ->
                FilePersister(b, p).use { assertTrue(it.load()) }
                assertEquals(before, b.getContentJson())
            }
        }
    }

    @Test
    fun corruptDataMetByAutoLoadGoesToOnIgnoredError() {
        val p = path("later-bad.json")
        val errors = Collections.synchronizedList(ArrayList<Pair<Status, String>>())
        val options = PersisterOptions(autoLoadIntervalSeconds = 0.02, onIgnoredError = { s, m -> errors.add(s to m) })
        MergeableStore("a").use { a ->
            a.setCellJson("t", "r", "c", "1")
            FilePersister(a, p, options).use { pa ->
                pa.save()
                pa.startAutoLoad()
                File(p).writeText("[\"garbage\"]")
                assertTrue(waitUntil { errors.isNotEmpty() }, "auto-load reports the corrupt file")
                assertEquals(Status.CORRUPT, errors[0].first)
                assertTrue(errors[0].second.isNotEmpty())
                assertEquals("[{\"t\":{\"r\":{\"c\":1}}},{}]", a.getContentJson())
            }
        }
    }

    @Test
    fun onDurableReportsTheStoresContentHashes() {
        val infos = Collections.synchronizedList(ArrayList<DurableInfo>())
        val options = PersisterOptions(onDurable = { infos.add(it) })
        MergeableStore("a").use { a ->
            a.setContentJson(CONTENT)
            FilePersister(a, path("d.json"), options).use { pa ->
                pa.save()
                val (t, v) = a.getMergeableContentHashes()
                assertEquals(listOf(DurableInfo(t, v, 1)), infos.toList())
                assertNotEquals(0L, t)

                pa.startAutoSave()
                a.setCellJson("pets", "rex", "species", "\"dog\"")
                assertTrue(pa.flush())
                val (t2, v2) = a.getMergeableContentHashes()
                assertNotEquals(t, t2)
                val last = infos.last()
                assertEquals(DurableInfo(t2, v2, pa.getStats().saves), last)
            }
        }
        Store().use { s ->
            infos.clear()
            s.setContentJson(CONTENT)
            FilePersister(s, path("plain.json"), options).use { it.save() }
            assertEquals(listOf(DurableInfo(0, 0, 1)), infos.toList(), "a plain store has no content hashes")
        }
    }

    @Test
    fun hooksMayReadTheirPersisterButNotCommandIt() {
        val seen = Collections.synchronizedList(ArrayList<Any>())
        lateinit var persister: Persister
        val options = PersisterOptions(onDurable = {
            seen.add(persister.getStats())
            seen.add(persister.getStatus())
            seen.add(persister.isAutoSaving())
            seen.add(assertFailsWith<TinyBaseException> { persister.save() }.status)
        })
        MergeableStore("a").use { a ->
            persister = FilePersister(a, path("h.json"), options)
            persister.use { it.save() }
        }
        assertEquals(listOf(PersisterStats(0, 1), PersisterStatus.IDLE, false, Status.INVALID_STATE), seen.toList())
    }

    @Test
    fun aHookMayCloseItsOwnPersister() {
        val closed = CountDownLatch(1)
        lateinit var persister: Persister
        val options = PersisterOptions(onDurable = {
            persister.close()
            closed.countDown()
        })
        MergeableStore("a").use { a ->
            persister = FilePersister(a, path("c.json"), options)
            // On the saving thread: the free waits for save() to return.
            persister.save()
            assertTrue(persister.isClosed)
            assertEquals(Status.NULL_PARAMETER, assertFailsWith<TinyBaseException> { persister.save() }.status)

            // On the persister's own thread (auto-save): the library defers the free.
            val latch2 = CountDownLatch(1)
            var p2: Persister? = null
            val options2 = PersisterOptions(onDurable = { info ->
                if (info.saves == 2L) {
                    p2!!.close()
                    latch2.countDown()
                }
            })
            p2 = FilePersister(a, path("c2.json"), options2)
            p2.startAutoSave()
            a.setCellJson("t", "r", "c", "1")
            assertTrue(latch2.await(10, TimeUnit.SECONDS))
            assertTrue(p2.isClosed)
        }
        assertTrue(closed.await(0, TimeUnit.SECONDS))
        assertTrue(
            waitUntil { debugLiveHandles() == startHandles && debugLiveCallbacks() == startCallbacks },
            "the deferred free released everything",
        )
    }

    @Test
    fun hookExceptionsGoToTheHandlerAndTheSaveStands() {
        val caught = Collections.synchronizedList(ArrayList<Throwable>())
        val previous = setCallbackExceptionHandler { caught.add(it) }
        try {
            val options = PersisterOptions(onDurable = { throw IllegalStateException("boom") })
            MergeableStore("a").use { a ->
                a.setCellJson("t", "r", "c", "1")
                FilePersister(a, path("x.json"), options).use { it.save() }
                MergeableStore("b").use { b ->
                    FilePersister(b, path("x.json")).use { assertTrue(it.load()) }
                    assertEquals(a.getContentJson(), b.getContentJson())
                }
            }
            assertEquals(listOf("boom"), caught.map { it.message })
        } finally {
            setCallbackExceptionHandler(previous)
        }
    }

    @Test
    fun closeWritesWhatAutoSaveQueued() {
        val p = path("q.json")
        MergeableStore("a").use { a ->
            val pa = FilePersister(a, p)
            pa.startAutoSave()
            for (i in 0 until 50) a.setCellJson("t", "r$i", "c", "$i")
            pa.close()
            MergeableStore("b").use { b ->
                FilePersister(b, p).use { it.load() }
                assertEquals(a.getMergeableContentHashes(), b.getMergeableContentHashes())
            }
        }
    }

    @Test
    fun closeReturnsAFlushWaitingOnAnotherThread() {
        // The auto-save's hook blocks, so the flush on another thread has to wait for it.
        val inHook = CountDownLatch(1)
        val releaseHook = CountDownLatch(1)
        val options = PersisterOptions(onDurable = { info ->
            if (info.saves == 2L) {
                inHook.countDown()
                releaseHook.await(30, TimeUnit.SECONDS)
            }
        })
        MergeableStore("a").use { a ->
            val pa = FilePersister(a, path("f.json"), options)
            pa.startAutoSave()
            var flushed: Any? = null
            val flusher = Thread {
                flushed = try {
                    pa.flush(60.0)
                } catch (e: TinyBaseException) {
                    e
                }
            }
            a.setCellJson("t", "r", "c", "1")
            assertTrue(inHook.await(10, TimeUnit.SECONDS))
            flusher.start()
            Thread.sleep(50) // the flusher is waiting now
            val closer = Thread { pa.close() }
            closer.start()
            flusher.join(10_000)
            assertFalse(flusher.isAlive, "close made the waiting flush return, while the hook still runs")
            assertEquals(false, flushed, "not durable yet when it returned")
            releaseHook.countDown()
            closer.join(10_000)
            assertFalse(closer.isAlive)
            assertTrue(pa.isClosed)
        }
    }

    @Test
    fun closedAndDestroyedPersisters() {
        MergeableStore("a").use { a ->
            val pa = FilePersister(a, path("m.json"))
            pa.save()
            pa.destroy()
            pa.destroy()
            assertEquals(Status.INVALID_STATE, assertFailsWith<TinyBaseException> { pa.save() }.status)
            assertEquals(Status.INVALID_STATE, assertFailsWith<TinyBaseException> { pa.load() }.status)
            assertEquals(PersisterStats(0, 1), pa.getStats(), "a destroyed persister stays readable")
            assertEquals(PersisterStatus.IDLE, pa.getStatus())
            pa.close()
            pa.close()
            assertTrue(pa.isClosed)
            assertTrue(pa.toString().contains("closed"))
            for (call in listOf<() -> Any?>(pa::load, pa::save, pa::getStats, pa::getStatus, pa::describe, { pa.flush() }, pa::destroy)) {
                val e = assertFailsWith<TinyBaseException> { call() }
                assertEquals(Status.NULL_PARAMETER, e.status)
                assertTrue(e.message!!.contains("persister is closed"), e.message)
            }
        }
    }

    @Test
    fun closedStoreIsRefusedAndThePersisterKeepsItsStoreAlive() {
        val p = path("alive.json")
        val a = MergeableStore("a")
        a.close()
        val e = assertFailsWith<TinyBaseException> { FilePersister(a, p, PersisterOptions(onDurable = {})) }
        assertEquals(Status.NULL_PARAMETER, e.status)

        val b = MergeableStore("b")
        b.setCellJson("t", "r", "c", "1")
        val pb = FilePersister(b, p)
        assertTrue(pb.store === b)
        b.close()
        pb.save() // the native store lives on while its persister does
        pb.close()
        MergeableStore("c").use { c ->
            FilePersister(c, p).use { assertTrue(it.load()) }
            assertEquals("[{\"t\":{\"r\":{\"c\":1}}},{}]", c.getContentJson())
        }
    }

    @Test
    fun badArgumentsGiveClearErrors() {
        MergeableStore("a").use { a ->
            val utf = assertFailsWith<TinyBaseException> { FilePersister(a, path("x\uD800"), PersisterOptions(onDurable = {})) }
            assertEquals(Status.INVALID_UTF8, utf.status)
            // A NUL would cut the path short (another file): refused, nothing written.
            val nul = assertFailsWith<TinyBaseException> { FilePersister(a, path("x\u0000.json"), PersisterOptions(onDurable = {})) }
            assertEquals(Status.INVALID_ARGUMENT, nul.status)
            assertEquals(Status.INVALID_ARGUMENT, assertFailsWith<TinyBaseException> { SqlitePersister(a, path("n.sqlite"), tableName = "t\u0000") }.status)
            assertEquals(emptyList(), dir.list()!!.toList())
            for (bad in listOf(PersisterOptions(autoLoadIntervalSeconds = -1.0), PersisterOptions(lockTimeoutSeconds = 0.0), PersisterOptions(lockTimeoutSeconds = Double.NaN))) {
                assertEquals(Status.INVALID_ARGUMENT, assertFailsWith<TinyBaseException> { FilePersister(a, path("o.json"), bad) }.status)
            }
            FilePersister(a, path("o.json")).use { pa ->
                assertEquals(Status.INVALID_ARGUMENT, assertFailsWith<TinyBaseException> { pa.flush(-1.0) }.status)
                assertEquals(Status.INVALID_ARGUMENT, assertFailsWith<TinyBaseException> { pa.flush(Double.POSITIVE_INFINITY) }.status)
            }
            FilePersister(a, File(dir, "missing/dir/x.json").path).use { pa ->
                assertFailsWith<StorageException> { pa.save() }
            }
            assertFailsWith<StorageException> { SqlitePersister(a, dir.path) }
        }
    }

    @Test
    fun unreachablePersistersAreClosedByTheBackstop() {
        val p = path("gc.json")
        MergeableStore("a").use { a ->
            fun leak() {
                FilePersister(a, p, PersisterOptions(onDurable = {})).startAutoSave()
            }
            repeat(5) { leak() }
            val freed = waitUntil {
                System.gc()
                debugLiveHandles() == startHandles + 1 && debugLiveCallbacks() == startCallbacks
            }
            assertTrue(freed, "the backstop closed the persisters")
        }
    }

    /** The storages every test of [Kind] runs on. */
    enum class Kind {
        FILE,
        SQLITE_JSON,
        SQLITE_INCREMENTAL,
        ;

        fun persister(store: Store, path: String, options: PersisterOptions = PersisterOptions()): Persister = when (this) {
            FILE -> FilePersister(store, "$path.json", options)
            SQLITE_JSON -> SqlitePersister(store, "$path.sqlite", SqliteMode.JSON, options)
            SQLITE_INCREMENTAL -> SqlitePersister(store, "$path.sqlite", SqliteMode.INCREMENTAL, options)
        }
    }

    companion object {
        /** Every kind of cell and value, unicode included. */
        const val CONTENT =
            "[{\"pets\":{\"fido\":{\"species\":\"dog\",\"age\":3.5,\"good\":true,\"tags\":[\"a\",{\"b\":1}]}," +
                "\"félix\":{\"species\":\"cat ✓\",\"nick\":null}}},{\"open\":false,\"n\":-1e300}]"

        /** [CONTENT] as the library writes it back. */
        val CONTENT_CANONICAL: String by lazy { Store().use { it.setContentJson(CONTENT); it.getContentJson() } }
    }
}
