package org.tinybase

import org.junit.jupiter.params.ParameterizedTest
import org.junit.jupiter.params.provider.ValueSource
import org.junit.jupiter.api.Test
import java.util.Collections
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotSame
import kotlin.test.assertSame
import kotlin.test.assertTrue

/** Listeners: every kind with its arguments (as the Python binding's test_listeners.py), wildcards, removal, re-entrance, errors, lifetimes. */
class ListenerTest : LeakCheckedTest() {
    private fun newStore(kind: String): Store = if (kind == "plain") Store() else MergeableStore("l")

    @ParameterizedTest
    @ValueSource(strings = ["plain", "mergeable"])
    fun everyKindFiresWithItsArguments(kind: String) {
        newStore(kind).use { store ->
            val rec = linkedMapOf<String, MutableList<List<Any?>>>()
            fun calls(name: String) = Collections.synchronizedList(mutableListOf<List<Any?>>()).also { rec[name] = it }
            fun record(name: String): (List<Any?>) -> Unit = calls(name).let { c -> { args -> c += args } }

            val stores = Collections.synchronizedSet(HashSet<Any>())
            record("has_tables").let { f -> store.addHasTablesListener { s, has -> stores += s; f(listOf(has)) } }
            record("tables").let { f -> store.addTablesListener { s -> stores += s; f(emptyList<Any?>()) } }
            record("table_ids").let { f -> store.addTableIdsListener { _ -> f(emptyList<Any?>()) } }
            record("has_table").let { f -> store.addHasTableListener("t") { _, t, has -> f(listOf(t, has)) } }
            record("table").let { f -> store.addTableListener("t") { _, t -> f(listOf(t)) } }
            record("table_cell_ids").let { f -> store.addTableCellIdsListener("t") { _, t -> f(listOf(t)) } }
            record("has_table_cell").let { f -> store.addHasTableCellListener("t", "c") { _, t, c, has -> f(listOf(t, c, has)) } }
            record("row_count").let { f -> store.addRowCountListener("t") { _, t, n -> f(listOf(t, n)) } }
            record("row_ids").let { f -> store.addRowIdsListener("t") { _, t -> f(listOf(t)) } }
            record("has_row").let { f -> store.addHasRowListener("t", "r") { _, t, r, has -> f(listOf(t, r, has)) } }
            record("row").let { f -> store.addRowListener("t", "r") { _, t, r -> f(listOf(t, r)) } }
            record("cell_ids").let { f -> store.addCellIdsListener("t", "r") { _, t, r -> f(listOf(t, r)) } }
            record("has_cell").let { f -> store.addHasCellListener("t", "r", "c") { _, t, r, c, has -> f(listOf(t, r, c, has)) } }
            record("cell").let { f -> store.addCellListener("t", "r", "c") { _, t, r, c, n, o -> f(listOf(t, r, c, n, o)) } }
            record("has_values").let { f -> store.addHasValuesListener { _, has -> f(listOf(has)) } }
            record("values").let { f -> store.addValuesListener { _ -> f(emptyList<Any?>()) } }
            record("value_ids").let { f -> store.addValueIdsListener { _ -> f(emptyList<Any?>()) } }
            record("has_value").let { f -> store.addHasValueListener("v") { _, v, has -> f(listOf(v, has)) } }
            record("value").let { f -> store.addValueListener("v") { _, v, n, o -> f(listOf(v, n, o)) } }
            record("start").let { f -> store.addStartTransactionListener { s -> stores += s; f(emptyList<Any?>()) } }
            record("will").let { f -> store.addWillFinishTransactionListener { _ -> f(emptyList<Any?>()) } }
            record("did").let { f -> store.addDidFinishTransactionListener { _ -> f(emptyList<Any?>()) } }
            assertEquals<Any?>(22, store.getListenerCount())
            assertEquals<Any?>(startCallbacks + 22, debugLiveCallbacks())

            store.setCellJson("t", "r", "c", "\"x\"")
            store.setValueJson("v", "[1]")
            val x = Cell.Text("x")
            val one = Cell.Json("[1]")
            assertEquals<Any?>(
                mapOf(
                    "has_tables" to listOf(listOf(true)),
                    "tables" to listOf(emptyList<Any?>()),
                    "table_ids" to listOf(emptyList<Any?>()),
                    "has_table" to listOf(listOf("t", true)),
                    "table" to listOf(listOf("t")),
                    "table_cell_ids" to listOf(listOf("t")),
                    "has_table_cell" to listOf(listOf("t", "c", true)),
                    "row_count" to listOf(listOf("t", 1)),
                    "row_ids" to listOf(listOf("t")),
                    "has_row" to listOf(listOf("t", "r", true)),
                    "row" to listOf(listOf("t", "r")),
                    "cell_ids" to listOf(listOf("t", "r")),
                    "has_cell" to listOf(listOf("t", "r", "c", true)),
                    "cell" to listOf(listOf("t", "r", "c", x, null)),
                    "has_values" to listOf(listOf(true)),
                    "values" to listOf(emptyList<Any?>()),
                    "value_ids" to listOf(emptyList<Any?>()),
                    "has_value" to listOf(listOf("v", true)),
                    "value" to listOf(listOf("v", one, null)),
                    "start" to listOf(emptyList<Any?>(), emptyList<Any?>()),
                    "will" to listOf(emptyList<Any?>(), emptyList<Any?>()),
                    "did" to listOf(emptyList<Any?>(), emptyList<Any?>()),
                ),
                rec,
            )
            // Callbacks get the very Store they were added on (a MergeableStore stays one).
            assertEquals<Any?>(setOf<Any>(store), stores)

            rec.values.forEach { it.clear() }
            store.setCellJson("t", "r", "c", "null")
            assertEquals<Any?>(listOf(listOf("t", "r", "c", Cell.Null, x)), rec["cell"])
            store.delCell("t", "r", "c")
            assertEquals<Any?>(listOf("t", "r", "c", null, Cell.Null), rec["cell"]!!.last())
            assertEquals<Any?>(listOf("t", "r", "c", false), rec["has_cell"]!!.last())
            assertEquals<Any?>(listOf("t", 0), rec["row_count"]!!.last())
            assertEquals<Any?>(listOf(false), rec["has_tables"]!!.last())
            store.delValue("v")
            assertEquals<Any?>(listOf("v", null, one), rec["value"]!!.last())
            assertEquals<Any?>(listOf(false), rec["has_values"]!!.last())
            assertEquals<Any?>(listOf("v", false), rec["has_value"]!!.last())
        }
    }

    @Test
    fun wildcards() {
        Store().use { store ->
            val cells = mutableListOf<List<Any?>>()
            val rows = mutableListOf<List<Any?>>()
            val values = mutableListOf<List<Any?>>()
            val hasTableCells = mutableListOf<List<Any?>>()
            store.addCellListener(null, null, "c") { _, t, r, c, n, o -> cells += listOf(t, r, c, n, o) }
            store.addRowListener("t", null) { _, t, r -> rows += listOf(t, r) }
            store.addValueListener(null) { _, v, n, o -> values += listOf(v, n, o) }
            store.addHasTableCellListener(null, "d") { _, t, c, has -> hasTableCells += listOf(t, c, has) }
            store.setCellJson("t", "r1", "c", "1").setCellJson("u", "r2", "c", "2").setCellJson("t", "r1", "d", "3")
            store.setValueJson("a", "1").setValueJson("b", "true")
            assertEquals<Any?>(listOf(listOf("t", "r1", "c", Cell.Number(1.0), null), listOf("u", "r2", "c", Cell.Number(2.0), null)), cells)
            assertEquals<Any?>(listOf(listOf("t", "r1"), listOf("t", "r1")), rows)
            assertEquals<Any?>(listOf(listOf("a", Cell.Number(1.0), null), listOf("b", Cell.Bool(true), null)), values)
            assertEquals<Any?>(listOf(listOf<Any?>("t", "d", true)), hasTableCells)
        }
    }

    @Test
    fun genericListenerGetsACopyOfTheEvent() {
        Store().use { store ->
            val events = mutableListOf<ListenerEvent>()
            val listener = store.addListener(ListenerKind.CELL, "t", null, null) { events += it }
            val hasRow = mutableListOf<ListenerEvent>()
            val hasRowListener = store.addListener(ListenerKind.HAS_ROW, "t", null, "ignored") { hasRow += it }
            val tables = mutableListOf<ListenerKind>()
            store.addListener(ListenerKind.TABLES) { tables += it.kind }.use {
                store.setCellJson("x", "r", "c", "0")
                assertEquals<Any?>(listOf(ListenerKind.TABLES), tables)
            }
            assertEquals<Any?>(ListenerKind.CELL, listener.kind)
            assertEquals<Any?>(2, store.getListenerCount())
            store.setCellJson("t", "r", "c", "\"x\"")
            store.setCellJson("u", "r", "c", "1")
            assertEquals<Any?>(listOf(ListenerEvent(ListenerKind.CELL, listener.id, "t", "r", "c", null, Cell.Text("x"), null, false, 0)), events)
            assertEquals<Any?>(listOf(ListenerEvent(ListenerKind.HAS_ROW, hasRowListener.id, "t", "r", null, null, null, null, true, 0)), hasRow)
            listener.close()
            listener.close() // idempotent
            assertTrue(listener.isClosed)
            store.setCellJson("t", "r", "c", "2")
            assertEquals<Any?>(1, events.size)
            assertEquals<Any?>(1, store.getListenerCount())
            store.delListener(hasRowListener.id)
            store.delListener(hasRowListener.id) // unknown ids are ignored
            assertEquals<Any?>(0, store.getListenerCount())
        }
    }

    @Test
    fun callListenerCallsNowForEverythingItsIdsMatch() {
        Store().use { store ->
            store.setCellJson("t", "a", "c", "1").setCellJson("t", "b", "c", "2")
            val rows = mutableListOf<String>()
            val listener = store.addRowListener("t", null) { _, _, r -> rows += r }
            listener.call()
            assertEquals<Any?>(listOf("a", "b"), rows.sorted())
            store.callListener(listener.id)
            assertEquals<Any?>(4, rows.size)
        }
    }

    @Test
    fun removalStopsCallsAndReleasesTheCallback() {
        Store().use { store ->
            var calls = 0
            val listener = store.addTablesListener { calls++ }
            assertEquals<Any?>(startCallbacks + 1, debugLiveCallbacks())
            store.setCellJson("t", "r", "c", "1")
            listener.close()
            store.setCellJson("t", "r", "c", "2")
            assertEquals<Any?>(1, calls)
            assertEquals<Any?>(startCallbacks, debugLiveCallbacks()) // released by the library, synchronously
            store.addValueListener("v") { _, _, _, _ -> }.use { assertEquals<Any?>(1, store.getListenerCount()) }
            assertEquals<Any?>(0, store.getListenerCount())
        }
    }

    @Test
    fun closingTheStoreRemovesItsListenersAndReleasesThem() {
        val store = Store()
        val mergeable = MergeableStore()
        val listeners = (1..5).map { store.addTablesListener { } } + mergeable.addCellListener(null, null, null) { _, _, _, _, _, _ -> }
        assertEquals<Any?>(startCallbacks + 6, debugLiveCallbacks())
        store.close()
        mergeable.close()
        assertEquals<Any?>(startCallbacks, debugLiveCallbacks())
        assertTrue(listeners.all { it.isClosed })
        listeners.forEach { it.close() } // stale after the store closed: a no-op
        val e = assertFailsWith<TinyBaseException> { listeners[0].call() }
        assertEquals<Any?>(Status.NULL_PARAMETER, e.status)
    }

    @Test
    fun aListenerRemovesItself() {
        Store().use { store ->
            val calls = mutableListOf<String>()
            lateinit var listener: Listener
            listener = store.addCellListener(null, null, null) { _, _, _, c, _, _ ->
                calls += c
                listener.close()
            }
            store.setCellJson("t", "r", "a", "1")
            store.setCellJson("t", "r", "b", "2")
            assertEquals<Any?>(listOf("a"), calls)
            assertEquals<Any?>(0, store.getListenerCount())
        }
    }

    @Test
    fun listenersWriteTheStore() {
        Store().use { store ->
            val mirrored = mutableListOf<List<Any?>>()
            store.addCellListener("src", null, null) { s, _, r, c, new, _ ->
                // The store argument is usable inside the callback: read it, then write it.
                if (new != null && s.getCell("src", r, c) == new) s.setCell("dst", r, c, new)
            }
            store.addCellListener("dst", null, null) { _, t, r, c, new, _ -> mirrored += listOf(t, r, c, new) }
            store.setCellJson("src", "r", "c", "5")
            assertEquals<Any?>(listOf(listOf<Any?>("dst", "r", "c", Cell.Number(5.0))), mirrored)
            assertEquals<Any?>(Cell.Number(5.0), store.getCell("dst", "r", "c"))
        }
    }

    @Test
    fun transactionListenersSeeOneTransaction() {
        Store().use { store ->
            val seen = mutableListOf<String>()
            store.addStartTransactionListener { seen += "start" }
            store.addWillFinishTransactionListener { s -> seen += "will"; s.setValueJson("joined", "1") }
            store.addDidFinishTransactionListener { seen += "did" }
            store.addValueListener(null) { _, v, _, _ -> seen += v }
            store.transaction {
                store.setValueJson("a", "1")
                store.setValueJson("b", "2")
            }
            // The will-finish listener's write joined the transaction: one start, one will, one did.
            assertEquals<Any?>(listOf("start", "will", "a", "b", "joined", "did"), seen)
        }
    }

    @Test
    fun anExceptionInAListenerGoesToTheHandlerAndTheWriteCommits() {
        withCallbackErrors { errors ->
            Store().use { store ->
                var ok = 0
                store.addTablesListener { throw IllegalStateException("listener failed") }
                store.addTablesListener { ok++ }
                var cells = 0
                store.addCellListener(null, null, null) { _, _, _, _, _, _ -> cells++ }
                store.setCellJson("t", "r", "c", "1")
                assertEquals<Any?>(1, ok)
                assertEquals<Any?>(1, cells)
                assertEquals<Any?>(listOf("listener failed"), errors.map { it.message })
                // The write committed: a second write of the same value changes nothing.
                store.setCellJson("t", "r", "c", "1")
                assertEquals<Any?>(1, cells)
            }
        }
    }

    @Test
    fun badIdsAndClosedStoresAreRefusedWithoutLeaking() {
        Store().use { store ->
            val e = assertFailsWith<TinyBaseException> { store.addCellListener("t\uD800", null, null) { _, _, _, _, _, _ -> } }
            assertEquals<Any?>(Status.INVALID_UTF8, e.status)
            assertEquals<Any?>(startCallbacks, debugLiveCallbacks())
        }
        val closed = Store().also { it.close() }
        val e = assertFailsWith<TinyBaseException> { closed.addTablesListener { } }
        assertEquals<Any?>(Status.NULL_PARAMETER, e.status)
        assertFailsWith<TinyBaseException> { closed.getListenerCount() }
        assertEquals<Any?>(startCallbacks, debugLiveCallbacks())
        assertFailsWith<TinyBaseException> { ListenerKind.of(22) }
        assertEquals<Any?>(ListenerKind.DID_FINISH_TRANSACTION, ListenerKind.of(21))
    }

    @Test
    fun aListenerOutlivingItsStoreObjectGetsAViewValidDuringTheCall() {
        // Two references to one native store: the listener is added through [a], which is then
        // closed; writes through [b] still call it, with a view that works during the call only.
        val a = Store()
        val b = a.clone()
        var kept: Store? = null
        val counts = mutableListOf<Int>()
        a.addTablesListener { s ->
            assertNotSame(a, s)
            counts += s.getListenerCount()
            kept = s
        }
        a.close()
        b.setCellJson("t", "r", "c", "1")
        assertEquals<Any?>(listOf(1), counts)
        val e = assertFailsWith<TinyBaseException> { kept!!.getListenerCount() }
        assertEquals<Any?>(Status.NULL_PARAMETER, e.status)
        b.close()
    }

    @Test
    fun theStoreArgumentIsTheStoreTheListenerWasAddedOn() {
        MergeableStore("m").use { store ->
            var got: Store? = null
            store.addTablesListener { got = it }
            store.setCellJson("t", "r", "c", "1")
            assertSame(store, got)
        }
    }

    @Test
    fun anUnclosedStoreWithListenersIsStillCollectedByTheBackstop() {
        // The registry holds the store weakly: a forgotten store (whose listeners do not capture
        // it) is collected, its native reference freed, its listeners removed and released.
        repeat(20) { Store().addTablesListener { }.also { l -> assertEquals(ListenerKind.TABLES, l.kind) } }
        assertEquals(startCallbacks + 20, debugLiveCallbacks())
        val deadline = System.nanoTime() + 10_000_000_000L
        while ((debugLiveCallbacks() > startCallbacks || debugLiveHandles() > startHandles) && System.nanoTime() < deadline) {
            System.gc()
            Thread.sleep(20)
        }
    }
}
