package org.tinybase

import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.CoroutineStart
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import java.io.File
import java.net.ServerSocket
import java.nio.file.Files
import java.util.Collections
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue
import kotlin.test.fail

/** A path under the repository's target/release (a program the tests run), or a clear failure. */
internal fun releaseBinary(name: String, env: String): File {
    val path = System.getenv(env)?.takeIf { it.isNotEmpty() } ?: "../../target/release/$name"
    val file = File(path)
    if (!file.canExecute()) {
        fail("${file.absolutePath} is missing: build it first (cargo build --release -p tinybase-server / --example sync_peer) or set $env")
    }
    return file
}

/** tinybase-server on 127.0.0.1; [start] waits for its `listening` line. */
internal class TbServer : AutoCloseable {
    private val bin = releaseBinary("tinybase-server", "TB_SERVER_BIN")
    private val data = Files.createTempDirectory("tb-ws-kotlin-").toFile()
    private var proc: Process? = null

    /** The port it listens on. */
    var port = 0
        private set

    /** Starts it on [port] (0: a free one) and returns the port. */
    fun start(port: Int = 0): Int {
        val p = ProcessBuilder(bin.path, "--listen", "127.0.0.1:$port", "--data", data.path)
            .redirectError(ProcessBuilder.Redirect.DISCARD)
            .start()
        proc = p
        val lines = LinkedBlockingQueue<String>()
        Thread({
            // Also keeps the pipe drained for the server's life.
            p.inputStream.bufferedReader().forEachLine { lines.put(it) }
            lines.put("\u0000eof")
        }, "tb-server-out").apply {
            isDaemon = true
            start()
        }
        val end = System.nanoTime() + 30_000_000_000L
        while (System.nanoTime() < end) {
            val line = lines.poll(end - System.nanoTime(), TimeUnit.NANOSECONDS) ?: break
            if (line == "\u0000eof") break
            if ("listening" in line) {
                this.port = Regex("\\d+").findAll(line).last().value.toInt()
                return this.port
            }
        }
        stop()
        fail("tinybase-server printed no listening line")
    }

    fun url(path: String): String = "ws://127.0.0.1:$port$path"

    fun stop() {
        proc?.let {
            it.destroyForcibly()
            it.waitFor(10, TimeUnit.SECONDS)
        }
        proc = null
    }

    override fun close() {
        stop()
        data.deleteRecursively()
    }
}

/** WebSocket synchronizers through a tinybase-server this class starts (and always stops). */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class WsSyncTest : LeakCheckedTest() {
    private lateinit var server: TbServer
    private val fast = SynchronizerOptions(requestTimeoutSeconds = 2.0)
    private val backoff = WsOptions(reconnectMinSeconds = 0.05, reconnectMaxSeconds = 0.5)

    @BeforeAll
    fun startServer() {
        server = TbServer()
        try {
            server.start()
        } catch (t: Throwable) {
            server.close()
            throw t
        }
    }

    @AfterAll
    fun stopServer() {
        server.close()
    }

    private fun cell(s: Store, t: String, r: String, c: String): Any? =
        (((((s.contentTree() as List<*>)[0] as Map<*, *>)[t] as? Map<*, *>)?.get(r)) as? Map<*, *>)?.get(c)

    @Test
    fun twoStoresConvergeThroughTheServer() {
        val statuses = Collections.synchronizedList(ArrayList<SyncStatusInfo>())
        MergeableStore("wa").use { a ->
            MergeableStore("wb").use { b ->
                a.setCellJson("t", "before", "c", "\"from a\"")
                val sa = WsSynchronizer(a, server.url("/kt-legacy"), fast.copy(onStatus = { statuses.add(it) }), backoff.copy(headers = mapOf("X-Test" to "kotlin"), authToken = "secret"))
                val sb = WsSynchronizer(b, server.url("/kt-legacy"), fast, backoff.copy(reconnect = false))
                sa.use {
                    sb.use {
                        assertEquals(ConnectionState.OPEN, sb.getConnection().state) // reconnect = false waited for it
                        assertTrue(waitUntil { sa.getConnection().state == ConnectionState.OPEN })
                        startAll(sa, sb)
                        assertTrue(waitUntil { cell(b, "t", "before", "c") == "from a" })
                        b.setCellJson("t", "after", "c", "\"from b\"")
                        assertTrue(waitUntil { cell(a, "t", "after", "c") == "from b" })
                        assertConverge(a, b)
                        assertTrue(sa.waitForIdle(10.0))
                        val stats = sa.getSynchronizerStats()
                        assertTrue(stats.sends > 0 && stats.receives > 0)
                        assertTrue(statuses.any { it.connection.state == ConnectionState.OPEN })
                        sa.destroy()
                        assertEquals(Connection(ConnectionState.CLOSED, 1000, sa.getConnection().closeReason), sa.getConnection())
                        assertEquals(Status.INVALID_STATE, assertFailsWith<TinyBaseException> { sa.startSync() }.status)
                    }
                }
                assertTrue(sa.isClosed && sb.isClosed)
            }
        }
    }

    @Test
    fun aWsClientCarriesTwoStoresOverOneSocket() {
        listOf("x1", "x2", "y1", "y2").map { MergeableStore(it) }.useAll { (x1, x2, y1, y2) ->
            WsClient(server.url("/kt-mux"), backoff).use { cx ->
                WsClient(server.url("/kt-mux"), backoff.copy(reconnect = false)).use { cy ->
                    val syncs = listOf(
                        cx.createSynchronizer(x1, "one", fast),
                        cx.createSynchronizer(x2, "two", fast),
                        cy.createSynchronizer(y1, "one", fast),
                        cy.createSynchronizer(y2, "two", fast),
                    )
                    try {
                        assertTrue(waitUntil { cx.getConnection().state == ConnectionState.OPEN })
                        MergeableStore().use { other -> assertFailsWith<TinyBaseException> { cx.createSynchronizer(other, "one") } }
                        startAll(*syncs.toTypedArray())
                        x1.setCellJson("one", "r", "c", "\"channel one\"")
                        x2.setCellJson("two", "r", "c", "\"channel two\"")
                        assertTrue(waitUntil { cell(y1, "one", "r", "c") == "channel one" })
                        assertTrue(waitUntil { cell(y2, "two", "r", "c") == "channel two" })
                        y2.setCellJson("two", "back", "c", "true")
                        assertTrue(waitUntil { cell(x2, "two", "back", "c") == true })
                        assertConverge(x1, y1)
                        assertConverge(x2, y2)
                        Thread.sleep(200)
                        // Channels are separate: nothing of one reached the other.
                        for (st in listOf(x1, y1)) assertEquals(setOf("one"), ((st.contentTree() as List<*>)[0] as Map<*, *>).keys)
                        for (st in listOf(x2, y2)) assertEquals(setOf("two"), ((st.contentTree() as List<*>)[0] as Map<*, *>).keys)
                    } finally {
                        syncs.forEach { it.close() }
                    }
                    // Every synchronizer gone: the shared socket closes.
                    assertTrue(waitUntil { cx.getConnection().state in setOf(ConnectionState.CLOSED, ConnectionState.NONE) })
                }
            }
        }
    }

    @Test
    fun aServerRestartReconnects() = runBlocking {
        TbServer().use { own ->
            own.start()
            MergeableStore("ra").use { a ->
                MergeableStore("rb").use { b ->
                    val url = own.url("/kt-reconnect")
                    val opts = fast.copy(antiEntropySeconds = 0.5)
                    WsSynchronizer(a, url, opts, backoff).use { sa ->
                        WsSynchronizer(b, url, opts, backoff).use { sb ->
                            startAll(sa, sb)
                            a.setCellJson("t", "one", "c", "1")
                            assertTrue(waitUntil { cell(b, "t", "one", "c") == 1.0 })
                            val lost = async(Dispatchers.Default, start = CoroutineStart.UNDISPATCHED) {
                                withTimeout(20_000) { sa.statusFlow().first { it.connection.state != ConnectionState.OPEN } }
                            }
                            val port = own.port
                            own.stop()
                            val info = lost.await()
                            assertTrue(info.connection.state in setOf(ConnectionState.CLOSED, ConnectionState.CONNECTING))
                            b.setCellJson("t", "two", "c", "2") // while the server is down
                            assertEquals(port, own.start(port))
                            assertTrue(waitUntil(15.0) { sa.getConnection().state == ConnectionState.OPEN })
                            assertTrue(waitUntil(15.0) { cell(a, "t", "two", "c") == 2.0 })
                            assertConverge(a, b, seconds = 15.0)
                        }
                    }
                }
            }
        }
    }

    @Test
    fun misuse() {
        MergeableStore().use { s ->
            for (bad in listOf("", "not a url", "http://127.0.0.1:1/", "ws://")) {
                assertFailsWith<TinyBaseException> { WsSynchronizer(s, bad, SynchronizerOptions(onStatus = {})) }
            }
            assertEquals(Status.INVALID_UTF8, assertFailsWith<TinyBaseException> { WsSynchronizer(s, "ws://127.0.0.1:1/\uD800") }.status)
            assertEquals(
                Status.INVALID_ARGUMENT,
                assertFailsWith<TinyBaseException> { WsSynchronizer(s, server.url("/x"), SynchronizerOptions(requestTimeoutSeconds = Double.NaN, onSend = { _, _, _, _ -> })) }.status,
            )
            assertEquals(Status.INVALID_ARGUMENT, assertFailsWith<TinyBaseException> { WsSynchronizer(s, server.url("/x"), connection = WsOptions(pingIntervalSeconds = -1.0)) }.status)
            assertFailsWith<TinyBaseException> { WsSynchronizer(s, server.url("/x"), connection = WsOptions(headers = mapOf("bad\nname" to "v"))) }
            assertFailsWith<TinyBaseException> { WsSynchronizer(s, "wss://127.0.0.1:1/x", connection = WsOptions(caFile = "/nonexistent/ca.pem", reconnect = false)) }
            // Nothing listens there: without reconnecting, one failed attempt fails the call.
            val port = ServerSocket(0).use { it.localPort }
            val e = assertFailsWith<TinyBaseException> {
                WsSynchronizer(s, "ws://127.0.0.1:$port/x", connection = WsOptions(reconnect = false, connectTimeoutSeconds = 2.0))
            }
            assertEquals(Status.INVALID_STATE, e.status)
            assertTrue(e.message!!.contains("tinybase:5"), e.message)
            assertFailsWith<TinyBaseException> { WsClient("not a url") }
            WsClient(server.url("/x")).use { c ->
                assertFailsWith<TinyBaseException> { c.createSynchronizer(s, "") }
                assertEquals(Status.INVALID_UTF8, assertFailsWith<TinyBaseException> { c.createSynchronizer(s, "\uDC00") }.status)
            }
            assertEquals(startCallbacks, debugLiveCallbacks())
        }
    }
}
