package org.tinybase

import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow

// Listeners as Flows. Each flow is cold: collecting it adds a native listener, cancelling the
// collection (or the collector finishing) removes it. Buffer policy: UNLIMITED. A listener
// runs on the writing thread and must never block it (start- and will-finish-transaction
// listeners even run with the store locked), so events are queued without bound and none is
// lost or merged; a slow collector costs memory, not correctness. Apply `.conflate()` or
// `.buffer(n, BufferOverflow.DROP_OLDEST)` downstream where only the latest state matters
// (has- and ids-kinds, say). Every flow completes normally when its store is closed.

/**
 * Events of a listener of [kind] as a Flow (ids as in [Store.addListener]; null: any). The
 * native listener is added when collection starts and removed when it is cancelled. Events
 * are buffered without bound (never dropped) and reach the collector in the order the
 * writing threads delivered them; the flow completes when the store is closed.
 */
public fun Store.changes(kind: ListenerKind, id1: String? = null, id2: String? = null, id3: String? = null): Flow<ListenerEvent> =
    callbackFlow {
        val record = ListenerRecord(null, { channel.close() }) { _, event -> trySend(event) }
        val listener = addRecord(kind, id1, id2, id3, record)
        awaitClose { listener.close() }
    }.buffer(Channel.UNLIMITED)

/** [Store.addHasTablesListener] as a Flow (see [changes]): [ListenerEvent.has] says whether there are tables. */
public fun Store.hasTablesFlow(): Flow<ListenerEvent> = changes(ListenerKind.HAS_TABLES)

/** [Store.addTablesListener] as a Flow (see [changes]). */
public fun Store.tablesFlow(): Flow<ListenerEvent> = changes(ListenerKind.TABLES)

/** [Store.addTableIdsListener] as a Flow (see [changes]). */
public fun Store.tableIdsFlow(): Flow<ListenerEvent> = changes(ListenerKind.TABLE_IDS)

/** [Store.addHasTableListener] as a Flow (see [changes]); null [tableId]: any. */
public fun Store.hasTableFlow(tableId: String?): Flow<ListenerEvent> = changes(ListenerKind.HAS_TABLE, tableId)

/** [Store.addTableListener] as a Flow (see [changes]); null [tableId]: any. */
public fun Store.tableFlow(tableId: String?): Flow<ListenerEvent> = changes(ListenerKind.TABLE, tableId)

/** [Store.addTableCellIdsListener] as a Flow (see [changes]); null [tableId]: any. */
public fun Store.tableCellIdsFlow(tableId: String?): Flow<ListenerEvent> = changes(ListenerKind.TABLE_CELL_IDS, tableId)

/** [Store.addHasTableCellListener] as a Flow (see [changes]); null ids: any. */
public fun Store.hasTableCellFlow(tableId: String?, cellId: String?): Flow<ListenerEvent> =
    changes(ListenerKind.HAS_TABLE_CELL, tableId, cellId)

/** [Store.addRowCountListener] as a Flow (see [changes]): [ListenerEvent.rowCount] is the new count. */
public fun Store.rowCountFlow(tableId: String?): Flow<ListenerEvent> = changes(ListenerKind.ROW_COUNT, tableId)

/** [Store.addRowIdsListener] as a Flow (see [changes]); null [tableId]: any. */
public fun Store.rowIdsFlow(tableId: String?): Flow<ListenerEvent> = changes(ListenerKind.ROW_IDS, tableId)

/** [Store.addHasRowListener] as a Flow (see [changes]); null ids: any. */
public fun Store.hasRowFlow(tableId: String?, rowId: String?): Flow<ListenerEvent> = changes(ListenerKind.HAS_ROW, tableId, rowId)

/** [Store.addRowListener] as a Flow (see [changes]); null ids: any. */
public fun Store.rowFlow(tableId: String?, rowId: String?): Flow<ListenerEvent> = changes(ListenerKind.ROW, tableId, rowId)

/** [Store.addCellIdsListener] as a Flow (see [changes]); null ids: any. */
public fun Store.cellIdsFlow(tableId: String?, rowId: String?): Flow<ListenerEvent> = changes(ListenerKind.CELL_IDS, tableId, rowId)

/** [Store.addHasCellListener] as a Flow (see [changes]); null ids: any. */
public fun Store.hasCellFlow(tableId: String?, rowId: String?, cellId: String?): Flow<ListenerEvent> =
    changes(ListenerKind.HAS_CELL, tableId, rowId, cellId)

/** [Store.addCellListener] as a Flow (see [changes]): each event has the ids, [ListenerEvent.newCell] and [ListenerEvent.oldCell]. */
public fun Store.cellFlow(tableId: String?, rowId: String?, cellId: String?): Flow<ListenerEvent> =
    changes(ListenerKind.CELL, tableId, rowId, cellId)

/** [Store.addHasValuesListener] as a Flow (see [changes]). */
public fun Store.hasValuesFlow(): Flow<ListenerEvent> = changes(ListenerKind.HAS_VALUES)

/** [Store.addValuesListener] as a Flow (see [changes]). */
public fun Store.valuesFlow(): Flow<ListenerEvent> = changes(ListenerKind.VALUES)

/** [Store.addValueIdsListener] as a Flow (see [changes]). */
public fun Store.valueIdsFlow(): Flow<ListenerEvent> = changes(ListenerKind.VALUE_IDS)

/** [Store.addHasValueListener] as a Flow (see [changes]); null [valueId]: any. */
public fun Store.hasValueFlow(valueId: String?): Flow<ListenerEvent> = changes(ListenerKind.HAS_VALUE, valueId)

/** [Store.addValueListener] as a Flow (see [changes]): [ListenerEvent.newCell] / [ListenerEvent.oldCell] hold the new and old value. */
public fun Store.valueFlow(valueId: String?): Flow<ListenerEvent> = changes(ListenerKind.VALUE, valueId)

/**
 * [Store.addStartTransactionListener] as a Flow (see [changes]). The collector sees the event
 * later, outside the transaction: to act inside it, use the listener.
 */
public fun Store.startTransactionFlow(): Flow<ListenerEvent> = changes(ListenerKind.START_TRANSACTION)

/** [Store.addWillFinishTransactionListener] as a Flow (see [startTransactionFlow] for when the collector runs). */
public fun Store.willFinishTransactionFlow(): Flow<ListenerEvent> = changes(ListenerKind.WILL_FINISH_TRANSACTION)

/** [Store.addDidFinishTransactionListener] as a Flow (see [changes]). */
public fun Store.didFinishTransactionFlow(): Flow<ListenerEvent> = changes(ListenerKind.DID_FINISH_TRANSACTION)
