package org.tinybase

import com.sun.jna.Callback
import com.sun.jna.CallbackThreadInitializer
import com.sun.jna.Native
import com.sun.jna.NativeLibrary
import com.sun.jna.Pointer
import java.io.File
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicLong

/** The version of the native library this binding was written for (Cargo.toml's version). */
public const val BINDING_VERSION: String = "0.1.0"

/**
 * Finds and opens libtinybase once per process.
 *
 * Order: the system property `tinybase.library.path` or the environment variable
 * `TINYBASE_LIBRARY` (a file), else JNA's search for "tinybase": `jna.library.path`, the
 * system's library paths, then the jar's own `linux-x86-64/libtinybase.so` resource (and
 * an app's `jniLibs` on Android).
 */
internal object TinyBaseLibrary {
    /** The opened library, shared by every direct-mapped object (Lib, and the others). */
    val library: NativeLibrary = open()

    private fun open(): NativeLibrary {
        val explicit = System.getProperty("tinybase.library.path")?.takeIf { it.isNotEmpty() }
            ?: System.getenv("TINYBASE_LIBRARY")?.takeIf { it.isNotEmpty() }
        val lib = if (explicit != null) {
            val file = File(explicit)
            if (!file.isFile) {
                throw UnsatisfiedLinkError(
                    "tinybase: $explicit (from tinybase.library.path or TINYBASE_LIBRARY) is not a file",
                )
            }
            NativeLibrary.getInstance(file.absolutePath)
        } else {
            NativeLibrary.getInstance("tinybase")
        }
        val version = lib.getFunction("tb_version").invokeString(emptyArray(), false)
        if (version != BINDING_VERSION) {
            throw UnsatisfiedLinkError(
                "tinybase: the native library ${lib.file ?: lib.name} is version $version, but this " +
                    "binding needs $BINDING_VERSION: rebuild the library (cargo build --release) or use " +
                    "the jar built with it, and check tinybase.library.path / TINYBASE_LIBRARY",
            )
        }
        return lib
    }
}

/** A status of the C API (tb_status), carried by every [TinyBaseException]. */
public enum class Status(
    /** The C value (TB_OK = 0, TB_ERROR_NULL_PARAMETER = 1, ...). */
    public val code: Int,
) {
    /** Success. */
    OK(0),
    /** A required argument was missing (or an object was used after close()). */
    NULL_PARAMETER(1),
    /** A string was not valid UTF-8 (a lone surrogate in a Kotlin string). */
    INVALID_UTF8(2),
    /** JSON text was malformed or too large or deep. */
    INVALID_JSON(3),
    /** Not a valid cell or value (NaN, an infinity, a reserved string...). */
    INVALID_VALUE(4),
    /** Valid JSON without the expected shape. */
    INVALID_SHAPE(5),
    /** A malformed HLC, or one too far in the future. */
    INVALID_HLC(6),
    /** Not allowed in the current state. */
    INVALID_STATE(7),
    /** An argument out of range. */
    INVALID_ARGUMENT(8),
    /** An internal error was caught at the boundary; nothing changed. */
    PANIC(9),
    /** Persistence: reading or writing the storage failed. */
    IO(10),
    /** Persistence: the stored data cannot be loaded (it is kept as it is). */
    CORRUPT(11),
    ;

    public companion object {
        /** The Status for a C value ([PANIC] for a value this binding does not know). */
        public fun of(code: Int): Status = entries.firstOrNull { it.code == code } ?: PANIC
    }
}

/** An error from the native library: its [status] and message. Nothing was changed. */
public open class TinyBaseException(
    /** Which kind of error (the C tb_status). */
    public val status: Status,
    message: String,
) : RuntimeException(message)

/** Persistence I/O failed (a file, a database, a lock held too long): [Status.IO]. */
public class StorageException(message: String) : TinyBaseException(Status.IO, message)

/** Stored data cannot be loaded and was left as it is: [Status.CORRUPT]. */
public class CorruptDataException(message: String) : TinyBaseException(Status.CORRUPT, message)

/** The exception for a failed C call, with the calling thread's last error message. */
internal fun failure(code: Int): TinyBaseException {
    val message = Lib.tb_last_error_message() ?: ""
    return when (val status = Status.of(code)) {
        Status.IO -> StorageException(message)
        Status.CORRUPT -> CorruptDataException(message)
        else -> TinyBaseException(status, message)
    }
}

/** Throws the matching [TinyBaseException] unless [code] is TB_OK. */
@Suppress("NOTHING_TO_INLINE")
internal inline fun check(code: Int) {
    if (code != 0) throw failure(code)
}

/**
 * A Kotlin string as NUL-terminated UTF-8 for the C API. A lone surrogate (which UTF-8
 * cannot carry) is refused with [Status.INVALID_UTF8] rather than replaced, and a NUL
 * character (which would silently cut the C string short: another id, another file) with
 * [Status.INVALID_ARGUMENT]. String cells holding NUL go as JSON text instead (Store.setCell).
 */
internal fun cstr(s: String): ByteArray {
    val n = s.length
    val ascii = ByteArray(n + 1)
    if (copyAscii(s, ascii, 0) == n) return ascii
    if (s.indexOf('\u0000') >= 0) throw nulRefused()
    val encoder = Charsets.UTF_8.newEncoder()
        .onMalformedInput(java.nio.charset.CodingErrorAction.REPORT)
        .onUnmappableCharacter(java.nio.charset.CodingErrorAction.REPORT)
    val buf = try {
        encoder.encode(java.nio.CharBuffer.wrap(s))
    } catch (e: java.nio.charset.CharacterCodingException) {
        throw TinyBaseException(Status.INVALID_UTF8, "string is not valid Unicode (a lone surrogate): ${e.message}")
    }
    val out = ByteArray(buf.remaining() + 1)
    buf.get(out, 0, buf.remaining())
    return out
}

/**
 * Copies the leading ASCII characters of [s] into [dst] from [offset] (one byte each) and
 * returns how many there were ([s].length when it is all ASCII). A NUL among them is refused.
 */
internal fun copyAscii(s: String, dst: ByteArray, offset: Int): Int {
    for (i in 0 until s.length) {
        val c = s[i].code
        if (c == 0) throw nulRefused()
        if (c >= 0x80) return i
        dst[offset + i] = c.toByte()
    }
    return s.length
}

/** The error for a NUL character in a string the C API reads up to its first NUL. */
internal fun nulRefused(): TinyBaseException =
    TinyBaseException(Status.INVALID_ARGUMENT, "a string contains a NUL character, which the C API cannot carry")

/** [cstr], or null (NULL in C: "any" for ids, "none" for options). */
internal fun cstrOrNull(s: String?): ByteArray? = s?.let(::cstr)

/** Reads a NUL-terminated UTF-8 string the library returned, then frees it (tb_string_free). */
internal fun takeString(p: Pointer?): String? {
    if (p == null) return null
    try {
        return p.getString(0, "UTF-8")
    } finally {
        Lib.tb_string_free(p)
    }
}

/** Reads a borrowed NUL-terminated UTF-8 string (not freed). */
internal fun borrowedString(p: Pointer?): String? = p?.getString(0, "UTF-8")

/**
 * Host objects that native code may call back, by id: the C side holds only the id (as its
 * `user_data`), never a JVM reference, and the entry stays until the library calls
 * [RELEASE] for it. So a callback is strongly referenced exactly as long as native code can
 * call it, and a bad or late id finds nothing instead of a freed object.
 */
internal object Callbacks {
    private val next = AtomicLong(1)
    private val map = ConcurrentHashMap<Long, Any>()

    /** Registers [obj]; pass the returned pointer as `user_data` and [RELEASE] as `release`. */
    fun register(obj: Any): Pointer {
        val id = next.getAndIncrement()
        map[id] = obj
        return Pointer(id)
    }

    /** The object registered under [userData] (null once released). */
    fun get(userData: Pointer?): Any? = userData?.let { map[Pointer.nativeValue(it)] }

    /** Forgets [userData] without waiting for the library (when a registering call failed). */
    fun unregister(userData: Pointer) {
        map.remove(Pointer.nativeValue(userData))
    }

    /** How many host objects native code can still call (tests: back to its start value). */
    fun count(): Int = map.size

    /** The C `tb_release_fn` signature. */
    fun interface ReleaseFn : Callback {
        fun invoke(userData: Pointer?)
    }

    /** The one release callback for every registration: drops the entry. */
    val RELEASE: ReleaseFn = ReleaseFn { userData -> userData?.let(::unregister) }.also(::keepAttached)

    /**
     * Native threads (a synchronizer's worker, a persister's) that call into the JVM stay
     * attached as daemon threads instead of attaching and detaching on every callback.
     */
    fun keepAttached(cb: Callback) {
        Native.setCallbackThreadInitializer(cb, CallbackThreadInitializer(true, false, "tinybase-native"))
    }
}

@Volatile
private var callbackExceptionHandler: ((Throwable) -> Unit)? = null

/**
 * Sets where exceptions thrown by host callbacks (listeners, transports, hooks) go: they
 * cannot cross into native code, so the callback returns normally and the exception is
 * handed to [handler] (null: printed to stderr, the default). Returns the previous handler.
 */
public fun setCallbackExceptionHandler(handler: ((Throwable) -> Unit)?): ((Throwable) -> Unit)? {
    val previous = callbackExceptionHandler
    callbackExceptionHandler = handler
    return previous
}

/** Runs a host callback's body; an exception goes to the handler instead of native code. */
internal inline fun guardCallback(block: () -> Unit) {
    try {
        block()
    } catch (t: Throwable) {
        reportCallbackException(t)
    }
}

/** Hands [t] to the callback exception handler (never throws). */
internal fun reportCallbackException(t: Throwable) {
    try {
        val handler = callbackExceptionHandler
        if (handler != null) handler(t) else t.printStackTrace()
    } catch (_: Throwable) {
        // The handler itself failed: nothing more can be done on a native thread.
    }
}
