package org.tinybase

import org.junit.jupiter.api.Test
import kotlin.test.assertEquals
import kotlin.test.assertTrue

class ListenerTest {
    @Test
    fun genericListenerGetsACopyOfTheEvent() {
        val startHandles = debugLiveHandles()
        val startCallbacks = debugLiveCallbacks()
        Store().use { store ->
            val events = mutableListOf<ListenerEvent>()
            val listener = store.addListener(ListenerKind.CELL, "t", null, null) { events += it }
            assertEquals(ListenerKind.CELL, listener.kind)
            assertEquals(1, store.getListenerCount())
            assertEquals(startCallbacks + 1, debugLiveCallbacks())
            store.setCellJson("t", "r", "c", "\"x\"")
            store.setCellJson("u", "r", "c", "1")
            assertEquals(
                listOf(ListenerEvent(ListenerKind.CELL, listener.id, "t", "r", "c", null, Cell.Text("x"), null, false, 0)),
                events,
            )
            listener.close()
            listener.close()
            assertTrue(listener.isClosed)
            store.setCellJson("t", "r", "c", "2")
            assertEquals(1, events.size)
            assertEquals(0, store.getListenerCount())
        }
        assertEquals(startHandles, debugLiveHandles())
        assertEquals(startCallbacks, debugLiveCallbacks())
    }
}
