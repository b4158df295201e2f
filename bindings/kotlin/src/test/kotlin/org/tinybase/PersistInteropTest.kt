package org.tinybase

import org.junit.jupiter.api.Assumptions.assumeTrue
import org.junit.jupiter.api.io.TempDir
import org.junit.jupiter.params.ParameterizedTest
import org.junit.jupiter.params.provider.ValueSource
import java.io.File
import java.util.concurrent.TimeUnit
import kotlin.test.assertEquals

/**
 * Files and SQLite databases moving between the Python binding's persisters
 * (bindings/python, over the same library) and Kotlin's, both ways: what one saves, the other
 * loads to the same content and content hashes. Needs python3; skipped without it unless
 * CI=true, where it fails.
 */
class PersistInteropTest {
    @TempDir
    lateinit var dir: File

    @ParameterizedTest
    @ValueSource(strings = ["file", "sqlite-json", "sqlite-incremental"])
    fun pythonSavesKotlinLoadsAndBack(kind: String) {
        val path = File(dir, "interop-$kind").path
        val written = python("write", kind, path)
        MergeableStore("kt").use { store ->
            persister(kind, store, path).use { p ->
                assertEquals(true, p.load())
                assertEquals(written, "${store.getMergeableContentHashes().first} ${store.getMergeableContentHashes().second}\n${store.getContentJson()}")
                store.setCellJson("fromKotlin", "r", "c", "{\"k\":[1,\"é\"]}")
                p.save()
            }
            val read = python("read", kind, path)
            assertEquals("${store.getMergeableContentHashes().first} ${store.getMergeableContentHashes().second}\n${store.getContentJson()}", read)
        }
    }

    private fun persister(kind: String, store: MergeableStore, path: String): Persister = when (kind) {
        "file" -> FilePersister(store, path)
        "sqlite-json" -> SqlitePersister(store, path, SqliteMode.JSON)
        else -> SqlitePersister(store, path, SqliteMode.INCREMENTAL)
    }

    /** Runs [SCRIPT] in python3 over the library the tests use; returns what it printed. */
    private fun python(vararg args: String): String {
        val pythonDir = File("../python").canonicalFile
        val process = try {
            ProcessBuilder(listOf("python3", "-c", SCRIPT) + args).apply {
                environment()["PYTHONPATH"] = pythonDir.path
                environment()["PYTHONIOENCODING"] = "utf-8"
                System.getProperty("tinybase.library.path")?.let { environment()["TINYBASE_LIBRARY"] = File(it).absolutePath }
                redirectErrorStream(false)
            }.start()
        } catch (e: java.io.IOException) {
            if (System.getenv("CI") == "true") throw AssertionError("CI=true needs python3 for the interop test", e)
            assumeTrue(false, "python3 is not available: ${e.message}")
            throw e
        }
        val out = process.inputStream.bufferedReader(Charsets.UTF_8).readText()
        val err = process.errorStream.bufferedReader(Charsets.UTF_8).readText()
        if (!process.waitFor(60, TimeUnit.SECONDS)) {
            process.destroyForcibly()
            throw AssertionError("python3 did not finish within 60 s")
        }
        if (process.exitValue() != 0) throw AssertionError("python3 ${args.toList()} failed:\n$err")
        return out.trimEnd('\n')
    }

    private companion object {
        /** Python: `write KIND PATH` saves a store, `read KIND PATH` loads one; both print hashes and content. */
        const val SCRIPT = """
import sys, tinybase
mode, kind, path = sys.argv[1:4]
store = tinybase.MergeableStore("py")
def persister():
    if kind == "file":
        return tinybase.FilePersister(store, path)
    return tinybase.SqlitePersister(store, path, "json" if kind == "sqlite-json" else "incremental")
with persister() as p:
    if mode == "write":
        store.set_content(({"pets": {"fido": {"species": "dog", "age": 3.5, "tags": ["a", {"b": 1}]}, "félix": {"nick": None}}}, {"open": False}))
        store.set_cell("pets", "fido", "good", True)
        p.save()
    else:
        assert p.load(), "nothing stored"
t, v = store.get_mergeable_content_hashes()
print(t, v)
print(store.get_content_json())
store.close()
"""
    }
}
