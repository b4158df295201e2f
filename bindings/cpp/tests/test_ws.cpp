// GoogleTest suite for tinybase::WsSynchronizer, through a tinybase-server ($TB_SERVER_BIN,
// set by run_tests.sh) that this suite starts on 127.0.0.1 and a free port and kills at exit
// whatever happens: two stores syncing (legacy, fragmented, multiplexed), lambdas as hooks and
// status callback, connection state, RAII release of the hooks, and misuse throwing Error.
#include "tinybase.hpp"
#include "support.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

using namespace tinybase;
using tinybase_test::eventually;
using tinybase_test::scale;

namespace {

/// The server of this suite: started by the first Ws test, killed when the suite ends (or at
/// exit, whatever happens).
struct Server {
    static inline pid_t pid = -1;
    static inline int port = 0;
    static inline std::string data;

    static void kill_now() {
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
            pid = -1;
        }
    }
    static void start() {
        if (pid > 0) return;
        std::atexit(&kill_now);
        const char* bin = std::getenv("TB_SERVER_BIN");
        if (!bin || !*bin) return;
        char dir[] = "/tmp/tb-ws-cpp-XXXXXX";
        if (!mkdtemp(dir)) return;
        data = dir;
        int fds[2];
        if (pipe(fds) != 0) return;
        pid = fork();
        if (pid < 0) return;
        if (pid == 0) {
            dup2(fds[1], STDOUT_FILENO);
            close(fds[0]);
            close(fds[1]);
            execl(bin, bin, "--listen", "127.0.0.1:0", "--data", dir, static_cast<char*>(nullptr));
            _exit(127);
        }
        close(fds[1]);
        FILE* f = fdopen(fds[0], "r");
        char line[512];
        while (fgets(line, sizeof line, f)) {
            if (!std::strstr(line, "listening")) continue;
            // The port is the last number of the line ("listening on 127.0.0.1:43127").
            for (const char* p = line; *p; ++p)
                if (std::isdigit(static_cast<unsigned char>(*p)) && (p == line || !std::isdigit(static_cast<unsigned char>(p[-1])))) port = std::atoi(p);
            break;
        }
        // Drains what the server prints later, so that it never blocks on a full pipe.
        std::thread([f] {
            char rest[512];
            while (fgets(rest, sizeof rest, f)) {
            }
            fclose(f);
        }).detach();
    }
    static void stop() {
        kill_now();
        if (!data.empty()) {
            if (std::system(("rm -rf '" + data + "'").c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", data.c_str());
            data.clear();
        }
        port = 0;
    }
};

std::string url(const std::string& path) { return "ws://127.0.0.1:" + std::to_string(Server::port) + path; }

bool cell_is(const MergeableStore& s, const char* row, const std::string& want) {
    auto v = s.get_cell("t", row, "c");
    return v && v->is_string() && v->as_string() == want;
}

class Ws : public ::testing::Test {
protected:
    static void SetUpTestSuite() { Server::start(); }
    static void TearDownTestSuite() { Server::stop(); }
    void SetUp() override {
        ASSERT_GT(Server::port, 0) << "no tinybase-server: TB_SERVER_BIN (set by run_tests.sh) unset, or it printed no listening line";
        base_ = debug_live_handles();
    }
    void TearDown() override { EXPECT_EQ(debug_live_handles(), base_) << "a handle leaked"; }
    int64_t base_ = 0;
};

WsSynchronizerOptions fast() {
    WsSynchronizerOptions o;
    o.sync.request_timeout_seconds = 2 * scale();
    o.reconnect_min_seconds = 0.05;
    o.reconnect_max_seconds = 0.5;
    return o;
}

void sync_pair(const std::string& path, std::optional<std::string> channel, size_t fragment_size) {
    MergeableStore a("a"), b("b");
    a.set_cell("t", "before", "c", "from a");
    std::mutex mu;
    std::vector<ConnectionState> seen;
    std::atomic<int> sends{0}, receives{0};
    auto o = fast();
    o.channel_id = channel;
    o.fragment_size = fragment_size;
    o.headers = {{"X-Test", "C++"}};
    o.sync.on_status = [&](const SyncStatusInfo& s) {
        std::lock_guard<std::mutex> l(mu);
        if (seen.empty() || seen.back() != s.connection.state) seen.push_back(s.connection.state);
    };
    o.sync.on_send = [&](auto, auto, tb_sync_message, std::string_view) { ++sends; };
    o.sync.on_receive = [&](auto, auto, tb_sync_message, std::string_view) { ++receives; };
    WsSynchronizer sa(a, url(path), o);
    auto ob = fast();
    ob.channel_id = channel;
    ob.reconnect = false;
    WsSynchronizer sb(b, url(path), ob);
    EXPECT_EQ(sb.connection_state(), ConnectionState::Open);
    EXPECT_TRUE(eventually([&] { return sa.connection_state() == ConnectionState::Open; }));
    sa.start_sync();
    sb.start_sync();
    EXPECT_TRUE(eventually([&] { return cell_is(b, "before", "from a"); }));
    b.set_cell("t", "after", "c", "from b");
    EXPECT_TRUE(eventually([&] { return cell_is(a, "after", "from b"); }));
    std::string big(30000, 'z');
    a.set_cell("t", "big", "c", big);
    EXPECT_TRUE(eventually([&] { return cell_is(b, "big", big); }));
    EXPECT_TRUE(eventually([&] { return a.get_content_json() == b.get_content_json(); }));
    EXPECT_GT(sends.load(), 0);
    EXPECT_GT(receives.load(), 0);
    auto stats = sa.get_synchronizer_stats();
    EXPECT_EQ(stats.sends, static_cast<uint64_t>(sends.load()));
    {
        std::lock_guard<std::mutex> l(mu);
        EXPECT_NE(std::find(seen.begin(), seen.end(), ConnectionState::Open), seen.end());
    }
    sa.destroy();
    auto c = sa.get_connection();
    EXPECT_EQ(c.state, ConnectionState::Closed);
    EXPECT_EQ(c.close_code, 1000);
    EXPECT_THROW(sa.start_sync(), Error);
}

TEST_F(Ws, LegacyRoom) { sync_pair("/cpp-legacy", std::nullopt, 0); }
TEST_F(Ws, Fragments) { sync_pair("/cpp-fragments", std::nullopt, 500); }
TEST_F(Ws, MultiplexedChannel) { sync_pair("/cpp-mux", std::string("channel"), 0); }

TEST_F(Ws, MoveAndRaiiReleaseTheHooks) {
    MergeableStore s;
    auto token = std::make_shared<int>(1);
    {
        auto o = fast();
        o.sync.on_status = [token](const SyncStatusInfo&) {};
        WsSynchronizer w(s, url("/cpp-raii"), o);
        EXPECT_EQ(token.use_count(), 3);  // ours, the options' copy, the library's copy
        WsSynchronizer moved(std::move(w));
        EXPECT_FALSE(static_cast<bool>(w));
        EXPECT_THROW(w.start_sync(), Error);
        Synchronizer base = std::move(moved);
        base.start_sync();
    }
    EXPECT_EQ(token.use_count(), 1);  // released by tb_synchronizer_free
}

TEST_F(Ws, Misuse) {
    MergeableStore s;
    auto token = std::make_shared<int>(1);
    auto o = fast();
    o.sync.on_status = [token](const SyncStatusInfo&) {};
    auto nan = o;
    nan.sync.request_timeout_seconds = std::nan("");
    auto refused = o;
    refused.reconnect = false;
    refused.connect_timeout_seconds = 2;
    auto bad_header = o;
    bad_header.headers = {{"", "value"}};
    const long held = token.use_count();

    for (const char* bad : {"", "not a url", "http://127.0.0.1:1/", "ws://"}) EXPECT_THROW(WsSynchronizer(s, bad, o), Error) << bad;
    EXPECT_THROW(WsSynchronizer(s, std::string_view("ws://x/\0", 8), o), Error);
    try {
        WsSynchronizer w(s, url("/x"), nan);
        ADD_FAILURE() << "NaN accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), TB_ERROR_INVALID_ARGUMENT);
    }
    try {
        WsSynchronizer w(s, "ws://127.0.0.1:1/x", refused);
        ADD_FAILURE() << "connected to nothing";
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), TB_ERROR_INVALID_STATE);
        EXPECT_NE(std::string(e.what()).find("tinybase:5"), std::string::npos);
    }
    EXPECT_THROW(WsSynchronizer(s, url("/x"), bad_header), Error);
    EXPECT_EQ(token.use_count(), held);  // failed calls took nothing over, and freed their copies
    Synchronizer empty;
    EXPECT_THROW(empty.get_connection(), Error);
}

TEST_F(Ws, SharedSocketForSeveralStores) {
    MergeableStore x1("x1"), x2("x2"), y1("y1"), y2("y2");
    auto o = fast();
    WsClient cx(url("/cpp-shared"), o);
    o.reconnect = false;
    WsClient cy(url("/cpp-shared"), o);
    SynchronizerOptions so;
    so.request_timeout_seconds = 2 * scale();
    auto sx1 = cx.create_synchronizer(x1, "one", so);
    auto sx2 = cx.create_synchronizer(x2, "two", so);
    EXPECT_THROW(cx.create_synchronizer(y1, "one", so), Error);  // taken on this socket
    auto sy1 = cy.create_synchronizer(y1, "one", so);
    auto sy2 = cy.create_synchronizer(y2, "two", so);
    EXPECT_TRUE(eventually([&] { return cx.get_connection().state == ConnectionState::Open; }));
    for (auto* s : {&sx1, &sx2, &sy1, &sy2}) s->start_sync();
    x1.set_cell("t", "r", "c", "one");
    y2.set_cell("t", "r", "c", "two");
    EXPECT_TRUE(eventually([&] { return cell_is(y1, "r", "one"); }));
    EXPECT_TRUE(eventually([&] { return cell_is(x2, "r", "two"); }));
    EXPECT_FALSE(x1.get_cell("t", "r", "c") == x2.get_cell("t", "r", "c"));
    EXPECT_THROW(WsClient("not a url"), Error);
}

}  // namespace
