package org.tinybase

import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.map
import kotlinx.coroutines.flow.onEach
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.Test
import kotlin.test.assertEquals

/** Listeners as Flows: added on collection, removed on cancellation, nothing dropped, completion on close. */
class FlowTest : LeakCheckedTest() {
    @Test
    fun cellFlowIsAddedOnCollectionAndRemovedWhenDone() = runBlocking {
        Store().use { store ->
            assertEquals(0, store.getListenerCount()) // cold: nothing added before collection
            val flow = store.cellFlow("t", null, "c")
            val got = async(Dispatchers.Default) { flow.take(3).toList() }
            store.awaitListeners(1)
            assertEquals(startCallbacks + 1, debugLiveCallbacks())
            store.setCellJson("t", "a", "c", "1").setCellJson("u", "a", "c", "9").setCellJson("t", "b", "c", "\"x\"")
            store.delCell("t", "a", "c")
            val events = withTimeout(5_000) { got.await() }
            assertEquals(
                listOf(
                    listOf("t", "a", "c", Cell.Number(1.0), null),
                    listOf("t", "b", "c", Cell.Text("x"), null),
                    listOf("t", "a", "c", null, Cell.Number(1.0)),
                ),
                events.map { listOf(it.tableId, it.rowId, it.cellId, it.newCell, it.oldCell) },
            )
            assertEquals(0, store.getListenerCount())
            assertEquals(startCallbacks, debugLiveCallbacks())
        }
    }

    @Test
    fun cancellingTheCollectorRemovesTheListener() = runBlocking {
        Store().use { store ->
            val seen = mutableListOf<Boolean>()
            val job = launch(Dispatchers.Default) { store.hasValueFlow("v").collect { seen += it.has } }
            store.awaitListeners(1)
            store.setValueJson("v", "1")
            store.delValue("v")
            withTimeout(5_000) { while (seen.size < 2) delay(1) }
            job.cancel()
            job.join()
            assertEquals(listOf(true, false), seen)
            assertEquals(0, store.getListenerCount())
            assertEquals(startCallbacks, debugLiveCallbacks())
            store.setValueJson("v", "2")
            assertEquals(2, seen.size)
        }
    }

    @Test
    fun everyTypedFlowHasItsKindAndIds() = runBlocking {
        Store().use { store ->
            val flows = listOf(
                store.hasTablesFlow(), store.tablesFlow(), store.tableIdsFlow(), store.hasTableFlow("t"), store.tableFlow("t"),
                store.tableCellIdsFlow("t"), store.hasTableCellFlow("t", "c"), store.rowCountFlow("t"), store.rowIdsFlow("t"),
                store.hasRowFlow("t", "r"), store.rowFlow("t", "r"), store.cellIdsFlow("t", "r"), store.hasCellFlow("t", "r", "c"),
                store.cellFlow("t", "r", "c"), store.hasValuesFlow(), store.valuesFlow(), store.valueIdsFlow(),
                store.hasValueFlow("v"), store.valueFlow("v"), store.startTransactionFlow(), store.willFinishTransactionFlow(),
                store.didFinishTransactionFlow(),
            )
            val firsts = flows.map { f -> async(Dispatchers.Default, CoroutineStart.DEFAULT) { f.take(1).toList().single() } }
            store.awaitListeners(22)
            store.transaction {
                store.setCellJson("t", "r", "c", "1")
                store.setValueJson("v", "2")
            }
            val events = withTimeout(5_000) { firsts.map { it.await() } }
            assertEquals(ListenerKind.entries.toList(), events.map { it.kind })
            val cell = events[ListenerKind.CELL.code]
            assertEquals(listOf("t", "r", "c", Cell.Number(1.0)), listOf(cell.tableId, cell.rowId, cell.cellId, cell.newCell))
            assertEquals(1, events[ListenerKind.ROW_COUNT.code].rowCount)
            assertEquals("v", events[ListenerKind.VALUE.code].valueId)
            assertEquals(Cell.Number(2.0), events[ListenerKind.VALUE.code].newCell)
            assertEquals(listOf("t", "c", true), events[ListenerKind.HAS_TABLE_CELL.code].let { listOf(it.tableId, it.cellId, it.has) })
            assertEquals(0, store.getListenerCount())
        }
    }

    @Test
    fun aSlowCollectorLosesNothing() = runBlocking {
        Store().use { store ->
            val n = 5_000
            val got = async(Dispatchers.Default) {
                store.valueFlow("v").map { (it.newCell as Cell.Number).value.toInt() }.onEach { if (it == 1) delay(300) }.take(n).toList()
            }
            store.awaitListeners(1)
            for (i in 1..n) store.setValueJson("v", "$i") // far more than a default buffer of 64
            assertEquals((1..n).toList(), withTimeout(10_000) { got.await() })
        }
    }

    @Test
    fun aFlowCompletesWhenItsStoreIsClosed() = runBlocking {
        val store = MergeableStore()
        val got = async(Dispatchers.Default) { store.tablesFlow().toList() }
        store.awaitListeners(1)
        store.setCellJson("t", "r", "c", "1")
        store.close()
        assertEquals(1, withTimeout(5_000) { got.await() }.size)
        assertEquals(startCallbacks, debugLiveCallbacks())
    }
}
