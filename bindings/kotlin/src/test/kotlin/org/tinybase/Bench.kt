package org.tinybase

import kotlin.system.exitProcess

/**
 * W9 of BENCHMARKS.md through the Kotlin binding: W1 and W2 (as bindings/python/bench.py).
 *
 * W1: set all N cells inside one transaction on a fresh MergeableStore (cell i is table t{i%10},
 *     row r{i/10}, cell c{i%3}, value "v{i}")                                   -> cells/s
 * W2: then 10,000 single setCell calls, each its own transaction               -> calls/s
 *
 * Usage: java -cp CLASSPATH org.tinybase.Bench [N ...] [--runs R] [--warmup W]
 *        (default: 10000 100000, 3 runs after 2 warm-up rounds per size: the JIT compiles the
 *        binding's paths first). Prints min / median / max over the runs.
 * scripts/bench-w9.sh runs it with target/classes, target/test-classes and the runtime classpath.
 * In the test sources: not part of the shipped jar.
 */
object Bench {
    private const val W2_CALLS = 10_000

    private fun cell(i: Int) = Triple("t${i % 10}", "r${i / 10}", "c${i % 3}")

    /** One round: W1 cells/s and W2 calls/s. */
    private fun oneRound(n: Int): Pair<Double, Double> {
        val data = Array(n) { i -> cell(i).let { (t, r, c) -> arrayOf(t, r, c, "v$i") } }
        val calls = Array(W2_CALLS) { i -> cell(i).let { (t, r, c) -> arrayOf(t, r, c, "w$i") } }
        quiesce()
        var t0 = System.nanoTime()
        val store = MergeableStore("bench")
        store.transaction {
            for (d in data) store.setCell(d[0], d[1], d[2], d[3])
        }
        val w1 = n / ((System.nanoTime() - t0) / 1e9)

        quiesce()
        t0 = System.nanoTime()
        for (d in calls) store.setCell(d[0], d[1], d[2], d[3])
        val w2 = W2_CALLS / ((System.nanoTime() - t0) / 1e9)
        val last = W2_CALLS - 1
        check(store.getCell("t9", "r${last / 10}", "c${last % 3}") == Cell.Text("w$last")) { "W2's last write is missing" }
        store.close()
        return w1 to w2
    }

    /**
     * A collection before each timed phase (outside the timing), so that garbage of earlier
     * rounds (their inputs, closed stores) is not collected inside the next measurement.
     */
    private fun quiesce() {
        System.gc()
    }

    private fun fmt(v: Double) = "%.0fk".format(v / 1000)

    private fun median(sorted: List<Double>): Double =
        if (sorted.size % 2 == 1) sorted[sorted.size / 2] else (sorted[sorted.size / 2 - 1] + sorted[sorted.size / 2]) / 2

    @JvmStatic
    fun main(args: Array<String>) {
        var runs = 3
        var warmup = 2
        val sizes = mutableListOf<Int>()
        var i = 0
        while (i < args.size) {
            when (val a = args[i]) {
                "--runs" -> runs = args.getOrNull(++i)?.toIntOrNull()?.takeIf { it > 0 } ?: usage()
                "--warmup" -> warmup = args.getOrNull(++i)?.toIntOrNull()?.takeIf { it >= 0 } ?: usage()
                else -> sizes += a.toIntOrNull()?.takeIf { it > 0 } ?: usage()
            }
            i++
        }
        if (sizes.isEmpty()) sizes += listOf(10_000, 100_000)
        println("tinybase ${version()} via Kotlin ${KotlinVersion.CURRENT} on Java ${System.getProperty("java.version")} (JNA direct mapping)")
        println("%9s  %30s  %30s".format("N", "W1 cells/s min/median/max", "W2 calls/s min/median/max"))
        for (n in sizes) {
            repeat(warmup) { oneRound(n) }
            val rounds = List(runs) { oneRound(n) }
            val w1 = rounds.map { it.first }.sorted()
            val w2 = rounds.map { it.second }.sorted()
            println(
                "%9d  %8s / %8s / %8s  %8s / %8s / %8s".format(
                    n, fmt(w1.first()), fmt(median(w1)), fmt(w1.last()), fmt(w2.first()), fmt(median(w2)), fmt(w2.last()),
                ),
            )
        }
        println("W9 target: Kotlin W2 >= 20x TinyBase's W2 (scripts/bench-w9.sh runs TinyBase in the same run)")
    }

    private fun usage(): Nothing {
        System.err.println("usage: org.tinybase.Bench [N ...] [--runs R] [--warmup W]")
        exitProcess(2)
    }
}
