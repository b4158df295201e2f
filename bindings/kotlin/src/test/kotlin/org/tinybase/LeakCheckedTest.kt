package org.tinybase

import kotlinx.coroutines.delay
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.BeforeEach
import java.util.Collections
import kotlin.test.assertEquals

/**
 * A test class whose every test must leave nothing behind: live handles and live callbacks
 * are back to their values before the test once it has closed everything.
 */
abstract class LeakCheckedTest {
    protected var startHandles: Long = 0L
    protected var startCallbacks: Int = 0

    @BeforeEach
    fun recordLiveCounts() {
        startHandles = debugLiveHandles()
        startCallbacks = debugLiveCallbacks()
    }

    @AfterEach
    fun nothingLeaked() {
        assertEquals(startHandles, debugLiveHandles(), "live handles")
        assertEquals(startCallbacks, debugLiveCallbacks(), "live callbacks")
    }

    /**
     * Runs [block] with exceptions thrown by callbacks collected into the list it gets (not
     * printed), then restores the previous handler.
     */
    protected fun withCallbackErrors(block: (MutableList<Throwable>) -> Unit) {
        val errors = Collections.synchronizedList(mutableListOf<Throwable>())
        val previous = setCallbackExceptionHandler { errors += it }
        try {
            block(errors)
        } finally {
            setCallbackExceptionHandler(previous)
        }
    }

    /** Waits until the store has [n] listeners (collectors started on other threads have added theirs). */
    protected suspend fun Store.awaitListeners(n: Int) {
        withTimeout(5_000) { while (getListenerCount() != n) delay(1) }
    }
}
