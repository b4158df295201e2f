package org.tinybase

import org.junit.jupiter.api.Assumptions.assumeTrue
import org.junit.jupiter.api.Test
import java.util.UUID
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertTrue

/**
 * The PostgreSQL persister against the server of TB_TEST_POSTGRES_DSN (scripts/test-all.sh
 * starts one with scripts/pg.sh; by hand: `eval "$(scripts/pg.sh start /tmp/pg)"`). Without it
 * these tests are skipped, except under CI=true, where they fail. Each test uses rooms of its
 * own, so runs never see each other's data.
 */
class PostgresPersistTest : LeakCheckedTest() {
    private fun dsn(): String {
        val dsn = System.getenv("TB_TEST_POSTGRES_DSN")?.takeIf { it.isNotBlank() }
        if (dsn == null && System.getenv("CI") == "true") {
            throw AssertionError("CI=true needs TB_TEST_POSTGRES_DSN (scripts/test-all.sh starts a server with scripts/pg.sh)")
        }
        assumeTrue(dsn != null, "TB_TEST_POSTGRES_DSN is not set (eval \"\$(scripts/pg.sh start /tmp/pg)\" starts a server)")
        return dsn!!
    }

    private fun room() = "kotlin-" + UUID.randomUUID()

    @Test
    fun roundTripThroughARoom() {
        val dsn = dsn()
        val room = room()
        MergeableStore("a").use { a ->
            a.setContentJson(PersistTest.CONTENT)
            PostgresPersister(a, dsn, room).use { pa ->
                assertEquals(room, pa.room)
                assertFalse(pa.load(), "a new room is empty")
                pa.save()
                assertTrue(pa.describe().contains(room), pa.describe())
            }
            MergeableStore("b").use { b ->
                PostgresPersister(b, dsn, room).use { assertTrue(it.load()) }
                assertEquals(a.getContentJson(), b.getContentJson())
                assertEquals(a.getMergeableContentHashes(), b.getMergeableContentHashes())
                // Another room holds nothing of it.
                MergeableStore("c").use { c ->
                    PostgresPersister(c, dsn, room()).use { assertFalse(it.load()) }
                }
            }
        }
    }

    @Test
    fun twoStoresAutoPersistingOneRoom() {
        val dsn = dsn()
        val room = room()
        val durable = java.util.concurrent.atomic.AtomicLong()
        val options = PersisterOptions(autoLoadIntervalSeconds = 0.02, onDurable = { durable.incrementAndGet() })
        MergeableStore("a").use { a ->
            MergeableStore("b").use { b ->
                PostgresPersister(a, dsn, room, options).use { pa ->
                    PostgresPersister(b, dsn, room, options).use { pb ->
                        for (p in listOf(pa, pb)) p.startAutoLoad().startAutoSave()
                        a.setCellJson("t", "r", "fromA", "1")
                        assertTrue(pa.flush(10.0))
                        assertTrue(waitUntil { b.getContentJson().contains("fromA") }, "b auto-loads a's change")
                        b.setCellJson("t", "r", "fromB", "2")
                        assertTrue(pb.flush(10.0))
                        assertTrue(waitUntil { a.getContentJson().contains("fromB") }, "a auto-loads b's change")
                        assertEquals(a.getMergeableContentHashes(), b.getMergeableContentHashes())
                    }
                }
            }
        }
        assertTrue(durable.get() >= 2, "onDurable ran for the auto-saves")
    }

    @Test
    fun unreachableDatabaseIsAStorageException() {
        // Port 1 on the loopback refuses at once: no server needed.
        MergeableStore("a").use { a ->
            assertFailsWith<StorageException> {
                PostgresPersister(a, "host=127.0.0.1 port=1 user=nobody dbname=none connect_timeout=5", room(), PersisterOptions(onDurable = {}))
            }
        }
    }
}
