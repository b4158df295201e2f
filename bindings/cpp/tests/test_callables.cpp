// Every template of tinybase.hpp that takes a callable accepts lvalues: named lambdas (mutable
// or not), const lambdas, std::function objects, function pointers and plain functions, for
// transaction() and for every listener kind. Before the fix, transaction(F&&) formed a pointer
// to a reference for an lvalue and did not compile.
#include "tinybase.hpp"

#include <gtest/gtest.h>

#include <functional>

using namespace tinybase;

namespace {

int g_tx_calls = 0;
int g_events = 0;

void tx_plain() { ++g_tx_calls; }
bool tx_with_store(StoreRef s) {
    ++g_tx_calls;
    s.set_value("fp", 1);
    return false;
}
bool tx_rollback() { return true; }
void on_event(const Event&) { ++g_events; }
void on_event_with_store(StoreRef, const Event&) { ++g_events; }

class Callables : public ::testing::Test {
protected:
    void SetUp() override {
        base_ = debug_live_handles();
        g_tx_calls = 0;
        g_events = 0;
    }
    void TearDown() override { EXPECT_EQ(debug_live_handles(), base_) << "a handle or listener leaked"; }
    int64_t base_ = 0;
};

// Registers `f` with every named add_*_listener helper (ids matching the write below), then
// writes a cell and a value in one transaction: every listener fires once.
template <class F>
int fire_every_kind(const Store& s, F& f) {
    std::vector<Listener> ls;
    ls.push_back(s.add_has_tables_listener(f));
    ls.push_back(s.add_tables_listener(f));
    ls.push_back(s.add_table_ids_listener(f));
    ls.push_back(s.add_has_table_listener("t", f));
    ls.push_back(s.add_table_listener("t", f));
    ls.push_back(s.add_table_cell_ids_listener("t", f));
    ls.push_back(s.add_has_table_cell_listener("t", "c", f));
    ls.push_back(s.add_row_count_listener("t", f));
    ls.push_back(s.add_row_ids_listener("t", f));
    ls.push_back(s.add_has_row_listener("t", "r", f));
    ls.push_back(s.add_row_listener("t", "r", f));
    ls.push_back(s.add_cell_ids_listener("t", "r", f));
    ls.push_back(s.add_has_cell_listener("t", "r", "c", f));
    ls.push_back(s.add_cell_listener("t", "r", "c", f));
    ls.push_back(s.add_has_values_listener(f));
    ls.push_back(s.add_values_listener(f));
    ls.push_back(s.add_value_ids_listener(f));
    ls.push_back(s.add_has_value_listener("v", f));
    ls.push_back(s.add_value_listener("v", f));
    ls.push_back(s.add_start_transaction_listener(f));
    ls.push_back(s.add_will_finish_transaction_listener(f));
    ls.push_back(s.add_did_finish_transaction_listener(f));
    ls.push_back(s.add_listener(ListenerKind::Cell, any_id, any_id, any_id, f));
    s.transaction([&] {
        s.set_cell("t", "r", "c", 1);
        s.set_value("v", 1);
    });
    const int registered = static_cast<int>(ls.size());
    ls.clear();
    s.del_tables().del_values();  // no listener left: resets the store for the next round
    return registered;
}

}  // namespace

TEST_F(Callables, TransactionTakesNamedLambda) {
    Store s;
    int calls = 0;
    auto body = [&] { ++calls; s.set_value("a", 1); };
    EXPECT_TRUE(s.transaction(body));
    auto mutable_body = [&calls, n = 0](StoreRef tx) mutable { calls += ++n; tx.set_value("b", 2); };
    EXPECT_TRUE(s.transaction(mutable_body));
    auto rollback = [&](StoreRef tx) { tx.set_value("c", 3); return true; };
    EXPECT_FALSE(s.transaction(rollback));
    EXPECT_EQ(calls, 2);
    EXPECT_EQ(s.get_values_json(), R"({"a":1,"b":2})");
}

TEST_F(Callables, TransactionTakesConstLambda) {
    Store s;
    int calls = 0;
    const auto body = [&] { ++calls; s.set_value("a", 1); };
    EXPECT_TRUE(s.transaction(body));
    const auto with_ref = [&](StoreRef tx) { ++calls; tx.set_value("b", 2); return false; };
    EXPECT_TRUE(s.transaction(with_ref));
    EXPECT_EQ(calls, 2);
    EXPECT_EQ(s.get_values_json(), R"({"a":1,"b":2})");
}

TEST_F(Callables, TransactionTakesStdFunction) {
    Store s;
    std::function<void()> body = [&] { s.set_value("a", 1); };
    EXPECT_TRUE(s.transaction(body));
    const std::function<bool(StoreRef)> rollback = [](StoreRef tx) { tx.set_value("b", 2); return true; };
    EXPECT_FALSE(s.transaction(rollback));
    EXPECT_EQ(s.get_values_json(), R"({"a":1})");
}

TEST_F(Callables, TransactionTakesFunctionPointerAndFunction) {
    Store s;
    void (*plain)() = &tx_plain;
    EXPECT_TRUE(s.transaction(plain));
    bool (*with_store)(StoreRef) = &tx_with_store;
    EXPECT_TRUE(s.transaction(with_store));
    EXPECT_TRUE(s.transaction(tx_plain));
    EXPECT_FALSE(s.transaction(tx_rollback));
    EXPECT_EQ(g_tx_calls, 3);
    EXPECT_EQ(s.get_values_json(), R"({"fp":1})");
}

TEST_F(Callables, EveryListenerKindTakesNamedLambda) {
    Store s;
    int n = 0;
    auto f = [&n](const Event&) { ++n; };
    EXPECT_EQ(n, 0);
    EXPECT_EQ(fire_every_kind(s, f), 23);
    EXPECT_EQ(n, 23);
    int m = 0;
    auto g = [&m, k = 0](StoreRef, const Event&) mutable { ++k; ++m; };
    EXPECT_EQ(m, 0);
    EXPECT_EQ(fire_every_kind(s, g), 23);
    EXPECT_EQ(m, 23);
}

TEST_F(Callables, EveryListenerKindTakesConstLambda) {
    Store s;
    int n = 0;
    const auto f = [&n](const Event&) { ++n; };
    EXPECT_EQ(n, 0);
    EXPECT_EQ(fire_every_kind(s, f), 23);
    EXPECT_EQ(n, 23);
    int m = 0;
    const auto g = [&m](StoreRef view, const Event&) { ++m; (void)view.get_listener_count(); };
    EXPECT_EQ(m, 0);
    EXPECT_EQ(fire_every_kind(s, g), 23);
    EXPECT_EQ(m, 23);
}

TEST_F(Callables, EveryListenerKindTakesStdFunction) {
    Store s;
    int n = 0;
    std::function<void(const Event&)> f = [&n](const Event&) { ++n; };
    EXPECT_EQ(n, 0);
    EXPECT_EQ(fire_every_kind(s, f), 23);
    EXPECT_EQ(n, 23);
    int m = 0;
    const std::function<void(StoreRef, const Event&)> g = [&m](StoreRef, const Event&) { ++m; };
    EXPECT_EQ(m, 0);
    EXPECT_EQ(fire_every_kind(s, g), 23);
    EXPECT_EQ(m, 23);
}

TEST_F(Callables, EveryListenerKindTakesFunctionPointer) {
    Store s;
    void (*f)(const Event&) = &on_event;
    EXPECT_EQ(g_events, 0);
    EXPECT_EQ(fire_every_kind(s, f), 23);
    EXPECT_EQ(g_events, 23);
    g_events = 0;
    void (*g)(StoreRef, const Event&) = &on_event_with_store;
    EXPECT_EQ(g_events, 0);
    EXPECT_EQ(fire_every_kind(s, g), 23);
    EXPECT_EQ(g_events, 23);
    g_events = 0;
    auto h = s.add_cell_listener("t", "r", "c", on_event);  // a function, not a pointer
    s.set_cell("t", "r", "c", 2);
    EXPECT_EQ(g_events, 1);
}
