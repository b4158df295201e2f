// GoogleTest suite for the in-process synchronizers of tinybase.hpp: CustomSynchronizer with
// lambdas as the transport (plain and framed peers linked by thread-safe mailboxes, a relay
// that drops and duplicates messages, a peer that restarts), LocalBus and BroadcastChannel
// with stores written from several threads, and the error paths (empty and moved-from
// objects, throwing send lambdas, garbage payloads, a full inbox). Every test checks that the
// library's count of live host-owned objects is back to its start value.
#include "tinybase.hpp"
#include "support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

using namespace tinybase;
using tinybase_test::eventually;
using tinybase_test::scale;

static_assert(std::is_base_of_v<Synchronizer, CustomSynchronizer>, "CustomSynchronizer is a Synchronizer");
static_assert(!std::is_copy_constructible_v<LocalBus> && std::is_nothrow_move_constructible_v<LocalBus>, "LocalBus is move-only");

namespace {

class Sync : public ::testing::Test {
protected:
    void SetUp() override { base_ = debug_live_handles(); }
    void TearDown() override { EXPECT_EQ(debug_live_handles(), base_) << "a handle leaked"; }
    int64_t base_ = 0;
};

/// Every cell and value of a store by path ("t/r/c", "values/v"): content regardless of the
/// key order, which differs between replicas (maps keep insertion order).
std::map<std::string, Value> cells_of(const MergeableStoreRef& s) {
    std::map<std::string, Value> out;
    for (const auto& t : s.get_table_ids())
        for (const auto& r : s.get_row_ids(t))
            for (const auto& c : s.get_cell_ids(t, r)) out.emplace(t + "/" + r + "/" + c, *s.get_cell(t, r, c));
    for (const auto& v : s.get_value_ids()) out.emplace("values/" + v, *s.get_value(v));
    return out;
}

/// Converged: equal content hashes (they cover every cell, value and HLC), consistent with a
/// recomputation, and equal content.
bool same(const MergeableStoreRef& a, const MergeableStoreRef& b) {
    auto h = a.get_mergeable_content_hashes();
    return h == b.get_mergeable_content_hashes() && h == a.compute_content_hashes() && cells_of(a) == cells_of(b);
}

/// A message on its way to a peer.
struct Letter {
    std::string from;
    std::string payload;
};

/// A thread-safe queue drained by a thread of its own, which hands each letter to `deliver`:
/// what a socket's reader thread does. close() stops it (what is still queued is dropped).
class Mailbox {
public:
    explicit Mailbox(std::function<void(const Letter&)> deliver) : deliver_(std::move(deliver)), thread_([this] { run(); }) {}
    Mailbox(const Mailbox&) = delete;
    Mailbox& operator=(const Mailbox&) = delete;
    ~Mailbox() { close(); }

    void post(Letter l) {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) return;
        queue_.push_back(std::move(l));
        ++busy_;
        cv_.notify_one();
    }
    /// Letters queued or being delivered.
    bool busy() {
        std::lock_guard<std::mutex> lock(mu_);
        return busy_ > 0;
    }
    void close() {
        {
            std::lock_guard<std::mutex> lock(mu_);
            stop_ = true;
        }
        cv_.notify_all();
        if (thread_.joinable()) thread_.join();
    }

private:
    void run() {
        std::unique_lock<std::mutex> lock(mu_);
        for (;;) {
            cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
            if (stop_) return;
            Letter l = std::move(queue_.front());
            queue_.pop_front();
            lock.unlock();
            deliver_(l);
            lock.lock();
            --busy_;
        }
    }

    std::function<void(const Letter&)> deliver_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Letter> queue_;
    int busy_ = 0;
    bool stop_ = false;
    std::thread thread_;  // last: starts once the members above exist
};

/// Peers whose CustomSynchronizers are linked by lambdas: a peer's send routes each payload to
/// the mailbox of its addressee (or of every other peer), whose thread calls receive() (or
/// receive_framed(), for framed peers). `copies` decides how many copies of a payload arrive
/// (0 drops it, 2 duplicates it). The destructor destroys every synchronizer first (receives
/// are ignored from then on), then stops the mailboxes, then frees: no call races a free.
class Net {
public:
    struct Peer {
        std::string id;
        MergeableStore store;
        bool framed = false;
        Synchronizer sync;
        std::unique_ptr<Mailbox> inbox;
    };

    std::function<int(const std::string& from, const std::string& to)> copies = [](const std::string&, const std::string&) { return 1; };
    std::atomic<int> bad_frames{0}, failed_receives{0};

    ~Net() {
        for (auto& p : peers_) p->sync.destroy();
        for (auto& p : peers_) p->inbox->close();
    }

    /// Adds a peer for `store` (an owned reference to it) with client id `id`; it starts stopped.
    Peer& add(const std::string& id, MergeableStore store, bool framed = false, const SynchronizerOptions& options = {}) {
        auto owned = std::make_unique<Peer>();
        Peer& p = *owned;
        p.id = id;
        p.store = std::move(store);
        p.framed = framed;
        if (framed) {
            p.sync = CustomSynchronizer::framed(
                p.store,
                [this, &p](std::string_view frame) {
                    auto nl = frame.find('\n');
                    if (nl == std::string_view::npos || frame.substr(nl + 1, 1) != "[") {
                        ++bad_frames;
                        return;
                    }
                    auto to = frame.substr(0, nl);
                    route(p.id, to.empty() ? std::nullopt : std::optional<std::string_view>(to), frame.substr(nl + 1));
                },
                options);
        } else {
            p.sync = CustomSynchronizer(p.store, [this, &p](std::optional<std::string_view> to, std::string_view payload) { route(p.id, to, payload); }, options);
        }
        p.inbox = std::make_unique<Mailbox>([this, &p](const Letter& l) {
            try {
                if (p.framed)
                    p.sync.receive_framed(l.from + "\n" + l.payload);
                else
                    p.sync.receive(l.from, l.payload);
            } catch (const Error&) {
                ++failed_receives;
            }
        });
        std::lock_guard<std::mutex> lock(mu_);
        peers_.push_back(std::move(owned));
        return p;
    }

    /// Every mailbox empty and every synchronizer idle, on five checks in a row.
    bool settle(double seconds = 20) {
        std::vector<Peer*> peers;
        {
            std::lock_guard<std::mutex> lock(mu_);  // not held while asking the synchronizers
            for (auto& p : peers_) peers.push_back(p.get());
        }
        int quiet = 0;
        return eventually(
            [&] {
                bool idle = true;
                for (auto* p : peers) idle = idle && !p->inbox->busy() && p->sync.is_idle();
                quiet = idle ? quiet + 1 : 0;
                return quiet >= 5;
            },
            seconds);
    }

private:
    void route(const std::string& from, std::optional<std::string_view> to, std::string_view payload) {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto& p : peers_) {
            if (p->id == from || (to && *to != p->id)) continue;
            for (int n = copies(from, p->id); n > 0; --n) p->inbox->post(Letter{from, std::string(payload)});
        }
    }

    std::mutex mu_;
    std::vector<std::unique_ptr<Peer>> peers_;
};

/// Options of the custom-transport tests: the first peer to start waits one request timeout
/// alone (nobody answers a load before syncing), so it is short, but long enough for valgrind.
SynchronizerOptions quick() {
    SynchronizerOptions o;
    o.request_timeout_seconds = 0.5 * scale();
    return o;
}

/// Writes `count` cells into row `row` of table "t", one transaction each.
void write_cells(const MergeableStoreRef& s, const std::string& row, int count) {
    for (int i = 0; i < count; ++i) s.set_cell("t", row, "c" + std::to_string(i), i);
}

TEST_F(Sync, ThreeStoresConvergeOverLambdas) {
    Net net;
    std::atomic<int> sends{0}, receives{0};
    std::mutex mu;
    std::vector<std::string> errors;
    SynchronizerOptions o = quick();
    o.on_send = [&](std::optional<std::string_view>, std::optional<std::string_view>, tb_sync_message, std::string_view) { ++sends; };
    o.on_receive = [&](std::optional<std::string_view> from, std::optional<std::string_view>, tb_sync_message, std::string_view body) {
        if (from && !body.empty()) ++receives;
    };
    o.on_ignored_error = [&](std::string_view e) {
        std::lock_guard<std::mutex> lock(mu);
        errors.emplace_back(e);
    };
    auto& a = net.add("a", MergeableStore("a"), false, o);
    auto& b = net.add("b", MergeableStore("b"), false, o);
    auto& c = net.add("c", MergeableStore("c"), false, o);
    a.store.set_cell("t", "before", "c", "from a");

    // The listener on c fires on c's worker thread for what the others wrote.
    std::vector<Event> seen;
    auto listener = c.store.add_cell_listener("t", any_id, any_id, [&](const Event& e) {
        std::lock_guard<std::mutex> lock(mu);
        seen.push_back(e);
    });
    // a starts alone: nobody answers its load (peers answer once they sync), which times out
    // and then takes the initial content; b and c load from a. (Content that only b had before
    // its start would reach c only if c loaded from b: TinyBase's protocol spreads it no
    // further without anti-entropy, so b writes once it syncs.)
    a.sync.start_sync(R"([{"defaults":{"r":{"c":1}}},{}])");
    b.sync.start_sync();
    c.sync.start_sync();
    b.store.set_value("v", "from b");
    EXPECT_TRUE(eventually([&] { return c.store.get_cell("t", "before", "c") == std::optional<Value>("from a"); }));
    EXPECT_EQ(c.store.get_cell("defaults", "r", "c"), std::optional<Value>(1));

    // Three threads write their own store at once while the synchronizers run, plus one cell
    // all of them write (the newest HLC wins everywhere).
    std::vector<std::thread> writers;
    for (auto* p : {&a, &b, &c})
        writers.emplace_back([p] {
            write_cells(p->store, "row-" + p->id, 20);
            p->store.set_cell("t", "shared", "c", p->id);
        });
    for (auto& t : writers) t.join();

    ASSERT_TRUE(net.settle());
    EXPECT_TRUE(eventually([&] { return same(a.store, b.store) && same(a.store, c.store); })) << a.store.get_json() << "\n" << c.store.get_json();
    auto cells = cells_of(c.store);
    EXPECT_EQ(cells.size(), 1u + 3 * 20 + 1 + 1 + 1);
    EXPECT_EQ(cells.at("t/row-a/c19"), Value(19));
    EXPECT_EQ(cells.at("values/v"), Value("from b"));
    {
        std::lock_guard<std::mutex> lock(mu);
        auto from_a = std::count_if(seen.begin(), seen.end(), [](const Event& e) { return e.row_id == std::string("row-a"); });
        EXPECT_EQ(from_a, 20);
        ASSERT_EQ(errors.size(), 1u);  // a's lone load
        EXPECT_EQ(errors[0].rfind("tinybase:3:", 0), 0u) << errors[0];
    }
    EXPECT_GT(sends.load(), 0);
    EXPECT_GT(receives.load(), 0);
    EXPECT_EQ(net.failed_receives.load(), 0);
    uint64_t total_sends = 0;
    for (auto* p : {&a, &b, &c}) {
        EXPECT_TRUE(p->sync.is_settled());
        auto inbox = p->sync.get_inbox_stats();
        EXPECT_EQ(inbox.queued_payloads, 0u);
        EXPECT_EQ(inbox.queued_bytes, 0u);
        EXPECT_EQ(inbox.refused_payloads, 0u);
        EXPECT_EQ(p->sync.get_status(), static_cast<tb_sync_status>(TB_SYNC_STATUS_IDLE));
        EXPECT_EQ(p->sync.connection_state(), ConnectionState::None);
        total_sends += p->sync.get_synchronizer_stats().sends;
    }
    EXPECT_EQ(total_sends, static_cast<uint64_t>(sends.load()));
}

TEST_F(Sync, FramedAndPlainPeersConverge) {
    Net net;
    SynchronizerOptions o = quick();
    auto& a = net.add("a", MergeableStore("a"), true, o);
    auto& b = net.add("b", MergeableStore("b"), false, o);
    auto& c = net.add("c", MergeableStore("c"), true, o);
    a.store.set_cell("t", "r", "from", "a");
    for (auto* p : {&a, &b, &c}) p->sync.start_sync();
    b.store.set_cell("t", "r2", "from", "b");
    c.store.set_value("from", "c");
    c.store.del_cell("t", "r", "from");
    ASSERT_TRUE(net.settle());
    EXPECT_TRUE(eventually([&] { return same(a.store, b.store) && same(b.store, c.store); })) << a.store.get_json() << "\n" << b.store.get_json();
    EXPECT_FALSE(a.store.has_row("t", "r"));
    EXPECT_EQ(a.store.get_cell("t", "r2", "from"), std::optional<Value>("b"));
    EXPECT_EQ(b.store.get_value("from"), std::optional<Value>("c"));
    EXPECT_EQ(net.bad_frames.load(), 0);
    EXPECT_EQ(net.failed_receives.load(), 0);
}

// The header and README promise: with anti-entropy on, lost messages are repaired by the next
// periodic load (duplicates are harmless: merges are idempotent).
TEST_F(Sync, LossyRelayConvergesWithAntiEntropy) {
    Net net;
    std::atomic<int> sent{0}, dropped{0}, duplicated{0};
    net.copies = [&](const std::string&, const std::string&) {
        int n = ++sent;
        if (n % 5 == 0) {
            ++dropped;
            return 0;
        }
        if (n % 3 == 0) {
            ++duplicated;
            return 2;
        }
        return 1;
    };
    SynchronizerOptions o;
    o.request_timeout_seconds = 0.1 * scale();
    o.anti_entropy_seconds = 0.05 * scale();
    auto& a = net.add("a", MergeableStore("a"), false, o);
    auto& b = net.add("b", MergeableStore("b"), true, o);
    write_cells(a.store, "a", 10);
    write_cells(b.store, "b", 10);
    a.sync.start_sync();
    b.sync.start_sync();
    for (int i = 0; i < 10; ++i) {
        a.store.set_value("v" + std::to_string(i), i);
        b.store.del_cell("t", "b", "c" + std::to_string(i));
    }
    EXPECT_TRUE(eventually([&] { return same(a.store, b.store); }, 30)) << a.store.get_json() << "\n" << b.store.get_json();
    EXPECT_EQ(cells_of(a.store).size(), 20u);
    EXPECT_FALSE(a.store.has_row("t", "b"));
    EXPECT_GT(dropped.load(), 0);
    EXPECT_GT(duplicated.load(), 0);
}

// A peer that goes away and comes back (a new synchronizer for its store) pulls what it missed
// when it starts, and its own edits made meanwhile reach the others.
TEST_F(Sync, RestartedPeerCatchesUp) {
    Net net;
    SynchronizerOptions o = quick();
    auto& a = net.add("a", MergeableStore("a"), false, o);
    auto& b = net.add("b", MergeableStore("b"), false, o);
    a.sync.start_sync();
    b.sync.start_sync();
    a.store.set_cell("t", "r", "c", "first");
    EXPECT_TRUE(eventually([&] { return same(a.store, b.store); }));

    b.sync.destroy();
    a.store.set_cell("t", "r", "c", "while b was away");
    b.store.set_value("offline", true);
    ASSERT_TRUE(net.settle());
    EXPECT_EQ(b.store.get_cell("t", "r", "c"), std::optional<Value>("first"));

    auto& b2 = net.add("b2", b.store.clone(), false, o);
    b2.sync.start_sync();
    EXPECT_TRUE(eventually([&] { return same(a.store, b.store); })) << a.store.get_json() << "\n" << b.store.get_json();
    EXPECT_EQ(b.store.get_cell("t", "r", "c"), std::optional<Value>("while b was away"));
    EXPECT_EQ(a.store.get_value("offline"), std::optional<Value>(true));
}

TEST_F(Sync, LocalBusWithThreeStoresWrittenFromSeveralThreads) {
    MergeableStore s0("p0"), s1("p1"), s2("p2");
    std::vector<MergeableStore*> stores{&s0, &s1, &s2};
    auto bus = std::make_unique<LocalBus>();
    std::vector<Synchronizer> syncs;  // TinyBase's defaults: a 0.01 s request timeout
    for (auto* s : stores) syncs.push_back(bus->create_synchronizer(*s));
    for (auto& s : syncs) s.start_sync();
    ASSERT_TRUE(bus->wait_for_idle(std::chrono::duration<double>(10 * scale())));

    std::vector<std::thread> writers;
    for (size_t i = 0; i < stores.size(); ++i)
        for (int half = 0; half < 2; ++half)
            writers.emplace_back([&, i, half] { write_cells(*stores[i], "p" + std::to_string(i) + "-" + std::to_string(half), 15); });
    for (auto& t : writers) t.join();
    EXPECT_TRUE(bus->wait_for_idle(std::chrono::duration<double>(10 * scale())));
    EXPECT_TRUE(eventually([&] { return same(s0, s1) && same(s0, s2); })) << s0.get_json() << "\n" << s2.get_json();
    EXPECT_EQ(s2.get_row_count("t"), 6u);
    EXPECT_EQ(cells_of(s1).size(), 90u);

    // The bus handle may go first: the synchronizers keep it.
    bus.reset();
    s2.set_value("after", 1);
    EXPECT_TRUE(eventually([&] { return same(s0, s2) && same(s1, s2); }));
    EXPECT_EQ(s0.get_value("after"), std::optional<Value>(1));
}

TEST_F(Sync, NamedChannelsReachTheSameNameOnly) {
    std::atomic<int> anonymous{0};
    MergeableStore x("x"), y("y"), z("z");
    SynchronizerOptions o;
    o.on_receive = [&](std::optional<std::string_view> from, std::optional<std::string_view>, tb_sync_message, std::string_view) {
        if (!from) ++anonymous;
    };
    LocalBus c1 = BroadcastChannel::open("cpp-test-channel");
    LocalBus c2 = BroadcastChannel::open("cpp-test-channel");
    LocalBus other = BroadcastChannel::open("cpp-test-other");
    auto sx = c1.create_synchronizer(x, o);
    auto sy = c2.create_synchronizer(y, o);
    auto sz = other.create_synchronizer(z, o);
    for (auto* s : {&sx, &sy, &sz}) s->start_sync();
    x.set_cell("t", "r", "c", "x");
    z.set_cell("t", "r", "c", "z");
    EXPECT_TRUE(eventually([&] { return same(x, y); }));
    EXPECT_TRUE(c1.wait_for_idle(std::chrono::duration<double>(10 * scale())));
    EXPECT_TRUE(other.wait_for_idle(std::chrono::duration<double>(10 * scale())));
    EXPECT_EQ(y.get_cell("t", "r", "c"), std::optional<Value>("x"));
    EXPECT_EQ(z.get_cell("t", "r", "c"), std::optional<Value>("z"));
    EXPECT_EQ(cells_of(z).size(), 1u);
    EXPECT_EQ(anonymous.load(), 0);  // every message names its sender
}

TEST_F(Sync, EmptyAndMovedFromObjectsThrow) {
    MergeableStore s;
    auto status_of = [](auto&& f) {
        try {
            f();
        } catch (const Error& e) {
            return e.status();
        }
        return TB_OK;
    };
    Synchronizer empty;
    EXPECT_EQ(status_of([&] { empty.receive("peer", "[\"x\",1,\"\"]"); }), TB_ERROR_NULL_PARAMETER);
    EXPECT_EQ(status_of([&] { empty.receive_framed("peer\n[\"x\",1,\"\"]"); }), TB_ERROR_NULL_PARAMETER);
    EXPECT_EQ(status_of([&] { empty.get_inbox_stats(); }), TB_ERROR_NULL_PARAMETER);
    EXPECT_EQ(status_of([&] { empty.is_settled(); }), TB_ERROR_NULL_PARAMETER);

    CustomSynchronizer custom(s, [](auto, auto) {});
    Synchronizer taken = std::move(custom);
    EXPECT_FALSE(static_cast<bool>(custom));
    EXPECT_EQ(status_of([&] { custom.receive("peer", "[]"); }), TB_ERROR_NULL_PARAMETER);
    EXPECT_EQ(status_of([&] { taken.receive_framed("no newline"); }), TB_ERROR_INVALID_SHAPE);
    EXPECT_EQ(status_of([&] { taken.receive(std::string_view("pe\0er", 5), "[]"); }), TB_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(status_of([&] { taken.receive("\xff", "[]"); }), TB_ERROR_INVALID_UTF8);

    LocalBus bus;
    LocalBus moved = std::move(bus);
    EXPECT_FALSE(static_cast<bool>(bus));
    EXPECT_EQ(status_of([&] { bus.create_synchronizer(s); }), TB_ERROR_NULL_PARAMETER);
    EXPECT_EQ(status_of([&] { bus.wait_for_idle(); }), TB_ERROR_NULL_PARAMETER);
    EXPECT_EQ(status_of([&] { BroadcastChannel::open(std::string_view("a\0b", 3)); }), TB_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(status_of([&] { BroadcastChannel::open("\xfe"); }), TB_ERROR_INVALID_UTF8);

    MergeableStore gone = std::move(s);
    EXPECT_EQ(status_of([&] { moved.create_synchronizer(s); }), TB_ERROR_NULL_PARAMETER);
    EXPECT_EQ(status_of([&] { CustomSynchronizer(s, [](auto, auto) {}); }), TB_ERROR_NULL_PARAMETER);
    EXPECT_EQ(status_of([&] { CustomSynchronizer(gone, CustomSynchronizer::SendFn()); }), TB_ERROR_NULL_PARAMETER);
    EXPECT_EQ(status_of([&] { CustomSynchronizer::framed(gone, nullptr); }), TB_ERROR_NULL_PARAMETER);
    SynchronizerOptions bad;
    bad.request_timeout_seconds = -1;
    EXPECT_EQ(status_of([&] { moved.create_synchronizer(gone, bad); }), TB_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(status_of([&] { moved.wait_for_idle(std::chrono::duration<double>(-1)); }), TB_ERROR_INVALID_ARGUMENT);
}

// The library owns the send lambda and the hooks from a successful construction until the
// free, and nothing when construction fails (no leak, no double release).
TEST_F(Sync, SendAndHooksAreReleasedExactlyOnce) {
    MergeableStore s;
    auto token = std::make_shared<int>(1);
    SynchronizerOptions o;
    o.on_ignored_error = [token](std::string_view) {};
    {
        CustomSynchronizer plain(s, [token](auto, auto) {}, o);
        EXPECT_EQ(token.use_count(), 4);  // ours, the options' copy, the library's send and hooks
        auto framed = CustomSynchronizer::framed(s, [token](std::string_view) {}, o);
        EXPECT_EQ(token.use_count(), 6);
        Synchronizer base = std::move(framed);
        LocalBus bus;
        auto local = bus.create_synchronizer(s, o);
        EXPECT_EQ(token.use_count(), 7);
    }
    EXPECT_EQ(token.use_count(), 2);
    SynchronizerOptions nan = o;
    nan.anti_entropy_seconds = std::numeric_limits<double>::quiet_NaN();
    const long held = token.use_count();
    EXPECT_THROW(CustomSynchronizer(s, [token](auto, auto) {}, nan), Error);
    EXPECT_THROW(CustomSynchronizer::framed(s, [token](std::string_view) {}, nan), Error);
    EXPECT_THROW(LocalBus().create_synchronizer(s, nan), Error);
    EXPECT_EQ(token.use_count(), held);
}

std::atomic<int> g_reported{0};
void count_report(std::exception_ptr e) noexcept {
    try {
        std::rethrow_exception(e);
    } catch (const std::runtime_error& err) {
        if (std::string(err.what()) == "link down") ++g_reported;
    } catch (...) {
    }
}

// An exception thrown by a send lambda cannot cross the C frames: it goes to the callback
// exception handler, and the synchronizer keeps working.
TEST_F(Sync, ThrowingSendIsReportedNotFatal) {
    MergeableStore s;
    g_reported = 0;
    auto old = set_callback_exception_handler(&count_report);
    std::atomic<int> calls{0};
    {
        CustomSynchronizer sync(s, [&](auto, auto) {
            ++calls;
            throw std::runtime_error("link down");
        });
        sync.save();
        sync.save();
        EXPECT_TRUE(eventually([&] { return g_reported.load() == 2; }));
        auto framed = CustomSynchronizer::framed(s, [&](std::string_view) {
            ++calls;
            throw std::runtime_error("link down");
        });
        framed.save();
        EXPECT_TRUE(eventually([&] { return g_reported.load() == 3; }));
        EXPECT_EQ(calls.load(), 3);
        EXPECT_TRUE(sync.wait_for_idle(std::chrono::duration<double>(5 * scale())));
        EXPECT_EQ(sync.get_synchronizer_stats().sends, 2u);
    }
    set_callback_exception_handler(old);
}

// Garbage from a peer (any thread) is reported through on_ignored_error and never applied.
TEST_F(Sync, GarbageIsReportedNotApplied) {
    MergeableStore s("victim");
    s.set_cell("t", "r", "c", 1);
    std::mutex mu;
    std::vector<std::string> errors;
    SynchronizerOptions o;
    o.request_timeout_seconds = 0.05 * scale();
    o.on_ignored_error = [&](std::string_view e) {
        std::lock_guard<std::mutex> lock(mu);
        errors.emplace_back(e);
    };
    CustomSynchronizer sync(s, [](auto, auto) {}, o);
    sync.start_auto_load();  // nobody answers: one timeout
    ASSERT_TRUE(sync.wait_for_idle(std::chrono::duration<double>(5 * scale())));
    size_t before_errors = 0;
    {
        std::lock_guard<std::mutex> lock(mu);
        before_errors = errors.size();
    }
    EXPECT_EQ(before_errors, 1u);
    const std::string before = s.get_encoded_mergeable_content_json();
    const std::vector<std::string> bad = {"not json", "[1,1,\"\"]", "[\"x\",9,\"\"]", "{\"a\":1}", "[\"x\",1]", "", "[\"x\",5,{\"t\":{\"r\":1.5}}]"};
    std::thread peer([&] {
        for (const auto& p : bad) sync.receive("evil", p);
        sync.receive_framed("evil\n[\"x\",8,\"\"]");
    });
    peer.join();
    ASSERT_TRUE(sync.wait_for_idle(std::chrono::duration<double>(5 * scale())));
    EXPECT_EQ(s.get_encoded_mergeable_content_json(), before);
    {
        std::lock_guard<std::mutex> lock(mu);
        ASSERT_EQ(errors.size(), before_errors + bad.size() + 1);
        for (size_t i = before_errors; i < errors.size(); ++i) EXPECT_EQ(errors[i], "tinybase:14") << i;
    }
    EXPECT_EQ(sync.get_synchronizer_stats().receives, 0u);
}

// A full inbox refuses at once (Error(TB_ERROR_INVALID_STATE)) instead of blocking the
// transport's thread, and get_inbox_stats() counts it.
TEST_F(Sync, FullInboxRefusesAndCounts) {
    MergeableStore s;
    std::atomic<bool> hold{true}, held{false};
    std::atomic<int> overflow{0};
    SynchronizerOptions o;
    o.inbox_max_payloads = 1;
    o.on_ignored_error = [&](std::string_view e) {
        if (e.substr(0, 17) == "tinybase:15:inbox") ++overflow;
    };
    CustomSynchronizer sync(
        s,
        [&](auto, auto) {
            held = true;
            while (hold) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        },
        o);
    std::thread saver([&] { sync.save(); });  // the worker is held inside send
    ASSERT_TRUE(eventually([&] { return held.load(); }));
    sync.receive("peer", "[\"x\",1,\"\"]");
    int refused = 0;
    for (int i = 0; i < 3; ++i) {
        try {
            sync.receive("peer", "[\"x\",1,\"\"]");
        } catch (const Error& e) {
            EXPECT_EQ(e.status(), TB_ERROR_INVALID_STATE);
            ++refused;
        }
    }
    EXPECT_EQ(refused, 3);
    auto stats = sync.get_inbox_stats();
    EXPECT_EQ(stats.queued_payloads, 1u);
    EXPECT_GT(stats.queued_bytes, 0u);
    EXPECT_EQ(stats.refused_payloads, 3u);
    EXPECT_FALSE(sync.is_settled());
    hold = false;
    saver.join();
    EXPECT_TRUE(sync.wait_for_idle(std::chrono::duration<double>(5 * scale())));
    EXPECT_TRUE(sync.is_settled());
    EXPECT_EQ(sync.get_inbox_stats().queued_payloads, 0u);
    EXPECT_GE(overflow.load(), 1);
}

}  // namespace
