package org.tinybase

import org.junit.jupiter.api.Test
import java.io.File
import kotlin.test.assertEquals
import kotlin.test.assertTrue

/**
 * The main sources must build for Android too (JNA through jna@aar, ART's class library):
 * they may not use the JVM-only APIs below. Comments are ignored (the sources say why they
 * avoid some of them); test sources may use anything.
 */
class AndroidCleanSourcesTest {
    /** An API Android lacks (or has only from a recent API level), and why it is refused. */
    class Rule(val pattern: Regex, val why: String)

    companion object {
        val RULES = listOf(
            Rule(Regex("""\bjava\.lang\.foreign\b"""), "the FFM API (Panama): not on Android, JNA is the bridge"),
            Rule(Regex("""\bjava\.lang\.ref\.Cleaner\b|\bCleaner\.create\b"""), "java.lang.ref.Cleaner: Android API 33+ only (NativeCleaner uses PhantomReference)"),
            Rule(Regex("""\bjava\.nio\.file\b|\bkotlin\.io\.path\b"""), "java.nio.file (Path, Files): Android API 26+ only"),
            Rule(Regex("""\bProcessBuilder\b|\bProcessHandle\b|\bRuntime\.getRuntime\(\)\.exec\b|\.exec\("""), "starting processes: not allowed in Android apps"),
            Rule(Regex("""(?<![\w.])javax\."""), "javax.*: mostly absent on Android"),
            Rule(Regex("""\bjava\.awt\b|\bjava\.applet\b"""), "desktop UI APIs: not on Android"),
            Rule(Regex("""\bjava\.lang\.management\b|\bjava\.lang\.instrument\b|\bjava\.rmi\b"""), "JVM management, agents and RMI: not on Android"),
            Rule(Regex("""\bjava\.net\.http\b"""), "java.net.http.HttpClient (Java 11): not on Android"),
            Rule(Regex("""\bjava\.lang\.invoke\b|\bVarHandle\b"""), "MethodHandles/VarHandles: Android API 26/33+ only"),
            Rule(Regex("""\bStackWalker\b|\bModuleLayer\b|\bjava\.lang\.Module\b"""), "Java 9+ runtime APIs: not on Android"),
            Rule(Regex("""\bofVirtual\b|\bstartVirtualThread\b|\bnewVirtualThreadPerTaskExecutor\b|\bStructuredTaskScope\b|\bScopedValue\b"""), "virtual threads and structured concurrency (Java 21+): not on Android"),
            Rule(Regex("""\bHexFormat\b"""), "java.util.HexFormat (Java 17): not on Android before API 34"),
            Rule(Regex("""(?<![\w.])sun\.|\bcom\.sun\.(?!jna\b)|(?<![\w.])jdk\."""), "JDK-internal packages (com.sun.jna is JNA itself and allowed)"),
        )

        /** [text] with its comments blanked (string literals kept, so "//" inside one stays). */
        fun withoutComments(text: String): String {
            val out = StringBuilder(text.length)
            var i = 0
            var depth = 0 // nesting of /* */ (Kotlin block comments nest)
            var inString = false
            var raw = false
            while (i < text.length) {
                val c = text[i]
                val next = if (i + 1 < text.length) text[i + 1] else '\u0000'
                when {
                    depth > 0 -> {
                        if (c == '*' && next == '/') { depth--; out.append("  "); i += 2; continue }
                        if (c == '/' && next == '*') { depth++; out.append("  "); i += 2; continue }
                        out.append(if (c == '\n') '\n' else ' ')
                    }
                    inString -> {
                        if (raw && text.startsWith("\"\"\"", i)) { inString = false; out.append("\"\"\""); i += 3; continue }
                        if (!raw && c == '\\') { out.append(c).append(next); i += 2; continue }
                        if (!raw && c == '"') inString = false
                        out.append(c)
                    }
                    c == '/' && next == '/' -> {
                        while (i < text.length && text[i] != '\n') { out.append(' '); i++ }
                        continue
                    }
                    c == '/' && next == '*' -> { depth = 1; out.append("  "); i += 2; continue }
                    text.startsWith("\"\"\"", i) -> { inString = true; raw = true; out.append("\"\"\""); i += 3; continue }
                    c == '"' -> { inString = true; raw = false; out.append(c) }
                    c == '\'' && next == '"' -> { out.append("'\"'"); i += 3; continue } // the char literal '"'
                    else -> out.append(c)
                }
                i++
            }
            return out.toString()
        }

        /** "file:line: code (why)" for every use of a refused API in [text]. */
        fun violations(name: String, text: String): List<String> =
            withoutComments(text).lines().flatMapIndexed { index, line ->
                RULES.filter { it.pattern.containsMatchIn(line) }.map { "$name:${index + 1}: ${line.trim()} (${it.why})" }
            }
    }

    @Test
    fun mainSourcesUseNoJvmOnlyApi() {
        val files = File("src/main/kotlin").walkTopDown().filter { it.isFile && it.extension == "kt" }.toList()
        assertTrue(files.size >= 5, "main sources not found from ${File(".").absolutePath}")
        val found = files.flatMap { violations(it.path, it.readText()) }
        assertEquals(emptyList(), found, "JVM-only APIs in the main sources (they must build for Android)")
    }

    @Test
    fun theCheckCatchesEachRefusedApiButNotComments() {
        val bad = listOf(
            "import java.lang.foreign.MemorySegment",
            "private val cleaner = java.lang.ref.Cleaner.create()",
            "import java.nio.file.Files",
            "val p = ProcessBuilder(\"ls\").start()",
            "import javax.net.ssl.SSLContext",
            "import java.lang.invoke.VarHandle",
            "import sun.misc.Unsafe",
            "import com.sun.management.OperatingSystemMXBean",
            "Thread.ofVirtual().start { }",
            "import java.net.http.HttpClient",
        )
        for (line in bad) assertEquals(1, violations("x.kt", line).size, line)
        val fine = """
            import com.sun.jna.Pointer // not java.nio.file
            /* java.lang.ref.Cleaner: Android API 33+, /* nested */ ProcessBuilder */
            val url = "https://example.org/"; val p = ProcessBuilder() // a string keeps its "//"
            import java.util.concurrent.ConcurrentHashMap
            import java.lang.ref.PhantomReference
        """.trimIndent()
        assertEquals(
            listOf("x.kt:3: val url = \"https://example.org/\"; val p = ProcessBuilder() (starting processes: not allowed in Android apps)"),
            violations("x.kt", fine),
        )
    }
}
