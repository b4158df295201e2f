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
        try {
            return read(value, 0)
        } finally {
            // Only string and JSON values own text (an unknown kind is freed too, to be safe).
            if (kind !in TbValue.VALUE_ABSENT..TbValue.VALUE_NUMBER) LibStore.tb_value_free(value)
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

        /**
         * The cell in the tb_value at [offset] bytes into [p] (null for TB_VALUE_ABSENT), read
         * field by field (no reflective Structure.read); its text is copied, not freed. Used
         * for getter results and for the values inside listener events.
         */
        fun read(p: Pointer, offset: Long): Cell? {
            val kind = p.getInt(offset + KIND)
            return when (kind) {
                TbValue.VALUE_ABSENT -> null
                TbValue.VALUE_NULL -> Cell.Null
                TbValue.VALUE_BOOLEAN -> Cell.Bool(p.getByte(offset + BOOLEAN).toInt() != 0)
                TbValue.VALUE_NUMBER -> Cell.Number(p.getDouble(offset + NUMBER))
                TbValue.VALUE_STRING, TbValue.VALUE_JSON -> {
                    val length = if (NativeLong.SIZE == 8) p.getLong(offset + LENGTH) else p.getInt(offset + LENGTH).toLong()
                    val text = TbValue.utf8(p.getPointer(offset + STRING), length)
                    if (kind == TbValue.VALUE_STRING) Cell.Text(text) else Cell.Json(text)
                }
                else -> throw TinyBaseException(Status.INVALID_VALUE, "unknown tb_value kind $kind")
            }
        }
    }
}

/**
 * Per-thread native memory holding the NUL-terminated UTF-8 strings of one hot call (the ids
 * and the string of getCell / setCell): the strings are encoded into one reusable byte array
 * and copied to native memory in one step, instead of one Java array per string that JNA
 * copies on every call. [acquire] fails over to null while this thread's scratch is in use
 * (a listener making the same call inside the outer one); callers then take the plain path.
 */
internal class StringScratch private constructor() {
    private var bytes = ByteArray(256)
    private var memory = Memory(256)
    private var end = 0
    private var busy = false

    /** This scratch, emptied and marked in use, or null when it already is in use. */
    fun acquire(): StringScratch? {
        if (busy) return null
        busy = true
        end = 0
        return this
    }

    /** Appends [s] (strict UTF-8 + NUL, as [cstr]) and returns its offset. */
    fun add(s: String): Int {
        val start = end
        val n = s.length
        ensure(start + n + 1)
        var ascii = true
        for (i in 0 until n) {
            val c = s[i].code
            if (c >= 0x80) {
                ascii = false
                break
            }
            bytes[start + i] = c.toByte()
        }
        if (ascii) {
            bytes[start + n] = 0
            end = start + n + 1
        } else {
            val encoded = cstr(s)
            ensure(start + encoded.size)
            encoded.copyInto(bytes, start)
            end = start + encoded.size
        }
        return start
    }

    /** Copies the strings to native memory; returns its address (valid until [release]). */
    fun commit(): Long {
        if (memory.size() < end) memory = Memory(maxOf(end.toLong(), memory.size() * 2))
        memory.write(0, bytes, 0, end)
        return Pointer.nativeValue(memory)
    }

    /** Marks this scratch free again. */
    fun release() {
        busy = false
    }

    private fun ensure(size: Int) {
        if (bytes.size < size) bytes = bytes.copyOf(maxOf(size, bytes.size * 2))
    }

    companion object {
        private val local = object : ThreadLocal<StringScratch>() {
            override fun initialValue() = StringScratch()
        }

        /** This thread's scratch, acquired, or null when it is in use. */
        fun acquire(): StringScratch? = local.get().acquire()
    }
}

/** [s] as strict UTF-8 + NUL in its own native memory (the path for nested hot calls). */
internal fun nativeString(s: String): Memory {
    val bytes = cstr(s)
    return Memory(bytes.size.toLong()).also { it.write(0, bytes, 0, bytes.size) }
}

/**
 * Runs [block] with [a], [b], [c] and [d] (null: passed as null) as NUL-terminated UTF-8 in
 * native memory, valid until it returns: this thread's [StringScratch], or, when that is in
 * use further up the stack, memory of their own.
 */
internal inline fun <T> withNativeStrings(a: String, b: String, c: String, d: String?, block: (Pointer, Pointer, Pointer, Pointer?) -> T): T {
    val scratch = StringScratch.acquire()
        ?: return block(nativeString(a), nativeString(b), nativeString(c), d?.let(::nativeString))
    try {
        val pa = scratch.add(a)
        val pb = scratch.add(b)
        val pc = scratch.add(c)
        val pd = if (d == null) -1 else scratch.add(d)
        val base = scratch.commit()
        return block(Pointer(base + pa), Pointer(base + pb), Pointer(base + pc), if (pd < 0) null else Pointer(base + pd))
    } finally {
        scratch.release()
    }
}
