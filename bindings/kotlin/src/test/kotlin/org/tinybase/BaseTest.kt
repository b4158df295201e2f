package org.tinybase

import org.junit.jupiter.api.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue

class BaseTest {
    @Test
    fun versionMatchesBinding() {
        assertEquals(BINDING_VERSION, version())
    }

    @Test
    fun closeFreesAndLaterCallsThrow() {
        val start = debugLiveHandles()
        val store = MergeableStore("a")
        assertEquals(start + 1, debugLiveHandles())
        store.close()
        store.close()
        assertTrue(store.isClosed)
        assertEquals(start, debugLiveHandles())
        val e = assertFailsWith<TinyBaseException> { store.withStore { it } }
        assertEquals(Status.NULL_PARAMETER, e.status)
        Store().use { }
        assertEquals(start, debugLiveHandles())
    }

    @Test
    fun loneSurrogateIsRefused() {
        val e = assertFailsWith<TinyBaseException> { MergeableStore("a\uD800") }
        assertEquals(Status.INVALID_UTF8, e.status)
        assertEquals("é\u0000".toByteArray(Charsets.UTF_8).toList(), cstr("é").toList())
    }

    @Test
    fun unreachableStoresAreFreedByTheBackstop() {
        val start = debugLiveHandles()
        repeat(100) { MergeableStore() }
        val deadline = System.nanoTime() + 10_000_000_000L
        while (debugLiveHandles() > start && System.nanoTime() < deadline) {
            System.gc()
            Thread.sleep(20)
        }
        assertEquals(start, debugLiveHandles())
    }
}
