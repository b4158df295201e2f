package org.tinybase

import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import java.io.File
import java.util.Collections
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.CountDownLatch
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import kotlin.test.assertEquals
import kotlin.test.assertTrue
import kotlin.test.fail

/**
 * A peer process speaking the line protocol of tests/interop/sync (README there) on its
 * stdin/stdout: the Rust peer (examples/sync_peer.rs) or the Python one
 * (bindings/python/tests/sync_peer.py). It is the custom transport of a Kotlin synchronizer:
 * what Kotlin sends becomes a `msg` line to the peer, the peer's `msg` lines are received.
 */
internal class LinePeer(command: List<String>, private val peerId: String, store: MergeableStore) : AutoCloseable {
    private val proc: Process = ProcessBuilder(command)
        .redirectError(ProcessBuilder.Redirect.INHERIT)
        .apply { environment()["TINYBASE_LIBRARY"] = File("../../target/release/libtinybase.so").absolutePath }
        .start()
    private val stdin = proc.outputStream.bufferedWriter(Charsets.UTF_8)
    private val ids = AtomicInteger()
    private val answers = ConcurrentHashMap<String, LinkedBlockingQueue<Pair<Boolean, String>>>()
    private val ready = CountDownLatch(1)

    /** The peer's ignored errors. */
    val ignoredErrors: MutableList<String> = Collections.synchronizedList(ArrayList())

    /** The Kotlin side: its messages go to the peer as `msg` lines. */
    val sync = CustomSynchronizer(store, SynchronizerOptions(requestTimeoutSeconds = 1.0)) { _, payload ->
        val (requestId, message, body) = TestJson.elements(payload)
        write("""{"type":"msg","from":"kotlin","requestId":$requestId,"message":$message,"body":$body}""")
    }

    private val reader = Thread({
        try {
            readLines()
        } catch (_: java.io.IOException) {
            // The process was stopped: its stdout closed under the reader.
        }
    }, "peer-$peerId").apply {
        isDaemon = true
        start()
    }

    private fun readLines() {
        proc.inputStream.bufferedReader(Charsets.UTF_8).forEachLine { line ->
            if (line.isBlank()) return@forEachLine
            val m = TestJson.members(line)
            when (TestJson.parse(m["type"]!!)) {
                "ready" -> ready.countDown()
                "msg" -> sync.receive(peerId, "[${m["requestId"]},${m["message"]},${m["body"]}]")
                "result" -> answer(m["id"]!!).put(true to m["value"]!!)
                "error" -> answer(m["id"]!!).put(false to m["message"]!!)
                "log" -> m["error"]?.let { ignoredErrors.add(it) }
            }
        }
    }

    init {
        if (!ready.await(30, TimeUnit.SECONDS)) {
            close()
            fail("the peer $command did not say ready")
        }
    }

    private fun answer(id: String) = answers.computeIfAbsent(id) { LinkedBlockingQueue() }

    private fun write(line: String) {
        synchronized(stdin) {
            stdin.write(line)
            stdin.write("\n")
            stdin.flush()
        }
    }

    /** Sends a command; returns a function that waits for its answer (the raw JSON value). */
    fun command(op: String, argsJson: String = "[]"): () -> String {
        val id = ids.incrementAndGet().toString()
        write("""{"type":"cmd","id":$id,"op":${TestJson.quote(op)},"args":$argsJson}""")
        return {
            val (ok, value) = answer(id).poll(30, TimeUnit.SECONDS) ?: fail("the peer did not answer $op")
            if (!ok) fail("the peer failed $op: $value")
            value
        }
    }

    /** Runs a command and waits for its answer. */
    fun call(op: String, argsJson: String = "[]"): String = command(op, argsJson)()

    override fun close() {
        try {
            sync.close()
            runCatching { write("""{"type":"cmd","id":0,"op":"exit","args":[]}""") }
            runCatching { stdin.close() }
            if (!proc.waitFor(5, TimeUnit.SECONDS)) proc.destroyForcibly().waitFor(5, TimeUnit.SECONDS)
        } finally {
            proc.destroyForcibly()
            reader.join(5_000)
        }
    }
}

/** Sync between languages: a Kotlin store and a Rust or Python store over a custom transport. */
class InteropSyncTest : LeakCheckedTest() {
    private fun converge(kotlin: MergeableStore, peer: LinePeer) {
        waitUntil(20.0) { TestJson.parse(kotlin.getMergeableContentHashesJson()) == TestJson.parse(peer.call("getMergeableContentHashes")) }
        assertEquals(TestJson.parse(peer.call("getMergeableContentHashes")), TestJson.parse(kotlin.getMergeableContentHashesJson()), "hashes")
        assertEquals(TestJson.parse(peer.call("getContent")), kotlin.contentTree(), "content")
    }

    private fun withPeer(command: List<String>) {
        val now = System.currentTimeMillis().toString()
        MergeableStore("kotlin").use { k ->
            LinePeer(command + listOf("--unique-id", "peer", "--now", now, "--timeout", "1"), "peer", k).use { peer ->
                k.setCellJson("pets", "fido", "species", "\"dog\"")
                k.setCellJson("pets", "fido", "toy", "{\"kind\":\"ball\",\"sizes\":[1,2]}")
                peer.call("setCell", """["pets","felix","species","cat"]""")
                peer.call("setValue", """["open",true]""")
                // Both start at once (each start waits for its first load).
                val peerStarted = peer.command("startSync")
                peer.sync.startSync()
                peerStarted()
                converge(k, peer)
                assertEquals("dog", (((k.contentTree() as List<*>)[0] as Map<*, *>)["pets"] as Map<*, *>).let { ((it["fido"] as Map<*, *>)["species"]) })
                // Edits while syncing, on both sides, a deletion included.
                val writer = Thread { repeat(20) { k.setCellJson("kotlin", "r$it", "c", "$it") } }.apply { start() }
                repeat(10) { peer.call("setCell", """["peer","r$it","c","v$it"]""") }
                writer.join()
                k.delCell("pets", "felix", "species")
                converge(k, peer)
                val tables = (k.contentTree() as List<*>)[0] as Map<*, *>
                assertEquals(20, (tables["kotlin"] as Map<*, *>).size)
                assertEquals(10, (tables["peer"] as Map<*, *>).size)
                assertEquals(setOf("fido"), (tables["pets"] as Map<*, *>).keys)
                // Nothing the peer refused (a request timing out on a busy machine is harmless).
                assertEquals(listOf<String>(), peer.ignoredErrors.filterNot { TestJson.parse(it).toString().startsWith("tinybase:3:") })
            }
        }
    }

    @Test
    fun kotlinAndRustStoresConverge() {
        withPeer(listOf(releaseBinary("examples/sync_peer", "TB_SYNC_PEER_BIN").path))
    }

    @Test
    fun kotlinAndPythonStoresConverge() {
        val script = File("../python/tests/sync_peer.py")
        assertTrue(script.isFile, "${script.absolutePath} is missing")
        withPeer(listOf(System.getenv("PYTHON")?.takeIf { it.isNotEmpty() } ?: "python3", script.path))
    }
}
