package org.tinybase

import org.junit.jupiter.api.Assumptions.assumeTrue
import org.junit.jupiter.api.DynamicTest
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestFactory
import java.io.File
import java.util.concurrent.TimeUnit
import kotlin.test.assertEquals
import kotlin.test.assertNull
import kotlin.test.assertTrue

/** The conformance scripts replayed through the Kotlin binding give TinyBase's results. */
class ConformanceTest {
    private val repo = File(System.getProperty("user.dir"), "../..").canonicalFile
    private val public = scripts("public")
    private val edge = scripts("edge")

    private fun scripts(dir: String): List<File> =
        File(repo, "tests/conformance/$dir").listFiles { f -> f.name.endsWith(".json") }?.sortedBy { it.name } ?: emptyList()

    @Test
    fun scriptsArePresent() {
        assertTrue(public.size >= 45, "public scripts: ${public.size}")
        assertTrue(edge.size >= 24, "edge scripts: ${edge.size}")
    }

    @TestFactory
    fun everyScriptMatchesItsExpectedResults(): List<DynamicTest> = (public + edge).map { file ->
        DynamicTest.dynamicTest("${file.parentFile.name}/${file.name}") {
            val start = debugLiveHandles()
            val callbacks = debugLiveCallbacks()
            @Suppress("UNCHECKED_CAST")
            val script = Replay.parse(file.readText()) as Map<String, Any?>
            val out = Replay.runScript(script)
            assertNull(Replay.firstDifference("", out, script["expected"]))
            // Every store, listener and clock of the replay was released.
            assertEquals(start, debugLiveHandles())
            assertEquals(callbacks, debugLiveCallbacks())
        }
    }

    @Test
    fun replayShPrintsExactlyWhatTheRustReplayPrints() {
        val rust = File(repo, "target/release/examples/replay")
        // Built by `cargo test --release --all-targets` (the README test command runs it first).
        if (System.getenv("CI") != "true") assumeTrue(rust.canExecute(), "the Rust replay example is not built")
        val script = File(public.first().path)
        val expected = run(listOf(rust.path, script.path))
        val ours = run(listOf(File(repo, "bindings/kotlin/replay.sh").path, script.path))
        assertEquals(0, expected.first)
        assertEquals(0, ours.first, ours.second.decodeToString())
        assertTrue(expected.second.isNotEmpty())
        assertTrue(expected.second.contentEquals(ours.second), "replay.sh output differs from the Rust replay's")
    }

    /** Runs a command; its exit code and stdout bytes (stderr goes to a file, shown on failure). */
    private fun run(command: List<String>): Pair<Int, ByteArray> {
        val err = File.createTempFile("replay", ".err")
        try {
            val p = ProcessBuilder(command).redirectError(err).start()
            val out = p.inputStream.readBytes()
            assertTrue(p.waitFor(120, TimeUnit.SECONDS), "timed out: $command")
            val code = p.exitValue()
            return code to if (code == 0) out else err.readBytes()
        } finally {
            err.delete()
        }
    }
}
