package org.tinybase

import org.junit.jupiter.api.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue

class BaseTest {
    @Test
    fun versionMatchesBinding() {
        assertEquals(BINDING_VERSION, version())
    }

    @Test
    fun closeFreesAndLaterCallsThrow() {
        val start = debugLiveHandles()
        val store = MergeableStore("a")
        assertEquals(start + 1, debugLiveHandles())
        store.close()
        store.close()
        assertTrue(store.isClosed)
        assertEquals(start, debugLiveHandles())
        val e = assertFailsWith<TinyBaseException> { store.withStore { it } }
        assertEquals(Status.NULL_PARAMETER, e.status)
        Store().use { }
        assertEquals(start, debugLiveHandles())
    }

    @Test
    fun loneSurrogateIsRefused() {
        val e = assertFailsWith<TinyBaseException> { MergeableStore("a\uD800") }
        assertEquals(Status.INVALID_UTF8, e.status)
        assertEquals("é\u0000".toByteArray(Charsets.UTF_8).toList(), cstr("é").toList())
    }

    @Test
    fun nulInIdsIsRefusedAndNulInStringCellsRoundTrips() {
        MergeableStore("a").use { s ->
            for (id in listOf("t\u0000x", "é\u0000")) {
                // The hot path (scratch buffer), the tb_value path and the JSON path all refuse it.
                assertEquals(Status.INVALID_ARGUMENT, assertFailsWith<TinyBaseException> { s.setCell(id, "r", "c", "v") }.status)
                assertEquals(Status.INVALID_ARGUMENT, assertFailsWith<TinyBaseException> { s.setCell("t", "r", id, 1) }.status)
                assertEquals(Status.INVALID_ARGUMENT, assertFailsWith<TinyBaseException> { s.setCellJson("t", id, "c", "1") }.status)
                assertEquals(Status.INVALID_ARGUMENT, assertFailsWith<TinyBaseException> { s.getCell("t", "r", id) }.status)
            }
            // Nothing was written under a truncated id.
            assertEquals("[{},{}]", s.getContentJson())
            s.setCell("t", "r", "c", "a\u0000b")
            s.setValue("v", "x\u0000")
            assertEquals(Cell.Text("a\u0000b"), s.getCell("t", "r", "c"))
            assertEquals(Cell.Text("x\u0000"), s.getValue("v"))
        }
    }

    @Test
    fun unreachableStoresAreFreedByTheBackstop() {
        val start = debugLiveHandles()
        repeat(100) { MergeableStore() }
        val deadline = System.nanoTime() + 10_000_000_000L
        while (debugLiveHandles() > start && System.nanoTime() < deadline) {
            System.gc()
            Thread.sleep(20)
        }
        assertEquals(start, debugLiveHandles())
    }
}
