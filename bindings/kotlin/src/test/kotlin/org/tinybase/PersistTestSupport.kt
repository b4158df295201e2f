package org.tinybase

import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.BeforeEach
import kotlin.test.assertEquals

/**
 * A test class whose every test must end with the library's live handles and the callback
 * registry back at their values from before it (nothing leaked).
 */
abstract class LeakCheckedTest {
    /** [debugLiveHandles] before the test. */
    protected var handlesAtStart: Long = 0L

    /** [debugLiveCallbacks] before the test. */
    protected var callbacksAtStart: Int = 0

    @BeforeEach
    fun recordLiveObjects() {
        handlesAtStart = debugLiveHandles()
        callbacksAtStart = debugLiveCallbacks()
    }

    @AfterEach
    fun nothingLeaked() {
        assertEquals(handlesAtStart, debugLiveHandles(), "native objects leaked")
        assertEquals(callbacksAtStart, debugLiveCallbacks(), "callbacks leaked")
    }
}
