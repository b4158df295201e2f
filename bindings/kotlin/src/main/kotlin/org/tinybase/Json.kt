package org.tinybase

/**
 * A small strict JSON reader for the text the library returns (RFC 8259: no comments, no
 * trailing commas, no NaN). Objects become insertion-ordered [LinkedHashMap]s (the library's
 * key order is TinyBase's), arrays [ArrayList]s, numbers [Double]s. [cell] keeps a nested
 * object or array as its exact source text, so cells pass through without being reformatted.
 * Malformed text throws [TinyBaseException] with [Status.INVALID_JSON].
 */
internal class JsonReader(private val s: String) {
    /** The read position. */
    var i: Int = 0

    /** Any JSON value as Kotlin objects, then checks nothing but whitespace follows. */
    fun document(): Any? {
        val v = value()
        end()
        return v
    }

    /** Fails unless only whitespace is left. */
    fun end() {
        ws()
        if (i != s.length) fail("unexpected text after the JSON value")
    }

    /** Any JSON value as Kotlin objects. */
    fun value(): Any? {
        ws()
        if (i >= s.length) fail("unexpected end")
        return when (s[i]) {
            '{' -> LinkedHashMap<String, Any?>().also { m -> obj { k -> m[k] = value() } }
            '[' -> ArrayList<Any?>().also { l -> arr { l.add(value()) } }
            '"' -> string()
            else -> scalar()
        }
    }

    /** A cell: a scalar as its [Cell], an object or array as [Cell.Json] of its source text. */
    fun cell(): Cell {
        ws()
        if (i >= s.length) fail("unexpected end")
        return when (s[i]) {
            '{', '[' -> {
                val start = i
                skip()
                Cell.Json(s.substring(start, i))
            }
            '"' -> Cell.Text(string())
            else -> when (val v = scalar()) {
                null -> Cell.Null
                is Boolean -> Cell.Bool(v)
                else -> Cell.Number(v as Double)
            }
        }
    }

    /** Whether the next value is JSON null (consumed if so). */
    fun nullNext(): Boolean {
        ws()
        if (s.startsWith("null", i)) {
            i += 4
            return true
        }
        return false
    }

    /** Reads an object, calling [entry] with each key while positioned at its value. */
    inline fun obj(entry: (String) -> Unit) {
        expect('{')
        ws()
        if (peek() == '}') {
            i++
            return
        }
        while (true) {
            ws()
            if (peek() != '"') fail("expected a string key")
            val key = string()
            ws()
            expect(':')
            entry(key)
            ws()
            when (next()) {
                ',' -> continue
                '}' -> return
                else -> fail("expected ',' or '}'")
            }
        }
    }

    /** Reads an array, calling [item] while positioned at each element. */
    inline fun arr(item: () -> Unit) {
        expect('[')
        ws()
        if (peek() == ']') {
            i++
            return
        }
        while (true) {
            item()
            ws()
            when (next()) {
                ',' -> continue
                ']' -> return
                else -> fail("expected ',' or ']'")
            }
        }
    }

    /** A JSON string. */
    fun string(): String {
        expect('"')
        var sb: StringBuilder? = null
        var start = i
        while (true) {
            if (i >= s.length) fail("unterminated string")
            val c = s[i]
            when {
                c == '"' -> {
                    val tail = s.substring(start, i)
                    i++
                    return sb?.append(tail)?.toString() ?: tail
                }
                c == '\\' -> {
                    val b = sb ?: StringBuilder().also { sb = it }
                    b.append(s, start, i)
                    i++
                    if (i >= s.length) fail("unterminated escape")
                    when (val e = s[i++]) {
                        '"' -> b.append('"')
                        '\\' -> b.append('\\')
                        '/' -> b.append('/')
                        'b' -> b.append('\b')
                        'f' -> b.append('\u000c')
                        'n' -> b.append('\n')
                        'r' -> b.append('\r')
                        't' -> b.append('\t')
                        'u' -> {
                            if (i + 4 > s.length) fail("bad \\u escape")
                            val code = s.substring(i, i + 4).toIntOrNull(16) ?: fail("bad \\u escape")
                            b.append(code.toChar())
                            i += 4
                        }
                        else -> fail("bad escape \\$e")
                    }
                    start = i
                }
                c < ' ' -> fail("control character in a string")
                else -> i++
            }
        }
    }

    /** A number, true, false or null (null: JSON null). */
    private fun scalar(): Any? {
        when {
            s.startsWith("true", i) -> {
                i += 4
                return true
            }
            s.startsWith("false", i) -> {
                i += 5
                return false
            }
            s.startsWith("null", i) -> {
                i += 4
                return null
            }
        }
        val start = i
        if (peek() == '-') i++
        if (peek() == '0') {
            i++
        } else if (peek() in '1'..'9') {
            while (peek() in '0'..'9') i++
        } else {
            fail("unexpected character")
        }
        if (peek() == '.') {
            i++
            if (peek() !in '0'..'9') fail("digit expected")
            while (peek() in '0'..'9') i++
        }
        if (peek() == 'e' || peek() == 'E') {
            i++
            if (peek() == '+' || peek() == '-') i++
            if (peek() !in '0'..'9') fail("digit expected")
            while (peek() in '0'..'9') i++
        }
        return s.substring(start, i).toDouble()
    }

    /** Skips one value (used to slice an object or array cell out of the text). */
    private fun skip() {
        ws()
        when (peek()) {
            '{' -> obj { skip() }
            '[' -> arr { skip() }
            '"' -> string()
            else -> scalar()
        }
    }

    fun ws() {
        while (i < s.length) {
            val c = s[i]
            if (c == ' ' || c == '\n' || c == '\r' || c == '\t') i++ else return
        }
    }

    fun peek(): Char = if (i < s.length) s[i] else '\u0000'

    fun next(): Char = if (i < s.length) s[i++] else fail("unexpected end")

    fun expect(c: Char) {
        ws()
        if (peek() != c) fail("expected '$c'")
        i++
    }

    fun fail(why: String): Nothing =
        throw TinyBaseException(Status.INVALID_JSON, "malformed JSON at offset $i: $why")
}

/**
 * Writes Kotlin values as JSON text exactly as JavaScript's `JSON.stringify` writes the same
 * data (numbers as JavaScript prints them, its string escapes, integer-like object keys first):
 * String, Number, Boolean, null, [Cell] (an object or array cell as its own text, unchanged),
 * Map (string keys), List, Iterable and Array. Non-finite numbers and other types throw
 * [TinyBaseException] with [Status.INVALID_VALUE].
 */
internal object JsonWriter {
    /** [value] as JSON text. */
    fun write(value: Any?): String = StringBuilder().also { append(it, value) }.toString()

    /** Appends [value] as JSON. */
    fun append(sb: StringBuilder, value: Any?) {
        when (value) {
            null -> sb.append("null")
            is String -> quote(sb, value)
            is Boolean -> sb.append(value)
            is Number -> number(sb, value)
            is Cell -> when (value) {
                is Cell.Text -> quote(sb, value.value)
                is Cell.Number -> number(sb, value.value)
                is Cell.Bool -> sb.append(value.value)
                Cell.Null -> sb.append("null")
                is Cell.Json -> sb.append(value.json)
            }
            is Map<*, *> -> {
                sb.append('{')
                var first = true
                for ((k, v) in jsOrder(value)) {
                    if (!first) sb.append(',')
                    first = false
                    quote(sb, k)
                    sb.append(':')
                    append(sb, v)
                }
                sb.append('}')
            }
            is Iterable<*> -> array(sb, value.iterator())
            is Array<*> -> array(sb, value.iterator())
            is DoubleArray -> array(sb, value.iterator())
            is IntArray -> array(sb, value.iterator())
            is LongArray -> array(sb, value.iterator())
            is BooleanArray -> array(sb, value.iterator())
            else -> throw TinyBaseException(Status.INVALID_VALUE, "cannot store a value of type ${typeName(value)}")
        }
    }

    private fun array(sb: StringBuilder, items: Iterator<*>) {
        sb.append('[')
        var first = true
        for (v in items) {
            if (!first) sb.append(',')
            first = false
            append(sb, v)
        }
        sb.append(']')
    }

    /** A map's entries in JavaScript's property order: integer-like keys ascending, then the rest. */
    private fun jsOrder(map: Map<*, *>): List<Pair<String, Any?>> {
        val entries = map.entries.map { (k, v) ->
            if (k !is String) throw TinyBaseException(Status.INVALID_SHAPE, "object keys must be strings, not ${typeName(k)}")
            k to v
        }
        if (entries.none { integerKey(it.first) >= 0 }) return entries
        return entries.sortedBy { val n = integerKey(it.first); if (n >= 0) n else Long.MAX_VALUE }
    }

    /** The array index [key] denotes (canonical decimal below 2^32 - 1), or -1. */
    private fun integerKey(key: String): Long {
        if (key.isEmpty() || key.length > 10 || (key[0] == '0' && key.length > 1)) return -1
        for (c in key) if (c !in '0'..'9') return -1
        val n = key.toLong()
        return if (n <= 4_294_967_294L) n else -1
    }

    private fun number(sb: StringBuilder, n: Number) {
        when (n) {
            is Int, is Long, is Short, is Byte -> {
                val l = n.toLong()
                if (Math.abs(l) < 1L shl 53) sb.append(l) else sb.append(jsNumber(l.toDouble()))
            }
            else -> {
                val d = n.toDouble()
                if (!d.isFinite()) throw TinyBaseException(Status.INVALID_VALUE, "number $d is not finite")
                sb.append(jsNumber(d))
            }
        }
    }

    /** JavaScript's Number-to-String of a finite double (the shortest digits that read back as it). */
    fun jsNumber(d: Double): String {
        if (d == 0.0) return "0"
        if (d == Math.rint(d) && Math.abs(d) < 1e15) return d.toLong().toString()
        val abs = Math.abs(d)
        val exact = java.math.BigDecimal(abs)
        var r = exact
        for (p in 1..17) {
            r = exact.round(java.math.MathContext(p, java.math.RoundingMode.HALF_EVEN))
            if (r.toDouble() == abs) break
        }
        r = r.stripTrailingZeros()
        val digits = r.unscaledValue().toString()
        val k = digits.length
        val n = k - r.scale() // the value is 0.digits * 10^n
        val out = when {
            n in k..21 -> digits + "0".repeat(n - k)
            n in 1..21 -> digits.substring(0, n) + "." + digits.substring(n)
            n in -5..0 -> "0." + "0".repeat(-n) + digits
            else -> {
                val e = n - 1
                val mantissa = if (k == 1) digits else digits[0] + "." + digits.substring(1)
                mantissa + "e" + (if (e >= 0) "+" else "-") + Math.abs(e)
            }
        }
        return if (d < 0) "-$out" else out
    }

    /** Appends [s] as `JSON.stringify` writes a string (lone surrogates are kept: [cstr] refuses them). */
    fun quote(sb: StringBuilder, s: String) {
        sb.append('"')
        for (c in s) {
            when {
                c == '"' -> sb.append("\\\"")
                c == '\\' -> sb.append("\\\\")
                c == '\b' -> sb.append("\\b")
                c == '\u000c' -> sb.append("\\f")
                c == '\n' -> sb.append("\\n")
                c == '\r' -> sb.append("\\r")
                c == '\t' -> sb.append("\\t")
                c < ' ' -> sb.append("\\u00").append(HEX[c.code shr 4]).append(HEX[c.code and 15])
                else -> sb.append(c)
            }
        }
        sb.append('"')
    }

    private const val HEX = "0123456789abcdef"

    private fun typeName(v: Any?): String = if (v == null) "null" else v::class.java.name
}
