package org.tinybase

import com.sun.jna.Pointer

/**
 * Changes as TinyBase's getTransactionChanges and applyChanges carry them: `[tables, values, 1]`.
 * A null table, row, cell or value means deleted (TinyBase's `undefined`); [Cell.Null] is a
 * JSON null that is set.
 */
public data class Changes(
    /** `{tableId: {rowId: {cellId: cell}}}`, null entries deleting. */
    val tables: Map<String, Map<String, Map<String, Cell?>?>?> = emptyMap(),
    /** `{valueId: value}`, null entries deleting. */
    val values: Map<String, Cell?> = emptyMap(),
)

/** JSON text to and from the typed shapes of the Store API (tables, rows, ids, changes). */
internal object StoreJson {
    /** TinyBase's undefined inside changes JSON. */
    private const val UNDEFINED = "\uFFFC"

    /** `[tables, values]` (decoded form) as typed maps. */
    fun content(json: String): Pair<Map<String, Map<String, Map<String, Cell>>>, Map<String, Cell>> {
        val r = JsonReader(json)
        var tables: Map<String, Map<String, Map<String, Cell>>> = emptyMap()
        var values: Map<String, Cell> = emptyMap()
        var n = 0
        r.arr {
            when (n++) {
                0 -> tables = readTables(r)
                1 -> values = readRow(r)
                else -> r.value()
            }
        }
        r.end()
        return tables to values
    }

    /** `{rowId: {cellId: cell}}`. */
    fun table(json: String): Map<String, Map<String, Cell>> = JsonReader(json).let { r -> readTable(r).also { r.end() } }

    /** `{cellId: cell}` (or `{valueId: value}`). */
    fun row(json: String): Map<String, Cell> = JsonReader(json).let { r -> readRow(r).also { r.end() } }

    /** A JSON array of strings. */
    fun ids(json: String): List<String> {
        val r = JsonReader(json)
        val out = ArrayList<String>()
        r.arr { out.add(r.string()) }
        r.end()
        return out
    }

    private fun readTables(r: JsonReader): Map<String, Map<String, Map<String, Cell>>> =
        LinkedHashMap<String, Map<String, Map<String, Cell>>>().also { m -> r.obj { k -> m[k] = readTable(r) } }

    private fun readTable(r: JsonReader): Map<String, Map<String, Cell>> =
        LinkedHashMap<String, Map<String, Cell>>().also { m -> r.obj { k -> m[k] = readRow(r) } }

    private fun readRow(r: JsonReader): Map<String, Cell> =
        LinkedHashMap<String, Cell>().also { m -> r.obj { k -> m[k] = r.cell() } }

    /** Tables as JSON text, every cell through [cellOf]. */
    fun tables(tables: Map<String, Map<String, Map<String, Any?>>>): String {
        val sb = StringBuilder()
        obj(sb, tables) { table -> appendTable(sb, table) }
        return sb.toString()
    }

    /** A table as JSON text. */
    fun table(table: Map<String, Map<String, Any?>>): String = StringBuilder().also { appendTable(it, table) }.toString()

    /** A row (or values) as JSON text. */
    fun row(row: Map<String, Any?>): String = StringBuilder().also { appendRow(it, row) }.toString()

    private fun appendTable(sb: StringBuilder, table: Map<String, Map<String, Any?>>) {
        obj(sb, table) { row -> appendRow(sb, row) }
    }

    private fun appendRow(sb: StringBuilder, row: Map<String, Any?>) {
        obj(sb, row) { cell -> JsonWriter.append(sb, storable(cellOf(cell))) }
    }

    /**
     * [c], unless it is a reserved string: the JSON setters also take the wire form, where such
     * a string would mean an object or a deletion; refused, as setCell refuses it.
     */
    private fun storable(c: Cell): Cell {
        if (c is Cell.Text && (c.value == UNDEFINED || c.value.startsWith('\uFFFD'))) {
            throw TinyBaseException(Status.INVALID_VALUE, "strings equal to U+FFFC or starting with U+FFFD are reserved")
        }
        return c
    }

    private inline fun <V> obj(sb: StringBuilder, map: Map<String, V>, value: (V) -> Unit) {
        sb.append('{')
        var first = true
        for ((k, v) in map) {
            if (!first) sb.append(',')
            first = false
            JsonWriter.quote(sb, k)
            sb.append(':')
            value(v)
        }
        sb.append('}')
    }

    /** `{id: hash}` (hashes are unsigned 32-bit). */
    fun hashes(json: String): Map<String, Long> = JsonReader(json).let { r -> readHashes(r).also { r.end() } }

    /** `{id: {id: hash}}`. */
    fun hashes2(json: String): Map<String, Map<String, Long>> = JsonReader(json).let { r ->
        LinkedHashMap<String, Map<String, Long>>().also { m -> r.obj { k -> m[k] = readHashes(r) } }.also { r.end() }
    }

    /** `{id: {id: {id: hash}}}`. */
    fun hashes3(json: String): Map<String, Map<String, Map<String, Long>>> = JsonReader(json).let { r ->
        LinkedHashMap<String, Map<String, Map<String, Long>>>().also { m ->
            r.obj { k -> m[k] = LinkedHashMap<String, Map<String, Long>>().also { m2 -> r.obj { k2 -> m2[k2] = readHashes(r) } } }
        }.also { r.end() }
    }

    private fun readHashes(r: JsonReader): Map<String, Long> = LinkedHashMap<String, Long>().also { m ->
        r.obj { k ->
            val v = r.value() as? Double ?: r.fail("a hash must be a number")
            m[k] = v.toLong()
        }
    }

    /** [changes] as `[tables, values, 1]` JSON text, nulls as "\uFFFC". */
    fun changes(changes: Changes): String {
        val sb = StringBuilder("[")
        obj(sb, changes.tables) { table ->
            if (table == null) {
                JsonWriter.quote(sb, UNDEFINED)
            } else {
                obj(sb, table) { row ->
                    if (row == null) JsonWriter.quote(sb, UNDEFINED) else obj(sb, row) { cell -> changeCell(sb, cell) }
                }
            }
        }
        sb.append(',')
        obj(sb, changes.values) { value -> changeCell(sb, value) }
        sb.append(",1]")
        return sb.toString()
    }

    private fun changeCell(sb: StringBuilder, cell: Cell?) {
        if (cell == null) JsonWriter.quote(sb, UNDEFINED) else JsonWriter.append(sb, storable(cell))
    }

    /** `[tables, values, 1]` JSON text as [Changes] ("\uFFFC" as null). */
    fun parseChanges(json: String): Changes {
        val r = JsonReader(json)
        var tables: Map<String, Map<String, Map<String, Cell?>?>?> = emptyMap()
        var values: Map<String, Cell?> = emptyMap()
        var n = 0
        r.arr {
            when (n++) {
                0 -> tables = LinkedHashMap<String, Map<String, Map<String, Cell?>?>?>().also { t ->
                    r.obj { tableId ->
                        t[tableId] = changeMap(r) {
                            changeMap(r) { changeCell(r) }
                        }
                    }
                }
                1 -> values = LinkedHashMap<String, Cell?>().also { v -> r.obj { id -> v[id] = changeCell(r) } }
                else -> r.value()
            }
        }
        r.end()
        return Changes(tables, values)
    }

    /** A map of changes, or null where the text holds "\uFFFC" instead. */
    private inline fun <V> changeMap(r: JsonReader, value: () -> V): Map<String, V>? {
        r.ws()
        if (r.peek() == '"') {
            if (r.string() != UNDEFINED) r.fail("expected an object or \"\\uFFFC\"")
            return null
        }
        return LinkedHashMap<String, V>().also { m -> r.obj { k -> m[k] = value() } }
    }

    private fun changeCell(r: JsonReader): Cell? {
        val c = r.cell()
        return if (c is Cell.Text && c.value == UNDEFINED) null else c
    }
}

/** A running [Store.transaction]: its body, result and exception, reached by the C callback. */
internal class TransactionBody(
    private val store: Store,
    private val actions: (Store) -> Any?,
    private val doRollback: ((Store) -> Boolean)?,
) {
    /** What the body returned. */
    var result: Any? = null

    /** What the body threw (the transaction was rolled back). */
    var error: Throwable? = null

    /** Runs the body; true asks the library to roll back. */
    fun run(): Boolean = try {
        result = actions(store)
        doRollback?.invoke(store) ?: false
    } catch (t: Throwable) {
        error = t
        true
    }

    companion object {
        /** The one tb_transaction_fn: runs the body registered as user_data. */
        val FN: LibStore.TransactionFn = LibStore.TransactionFn { userData: Pointer?, _: Pointer? ->
            (Callbacks.get(userData) as? TransactionBody)?.run() ?: true
        }
    }
}
