package org.tinybase

import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.atomic.AtomicInteger
import kotlin.test.assertEquals
import kotlin.test.fail

/** The content `[tables, values]`, parsed (maps compare regardless of key order). */
internal fun Store.contentTree(): Any? = TestJson.parse(getContentJson())

/** Runs [block] with these objects, then closes them all whatever happens (as `use`). */
internal inline fun <C : AutoCloseable, T> List<C>.useAll(block: (List<C>) -> T): T {
    try {
        return block(this)
    } finally {
        forEach { runCatching { it.close() } }
    }
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
    waitUntil(seconds) { stores.map { it.getMergeableContentHashesJson() }.toSet().size == 1 }
    for (s in stores.drop(1)) {
        assertEquals(stores[0].contentTree(), s.contentTree(), "content")
        assertEquals(stores[0].getMergeableContentHashesJson(), s.getMergeableContentHashesJson(), "hashes")
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

/**
 * JSON for the sync tests, over the binding's own reader and writer: whole documents as maps
 * and lists, and the raw text of an object's members or an array's elements (forwarded
 * verbatim between a peer's line protocol and a synchronizer).
 */
internal object TestJson {
    /** Parses [s] into maps, lists, strings, doubles, booleans and null. */
    fun parse(s: String): Any? = JsonReader(s).document()

    /** The raw text of each member of the object [s]. */
    fun members(s: String): Map<String, String> {
        val r = JsonReader(s)
        val out = LinkedHashMap<String, String>()
        r.ws()
        r.obj { key -> out[key] = raw(r, s) }
        return out
    }

    /** The raw text of each element of the array [s]. */
    fun elements(s: String): List<String> {
        val r = JsonReader(s)
        val out = ArrayList<String>()
        r.ws()
        r.arr { out.add(raw(r, s)) }
        return out
    }

    private fun raw(r: JsonReader, s: String): String {
        r.ws()
        val start = r.i
        r.value()
        return s.substring(start, r.i)
    }

    /** [s] as a JSON string literal. */
    fun quote(s: String): String = JsonWriter.write(s)
}
