package org.tinybase

import org.junit.jupiter.api.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNull

/** Bad input gets a clear [TinyBaseException] and leaves the data exactly as it was. */
class StoreMisuseTest {
    private fun filled(): MergeableStore = MergeableStore("m").also { s ->
        s.setTables(mapOf("t" to mapOf("r" to mapOf("c" to "x", "n" to 1))))
        s.setValues(mapOf("v" to true))
    }

    /** Runs [bad], expects [status], and checks the store's content (stamps included) did not change. */
    private fun refused(s: MergeableStore, status: Status, bad: () -> Unit) {
        val before = s.getEncodedMergeableContentJson()
        val e = assertFailsWith<TinyBaseException> { bad() }
        assertEquals(status, e.status, e.message)
        assertEquals(true, e.message?.isNotEmpty())
        assertEquals(before, s.getEncodedMergeableContentJson())
    }

    @Test
    fun closedStoreThrowsEverywhere() {
        val s = filled()
        s.close()
        val calls: List<() -> Any?> = listOf(
            { s.getCell("t", "r", "c") }, { s.setCell("t", "r", "c", "y") }, { s.setCell("t", "r", "c", 2) },
            { s.getValue("v") }, { s.setValue("v", 1) }, { s.getTables() }, { s.getContentJson() },
            { s.getRowIds("t") }, { s.hasTables() }, { s.delTables() }, { s.transaction { } },
            { s.startTransaction() }, { s.getMergeableContentJson() }, { s.clone() }, { s.getRowCount("t") },
            { s.applyMergeableChangesJson("[{},{},1]") }, { s.getMergeableContentHashes() },
        )
        for (call in calls) {
            val e = assertFailsWith<TinyBaseException> { call() }
            assertEquals(Status.NULL_PARAMETER, e.status)
        }
        MergeableStore().use { other ->
            assertEquals(Status.NULL_PARAMETER, assertFailsWith<TinyBaseException> { other.merge(s) }.status)
        }
    }

    @Test
    fun nonFiniteNumbersAreRefused() {
        filled().use { s ->
            for (bad in listOf(Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY)) {
                refused(s, Status.INVALID_VALUE) { s.setCell("t", "r", "c", bad) }
                refused(s, Status.INVALID_VALUE) { s.setCell("t", "r", "c", Cell.Number(bad)) }
                refused(s, Status.INVALID_VALUE) { s.setValue("v", bad) }
                refused(s, Status.INVALID_VALUE) { s.setRow("t", "r", mapOf("c" to bad)) }
                refused(s, Status.INVALID_VALUE) { s.setCell("t", "r", "c", listOf(1.0, bad)) }
                refused(s, Status.INVALID_VALUE) { cellOf(mapOf("a" to bad)) }
            }
        }
    }

    @Test
    fun invalidJsonIsRefused() {
        filled().use { s ->
            for (bad in listOf("", "{", "{\"t\":}", "[1,]", "{'a':1}", "NaN", "{\"a\":1} x", "\"\\x\"")) {
                refused(s, Status.INVALID_JSON) { s.setTablesJson(bad) }
                refused(s, Status.INVALID_JSON) { s.setCellJson("t", "r", "c", bad) }
                refused(s, Status.INVALID_JSON) { s.applyChangesJson(bad) }
                refused(s, Status.INVALID_JSON) { s.applyMergeableChangesJson(bad) }
                refused(s, Status.INVALID_JSON) { s.setMergeableContentJson(bad) }
                refused(s, Status.INVALID_JSON) { s.setJson(bad) }
            }
            // A malformed object cell is refused before it reaches the store.
            refused(s, Status.INVALID_JSON) { s.setCell("t", "r", "c", Cell.Json("{\"a\":")) }
            refused(s, Status.INVALID_JSON) { Cell.Json("[1,").toAny() }
        }
    }

    @Test
    fun wrongShapesAreRefused() {
        filled().use { s ->
            refused(s, Status.INVALID_SHAPE) { s.setTablesJson("[1,2]") }
            refused(s, Status.INVALID_SHAPE) { s.setRowJson("t", "r", "[]") }
            refused(s, Status.INVALID_SHAPE) { s.setValuesJson("1") }
            refused(s, Status.INVALID_SHAPE) { s.applyChangesJson("{}") }
            refused(s, Status.INVALID_SHAPE) { s.setContentJson("[{}]") }
            refused(s, Status.INVALID_SHAPE) { s.setTables(emptyMap()) }
            refused(s, Status.INVALID_SHAPE) { s.setValues(emptyMap()) }
            refused(s, Status.INVALID_SHAPE) { s.setCell("t", "r", "c", mapOf(1 to "a")) }
            refused(s, Status.INVALID_VALUE) { s.setCell("t", "r", "c", Any()) }
            refused(s, Status.INVALID_VALUE) { s.setCell("t", "r", "c", "\uFFFDnot json") }
            refused(s, Status.INVALID_VALUE) { s.setRow("t", "r", mapOf("c" to "\uFFFC")) }
            refused(s, Status.INVALID_VALUE) { s.setValue("v", "\uFFFC") }
            refused(s, Status.INVALID_VALUE) { s.applyChanges(Changes(values = mapOf("v" to Cell.Text("\uFFFC")))) }
            val e = assertFailsWith<TinyBaseException> { s.getMergeableTableDiffJson("[1]") }
            assertEquals(true, e.status == Status.INVALID_SHAPE || e.status == Status.INVALID_JSON)
        }
    }

    @Test
    fun loneSurrogatesAreRefused() {
        filled().use { s ->
            val lone = "a\uD800b"
            refused(s, Status.INVALID_UTF8) { s.setCell("t", "r", "c", lone) }
            refused(s, Status.INVALID_UTF8) { s.setCell(lone, "r", "c", "x") }
            refused(s, Status.INVALID_UTF8) { s.setCell("t", "r", "c", mapOf("k" to lone)) }
            refused(s, Status.INVALID_UTF8) { s.setValue("v", lone) }
            refused(s, Status.INVALID_UTF8) { s.setRow("t", lone, mapOf("c" to 1)) }
            refused(s, Status.INVALID_UTF8) { s.getCell("t", lone, "c") }
            refused(s, Status.INVALID_UTF8) { s.setTablesJson("{\"$lone\":{}}") }
            // The failed call released this thread's scratch: the next hot calls work.
            assertEquals(Cell.Text("x"), s.getCell("t", "r", "c"))
            s.setCell("t", "r", "c", "y")
            assertEquals(Cell.Text("y"), s.getCell("t", "r", "c"))
            // Non-ASCII that is valid passes through unchanged.
            s.setCell("t", "é", "ç", "日本\uD83D\uDE00")
            assertEquals(Cell.Text("日本\uD83D\uDE00"), s.getCell("t", "é", "ç"))
        }
    }

    @Test
    fun exceptionInsideTransactionLeavesStoreUnchanged() {
        filled().use { s ->
            val calls = java.util.concurrent.atomic.AtomicInteger()
            s.addCellListener(null, null, null) { _, _, _, _, _, _ -> calls.incrementAndGet() }.use {
                refused(s, Status.INVALID_VALUE) {
                    s.transaction {
                        s.setCell("t", "r", "c", "changed").setValue("new", 1).delRow("t", "r")
                        s.setCell("t", "r", "c", Double.NaN)
                    }
                }
                assertEquals(0, calls.get())
                val e = assertFailsWith<IllegalArgumentException> {
                    s.transaction { s.setCell("t", "r", "c", "changed"); throw IllegalArgumentException("mine") }
                }
                assertEquals("mine", e.message)
                assertEquals(Cell.Text("x"), s.getCell("t", "r", "c"))
                assertNull(s.getValue("new"))
                assertEquals(0, calls.get())
                s.setCell("t", "r", "c", "after")
                assertEquals(1, calls.get())
            }
        }
    }

    @Test
    fun badClockFallsBackAndIsReported() {
        val reported = java.util.concurrent.CopyOnWriteArrayList<Throwable>()
        val previous = setCallbackExceptionHandler { reported.add(it) }
        try {
            MergeableStore("c") { throw IllegalStateException("clock broke") }.use { s ->
                s.setCell("t", "r", "c", 1)
                assertEquals(Cell.Number(1.0), s.getCell("t", "r", "c"))
            }
            assertEquals("clock broke", reported.firstOrNull()?.message)
        } finally {
            setCallbackExceptionHandler(previous)
        }
    }

    @Test
    fun closingReleasesEverything() {
        val handles = debugLiveHandles()
        val callbacks = debugLiveCallbacks()
        val a = MergeableStore("a") { 1.7e12 }
        val b = a.clone()
        a.setCell("t", "r", "c", "x")
        a.transaction { b.getCell("t", "r", "c") }
        a.close()
        assertEquals(Cell.Text("x"), b.getCell("t", "r", "c"))
        b.close()
        Store().use { it.clone().close() }
        assertEquals(handles, debugLiveHandles())
        assertEquals(callbacks, debugLiveCallbacks())
    }
}
