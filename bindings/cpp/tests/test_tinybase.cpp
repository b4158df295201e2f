// GoogleTest suite for bindings/cpp/tinybase.hpp. Every test checks that the library's count of
// live host-owned objects (tb_debug_live_handles) is back to its start value at the end, so RAII
// owners, listeners and queues are verified to release what they hold.
#include "tinybase.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <type_traits>

using namespace tinybase;
using namespace std::string_literals;

namespace {

constexpr double kNow = 1700000000000.0;

class TinyBase : public ::testing::Test {
protected:
    void SetUp() override { base_ = debug_live_handles(); }
    void TearDown() override { EXPECT_EQ(debug_live_handles(), base_) << "a handle, string, value or listener leaked"; }
    int64_t base_ = 0;
};

// Splits a top-level JSON array "[a,b,...]" into its elements' texts.
std::vector<std::string> split_array(const std::string& j) {
    std::vector<std::string> out;
    int depth = 0;
    bool in_str = false, esc = false;
    size_t start = 1;
    for (size_t i = 0; i < j.size(); ++i) {
        char c = j[i];
        if (in_str) {
            if (esc) esc = false;
            else if (c == '\\') esc = true;
            else if (c == '"') in_str = false;
            continue;
        }
        if (c == '"') in_str = true;
        else if (c == '[' || c == '{') ++depth;
        else if (c == ']' || c == '}') {
            if (--depth == 0) out.push_back(j.substr(start, i - start));
        } else if (c == ',' && depth == 1) {
            out.push_back(j.substr(start, i - start));
            start = i + 1;
        }
    }
    return out;
}

// A Rollback-like custom exception for the tests.
struct Boom : std::runtime_error {
    Boom() : std::runtime_error("boom") {}
};

}  // namespace

// ------------------------------------------------------------------------------------------------
// Compile-time properties
// ------------------------------------------------------------------------------------------------

static_assert(!std::is_copy_constructible_v<Store>, "Store is move-only");
static_assert(!std::is_copy_assignable_v<Store>, "Store is move-only");
static_assert(std::is_nothrow_move_constructible_v<Store>, "Store moves cheaply");
static_assert(!std::is_copy_constructible_v<MergeableStore>, "MergeableStore is move-only");
static_assert(std::is_nothrow_move_assignable_v<MergeableStore>, "MergeableStore moves cheaply");
static_assert(!std::is_copy_constructible_v<Listener>, "Listener is move-only");
static_assert(!std::is_copy_constructible_v<EventQueue>, "EventQueue is move-only");
static_assert(std::is_base_of_v<std::runtime_error, Error>, "Error is a runtime_error");
static_assert(std::is_base_of_v<StoreRef, MergeableStore>, "a MergeableStore is a Store");

// ------------------------------------------------------------------------------------------------
// Values
// ------------------------------------------------------------------------------------------------

TEST_F(TinyBase, VersionMatchesHeader) { EXPECT_EQ(version(), TB_VERSION_STRING); }

TEST_F(TinyBase, ValueType) {
    EXPECT_TRUE(Value().is_null());
    EXPECT_TRUE(Value(nullptr).is_null());
    EXPECT_TRUE(Value(true).is_boolean());
    EXPECT_EQ(Value(3).kind(), Value::Kind::Number);
    EXPECT_EQ(Value(3).as_number(), 3.0);
    EXPECT_EQ(Value(2.5f).as_number(), 2.5);
    EXPECT_EQ(Value("abc").as_string(), "abc");
    EXPECT_EQ(Value("abc"s).kind(), Value::Kind::String);
    EXPECT_EQ(Value(std::string_view("abc")), Value("abc"));
    EXPECT_EQ(Value::json("[1]").as_json(), "[1]");
    EXPECT_TRUE(Value(Json{"{}"}).is_json());
    EXPECT_NE(Value("1"), Value(1));
    EXPECT_NE(Value::json("[1]"), Value("[1]"));
    EXPECT_THROW(Value(1).as_string(), std::bad_variant_access);
}

TEST_F(TinyBase, ValuesTypedRoundTrip) {
    Store s;
    EXPECT_FALSE(s.has_values());
    EXPECT_EQ(s.get_value("missing"), std::nullopt);
    s.set_value("s", "text").set_value("n", 42.5).set_value("b", false).set_value("z", nullptr);
    s.set_value("o", Value::json(R"({"a":[1,2]})")).set_value("a", Value::json("[true,null]"));
    EXPECT_EQ(s.get_value("s"), Value("text"));
    EXPECT_EQ(s.get_value("n"), Value(42.5));
    EXPECT_EQ(s.get_value("b"), Value(false));
    // null is a real value, distinct from absent
    ASSERT_TRUE(s.get_value("z").has_value());
    EXPECT_TRUE(s.get_value("z")->is_null());
    EXPECT_EQ(s.get_value("o")->as_json(), R"({"a":[1,2]})");
    EXPECT_EQ(s.get_value("a")->as_json(), "[true,null]");
    EXPECT_TRUE(s.has_values());
    EXPECT_TRUE(s.has_value("z"));
    EXPECT_EQ(s.get_value_ids(), (std::vector<std::string>{"s", "n", "b", "z", "o", "a"}));
    s.del_value("z");
    EXPECT_FALSE(s.has_value("z"));
    EXPECT_EQ(s.get_value("z"), std::nullopt);
    s.set_value_json("j", R"({"x":1})");
    EXPECT_EQ(s.get_value("j")->as_json(), R"({"x":1})");
    s.del_values();
    EXPECT_FALSE(s.has_values());
}

TEST_F(TinyBase, ValuesJson) {
    Store s;
    s.set_values_json(R"({"a":1,"b":"x"})");
    EXPECT_EQ(s.get_values_json(), R"({"a":1,"b":"x"})");
    s.set_partial_values_json(R"({"c":true})");
    EXPECT_EQ(s.get_values_json(), R"({"a":1,"b":"x","c":true})");
    s.set_values_json("{}");
    EXPECT_EQ(s.get_values_json(), "{}");
    EXPECT_EQ(s.get_value_ids_json(), "[]");
}

TEST_F(TinyBase, StringCellWithNulByteComesBackWhole) {
    Store s;
    s.set_cell_json("t", "r", "c", R"("a\u0000b")");
    auto v = s.get_cell("t", "r", "c");
    ASSERT_TRUE(v && v->is_string());
    EXPECT_EQ(v->as_string(), "a\0b"s);
    // ... but such a string cannot be passed in (the C API takes NUL-terminated text)
    try {
        s.set_cell("t", "r", "c", "a\0b"s);
        FAIL() << "expected an Error";
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), TB_ERROR_INVALID_ARGUMENT);
    }
    EXPECT_THROW(s.get_cell("t\0x"s, "r", "c"), Error);
}

// ------------------------------------------------------------------------------------------------
// Tables, rows, cells
// ------------------------------------------------------------------------------------------------

TEST_F(TinyBase, CellsRowsTables) {
    Store s;
    EXPECT_FALSE(s.has_tables());
    s.set_cell("pets", "fido", "species", "dog").set_cell("pets", "fido", "legs", 4);
    s.set_cell("pets", "tom", "species", "cat").set_cell("pets", "tom", "tags", Value::json(R"(["a"])"));
    EXPECT_TRUE(s.has_tables());
    EXPECT_TRUE(s.has_table("pets"));
    EXPECT_FALSE(s.has_table("cars"));
    EXPECT_TRUE(s.has_row("pets", "fido"));
    EXPECT_TRUE(s.has_cell("pets", "fido", "legs"));
    EXPECT_FALSE(s.has_cell("pets", "tom", "legs"));
    EXPECT_TRUE(s.has_table_cell("pets", "legs"));
    EXPECT_EQ(s.get_cell("pets", "fido", "legs"), Value(4));
    EXPECT_EQ(s.get_cell("pets", "tom", "legs"), std::nullopt);
    EXPECT_EQ(s.get_row_count("pets"), 2u);
    EXPECT_EQ(s.get_table_ids(), std::vector<std::string>{"pets"});
    EXPECT_EQ(s.get_row_ids("pets"), (std::vector<std::string>{"fido", "tom"}));
    EXPECT_EQ(s.get_cell_ids("pets", "fido"), (std::vector<std::string>{"species", "legs"}));
    EXPECT_EQ(s.get_table_cell_ids("pets"), (std::vector<std::string>{"species", "legs", "tags"}));
    EXPECT_EQ(s.get_row_json("pets", "tom"), R"({"species":"cat","tags":["a"]})");
    EXPECT_EQ(s.get_table_json("none"), "{}");

    s.del_cell("pets", "fido", "legs");
    EXPECT_FALSE(s.has_table_cell("pets", "legs"));
    s.del_row("pets", "tom");
    EXPECT_EQ(s.get_row_count("pets"), 1u);
    s.del_table("pets");
    EXPECT_FALSE(s.has_tables());
    s.set_cell("a", "b", "c", 1).del_tables();
    EXPECT_EQ(s.get_tables_json(), "{}");
}

TEST_F(TinyBase, TablesJsonShapes) {
    Store s;
    s.set_tables_json(R"({"t":{"r1":{"a":1,"o":{"k":"v"}},"r2":{"a":2}}})");
    // wire form keeps object cells as U+FFFD-prefixed strings; content form decodes them
    EXPECT_EQ(s.get_tables_json(), "{\"t\":{\"r1\":{\"a\":1,\"o\":\"\xEF\xBF\xBD{\\\"k\\\":\\\"v\\\"}\"},\"r2\":{\"a\":2}}}");
    EXPECT_EQ(s.get_table_json("t"), R"({"r1":{"a":1,"o":{"k":"v"}},"r2":{"a":2}})");
    EXPECT_EQ(s.get_content_json(), R"([{"t":{"r1":{"a":1,"o":{"k":"v"}},"r2":{"a":2}}},{}])");

    s.set_table_json("u", R"({"x":{"c":true}})");
    s.set_row_json("u", "y", R"({"c":false})");
    s.set_partial_row_json("u", "y", R"({"d":"D"})");
    EXPECT_EQ(s.get_table_json("u"), R"({"x":{"c":true},"y":{"c":false,"d":"D"}})");
    std::string id0 = s.add_row_json("v", R"({"c":1})");
    std::string id1 = s.add_row_json("v", R"({"c":2})", false);
    EXPECT_NE(id0, id1);
    EXPECT_EQ(s.get_row_count("v"), 2u);

    s.apply_changes_json("[{\"u\":{\"x\":{\"c\":\"\xEF\xBF\xBC\"}}},{\"val\":7},1]");
    EXPECT_FALSE(s.has_row("u", "x"));
    EXPECT_EQ(s.get_value("val"), Value(7));

    std::string whole = s.get_json();
    Store t;
    t.set_json(whole);
    EXPECT_EQ(t.get_json(), whole);
    Store u;
    u.set_content_json(s.get_content_json());
    EXPECT_EQ(u.get_content_json(), s.get_content_json());
}

TEST_F(TinyBase, IdsWithEscapesAndUnicode) {
    Store s;
    const std::string odd = "q\"uo\\te \xC3\xA9 \xF0\x9F\x98\x80 \t";
    s.set_cell(odd, "r", "c", 1);
    s.set_cell("plain", "r", "c", 1);
    EXPECT_EQ(s.get_table_ids(), (std::vector<std::string>{odd, "plain"}));
    EXPECT_EQ(s.get_cell(odd, "r", "c"), Value(1));
}

TEST_F(TinyBase, LongIdsUseHeapBuffer) {
    Store s;
    std::string long_id(1000, 'x');
    s.set_cell(long_id, long_id, long_id, long_id);
    EXPECT_EQ(s.get_cell(long_id, long_id, long_id), Value(long_id));
    // string_views that are not NUL-terminated
    std::string buf = "tableXrowXcell";
    std::string_view sv(buf);
    s.set_cell(sv.substr(0, 5), sv.substr(6, 3), sv.substr(10, 4), 9);
    EXPECT_EQ(s.get_cell("table", "row", "cell"), Value(9));
}

// ------------------------------------------------------------------------------------------------
// Transactions
// ------------------------------------------------------------------------------------------------

TEST_F(TinyBase, TransactionCommitsAndNotifiesOnce) {
    Store s;
    int calls = 0;
    auto l = s.add_tables_listener([&](const Event&) { ++calls; });
    bool committed = s.transaction([&] {
        s.set_cell("t", "r", "a", 1);
        s.set_cell("t", "r", "b", 2);
    });
    EXPECT_TRUE(committed);
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(s.get_row_json("t", "r"), R"({"a":1,"b":2})");
}

TEST_F(TinyBase, TransactionBodyMayTakeStoreRef) {
    Store s;
    s.transaction([](StoreRef tx) { tx.set_value("v", 1); });
    EXPECT_EQ(s.get_value("v"), Value(1));
}

TEST_F(TinyBase, TransactionReturningTrueRollsBack) {
    Store s;
    s.set_cell("t", "r", "c", "before");
    int calls = 0;
    auto l = s.add_cell_listener(any_id, any_id, any_id, [&](const Event&) { ++calls; });
    bool committed = s.transaction([&] {
        s.set_cell("t", "r", "c", "after");
        EXPECT_EQ(s.get_cell("t", "r", "c"), Value("after"));
        return true;
    });
    EXPECT_FALSE(committed);
    EXPECT_EQ(s.get_cell("t", "r", "c"), Value("before"));
    EXPECT_EQ(calls, 0);
    EXPECT_TRUE(s.transaction([&] { return false; }));
}

TEST_F(TinyBase, TransactionExceptionRollsBackAndPropagates) {
    Store s;
    s.set_value("v", 1);
    EXPECT_THROW(s.transaction([&] {
        s.set_value("v", 2);
        s.set_value("w", 3);
        throw Boom();
    }),
                 Boom);
    EXPECT_EQ(s.get_value("v"), Value(1));
    EXPECT_FALSE(s.has_value("w"));
    // a library error inside the body is an exception too
    try {
        s.transaction([&] {
            s.set_value("v", 5);
            s.set_tables_json("not json");
        });
        FAIL() << "expected an Error";
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), TB_ERROR_INVALID_JSON);
    }
    EXPECT_EQ(s.get_value("v"), Value(1));
    // the store is usable afterwards (the lock was released)
    s.transaction([&] { s.set_value("v", 9); });
    EXPECT_EQ(s.get_value("v"), Value(9));
}

TEST_F(TinyBase, RollbackExceptionIsQuiet) {
    Store s;
    bool committed = true;
    EXPECT_NO_THROW(committed = s.transaction([&] {
        s.set_value("v", 1);
        throw Rollback{};
    }));
    EXPECT_FALSE(committed);
    EXPECT_FALSE(s.has_value("v"));
}

TEST_F(TinyBase, NestedTransactionsJoinAndRollbackUnwindsToOutermost) {
    Store s;
    int calls = 0;
    auto l = s.add_values_listener([&](const Event&) { ++calls; });
    s.transaction([&] {
        s.set_value("a", 1);
        s.transaction([&] { s.set_value("b", 2); });
        EXPECT_EQ(calls, 0);  // listeners run after the outermost commits
    });
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(s.get_values_json(), R"({"a":1,"b":2})");

    bool reached = false;
    bool committed = s.transaction([&] {
        s.set_value("c", 3);
        s.transaction([&] {
            s.set_value("d", 4);
            throw Rollback{};
        });
        reached = true;  // Rollback propagates through the outer body
    });
    EXPECT_FALSE(reached);
    EXPECT_FALSE(committed);
    EXPECT_EQ(s.get_values_json(), R"({"a":1,"b":2})");
    EXPECT_EQ(calls, 1);
}

TEST_F(TinyBase, StartFinishTransaction) {
    Store s;
    s.start_transaction();
    s.set_value("a", 1);
    EXPECT_EQ(s.get_transaction_changes_json(), R"([{},{"a":1},1])");
    s.finish_transaction();
    EXPECT_EQ(s.get_value("a"), Value(1));
    s.start_transaction();
    s.set_value("a", 2);
    s.finish_transaction(true);
    EXPECT_EQ(s.get_value("a"), Value(1));
    try {
        s.finish_transaction();
        FAIL() << "expected an Error";
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), TB_ERROR_INVALID_STATE);
    }
}

TEST_F(TinyBase, TransactionChangesInDidFinishListener) {
    Store s;
    std::string changes;
    auto l = s.add_did_finish_transaction_listener([&](StoreRef st, const Event&) { changes = st.get_transaction_changes_json(); });
    s.set_cell("t", "r", "c", 1);
    EXPECT_EQ(changes, R"([{"t":{"r":{"c":1}}},{},1])");
    s.set_cell("t", "r2", "c", 2);
    s.del_row("t", "r");
    EXPECT_EQ(changes, "[{\"t\":{\"r\":\"\xEF\xBF\xBC\"}},{},1]");
    s.del_table("t");
    EXPECT_EQ(changes, "[{\"t\":\"\xEF\xBF\xBC\"},{},1]");
}

// ------------------------------------------------------------------------------------------------
// Listeners
// ------------------------------------------------------------------------------------------------

TEST_F(TinyBase, CellListenerEvent) {
    Store s;
    std::vector<Event> events;
    auto l = s.add_cell_listener("t", "r", "c", [&](const Event& e) { events.push_back(e); });
    s.set_cell("t", "r", "c", "one");
    s.set_cell("t", "r", "other", "ignored");
    s.set_cell("t", "r", "c", 2);
    s.del_cell("t", "r", "c");
    ASSERT_EQ(events.size(), 3u);
    EXPECT_EQ(events[0].kind, ListenerKind::Cell);
    EXPECT_EQ(events[0].listener_id, l.id());
    EXPECT_EQ(events[0].table_id, "t");
    EXPECT_EQ(events[0].row_id, "r");
    EXPECT_EQ(events[0].cell_id, "c");
    EXPECT_EQ(events[0].value_id, std::nullopt);
    EXPECT_EQ(events[0].new_value, Value("one"));
    EXPECT_EQ(events[0].old_value, std::nullopt);
    EXPECT_EQ(events[1].new_value, Value(2));
    EXPECT_EQ(events[1].old_value, Value("one"));
    EXPECT_EQ(events[2].new_value, std::nullopt);
    EXPECT_EQ(events[2].old_value, Value(2));
}

TEST_F(TinyBase, WildcardListeners) {
    Store s;
    std::set<std::string> seen;
    auto any = s.add_cell_listener(any_id, any_id, any_id, [&](const Event& e) { seen.insert(*e.table_id + "/" + *e.row_id + "/" + *e.cell_id); });
    std::vector<std::string> rows;
    auto table_rows = s.add_row_listener("t1", any_id, [&](const Event& e) { rows.push_back(*e.row_id); });
    std::vector<std::string> values;
    auto vals = s.add_value_listener(any_id, [&](const Event& e) { values.push_back(*e.value_id); });
    s.transaction([&] {
        s.set_cell("t1", "a", "x", 1).set_cell("t1", "b", "y", 2).set_cell("t2", "c", "z", 3);
        s.set_value("p", 1).set_value("q", 2);
    });
    EXPECT_EQ(seen, (std::set<std::string>{"t1/a/x", "t1/b/y", "t2/c/z"}));
    std::sort(rows.begin(), rows.end());
    EXPECT_EQ(rows, (std::vector<std::string>{"a", "b"}));
    std::sort(values.begin(), values.end());
    EXPECT_EQ(values, (std::vector<std::string>{"p", "q"}));
}

TEST_F(TinyBase, EveryListenerKindFires) {
    Store s;
    std::map<ListenerKind, int> counts;
    std::vector<Listener> ls;
    const ListenerKind kinds[] = {
        ListenerKind::HasTables, ListenerKind::Tables, ListenerKind::TableIds, ListenerKind::HasTable,
        ListenerKind::Table, ListenerKind::TableCellIds, ListenerKind::HasTableCell, ListenerKind::RowCount,
        ListenerKind::RowIds, ListenerKind::HasRow, ListenerKind::Row, ListenerKind::CellIds,
        ListenerKind::HasCell, ListenerKind::Cell, ListenerKind::HasValues, ListenerKind::Values,
        ListenerKind::ValueIds, ListenerKind::HasValue, ListenerKind::Value, ListenerKind::StartTransaction,
        ListenerKind::WillFinishTransaction, ListenerKind::DidFinishTransaction};
    for (ListenerKind k : kinds) ls.push_back(s.add_listener(k, any_id, any_id, any_id, [&counts](const Event& e) { counts[e.kind]++; }));
    EXPECT_EQ(s.get_listener_count(), 22u);
    s.transaction([&] {
        s.set_cell("t", "r", "c", 1);
        s.set_value("v", 1);
    });
    for (ListenerKind k : kinds) EXPECT_EQ(counts[k], 1) << "kind " << static_cast<int>(k);
    // the named helpers register the same kinds
    std::vector<Listener> named;
    int n = 0;
    auto f = [&n](const Event&) { ++n; };
    named.push_back(s.add_has_tables_listener(f));
    named.push_back(s.add_tables_listener(f));
    named.push_back(s.add_table_ids_listener(f));
    named.push_back(s.add_has_table_listener("t", f));
    named.push_back(s.add_table_listener("t", f));
    named.push_back(s.add_table_cell_ids_listener("t", f));
    named.push_back(s.add_has_table_cell_listener("t", "c2", f));
    named.push_back(s.add_row_count_listener("t", f));
    named.push_back(s.add_row_ids_listener("t", f));
    named.push_back(s.add_has_row_listener("t", "r2", f));
    named.push_back(s.add_row_listener("t", "r2", f));
    named.push_back(s.add_cell_ids_listener("t", "r2", f));
    named.push_back(s.add_has_cell_listener("t", "r2", "c2", f));
    named.push_back(s.add_cell_listener("t", "r2", "c2", f));
    named.push_back(s.add_has_values_listener(f));
    named.push_back(s.add_values_listener(f));
    named.push_back(s.add_value_ids_listener(f));
    named.push_back(s.add_has_value_listener("v2", f));
    named.push_back(s.add_value_listener("v2", f));
    named.push_back(s.add_start_transaction_listener(f));
    named.push_back(s.add_will_finish_transaction_listener(f));
    named.push_back(s.add_did_finish_transaction_listener(f));
    s.transaction([&] {
        s.set_cell("t", "r2", "c2", 1);  // HasTables, TableIds and HasTable do not change: 3 fewer
        s.set_value("v2", 1);            // HasValues does not change: 1 fewer
    });
    EXPECT_EQ(n, 22 - 4);
    ls.clear();
    named.clear();
    EXPECT_EQ(s.get_listener_count(), 0u);
}

TEST_F(TinyBase, RowCountAndHasEvents) {
    Store s;
    std::vector<size_t> counts;
    std::vector<bool> has;
    auto a = s.add_row_count_listener("t", [&](const Event& e) { counts.push_back(e.row_count); });
    auto b = s.add_has_row_listener("t", "r", [&](const Event& e) { has.push_back(e.has); });
    s.set_cell("t", "r", "c", 1);
    s.set_cell("t", "r2", "c", 1);
    s.del_row("t", "r");
    EXPECT_EQ(counts, (std::vector<size_t>{1, 2, 1}));
    EXPECT_EQ(has, (std::vector<bool>{true, false}));
}

TEST_F(TinyBase, StaleListenerHandleNeverRemovesAnotherListener) {
    Store s;
    int calls = 0;
    auto old = s.add_values_listener([](const Event&) {});
    s.del_listener(old.id());  // removed behind the handle's back
    auto fresh = s.add_values_listener([&](const Event&) { ++calls; });
    EXPECT_NE(fresh.id(), old.id());
    old.remove();  // the stale handle: must not remove the new registration
    s.set_value("a", 1);
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(s.get_listener_count(), 1u);
}

TEST_F(TinyBase, ListenerRaiiRemoval) {
    Store s;
    int calls = 0;
    {
        auto l = s.add_values_listener([&](const Event&) { ++calls; });
        EXPECT_TRUE(l.active());
        EXPECT_EQ(s.get_listener_count(), 1u);
        s.set_value("a", 1);
        EXPECT_EQ(calls, 1);
    }
    EXPECT_EQ(s.get_listener_count(), 0u);
    s.set_value("a", 2);
    EXPECT_EQ(calls, 1);

    auto l = s.add_values_listener([&](const Event&) { ++calls; });
    l.remove();
    EXPECT_FALSE(l.active());
    EXPECT_EQ(l.id(), 0u);
    l.remove();  // idempotent
    s.set_value("a", 3);
    EXPECT_EQ(calls, 1);

    // move: the moved-to handle owns the registration; assigning over one removes it
    Listener m = s.add_values_listener([&](const Event&) { ++calls; });
    Listener moved = std::move(m);
    EXPECT_FALSE(m.active());
    EXPECT_TRUE(moved.active());
    s.set_value("a", 4);
    EXPECT_EQ(calls, 2);
    moved = s.add_values_listener([&](const Event&) { calls += 100; });
    EXPECT_EQ(s.get_listener_count(), 1u);
    s.set_value("a", 5);
    EXPECT_EQ(calls, 102);
}

TEST_F(TinyBase, ListenerDetachAndCall) {
    Store s;
    int calls = 0;
    uint64_t id = s.add_value_listener("v", [&](const Event&) { ++calls; }).detach();
    EXPECT_EQ(s.get_listener_count(), 1u);  // still registered after the handle died
    s.set_value("v", 1);
    EXPECT_EQ(calls, 1);
    s.call_listener(id);
    EXPECT_EQ(calls, 2);
    s.del_listener(id);
    EXPECT_EQ(s.get_listener_count(), 0u);

    auto l = s.add_value_listener("v", [&](const Event&) { ++calls; });
    l.call();
    EXPECT_EQ(calls, 3);
}

TEST_F(TinyBase, ListenerOutlivesStoreObject) {
    Listener l;
    int calls = 0;
    {
        Store s;
        l = s.add_tables_listener([&](const Event&) { ++calls; });
    }
    // the listener's own reference keeps the store alive; removing it frees everything
    EXPECT_TRUE(l.active());
    l.remove();
    EXPECT_EQ(calls, 0);
}

TEST_F(TinyBase, ListenerReadsWritesAndRemovesItself) {
    Store s;
    std::vector<std::string> seen;
    uint64_t self = 0;
    self = s.add_value_listener("in", [&](StoreRef st, const Event& e) {
                seen.push_back(st.get_value("in")->as_string());
                st.set_value("out", "echo " + e.new_value->as_string());  // re-entrant write
                st.del_listener(self);                                    // removes itself
            }).detach();
    s.set_value("in", "hi");
    s.set_value("in", "again");
    EXPECT_EQ(seen, std::vector<std::string>{"hi"});
    EXPECT_EQ(s.get_value("out"), Value("echo hi"));
    EXPECT_EQ(s.get_listener_count(), 0u);
}

namespace {
std::atomic<int> g_reported{0};
void count_exception(std::exception_ptr e) noexcept {
    try {
        std::rethrow_exception(e);
    } catch (const Boom&) {
        g_reported++;
    } catch (...) {
    }
}
}  // namespace

TEST_F(TinyBase, ListenerExceptionsDoNotCrossTheBoundary) {
    Store s;
    g_reported = 0;
    auto old = set_callback_exception_handler(&count_exception);
    int after = 0;
    auto a = s.add_values_listener([](const Event&) { throw Boom(); });
    auto b = s.add_values_listener([&](const Event&) { ++after; });
    EXPECT_NO_THROW(s.set_value("v", 1));
    EXPECT_EQ(g_reported.load(), 1);
    EXPECT_EQ(after, 1);  // the other listener still ran
    EXPECT_EQ(s.get_value("v"), Value(1));
    set_callback_exception_handler(old);
    EXPECT_NO_THROW(s.set_value("v", 2));  // default handler: ignored
}

// ------------------------------------------------------------------------------------------------
// Buffered delivery
// ------------------------------------------------------------------------------------------------

TEST_F(TinyBase, BufferedListenerPollAndWait) {
    Store s;
    EventQueue q;
    auto l = s.add_buffered_listener(q, ListenerKind::Cell, "t", any_id, "c");
    EXPECT_EQ(q.poll(), std::nullopt);
    s.set_cell("t", "r1", "c", 1).set_cell("t", "r2", "c", "two").set_cell("t", "r2", "other", 0);
    EXPECT_EQ(q.size(), 2u);
    auto e1 = q.poll();
    ASSERT_TRUE(e1);
    EXPECT_EQ(e1->listener_id, l.id());
    EXPECT_EQ(e1->row_id, "r1");
    EXPECT_EQ(e1->new_value, Value(1));
    auto e2 = q.wait(std::chrono::milliseconds(100));
    ASSERT_TRUE(e2);
    EXPECT_EQ(e2->new_value, Value("two"));
    EXPECT_EQ(q.wait(std::chrono::milliseconds(10)), std::nullopt);
    // removal discards queued events
    s.set_cell("t", "r3", "c", 3);
    EXPECT_EQ(q.size(), 1u);
    l.remove();
    EXPECT_EQ(q.size(), 0u);
}

TEST_F(TinyBase, BufferedDeliveryToAnotherThreadWithNotify) {
    Store s;
    std::mutex mu;
    std::condition_variable cv;
    int notified = 0;
    EventQueue q([&] {
        std::lock_guard<std::mutex> g(mu);
        ++notified;
        cv.notify_all();
    });
    auto l = s.add_buffered_listener(q, ListenerKind::Value, "v");
    std::vector<double> got;
    std::thread consumer([&] {
        while (got.size() < 100) {
            if (auto e = q.wait(std::chrono::milliseconds(2000))) got.push_back(e->new_value->as_number());
            else break;
        }
    });
    for (int i = 0; i < 100; ++i) s.set_value("v", i);
    consumer.join();
    ASSERT_EQ(got.size(), 100u);
    for (int i = 0; i < 100; ++i) EXPECT_EQ(got[static_cast<size_t>(i)], i);
    std::lock_guard<std::mutex> g(mu);
    EXPECT_GE(notified, 1);
}

TEST_F(TinyBase, EventQueueMoveAndDrain) {
    Store s;
    EventQueue q1;
    auto l = s.add_buffered_listener(q1, ListenerKind::Tables);
    s.set_cell("a", "b", "c", 1);
    EventQueue q2 = std::move(q1);
    EXPECT_EQ(q1.get(), nullptr);
    EXPECT_THROW(q1.poll(), Error);
    s.set_cell("a", "b", "c", 2);
    auto all = q2.drain();
    EXPECT_EQ(all.size(), 2u);
    EXPECT_EQ(all[0].kind, ListenerKind::Tables);
}

// ------------------------------------------------------------------------------------------------
// Mergeable stores
// ------------------------------------------------------------------------------------------------

TEST_F(TinyBase, MergeableIsAStore) {
    MergeableStore m("m1");
    m.set_cell("t", "r", "c", "x");
    EXPECT_EQ(m.get_cell("t", "r", "c"), Value("x"));
    EXPECT_TRUE(m.is_mergeable());
    StoreRef view = m;
    EXPECT_EQ(view.as_mergeable().get_mergeable_content_hashes(), m.get_mergeable_content_hashes());
    Store plain;
    EXPECT_FALSE(plain.is_mergeable());
    try {
        plain.as_mergeable();
        FAIL() << "expected an Error";
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), TB_ERROR_INVALID_STATE);
    }
    bool listener_saw_mergeable = false;
    auto l = m.add_values_listener([&](StoreRef st, const Event&) {
        listener_saw_mergeable = st.is_mergeable() && st.as_mergeable().get_mergeable_value_hashes_json() != "{}";
    });
    m.set_value("v", 1);
    EXPECT_TRUE(listener_saw_mergeable);
}

TEST_F(TinyBase, MergeConvergesAndHashesAgree) {
    MergeableStore a("a", [] { return kNow; });
    MergeableStore b("b", [] { return kNow + 1; });
    a.set_cell("t", "r1", "c", 1).set_value("va", "A");
    b.set_cell("t", "r2", "c", 2).set_cell("t", "r1", "c", 10).set_value("vb", "B");
    EXPECT_NE(a.get_mergeable_content_hashes(), b.get_mergeable_content_hashes());
    a.merge(b);
    for (auto* st : {&a, &b}) {  // both hold everything (key order may differ)
        EXPECT_EQ(st->get_cell("t", "r2", "c"), Value(2));
        EXPECT_EQ(st->get_value("va"), Value("A"));
        EXPECT_EQ(st->get_value("vb"), Value("B"));
    }
    EXPECT_EQ(a.get_cell("t", "r1", "c"), Value(10));  // later HLC wins
    EXPECT_EQ(a.get_mergeable_content_hashes(), b.get_mergeable_content_hashes());
    EXPECT_EQ(a.compute_content_hashes(), a.get_mergeable_content_hashes());
    auto h = a.get_mergeable_content_hashes();
    EXPECT_EQ(a.get_mergeable_content_hashes_json(), "[" + std::to_string(h.tables) + "," + std::to_string(h.values) + "]");
    a.merge(a);  // with itself: no change
    EXPECT_EQ(a.get_mergeable_content_hashes(), h);
}

TEST_F(TinyBase, WireFormContentRoundTrip) {
    MergeableStore a("a", [] { return kNow; });
    a.set_cell("t", "r", "obj", Value::json(R"({"k":[1,2]})")).set_value("v", true);
    std::string wire = a.get_encoded_mergeable_content_json();
    EXPECT_NE(wire.find("\xEF\xBF\xBD{"), std::string::npos);  // object cell as U+FFFD string
    std::string decoded = a.get_mergeable_content_json();
    EXPECT_NE(decoded.find(R"({"k":[1,2]})"), std::string::npos);

    MergeableStore b("b");
    b.set_mergeable_content_json(wire);
    EXPECT_EQ(b.get_cell("t", "r", "obj")->as_json(), R"({"k":[1,2]})");
    EXPECT_EQ(b.get_mergeable_content_hashes(), a.get_mergeable_content_hashes());
    MergeableStore c("c");
    c.set_decoded_mergeable_content_json(decoded);
    EXPECT_EQ(c.get_encoded_mergeable_content_json(), wire);
    MergeableStore d("d");
    d.apply_mergeable_changes_json(wire);
    EXPECT_EQ(d.get_mergeable_content_hashes(), a.get_mergeable_content_hashes());
    MergeableStore e("e");
    e.apply_decoded_mergeable_changes_json(decoded);
    EXPECT_EQ(e.get_mergeable_content_hashes(), a.get_mergeable_content_hashes());
}

TEST_F(TinyBase, TransactionMergeableChangesReplicate) {
    MergeableStore a("a", [] { return kNow; });
    MergeableStore b("b");
    std::vector<std::string> sent;
    std::string decoded, with_hashes;
    auto l = a.add_did_finish_transaction_listener([&](StoreRef st, const Event&) {
        auto m = st.as_mergeable();
        sent.push_back(m.get_encoded_transaction_mergeable_changes_json());
        decoded = m.get_transaction_mergeable_changes_json();
        with_hashes = m.get_transaction_mergeable_changes_json(true);
    });
    a.transaction([&] {
        a.set_cell("t", "r", "c", Value::json("[1]"));
        a.set_value("v", 1);
    });
    a.del_value("v");
    ASSERT_EQ(sent.size(), 2u);
    EXPECT_NE(decoded, with_hashes);
    for (auto& s : sent) b.apply_mergeable_changes_json(s);
    EXPECT_EQ(b.get_content_json(), a.get_content_json());
    EXPECT_EQ(b.get_mergeable_content_hashes(), a.get_mergeable_content_hashes());
}

TEST_F(TinyBase, HashDiffSyncProtocol) {
    // B pulls A's content through the table/row/cell/value hash-diff exchange a synchronizer uses.
    MergeableStore a("a", [] { return kNow; });
    MergeableStore b("b", [] { return kNow + 5; });
    a.set_cell("t1", "r1", "c1", "x").set_cell("t1", "r2", "c1", 1).set_cell("t2", "r1", "c1", Value::json(R"({"k":1})"));
    a.set_value("v1", true);
    b.set_cell("t1", "r1", "c2", "y");

    auto tdiff = split_array(a.get_mergeable_table_diff_json(b.get_mergeable_table_hashes_json()));
    ASSERT_EQ(tdiff.size(), 2u);
    b.apply_mergeable_changes_json("[" + tdiff[0] + ",[{}],1]");  // new tables
    EXPECT_TRUE(b.has_table("t2"));
    auto rdiff = split_array(a.get_mergeable_row_diff_json(b.get_mergeable_row_hashes_json(tdiff[1])));
    ASSERT_EQ(rdiff.size(), 2u);
    b.apply_mergeable_changes_json("[" + rdiff[0] + ",[{}],1]");  // new rows
    EXPECT_TRUE(b.has_row("t1", "r2"));
    std::string cdiff = a.get_mergeable_cell_diff_json(b.get_mergeable_cell_hashes_json(rdiff[1]));
    b.apply_mergeable_changes_json("[" + cdiff + ",[{}],1]");
    std::string vdiff = a.get_mergeable_value_diff_json(b.get_mergeable_value_hashes_json());
    b.apply_mergeable_changes_json("[[{}]," + vdiff + ",1]");

    EXPECT_EQ(b.get_cell("t1", "r1", "c1"), Value("x"));
    EXPECT_EQ(b.get_cell("t1", "r1", "c2"), Value("y"));  // B's own cell kept
    EXPECT_EQ(b.get_cell("t2", "r1", "c1"), Value::json(R"({"k":1})"));
    EXPECT_EQ(b.get_value("v1"), Value(true));
    a.merge(b);
    EXPECT_EQ(a.get_mergeable_table_diff_json(b.get_mergeable_table_hashes_json()), "[[{}],{}]");
    EXPECT_EQ(a.get_mergeable_value_diff_json(b.get_mergeable_value_hashes_json()), "[{}]");
}

TEST_F(TinyBase, DefaultContentAndClock) {
    std::atomic<int> ticks{0};
    MergeableStore m(std::nullopt, [&] {
        ++ticks;
        return kNow;
    });
    m.set_default_content_json(R"([{"t":{"r":{"c":"default"}}},{"v":0}])");
    EXPECT_EQ(m.get_cell("t", "r", "c"), Value("default"));
    m.set_cell("t", "r", "c", "set");
    m.set_default_content_json(R"([{"t":{"r":{"c":"default2"}}},{}])");
    EXPECT_EQ(m.get_cell("t", "r", "c"), Value("set"));  // only where no stamp exists
    EXPECT_GT(ticks.load(), 0);
}

TEST_F(TinyBase, ThrowingClockFallsBackToSystemClock) {
    MergeableStore m("m", []() -> double { throw Boom(); });
    EXPECT_NO_THROW(m.set_value("v", 1));
    EXPECT_EQ(m.get_value("v"), Value(1));
}

// ------------------------------------------------------------------------------------------------
// Errors
// ------------------------------------------------------------------------------------------------

template <class F>
static tb_status status_of(F&& f) {
    try {
        f();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()), "");
        return e.status();
    }
    return TB_OK;
}

TEST_F(TinyBase, ErrorsAreExceptions) {
    Store s;
    MergeableStore m("m");
    EXPECT_EQ(status_of([&] { s.set_tables_json("{"); }), TB_ERROR_INVALID_JSON);
    EXPECT_EQ(status_of([&] { s.set_tables_json("[1]"); }), TB_ERROR_INVALID_SHAPE);
    EXPECT_EQ(status_of([&] { s.set_cell("t", "r", "c", std::nan("")); }), TB_ERROR_INVALID_VALUE);
    EXPECT_EQ(status_of([&] { s.set_value("v", Value::json("not json")); }), TB_ERROR_INVALID_JSON);
    EXPECT_EQ(status_of([&] { s.set_cell("t", "r", "c", "\xFF\xFE"); }), TB_ERROR_INVALID_UTF8);
    EXPECT_EQ(status_of([&] { s.get_cell("\xC3", "r", "c"); }), TB_ERROR_INVALID_UTF8);
    EXPECT_EQ(status_of([&] { m.apply_mergeable_changes_json("[[{}],[{}]"); }), TB_ERROR_INVALID_JSON);
    EXPECT_EQ(status_of([&] { m.get_mergeable_row_diff_json("nope"); }), TB_ERROR_INVALID_JSON);
    // an HLC far in the future is refused, all or nothing
    std::string future = R"([[{"t":[{"r":[{"c":[1,"zzzzzzzzzzzzzzzz"]}]}]}],[{}],1])";
    EXPECT_NE(status_of([&] { m.apply_mergeable_changes_json(future); }), TB_OK);
    EXPECT_FALSE(m.has_tables());
    try {
        s.set_values_json("{oops");
    } catch (const std::runtime_error& e) {  // catchable as runtime_error
        EXPECT_NE(std::string(e.what()).find("JSON"), std::string::npos);
    }
    // errors inside listeners or the transaction body leave the store usable
    s.set_value("ok", 1);
    EXPECT_EQ(s.get_value("ok"), Value(1));
}

// ------------------------------------------------------------------------------------------------
// Move semantics and shared references
// ------------------------------------------------------------------------------------------------

TEST_F(TinyBase, StoreMoveAndClone) {
    int64_t before = debug_live_handles();
    Store a;
    EXPECT_EQ(debug_live_handles(), before + 1);
    a.set_value("v", 1);
    Store b = std::move(a);
    EXPECT_EQ(debug_live_handles(), before + 1);
    EXPECT_EQ(a.get(), nullptr);
    EXPECT_EQ(status_of([&] { a.get_value("v"); }), TB_ERROR_NULL_PARAMETER);
    EXPECT_EQ(b.get_value("v"), Value(1));

    Store c = b.clone();  // another owner of the same store
    EXPECT_EQ(debug_live_handles(), before + 2);
    c.set_value("w", 2);
    EXPECT_EQ(b.get_value("w"), Value(2));

    a = std::move(c);  // into a moved-from one
    b = Store();       // the old store lives on in `a`
    EXPECT_EQ(a.get_value("w"), Value(2));
    EXPECT_FALSE(b.has_values());
    a = std::move(a);  // self-move is harmless
    EXPECT_EQ(a.get_value("w"), Value(2));

    tb_store* raw = a.release();
    EXPECT_EQ(a.get(), nullptr);
    Store adopted = Store::adopt(raw);
    EXPECT_EQ(adopted.get_value("w"), Value(2));
}

TEST_F(TinyBase, MergeableMoveAndClone) {
    MergeableStore a("a");
    a.set_value("v", 1);
    MergeableStore b(std::move(a));
    EXPECT_EQ(a.get_mergeable(), nullptr);
    EXPECT_EQ(a.get(), nullptr);
    EXPECT_EQ(status_of([&] { a.get_mergeable_content_json(); }), TB_ERROR_NULL_PARAMETER);
    MergeableStore c = b.clone();
    c.set_value("w", 2);
    EXPECT_EQ(b.get_value("w"), Value(2));
    EXPECT_EQ(b.get_mergeable_content_hashes(), c.get_mergeable_content_hashes());
    b = MergeableStore("fresh");
    EXPECT_FALSE(b.has_values());
    EXPECT_TRUE(c.has_values());
    Store plain_ref = c.StoreRef::clone();  // a plain-typed owner of the mergeable store
    EXPECT_TRUE(plain_ref.is_mergeable());
}

// ------------------------------------------------------------------------------------------------
// Threads
// ------------------------------------------------------------------------------------------------

TEST_F(TinyBase, ConcurrentWritersReadersListenersAndMerges) {
    constexpr int kThreads = 8;
    constexpr int kTx = 50;
    constexpr int kPerTx = 10;
    MergeableStore shared("shared");
    std::atomic<int> cell_events{0};
    std::atomic<int> torn{0};
    auto l = shared.add_cell_listener(any_id, any_id, any_id, [&](const Event&) { cell_events++; });
    EventQueue q;
    auto bl = shared.add_buffered_listener(q, ListenerKind::DidFinishTransaction);
    std::atomic<bool> done{false};
    std::atomic<int> drained{0};
    std::thread drainer([&] {
        while (!done || q.size() > 0)
            if (q.wait(std::chrono::milliseconds(5))) drained++;
    });

    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            MergeableStore mine = shared.clone();  // each thread owns its own reference
            MergeableStore replica("replica" + std::to_string(t));
            std::string table = "t" + std::to_string(t);
            for (int i = 0; i < kTx; ++i) {
                mine.transaction([&] {
                    for (int k = 0; k < kPerTx; ++k) mine.set_cell(table, "r" + std::to_string(i), "c" + std::to_string(k), i);
                });
                // a transaction is never seen half-done: a row has all its cells or none
                size_t n = mine.get_cell_ids("t" + std::to_string((t + 1) % kThreads), "r" + std::to_string(i)).size();
                if (n != 0 && n != static_cast<size_t>(kPerTx)) torn++;
                if (i % 10 == 0) {
                    replica.set_value("from" + std::to_string(t), i);
                    replica.merge(mine);
                }
            }
        });
    }
    for (auto& th : threads) th.join();
    done = true;
    drainer.join();

    EXPECT_EQ(torn.load(), 0);
    EXPECT_EQ(cell_events.load(), kThreads * kTx * kPerTx);
    EXPECT_GE(drained.load(), kThreads * kTx);  // every writer transaction (merges add more)
    for (int t = 0; t < kThreads; ++t) {
        EXPECT_EQ(shared.get_row_count("t" + std::to_string(t)), static_cast<size_t>(kTx));
        EXPECT_EQ(shared.get_value("from" + std::to_string(t)), Value(kTx - 10));
    }
    EXPECT_EQ(shared.compute_content_hashes(), shared.get_mergeable_content_hashes());
}
