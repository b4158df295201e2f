package org.tinybase

import org.junit.jupiter.api.Test
import kotlin.math.pow
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNotEquals
import kotlin.test.assertNull
import kotlin.test.assertTrue

class StoreTest {
    @Test
    fun cellsOfEveryKindRoundTrip() {
        MergeableStore("a").use { s ->
            s.setCell("t", "r", "text", "héllo\u0000x")
            s.setCell("t", "r", "num", 1.5)
            s.setCell("t", "r", "int", 42)
            s.setCell("t", "r", "yes", true)
            s.setCell("t", "r", "nil", null)
            s.setCell("t", "r", "obj", mapOf("a" to listOf(1, "x", null, false)))
            s.setCell("t", "r", "arr", Cell.Json("[1,{\"b\":2}]"))
            assertEquals(Cell.Text("héllo\u0000x"), s.getCell("t", "r", "text"))
            assertEquals(Cell.Number(1.5), s.getCell("t", "r", "num"))
            assertEquals(Cell.Number(42.0), s.getCell("t", "r", "int"))
            assertEquals(Cell.Bool(true), s.getCell("t", "r", "yes"))
            assertEquals(Cell.Null, s.getCell("t", "r", "nil"))
            assertEquals(Cell.Json("{\"a\":[1,\"x\",null,false]}"), s.getCell("t", "r", "obj"))
            assertEquals(mapOf("a" to listOf(1.0, "x", null, false)), s.getCell("t", "r", "obj")!!.toAny())
            assertEquals(Cell.Json("[1,{\"b\":2}]"), s.getCell("t", "r", "arr"))
            assertNull(s.getCell("t", "r", "missing"))
            assertNull(s.getCell("t", "nope", "text"))
            assertEquals(
                listOf("text", "num", "int", "yes", "nil", "obj", "arr"),
                s.getCellIds("t", "r"),
            )
            assertEquals(Cell.Text("héllo\u0000x"), s.getRow("t", "r")["text"])
            assertEquals(Cell.Json("[1,{\"b\":2}]"), s.getRow("t", "r")["arr"])
        }
    }

    @Test
    fun valuesRoundTrip() {
        Store().use { s ->
            s.setValue("a", "x").setValue("b", 2).setValue("c", false).setValue("d", null)
            s.setValue("e", listOf(1, 2))
            assertEquals(Cell.Text("x"), s.getValue("a"))
            assertEquals(Cell.Number(2.0), s.getValue("b"))
            assertEquals(Cell.Bool(false), s.getValue("c"))
            assertEquals(Cell.Null, s.getValue("d"))
            assertEquals(Cell.Json("[1,2]"), s.getValue("e"))
            assertNull(s.getValue("z"))
            assertEquals(listOf("a", "b", "c", "d", "e"), s.getValueIds())
            assertTrue(s.hasValues())
            assertTrue(s.hasValue("a"))
            assertFalse(s.hasValue("z"))
            s.setValueJson("f", "\"y\"")
            assertEquals(Cell.Text("y"), s.getValue("f"))
            s.setPartialValues(mapOf("a" to "A"))
            assertEquals(Cell.Text("A"), s.getValue("a"))
            s.setValues(mapOf("only" to 1))
            assertEquals(mapOf("only" to Cell.Number(1.0)), s.getValues())
            s.delValue("only")
            assertFalse(s.hasValues())
            s.setValue("a", 1).delValues()
            assertEquals(emptyMap(), s.getValues())
            // A long string goes through the growable buffer.
            val long = "x".repeat(10_000)
            s.setValue("long", long)
            assertEquals(Cell.Text(long), s.getValue("long"))
            s.setValue("nul", "a\u0000b")
            assertEquals(Cell.Text("a\u0000b"), s.getValue("nul"))
        }
    }

    @Test
    fun tablesRowsAndIds() {
        Store().use { s ->
            s.setTables(mapOf("pets" to mapOf("fido" to mapOf("species" to "dog", "legs" to 4))))
            s.setRow("pets", "felix", mapOf("species" to "cat", "sold" to false))
            s.setPartialRow("pets", "felix", mapOf("legs" to 4))
            val id = s.addRow("pets", mapOf("species" to "fish"))
            assertEquals("0", id)
            s.setTable("species", mapOf("dog" to mapOf("price" to 5)))
            assertEquals(listOf("pets", "species"), s.getTableIds())
            assertEquals(listOf("fido", "felix", "0"), s.getRowIds("pets"))
            assertEquals(3, s.getRowCount("pets"))
            assertEquals(listOf("species", "legs", "sold"), s.getTableCellIds("pets"))
            assertTrue(s.hasTables())
            assertTrue(s.hasTable("pets"))
            assertTrue(s.hasTableCell("pets", "sold"))
            assertFalse(s.hasTableCell("pets", "price"))
            assertTrue(s.hasRow("pets", "fido"))
            assertTrue(s.hasCell("pets", "felix", "legs"))
            assertFalse(s.hasCell("pets", "fido", "sold"))
            assertEquals(
                mapOf("species" to Cell.Text("cat"), "sold" to Cell.Bool(false), "legs" to Cell.Number(4.0)),
                s.getRow("pets", "felix"),
            )
            assertEquals(mapOf("price" to Cell.Number(5.0)), s.getTable("species")["dog"])
            assertEquals(
                // Integer-like keys first, as JavaScript orders them.
                "{\"pets\":{\"0\":{\"species\":\"fish\"},\"fido\":{\"species\":\"dog\",\"legs\":4}," +
                    "\"felix\":{\"species\":\"cat\",\"sold\":false,\"legs\":4}},\"species\":{\"dog\":{\"price\":5}}}",
                s.getTablesJson(),
            )
            assertEquals(s.getTables(), s.getContent().first)
            s.delCell("pets", "felix", "legs")
            assertFalse(s.hasCell("pets", "felix", "legs"))
            s.delRow("pets", "0")
            assertEquals(2, s.getRowCount("pets"))
            s.delTable("species")
            assertEquals(listOf("pets"), s.getTableIds())
            s.delTables()
            assertFalse(s.hasTables())
            assertEquals(emptyMap(), s.getTable("pets"))
            assertEquals(emptyMap(), s.getRow("pets", "fido"))
            assertEquals(emptyList(), s.getRowIds("pets"))
        }
    }

    @Test
    fun jsonPassesThroughUnchanged() {
        Store().use { s ->
            s.setJson("[{\"t\":{\"r\":{\"c\":1e21,\"d\":0.1,\"o\":\"\uFFFD{\\\"b\\\":1,\\\"a\\\":2}\"}}},{\"v\":-0.000001}]")
            assertEquals("[{\"t\":{\"r\":{\"c\":1e+21,\"d\":0.1,\"o\":\"\uFFFD{\\\"b\\\":1,\\\"a\\\":2}\"}}},{\"v\":-0.000001}]", s.getJson())
            assertEquals("[{\"t\":{\"r\":{\"c\":1e+21,\"d\":0.1,\"o\":{\"b\":1,\"a\":2}}}},{\"v\":-0.000001}]", s.getContentJson())
            assertEquals(Cell.Json("{\"b\":1,\"a\":2}"), s.getCell("t", "r", "o"))
            assertEquals(Cell.Number(1e21), s.getTables()["t"]!!["r"]!!["c"])
            s.setContentJson("[{\"x\":{\"y\":{\"z\":[3]}}},{}]")
            assertEquals("[{\"x\":{\"y\":{\"z\":[3]}}},{}]", s.getContentJson())
            s.setTablesJson("{\"a\":{\"b\":{\"c\":\"d\"}}}")
            s.setValuesJson("{\"v\":true}")
            s.setTableJson("e", "{\"f\":{\"g\":1}}")
            s.setRowJson("e", "h", "{\"i\":2}")
            s.setPartialRowJson("e", "h", "{\"j\":3}")
            s.setCellJson("e", "h", "k", "{\"l\":[]}")
            s.setPartialValuesJson("{\"w\":null}")
            assertEquals("0", s.addRowJson("e", "{\"m\":0}", reuseRowIds = false))
            assertEquals(
                "[{\"a\":{\"b\":{\"c\":\"d\"}},\"e\":{\"0\":{\"m\":0},\"f\":{\"g\":1},\"h\":{\"i\":2,\"j\":3,\"k\":{\"l\":[]}}}},{\"v\":true,\"w\":null}]",
                s.getContentJson(),
            )
            assertEquals("{\"0\":{\"m\":0},\"f\":{\"g\":1},\"h\":{\"i\":2,\"j\":3,\"k\":{\"l\":[]}}}", s.getTableJson("e"))
            assertEquals("{\"i\":2,\"j\":3,\"k\":{\"l\":[]}}", s.getRowJson("e", "h"))
            assertEquals("{\"v\":true,\"w\":null}", s.getValuesJson())
        }
    }

    @Test
    fun setContentAndChanges() {
        Store().use { s ->
            s.setContent(mapOf("t" to mapOf("r" to mapOf("c" to 1, "d" to 2))), mapOf("v" to "x"))
            s.applyChanges(
                Changes(
                    tables = mapOf("t" to mapOf("r" to mapOf("c" to null, "e" to Cell.Text("new")))),
                    values = mapOf("v" to null, "w" to Cell.Null),
                ),
            )
            assertEquals("[{\"t\":{\"r\":{\"d\":2,\"e\":\"new\"}}},{\"w\":null}]", s.getContentJson())
            s.applyChanges(Changes(tables = mapOf("t" to null)))
            assertFalse(s.hasTables())
            s.applyChangesJson("[{\"t\":{\"r\":{\"c\":1}}},{\"v\":\"\uFFFC\"},1]")
            assertEquals(Cell.Number(1.0), s.getCell("t", "r", "c"))
            val changes = s.transaction {
                it.setCell("t", "r", "c", 2).delCell("t", "r", "c").setCell("t", "q", "x", "y").setValue("w", 3)
                it.getTransactionChanges() to it.getTransactionChangesJson()
            }
            assertEquals(
                // The row lost its only cell: the row is deleted.
                Changes(mapOf("t" to mapOf("r" to null, "q" to mapOf("x" to Cell.Text("y")))), mapOf("w" to Cell.Number(3.0))),
                changes.first,
            )
            assertEquals("[{\"t\":{\"r\":\"\uFFFC\",\"q\":{\"x\":\"y\"}}},{\"w\":3},1]", changes.second)
            assertEquals(Changes(), s.getTransactionChanges())
        }
    }

    @Test
    fun transactionCommitsReturnsAndRollsBackOnThrow() {
        MergeableStore("a").use { s ->
            s.setCell("t", "r", "c", "before")
            val before = s.getMergeableContentJson()
            val got = s.transaction { it.setCell("t", "r", "c", "inside"); it.getCell("t", "r", "c") }
            assertEquals(Cell.Text("inside"), got)
            s.setCell("t", "r", "c", "before")
            val snapshot = s.getEncodedMergeableContentJson()
            val e = assertFailsWith<IllegalStateException> {
                s.transaction {
                    it.setCell("t", "r", "c", "lost").setValue("v", 1)
                    // Nested transactions join the outer one.
                    it.transaction { inner -> inner.setCell("t", "r2", "c", "lost too") }
                    error("boom")
                }
            }
            assertEquals("boom", e.message)
            assertEquals(snapshot, s.getEncodedMergeableContentJson())
            assertNotEquals(before, "")
            // doRollback: the body ran, then its changes were undone.
            val r = s.transaction(doRollback = { true }) { it.setCell("t", "r", "c", "undone"); 7 }
            assertEquals(7, r)
            assertEquals(Cell.Text("before"), s.getCell("t", "r", "c"))
        }
    }

    @Test
    fun startAndFinishTransaction() {
        Store().use { s ->
            s.startTransaction().setCell("t", "r", "c", 1)
            s.startTransaction().setCell("t", "r", "d", 2)
            s.finishTransaction()
            s.finishTransaction(rollback = true)
            assertFalse(s.hasTables())
            val e = assertFailsWith<TinyBaseException> { s.finishTransaction() }
            assertEquals(Status.INVALID_STATE, e.status)
            assertEquals(0, s.getAbandonedTransactionCount())
        }
        // close() while a transaction is open: the store stays until it is finished.
        val start = debugLiveHandles()
        val s = Store()
        s.startTransaction().setCell("t", "r", "c", 1)
        s.close()
        assertEquals(start + 1, debugLiveHandles())
        s.finishTransaction()
        assertEquals(start, debugLiveHandles())
    }

    @Test
    fun mergeableContentHashesAndMerge() {
        val start = debugLiveHandles()
        val clockCalls = java.util.concurrent.atomic.AtomicInteger()
        MergeableStore("a") { clockCalls.incrementAndGet(); System.currentTimeMillis().toDouble() }.use { a ->
            MergeableStore("b").use { b ->
                a.setCell("t", "r", "c", "x").setValue("v", listOf(1))
                assertTrue(clockCalls.get() > 0)
                val content = a.getMergeableContentJson()
                assertTrue(content.startsWith("[[{\"t\":[{\"r\":[{\"c\":[\"x\",\""), content)
                assertTrue(content.contains("[1]"), content)
                assertTrue(a.getEncodedMergeableContentJson().contains("\"\uFFFD[1]\""))
                b.applyMergeableChangesJson(a.getEncodedMergeableContentJson())
                assertEquals(a.getMergeableContentHashes(), b.getMergeableContentHashes())
                assertEquals(a.getMergeableContentHashes(), a.computeContentHashes())
                val (th, vh) = a.getMergeableContentHashes()
                assertEquals("[$th,$vh]", a.getMergeableContentHashesJson())
                b.setCell("t", "r2", "c", "y")
                a.merge(b)
                assertEquals(a.getContentJson(), b.getContentJson())
                assertEquals(a.getMergeableContentJson(), b.getMergeableContentJson())
                val tableHashes = a.getMergeableTableHashesJson()
                assertTrue(tableHashes.startsWith("{\"t\":"))
                assertEquals("[[{}],{}]", a.getMergeableTableDiffJson(tableHashes))
                assertEquals("[[{}],{}]", a.getMergeableRowDiffJson(a.getMergeableRowHashesJson(tableHashes)))
                assertEquals("[{}]", a.getMergeableCellDiffJson(a.getMergeableCellHashesJson(a.getMergeableRowHashesJson(tableHashes))))
                assertEquals("[{}]", a.getMergeableValueDiffJson(a.getMergeableValueHashesJson()))
                assertTrue(a.getMergeableValueHashesJson().startsWith("{\"v\":"))
                // Typed hashes: equal to the JSON ones; a differing hash selects that table's rows.
                val typed = a.getMergeableTableHashes()
                assertEquals(setOf("t"), typed.keys)
                assertEquals(tableHashes, JsonWriter.write(typed))
                assertEquals(emptyMap(), a.getMergeableRowHashes(typed))
                val rows = a.getMergeableRowHashes(mapOf("t" to (typed.getValue("t") xor 1L)))
                assertEquals(setOf("r", "r2"), rows.getValue("t").keys)
                val cells = a.getMergeableCellHashes(mapOf("t" to mapOf("r" to 0L)))
                assertEquals(setOf("c"), cells.getValue("t").getValue("r").keys)
                assertEquals(a.getMergeableValueHashesJson(), JsonWriter.write(a.getMergeableValueHashes()))
                MergeableStore("c").use { c ->
                    c.setMergeableContentJson(a.getEncodedMergeableContentJson())
                    assertEquals(a.getMergeableContentJson(), c.getMergeableContentJson())
                    c.setDecodedMergeableContentJson(b.getMergeableContentJson())
                    assertEquals(b.getMergeableContentJson(), c.getMergeableContentJson())
                    c.setMergeableContent(c.getMergeableContent())
                    assertEquals(b.getMergeableContentJson(), c.getMergeableContentJson())
                    val clone = c.clone()
                    c.close()
                    assertEquals(b.getContentJson(), clone.getContentJson())
                    clone.close()
                }
            }
        }
        assertEquals(start, debugLiveHandles())
    }

    @Test
    fun defaultContentAndTransactionMergeableChanges() {
        MergeableStore("a").use { s ->
            s.setDefaultContent(mapOf("t" to mapOf("r" to mapOf("c" to 1))), mapOf("v" to true))
            assertEquals("[{\"t\":{\"r\":{\"c\":1}}},{\"v\":true}]", s.getContentJson())
            s.setCell("t", "r", "c", 2)
            s.setDefaultContentJson("[{\"t\":{\"r\":{\"c\":3}}},{}]")
            assertEquals(Cell.Number(2.0), s.getCell("t", "r", "c"))
            val (decoded, wire) = s.transaction {
                it.setCell("t", "r", "o", mapOf("k" to 1))
                s.getTransactionMergeableChangesJson() to s.getEncodedTransactionMergeableChangesJson()
            }
            assertTrue(decoded.contains("{\"k\":1}"), decoded)
            assertTrue(wire.contains("\"\uFFFD{\\\"k\\\":1}\""), wire)
            MergeableStore("b").use { b ->
                b.applyMergeableChangesJson(wire)
                assertEquals(Cell.Json("{\"k\":1}"), b.getCell("t", "r", "o"))
                b.applyDecodedMergeableChangesJson(decoded)
                b.applyMergeableChanges(JsonReader(decoded).document())
                assertEquals(Cell.Json("{\"k\":1}"), b.getCell("t", "r", "o"))
            }
        }
    }

    @Test
    fun readmeExample() {
        MergeableStore("device-1").use { store ->
            store.setCell("pets", "fido", "species", "dog")
            store.setRow("pets", "felix", mapOf("species" to "cat", "legs" to 4, "tags" to listOf("indoor")))
            assertEquals(Cell.Number(4.0), store.getCell("pets", "felix", "legs"))
            assertEquals(listOf("indoor"), store.getCell("pets", "felix", "tags")?.toAny())
            assertEquals(listOf("fido", "felix"), store.getRowIds("pets"))
            val total = store.transaction {
                store.setValue("open", true)
                store.getRowCount("pets")
            }
            assertEquals(2, total)
            val wire = store.getEncodedMergeableContentJson()
            MergeableStore("device-2").use { other ->
                other.applyMergeableChangesJson(wire)
                assertEquals(store.getMergeableContentHashes(), other.getMergeableContentHashes())
            }
        }
    }

    @Test
    fun jsonWriterFormatsNumbersAsTheLibraryDoes() {
        // The library prints numbers as JavaScript does; JsonWriter (used for ids in the replay,
        // its output and the values it writes) must print the same text.
        val rnd = java.util.Random(7)
        val samples = mutableListOf(0.0, -0.0, 1.0, -1.5, 0.1, 1e21, 1e20, 123456789012345680000.0, 1e-6, 1e-7, 5e-324,
            Double.MAX_VALUE, -Double.MIN_VALUE, 2.0.pow(53), 2.0.pow(53) + 2, 1.0 / 3, 100.0, 0.000001234, 1.7e12 + 0.5)
        repeat(300) { samples.add(Double.fromBits(rnd.nextLong()).takeIf { it.isFinite() } ?: 1.0) }
        repeat(300) { samples.add(rnd.nextDouble() * 10.0.pow(rnd.nextInt(60) - 30)) }
        Store().use { s ->
            for (d in samples) {
                s.setValue("n", d)
                val printed = s.getValuesJson().removePrefix("{\"n\":").removeSuffix("}")
                assertEquals(printed, JsonWriter.jsNumber(d), "for ${d.toRawBits()}")
                assertEquals(Cell.Number(if (d == 0.0) 0.0 else d).value, (s.getValue("n") as Cell.Number).value + 0.0)
            }
        }
        assertEquals("[1,2.5,\"a\\u0001\\b\\f\\n\\\"\",{\"2\":1,\"10\":2,\"b\":3,\"a\":4}]",
            JsonWriter.write(listOf(1, 2.5, "a\u0001\b\u000c\n\"", linkedMapOf("b" to 3, "10" to 2, "a" to 4, "2" to 1))))
    }

    @Test
    fun longAndNonAsciiStringsThroughTheHotPaths() {
        MergeableStore("l").use { s ->
            val long = "é".repeat(3000) + "x".repeat(5000)
            val id = "ü".repeat(400)
            s.setCell(id, long, "c", long)
            assertEquals(Cell.Text(long), s.getCell(id, long, "c"))
            s.setCell(id, "r", "n", 2.5)
            assertEquals(Cell.Number(2.5), s.getCell(id, "r", "n"))
            s.setCell("t", "r", "c", "short")
            assertEquals(Cell.Text("short"), s.getCell("t", "r", "c"))
            // A listener writing on this thread during a setCell takes the nested path.
            s.addCellListener("t", "r", "c") { st, _, _, _, new, _ ->
                if (new == Cell.Text("outer")) st.setCell("t", "r", "echo", "inner-" + st.getCell("t", "r", "c").toString())
            }.use {
                s.setCell("t", "r", "c", "outer")
                assertEquals(Cell.Text("inner-Text(value=outer)"), s.getCell("t", "r", "echo"))
            }
        }
    }
}
