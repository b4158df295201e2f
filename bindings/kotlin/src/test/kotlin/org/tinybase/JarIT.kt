package org.tinybase

import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import java.io.File
import java.nio.file.Path
import java.util.concurrent.TimeUnit
import java.util.jar.JarFile
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertTrue
import kotlin.test.fail

/**
 * The packaged jar (run by failsafe after `package`, so `mvn verify`): a JVM app needs only
 * the jar and its dependencies, no library path of any kind.
 */
class JarIT {
    private val jar = File(System.getProperty("tinybase.jar"))
    private val cargoLibrary = File(System.getProperty("tinybase.library.path"))

    @Test
    fun jarCarriesTheStrippedLibraryAndNoTestCode() {
        assertTrue(jar.isFile, "$jar was not built")
        JarFile(jar).use { j ->
            val lib = assertNotNull(j.getJarEntry("linux-x86-64/libtinybase.so"), "no linux-x86-64/libtinybase.so in $jar")
            // Stripped of its debug information, which is most of cargo's release build.
            assertTrue(lib.size in 1 until cargoLibrary.length(), "bundled library: ${lib.size} bytes, cargo's: ${cargoLibrary.length()}")
            val names = j.entries().asSequence().map { it.name }.toList()
            assertTrue("org/tinybase/MergeableStore.class" in names)
            assertFalse(names.any { it.startsWith("org/tinybase/Bench") || it.endsWith("Test.class") || it.endsWith("IT.class") }, names.toString())
        }
    }

    @Test
    fun anAppWithOnlyTheJarAndItsDependenciesRuns(@TempDir dir: Path) {
        val deps = File(System.getProperty("tinybase.runtime.classpath")).readText().trim()
        val depJars = deps.split(File.pathSeparator).filter { it.isNotEmpty() }.map { File(it).name }
        // The app's classpath: JNA, kotlin-stdlib, kotlinx-coroutines (and their own dependencies).
        assertTrue(depJars.any { it.startsWith("jna-") } && depJars.any { it.startsWith("kotlin-stdlib-") }, depJars.toString())
        assertFalse(depJars.any { it.startsWith("junit") || it.startsWith("kotlin-test") }, depJars.toString())

        val app = File("src/test/jar-app/JarApp.java").absoluteFile
        app.copyTo(dir.resolve(app.name).toFile())
        val java = File(System.getProperty("java.home"), "bin/java").path
        val command = listOf(
            java,
            "-cp", listOf(jar.absolutePath, deps).joinToString(File.pathSeparator),
            // Where JNA unpacks the library from the jar: inside this test's folder.
            "-Djna.tmpdir=${dir.resolve("jna")}",
            app.name,
        )
        val builder = ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true)
        // Nothing may point the app at a library outside the jar.
        for (name in listOf("TINYBASE_LIBRARY", "LD_LIBRARY_PATH", "JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS")) {
            builder.environment().remove(name)
        }
        val process = builder.start()
        val output = process.inputStream.bufferedReader().readText()
        if (!process.waitFor(120, TimeUnit.SECONDS)) {
            process.destroyForcibly()
            fail("the app did not finish: $output")
        }
        assertEquals(0, process.exitValue(), output)
        val lines = output.lines()
        assertTrue("cell ${Cell.Text("dog")}" in lines, output)
        assertTrue("version $BINDING_VERSION" in lines, output)
        val library = lines.firstOrNull { it.startsWith("library ") }?.removePrefix("library ") ?: fail(output)
        assertTrue(library.startsWith(dir.resolve("jna").toString()), "the app loaded $library, not the jar's library")
    }
}
