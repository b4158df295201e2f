package org.tinybase

import com.sun.jna.Memory
import com.sun.jna.NativeLong
import com.sun.jna.Pointer

/**
 * The [Cell] for a plain Kotlin value: a String, a Number (as a double), a Boolean, null
 * ([Cell.Null]), a [Cell] itself, or a Map with string keys / List / Iterable / Array (an
 * object or array cell, as JSON text). Anything else, and non-finite numbers, throw
 * [TinyBaseException] with [Status.INVALID_VALUE].
 */
public fun cellOf(value: Any?): Cell = when (value) {
    null -> Cell.Null
    is Cell -> value
    is String -> Cell.Text(value)
    is Boolean -> Cell.Bool(value)
    is Number -> Cell.Number(value.toDouble())
    else -> Cell.Json(JsonWriter.write(value))
}

/**
 * This cell as a plain Kotlin value: String, Double, Boolean, null, or for an object or array
 * cell a `Map<String, Any?>` / `List<Any?>` (numbers inside as Double).
 */
public fun Cell.toAny(): Any? = when (this) {
    is Cell.Text -> value
    is Cell.Number -> value
    is Cell.Bool -> value
    Cell.Null -> null
    is Cell.Json -> JsonReader(json).document()
}

/**
 * Per-thread native memory for a `tb_value` (in and out) plus a growable buffer for the text
 * of a string or JSON value passed in: the hot getCell/setCell paths allocate no JNA
 * Structure and no native memory per call. A call only uses it until it returns (the library
 * reads an input value before it calls any listener, which may reuse it on this thread).
 */
internal class ValueScratch private constructor() {
    /** The tb_value, laid out as [TbValue] (offsets computed by JNA for this platform). */
    val value: Memory = Memory(SIZE.toLong()).also { it.clear() }

    private var text: Memory = Memory(256)

    /** Writes [cell] (a scalar, or a string/JSON whose text goes to the buffer) into [value]. */
    fun put(cell: Cell): Pointer {
        when (cell) {
            Cell.Null -> value.setInt(KIND, TbValue.VALUE_NULL)
            is Cell.Bool -> {
                value.setInt(KIND, TbValue.VALUE_BOOLEAN)
                value.setByte(BOOLEAN, if (cell.value) 1 else 0)
            }
            is Cell.Number -> {
                value.setInt(KIND, TbValue.VALUE_NUMBER)
                value.setDouble(NUMBER, cell.value)
            }
            is Cell.Text -> putText(TbValue.VALUE_STRING, cstr(cell.value))
            is Cell.Json -> putText(TbValue.VALUE_JSON, cstr(cell.json))
        }
        return value
    }

    private fun putText(kind: Int, bytes: ByteArray) {
        if (text.size() < bytes.size) text = Memory(maxOf(bytes.size.toLong(), text.size() * 2))
        text.write(0, bytes, 0, bytes.size)
        value.setInt(KIND, kind)
        value.setPointer(STRING, text)
    }

    /**
     * Reads the value a getter wrote into [value] (null for TB_VALUE_ABSENT) and releases its
     * text (tb_value_free).
     */
    fun take(): Cell? {
        val kind = value.getInt(KIND)
        return when (kind) {
            TbValue.VALUE_ABSENT -> null
            TbValue.VALUE_NULL -> Cell.Null
            TbValue.VALUE_BOOLEAN -> Cell.Bool(value.getByte(BOOLEAN).toInt() != 0)
            TbValue.VALUE_NUMBER -> Cell.Number(value.getDouble(NUMBER))
            TbValue.VALUE_STRING, TbValue.VALUE_JSON -> try {
                val length = if (NativeLong.SIZE == 8) value.getLong(LENGTH) else value.getInt(LENGTH).toLong()
                val s = TbValue.utf8(value.getPointer(STRING), length)
                if (kind == TbValue.VALUE_STRING) Cell.Text(s) else Cell.Json(s)
            } finally {
                LibStore.tb_value_free(value)
            }
            else -> {
                LibStore.tb_value_free(value)
                throw TinyBaseException(Status.INVALID_VALUE, "unknown tb_value kind $kind")
            }
        }
    }

    /** Exposes JNA's computed field offsets of [TbValue]. */
    private class Layout : TbValue() {
        fun offset(name: String): Long = fieldOffset(name).toLong()
    }

    companion object {
        private val layout = Layout()
        private val SIZE = layout.size()
        private val KIND = layout.offset("kind")
        private val BOOLEAN = layout.offset("boolean")
        private val NUMBER = layout.offset("number")
        private val STRING = layout.offset("string")
        private val LENGTH = layout.offset("length")

        private val local = object : ThreadLocal<ValueScratch>() {
            override fun initialValue() = ValueScratch()
        }

        /** This thread's scratch. */
        fun get(): ValueScratch = local.get()
    }
}
