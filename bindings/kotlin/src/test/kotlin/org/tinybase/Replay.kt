package org.tinybase

import java.io.File
import kotlin.system.exitProcess

/**
 * Replays a conformance script (tests/conformance/README) through the Kotlin binding and
 * produces `{"results": [...], "final": {...}}` exactly as the Rust replay example does
 * (`cargo run --release --example replay -- SCRIPT.json`; logic ported from
 * tests/support/script.rs, like bindings/python/tests/replay.py).
 *
 * Command line (bindings/kotlin/replay.sh SCRIPT.json): prints that JSON on one line.
 */
object Replay {
    private const val UNDEFINED = "\uFFFC"

    /** An error in the script itself (the replay fails, as the Rust runner's Err). */
    class ScriptError(message: String) : Exception(message)

    /** The op name of every listener kind: addHasTableCellListener for HAS_TABLE_CELL... */
    private val listenerOps: Map<String, ListenerKind> = ListenerKind.entries.associateBy { kind ->
        "add" + kind.name.split('_').joinToString("") { w -> w.lowercase().replaceFirstChar { it.uppercase() } } + "Listener"
    }

    private val transactionKinds = setOf(
        ListenerKind.START_TRANSACTION,
        ListenerKind.WILL_FINISH_TRANSACTION,
        ListenerKind.DID_FINISH_TRANSACTION,
    )

    /** Parses JSON text as JSON.parse does (maps keep the first position of a key, its last value). */
    fun parse(text: String): Any? = JsonReader(text).document()

    /** JSON text as JSON.stringify writes it. */
    fun stringify(value: Any?): String = JsonWriter.write(value)

    /** A cell or value as JSON data; a missing one as TinyBase's undefined marker. */
    private fun opt(cell: Cell?): Any? = cell?.toAny() ?: if (cell == null) UNDEFINED else null

    private fun tablesData(tables: Map<String, Map<String, Map<String, Cell>>>): Map<String, Any?> =
        tables.mapValues { (_, table) -> table.mapValues { (_, row) -> rowData(row) } }

    private fun rowData(row: Map<String, Cell>): Map<String, Any?> = row.mapValues { (_, c) -> c.toAny() }

    /** An id argument: strings as they are, anything else as its JSON text, missing as "". */
    private fun s(args: List<Any?>, i: Int): String = when {
        i >= args.size -> ""
        else -> args[i] as? String ?: stringify(args[i])
    }

    private fun argJson(args: List<Any?>, i: Int): String = stringify(args.getOrNull(i))

    private fun keyOf(label: Any?): String = label as? String ?: stringify(label)

    /** The cells of a tables argument, or null when it does not have the shape of tables. */
    @Suppress("UNCHECKED_CAST")
    private fun asTables(v: Any?): Map<String, Map<String, Map<String, Any?>>>? {
        if (v !is Map<*, *>) return null
        for (table in v.values) {
            if (table !is Map<*, *>) return null
            for (row in table.values) if (row !is Map<*, *>) return null
        }
        return v as Map<String, Map<String, Map<String, Any?>>>
    }

    /** Marker: the op returned the store (nothing recorded). */
    private object Nothing

    class Runner(script: Map<String, Any?>) : AutoCloseable {
        private var now: Double = (script["now"] as? Double) ?: 1_700_000_000_000.0
        private val offsets = HashMap<String, Double>()
        private val stores = LinkedHashMap<String, MergeableStore>()
        private val listenerIds = HashMap<String, Pair<String, Long>>()

        // Listeners append from the thread that writes (this one): still, keep it safe.
        val results: MutableList<Any?> = java.util.Collections.synchronizedList(ArrayList())

        init {
            val declared = script["stores"] as? Map<*, *> ?: throw ScriptError("script without stores")
            for ((name, options) in declared) {
                name as String
                offsets[name] = 0.0
                val uid = (options as? Map<*, *>)?.get("uniqueId") as? String
                stores[name] = MergeableStore(uid) { now + offsets.getValue(name) }
            }
        }

        fun store(name: String): MergeableStore = stores[name] ?: throw ScriptError("unknown store $name")

        override fun close() {
            stores.values.forEach { it.close() }
        }

        private inline fun ignore(block: () -> Unit): Any {
            try {
                block()
            } catch (_: TinyBaseException) {
                // As TinyBase ignores an invalid write.
            }
            return Nothing
        }

        private fun diff(block: () -> String): Any? = try {
            parse(block())
        } catch (e: TinyBaseException) {
            throw ScriptError(e.message ?: e.status.name)
        }

        /** Calls TinyBase method [op]; [Nothing] when it returns the store. */
        @Suppress("CyclomaticComplexMethod")
        fun call(name: String, op: String, args: List<Any?>, wire: Boolean): Any? {
            val st = store(name)
            return when (op) {
                "getTables" -> tablesData(st.getTables())
                "getValues" -> rowData(st.getValues())
                "getContent" -> st.getContent().let { (t, v) -> listOf(tablesData(t), rowData(v)) }
                "getTableIds" -> st.getTableIds()
                "getTable" -> st.getTable(s(args, 0)).mapValues { (_, row) -> rowData(row) }
                "getTableCellIds" -> st.getTableCellIds(s(args, 0))
                "getRowCount" -> st.getRowCount(s(args, 0))
                "getRowIds" -> st.getRowIds(s(args, 0))
                "getRow" -> rowData(st.getRow(s(args, 0), s(args, 1)))
                "getCellIds" -> st.getCellIds(s(args, 0), s(args, 1))
                "getCell" -> opt(st.getCell(s(args, 0), s(args, 1), s(args, 2)))
                "getValueIds" -> st.getValueIds()
                "getValue" -> opt(st.getValue(s(args, 0)))
                "hasTables" -> st.hasTables()
                "hasTable" -> st.hasTable(s(args, 0))
                "hasTableCell" -> st.hasTableCell(s(args, 0), s(args, 1))
                "hasRow" -> st.hasRow(s(args, 0), s(args, 1))
                "hasCell" -> st.hasCell(s(args, 0), s(args, 1), s(args, 2))
                "hasValues" -> st.hasValues()
                "hasValue" -> st.hasValue(s(args, 0))
                "getJson" -> st.getJson()
                "getTablesJson" -> st.getTablesJson()
                "getValuesJson" -> st.getValuesJson()
                "getTransactionChanges" -> parse(st.getTransactionChangesJson())
                "getMergeableContent" ->
                    if (wire) parse(st.getEncodedMergeableContentJson()) else st.getMergeableContent()
                "getTransactionMergeableChanges" -> {
                    val withHashes = args.firstOrNull() as? Boolean ?: false
                    if (wire) {
                        parse(st.getEncodedTransactionMergeableChangesJson(withHashes))
                    } else {
                        st.getTransactionMergeableChanges(withHashes)
                    }
                }
                "getMergeableContentHashes" -> st.getMergeableContentHashes().toList()
                "getMergeableTableHashes" -> parse(st.getMergeableTableHashesJson())
                "getMergeableTableDiff" -> diff { st.getMergeableTableDiffJson(argJson(args, 0)) }
                "getMergeableRowHashes" -> diff { st.getMergeableRowHashesJson(argJson(args, 0)) }
                "getMergeableRowDiff" -> diff { st.getMergeableRowDiffJson(argJson(args, 0)) }
                "getMergeableCellHashes" -> diff { st.getMergeableCellHashesJson(argJson(args, 0)) }
                "getMergeableCellDiff" -> diff { st.getMergeableCellDiffJson(argJson(args, 0)) }
                "getMergeableValueHashes" -> parse(st.getMergeableValueHashesJson())
                "getMergeableValueDiff" -> diff { st.getMergeableValueDiffJson(argJson(args, 0)) }
                "setTables" -> ignore {
                    val tables = asTables(args.getOrNull(0)) ?: return@ignore
                    st.setTables(tables)
                }
                "setTable" -> ignore { st.setTableJson(s(args, 0), argJson(args, 1)) }
                "setRow" -> ignore { st.setRowJson(s(args, 0), s(args, 1), argJson(args, 2)) }
                "setPartialRow" -> ignore { st.setPartialRowJson(s(args, 0), s(args, 1), argJson(args, 2)) }
                "addRow" -> try {
                    st.addRowJson(s(args, 0), argJson(args, 1), args.getOrNull(2) != false)
                } catch (_: TinyBaseException) {
                    UNDEFINED
                }
                "setCell" -> ignore { st.setCellJson(s(args, 0), s(args, 1), s(args, 2), argJson(args, 3)) }
                "setValues" -> ignore {
                    @Suppress("UNCHECKED_CAST")
                    val values = (args.getOrNull(0) as? Map<String, Any?>)?.takeIf { it.isNotEmpty() } ?: return@ignore
                    st.setValues(values)
                }
                "setPartialValues" -> ignore { st.setPartialValuesJson(argJson(args, 0)) }
                "setValue" -> ignore { st.setValueJson(s(args, 0), argJson(args, 1)) }
                "setContent" -> ignore { st.setContentJson(argJson(args, 0)) }
                "applyChanges" -> ignore { st.applyChangesJson(argJson(args, 0)) }
                "delTables" -> ignore { st.delTables() }
                "delTable" -> ignore { st.delTable(s(args, 0)) }
                "delRow" -> ignore { st.delRow(s(args, 0), s(args, 1)) }
                "delCell" -> ignore { st.delCell(s(args, 0), s(args, 1), s(args, 2)) }
                "delValues" -> ignore { st.delValues() }
                "delValue" -> ignore { st.delValue(s(args, 0)) }
                "setMergeableContent" -> ignore { st.setMergeableContentJson(argJson(args, 0)) }
                "applyMergeableChanges" -> ignore { st.applyMergeableChangesJson(argJson(args, 0)) }
                "setDefaultContent" -> ignore { st.setDefaultContentJson(argJson(args, 0)) }
                else -> throw ScriptError("unknown op $op")
            }
        }

        private fun argsOf(step: Map<*, *>): List<Any?> {
            val sources = step["argsFrom"]
            if (sources is List<*>) {
                return sources.map { src ->
                    if (src !is Map<*, *>) throw ScriptError("bad argsFrom")
                    val op = src["op"]
                    if (op is String) {
                        val store = src["store"] as? String ?: throw ScriptError("argsFrom without store")
                        val v = call(store, op, src["args"] as? List<Any?> ?: emptyList(), true)
                        if (v === Nothing) null else v
                    } else if (src.containsKey("value")) {
                        src["value"]
                    } else {
                        UNDEFINED
                    }
                }
            }
            @Suppress("UNCHECKED_CAST")
            return step["args"] as? List<Any?> ?: emptyList()
        }

        private fun addListener(name: String, kind: ListenerKind, step: Map<*, *>) {
            val args = step["args"] as? List<*> ?: emptyList<Any?>()
            val ids = (0 until 3).map { i ->
                if (i >= kind.idCount) return@map null
                when (val a = args.getOrNull(i)) {
                    null -> null
                    is String -> a
                    else -> stringify(a)
                }
            }
            val label = step["id"]
            val listener = try {
                store(name).addListener(kind, ids[0], ids[1], ids[2]) { e ->
                    val call = ArrayList<Any?>()
                    if (kind !in transactionKinds) {
                        listOfNotNull(e.tableId, e.rowId, e.cellId, e.valueId).forEach { call.add(it) }
                        when {
                            kind == ListenerKind.CELL || kind == ListenerKind.VALUE -> {
                                call.add(opt(e.newCell))
                                call.add(opt(e.oldCell))
                            }
                            kind.isHas -> call.add(e.has)
                            kind == ListenerKind.ROW_COUNT -> call.add(e.rowCount)
                        }
                    }
                    results.add(linkedMapOf("listener" to label, "call" to call))
                }
            } catch (e: TinyBaseException) {
                throw ScriptError(e.message ?: e.status.name)
            }
            if (step.containsKey("id")) listenerIds[keyOf(label)] = name to listener.id
        }

        fun runSteps(steps: List<*>) {
            for (step in steps) {
                if (step !is Map<*, *>) throw ScriptError("step must be an object")
                val op = step["op"] as? String
                val storeName = step["store"] as? String
                if (op == null) {
                    val t = step["now"] as? Double ?: throw ScriptError("step without op or now")
                    if (storeName != null) {
                        if (storeName !in offsets) throw ScriptError("unknown store")
                        offsets[storeName] = t - now
                    } else {
                        now = t
                    }
                    continue
                }
                val name = storeName ?: throw ScriptError("step without store")
                when {
                    op == "transaction" -> {
                        val inner = step["steps"] as? List<*> ?: emptyList<Any?>()
                        val rollback = step["rollback"] == true
                        store(name).transaction(doRollback = { rollback }) { runSteps(inner) }
                    }
                    op == "merge" -> {
                        val other = step["with"] as? String ?: throw ScriptError("merge without with")
                        val a = store(name)
                        val b = store(other)
                        val mine = a.getEncodedMergeableContentJson()
                        val theirs = b.getEncodedMergeableContentJson()
                        ignore { b.applyMergeableChangesJson(mine) }
                        ignore { a.applyMergeableChangesJson(theirs) }
                    }
                    op == "delListener" && !step.containsKey("args") -> {
                        if (!step.containsKey("id")) throw ScriptError("delListener without id")
                        val (owner, id) = listenerIds[keyOf(step["id"])] ?: throw ScriptError("unknown listener")
                        store(owner).delListener(id)
                    }
                    op in listenerOps -> addListener(name, listenerOps.getValue(op), step)
                    else -> {
                        val value = call(name, op, argsOf(step), false)
                        if (value !== Nothing && step["record"] != false) {
                            results.add(linkedMapOf("step" to (step["label"] ?: op), "value" to value))
                        }
                    }
                }
            }
        }

        /** Every store's final state, in the script's order. */
        fun final(): Map<String, Any?> = stores.entries.associate { (name, st) ->
            val (t, v) = st.getContent()
            name to linkedMapOf(
                "content" to listOf(tablesData(t), rowData(v)),
                "mergeableContent" to st.getMergeableContent(),
                "encodedMergeableContent" to parse(st.getEncodedMergeableContentJson()),
                "hashes" to st.getMergeableContentHashes().toList(),
            )
        }
    }

    /** Replays [script]; returns `{"results": [...], "final": {...}}`. */
    fun runScript(script: Map<String, Any?>): Map<String, Any?> = Runner(script).use { runner ->
        runner.runSteps(script["steps"] as? List<*> ?: emptyList<Any?>())
        val final = runner.final()
        linkedMapOf("results" to ArrayList(runner.results), "final" to final)
    }

    /**
     * JSON equality as the conformance README defines it: object key order ignored, array order
     * significant, numbers compared as doubles (never equal to booleans).
     */
    fun sameJson(a: Any?, b: Any?): Boolean = when {
        a is Number && b is Number -> a.toDouble() == b.toDouble()
        a is List<*> && b is List<*> -> a.size == b.size && a.indices.all { sameJson(a[it], b[it]) }
        a is Map<*, *> && b is Map<*, *> -> a.size == b.size && a.all { (k, v) -> b.containsKey(k) && sameJson(v, b[k]) }
        else -> a == b
    }

    /** A short description of the first difference between two JSON values (null if the same). */
    fun firstDifference(path: String, a: Any?, b: Any?): String? {
        if (a is List<*> && b is List<*>) {
            for (i in 0 until minOf(a.size, b.size)) firstDifference("$path[$i]", a[i], b[i])?.let { return it }
            return if (a.size == b.size) null else "$path: length ${a.size} vs ${b.size}"
        }
        if (a is Map<*, *> && b is Map<*, *>) {
            for ((k, v) in a) {
                if (!b.containsKey(k)) return "$path.$k: only in ours"
                firstDifference("$path.$k", v, b[k])?.let { return it }
            }
            return b.keys.firstOrNull { !a.containsKey(it) }?.let { "$path.$it: only in expected" }
        }
        return if (sameJson(a, b)) null else "$path: ours ${stringify(a)} vs expected ${stringify(b)}"
    }

    @JvmStatic
    fun main(args: Array<String>) {
        val path = args.firstOrNull() ?: run {
            System.err.println("usage: replay.sh SCRIPT.json")
            exitProcess(2)
        }
        val script = try {
            @Suppress("UNCHECKED_CAST")
            parse(File(path).readText(Charsets.UTF_8)) as? Map<String, Any?> ?: throw ScriptError("a script is a JSON object")
        } catch (e: Exception) {
            System.err.println("cannot read $path: ${e.message}")
            exitProcess(2)
        }
        val out = try {
            runScript(script)
        } catch (e: ScriptError) {
            System.err.println("$path: ${e.message}")
            exitProcess(1)
        } catch (e: TinyBaseException) {
            System.err.println("$path: ${e.message}")
            exitProcess(1)
        }
        val stdout = java.io.PrintStream(java.io.FileOutputStream(java.io.FileDescriptor.out), false, "UTF-8")
        stdout.print(stringify(out) + "\n")
        stdout.flush()
        exitProcess(0)
    }
}
