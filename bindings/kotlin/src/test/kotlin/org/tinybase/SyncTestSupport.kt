package org.tinybase

import com.sun.jna.Native
import com.sun.jna.Pointer
import com.sun.jna.ptr.PointerByReference
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.atomic.AtomicInteger
import kotlin.test.assertEquals
import kotlin.test.fail

/**
 * The few store functions the synchronizer tests need (write a cell, read content and hashes),
 * bound here so that these tests do not depend on the data API's branch.
 */
@Suppress("FunctionName")
internal object SyncTestLib {
    init {
        Native.register(SyncTestLib::class.java, TinyBaseLibrary.library)
    }

    @JvmStatic external fun tb_store_set_cell_json(store: Pointer, t: ByteArray, r: ByteArray, c: ByteArray, json: ByteArray): Int

    @JvmStatic external fun tb_store_del_cell(store: Pointer, t: ByteArray, r: ByteArray, c: ByteArray): Int

    @JvmStatic external fun tb_store_get_content_json(store: Pointer, out: PointerByReference): Int

    @JvmStatic external fun tb_mergeable_store_get_mergeable_content_hashes_json(store: Pointer, out: PointerByReference): Int
}

internal fun Store.put(table: String, row: String, cell: String, json: String) {
    withStore { check(SyncTestLib.tb_store_set_cell_json(it, cstr(table), cstr(row), cstr(cell), cstr(json))) }
}

internal fun Store.remove(table: String, row: String, cell: String) {
    withStore { check(SyncTestLib.tb_store_del_cell(it, cstr(table), cstr(row), cstr(cell))) }
}

/** The content `[tables, values]`, parsed (maps compare regardless of key order). */
internal fun Store.content(): Any? = withStore { p ->
    val out = PointerByReference()
    check(SyncTestLib.tb_store_get_content_json(p, out))
    TestJson.parse(takeString(out.value)!!)
}

internal fun MergeableStore.hashes(): String = withMergeable { p ->
    val out = PointerByReference()
    check(SyncTestLib.tb_mergeable_store_get_mergeable_content_hashes_json(p, out))
    takeString(out.value)!!
}

/** Polls [cond] every few milliseconds until it holds or [seconds] passed. */
internal fun waitUntil(seconds: Double = 20.0, cond: () -> Boolean): Boolean {
    val end = System.nanoTime() + (seconds * 1e9).toLong()
    while (System.nanoTime() < end) {
        if (cond()) return true
        Thread.sleep(5)
    }
    return cond()
}

/** Waits until every store has the same hashes, then asserts equal content and hashes. */
internal fun assertConverge(vararg stores: MergeableStore, seconds: Double = 20.0) {
    waitUntil(seconds) { stores.map { it.hashes() }.toSet().size == 1 }
    for (s in stores.drop(1)) {
        assertEquals(stores[0].content(), s.content(), "content")
        assertEquals(stores[0].hashes(), s.hashes(), "hashes")
    }
}

/** Starts every synchronizer at once (startSync blocks until its first load). */
internal fun startAll(vararg syncs: Synchronizer) {
    val threads = syncs.map { s -> Thread { s.startSync() }.apply { start() } }
    threads.forEach { it.join(30_000) }
}

/**
 * A star of custom-transport peers in this process: every peer's inbound payloads go to its
 * own queue, drained by its own thread that calls receive (as a network would deliver).
 */
internal class Net(private val framed: Boolean = false) : AutoCloseable {
    private class Peer(val sync: CustomSynchronizer, val queue: LinkedBlockingQueue<Pair<String, String>>, val thread: Thread)

    private val peers = java.util.concurrent.ConcurrentHashMap<String, Peer>()
    private val inFlight = AtomicInteger()
    private val stop = "\u0000stop"

    /** Frames sent so far (framed nets). */
    val frames: MutableList<String> = java.util.Collections.synchronizedList(ArrayList())

    private fun deliver(sender: String, to: String?, payload: String) {
        for ((name, peer) in peers) {
            if (name == sender || (to != null && to != name)) continue
            inFlight.incrementAndGet()
            peer.queue.put(sender to payload)
        }
    }

    fun add(name: String, store: MergeableStore, options: SynchronizerOptions = SynchronizerOptions(requestTimeoutSeconds = 0.5)): CustomSynchronizer {
        val sync = if (framed) {
            CustomSynchronizer.framed(store, options) { frame ->
                frames.add(frame)
                val nl = frame.indexOf('\n')
                val to = frame.substring(0, nl)
                deliver(name, to.ifEmpty { null }, frame.substring(nl + 1))
            }
        } else {
            CustomSynchronizer(store, options) { to, payload -> deliver(name, to, payload) }
        }
        val queue = LinkedBlockingQueue<Pair<String, String>>()
        val thread = Thread({
            while (true) {
                val (from, payload) = queue.take()
                if (from == stop) return@Thread
                try {
                    if (framed) sync.receiveFramed("$from\n$payload") else sync.receive(from, payload)
                } finally {
                    inFlight.decrementAndGet()
                }
            }
        }, "net-$name")
        peers[name] = Peer(sync, queue, thread)
        thread.start()
        return sync
    }

    /** Until nothing is in a queue and every synchronizer stayed idle for a few checks. */
    fun settle(seconds: Double = 15.0): Boolean {
        var quiet = 0
        return waitUntil(seconds) {
            if (inFlight.get() == 0 && peers.values.all { it.sync.isIdle() }) quiet++ else quiet = 0
            quiet >= 5
        }
    }

    /** Takes peer [name] off the net and closes its synchronizer. */
    fun remove(name: String) {
        val p = peers.remove(name) ?: return
        p.queue.put(stop to "")
        p.thread.join(5_000)
        p.sync.close()
    }

    override fun close() {
        for (p in peers.values) p.queue.put(stop to "")
        for (p in peers.values) {
            p.thread.join(5_000)
            p.sync.close()
        }
        peers.clear()
    }
}

/** A small JSON reader for the tests (no JSON library on the classpath). */
internal object TestJson {
    /** Parses [s] into maps, lists, strings, doubles, booleans and null. */
    fun parse(s: String): Any? {
        val r = Reader(s)
        val v = r.value()
        r.ws()
        if (r.i != s.length) fail("trailing text in JSON: $s")
        return v
    }

    /** The raw text of each member of the object [s] (values forwarded verbatim). */
    fun members(s: String): Map<String, String> {
        val r = Reader(s)
        val out = LinkedHashMap<String, String>()
        r.ws()
        r.expect('{')
        r.ws()
        if (r.peek() == '}') return out
        while (true) {
            r.ws()
            val key = r.string()
            r.ws()
            r.expect(':')
            r.ws()
            val start = r.i
            r.value()
            out[key] = s.substring(start, r.i)
            r.ws()
            if (r.next() == '}') return out
        }
    }

    /** The raw text of each element of the array [s]. */
    fun elements(s: String): List<String> {
        val r = Reader(s)
        val out = ArrayList<String>()
        r.ws()
        r.expect('[')
        r.ws()
        if (r.peek() == ']') return out
        while (true) {
            r.ws()
            val start = r.i
            r.value()
            out.add(s.substring(start, r.i))
            r.ws()
            if (r.next() == ']') return out
        }
    }

    /** [s] as a JSON string literal. */
    fun quote(s: String): String = buildString {
        append('"')
        for (c in s) {
            when {
                c == '"' -> append("\\\"")
                c == '\\' -> append("\\\\")
                c < ' ' -> append("\\u%04x".format(c.code))
                else -> append(c)
            }
        }
        append('"')
    }

    private class Reader(val s: String) {
        var i = 0

        fun peek(): Char = if (i < s.length) s[i] else fail("unexpected end of JSON: $s")

        fun next(): Char = peek().also { i++ }

        fun expect(c: Char) {
            if (next() != c) fail("expected '$c' at ${i - 1} in $s")
        }

        fun ws() {
            while (i < s.length && s[i].isWhitespace()) i++
        }

        fun value(): Any? = when (peek()) {
            '{' -> {
                next()
                val m = LinkedHashMap<String, Any?>()
                ws()
                if (peek() == '}') {
                    next()
                } else {
                    while (true) {
                        ws()
                        val k = string()
                        ws()
                        expect(':')
                        ws()
                        m[k] = value()
                        ws()
                        if (next() == '}') break
                    }
                }
                m
            }
            '[' -> {
                next()
                val l = ArrayList<Any?>()
                ws()
                if (peek() == ']') {
                    next()
                } else {
                    while (true) {
                        ws()
                        l.add(value())
                        ws()
                        if (next() == ']') break
                    }
                }
                l
            }
            '"' -> string()
            't' -> literal("true", true)
            'f' -> literal("false", false)
            'n' -> literal("null", null)
            else -> {
                val start = i
                while (i < s.length && s[i] in "+-0123456789.eE") i++
                s.substring(start, i).toDouble()
            }
        }

        fun literal(word: String, v: Any?): Any? {
            if (!s.startsWith(word, i)) fail("bad literal at $i in $s")
            i += word.length
            return v
        }

        fun string(): String {
            expect('"')
            val b = StringBuilder()
            while (true) {
                when (val c = next()) {
                    '"' -> return b.toString()
                    '\\' -> when (val e = next()) {
                        'n' -> b.append('\n')
                        't' -> b.append('\t')
                        'r' -> b.append('\r')
                        'b' -> b.append('\b')
                        'f' -> b.append('\u000c')
                        'u' -> {
                            b.append(s.substring(i, i + 4).toInt(16).toChar())
                            i += 4
                        }
                        else -> b.append(e)
                    }
                    else -> b.append(c)
                }
            }
        }
    }
}
