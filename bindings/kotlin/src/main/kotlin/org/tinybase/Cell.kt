package org.tinybase

import com.sun.jna.NativeLong
import com.sun.jna.Pointer
import com.sun.jna.Structure

/**
 * A cell or a value (TinyBase's Cell and Value have the same types): a string, a finite
 * number, a boolean, null, or an object or array (carried as its JSON text). A missing cell
 * is a Kotlin `null` of type `Cell?`, never a [Cell].
 */
public sealed class Cell {
    /** A string. */
    public data class Text(val value: String) : Cell()

    /** A number (finite: NaN and infinities are refused when written). */
    public data class Number(val value: Double) : Cell()

    /** A boolean. */
    public data class Bool(val value: Boolean) : Cell()

    /** JSON null. */
    public data object Null : Cell()

    /** An object or an array, as JSON text (for example `{"a":[1,2]}`). */
    public data class Json(val json: String) : Cell()
}

/**
 * The C `tb_value` (kind, boolean, number, string, length, owned): what tb_store_get_cell and
 * tb_store_get_value write, and what listener events carry. Layout follows the C struct on
 * every ABI (JNA computes the offsets); values are read field by field with
 * [ValueScratch.read].
 */
@Structure.FieldOrder("kind", "boolean", "number", "string", "length", "owned")
internal open class TbValue : Structure {
    @JvmField var kind: Int = 0

    @JvmField var boolean: Byte = 0

    @JvmField var number: Double = 0.0

    @JvmField var string: Pointer? = null

    // size_t as C `long`: the same width on Linux and Android, 32- and 64-bit (not on Windows).
    @JvmField var length: NativeLong = NativeLong(0)

    @JvmField var owned: Byte = 0

    constructor() : super()

    companion object {
        const val VALUE_ABSENT: Int = 0
        const val VALUE_NULL: Int = 1
        const val VALUE_BOOLEAN: Int = 2
        const val VALUE_NUMBER: Int = 3
        const val VALUE_STRING: Int = 4
        const val VALUE_JSON: Int = 5

        /** [length] bytes of UTF-8 at [p] (a string cell may hold NUL characters). */
        fun utf8(p: Pointer?, length: Long): String =
            if (p == null || length == 0L) "" else String(p.getByteArray(0, length.toInt()), Charsets.UTF_8)
    }
}
