// GoogleTest suite for tinybase::Persister and its factories (FilePersister, SqlitePersister in
// both modes, PostgresPersister when TB_TEST_POSTGRES_DSN is set): round trips of mergeable and
// plain stores, lambdas as on_durable / on_ignored_error (released with the persister),
// auto-save + flush + reload, auto-load, a corrupt file throwing CorruptDataError and left as
// it is, move-only RAII, misuse throwing Error with its status. Every test checks that the
// library's count of live host-owned objects is back to its start value.
#include "tinybase.hpp"
#include "support.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>
#include <type_traits>

using namespace tinybase;

static_assert(!std::is_copy_constructible_v<Persister>, "Persister is move-only");
static_assert(std::is_nothrow_move_constructible_v<Persister>, "Persister moves cheaply");
static_assert(std::is_base_of_v<Persister, FilePersister>, "FilePersister is a Persister");
static_assert(std::is_base_of_v<Error, CorruptDataError>, "CorruptDataError is an Error");
static_assert(std::is_base_of_v<Error, StorageError>, "StorageError is an Error");

using tinybase_test::eventually;
using tinybase_test::scale;

namespace {

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

void write_file(const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << text;
}

bool exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

void fill(const StoreRef& st) {
    st.set_cell_json("pets", "fido", "species", "\"dog\"");
    st.set_cell_json("pets", "fido", "legs", "4");
    st.set_cell_json("pets", "tom", "toys", "{\"ball\":[1,2]}");
    st.set_value_json("open", "true");
}

/// A scratch folder per test, removed at the end; live handles checked.
class Persist : public ::testing::Test {
protected:
    void SetUp() override {
        base_ = debug_live_handles();
        char tmpl[] = "/tmp/tb-persist-cpp-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override {
        EXPECT_EQ(debug_live_handles(), base_) << "a handle or string leaked";
        std::string cmd = "rm -rf '" + dir_ + "'";
        if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", dir_.c_str());
    }
    std::string path(const std::string& name) const { return dir_ + "/" + name; }

    int64_t base_ = 0;
    std::string dir_;
};

using Factory = std::function<Persister(const StoreRef&, const std::string&, const PersisterOptions&)>;

/// A mergeable store saved through `make` loads into a new replica (merged with its own).
void round_trip(const Factory& make, const std::string& where) {
    MergeableStore a("cpp-writer");
    fill(a);
    auto durables = std::make_shared<std::atomic<int>>(0);
    auto last = std::make_shared<DurableInfo>();
    PersisterOptions o;
    o.on_durable = [durables, last](const DurableInfo& d) {
        *last = d;
        ++*durables;
    };
    Persister p = make(a, where, o);
    o.on_durable = nullptr;
    EXPECT_EQ(durables.use_count(), 2);  // the library holds a copy of the lambda
    EXPECT_EQ(p.get_status(), PersisterStatus::Idle);
    EXPECT_FALSE(p.describe().empty());
    p.save();
    EXPECT_EQ(durables->load(), 1);
    auto h = a.get_mergeable_content_hashes();
    EXPECT_EQ(last->tables_hash, h.tables);
    EXPECT_EQ(last->values_hash, h.values);
    EXPECT_EQ(last->saves, 1u);
    EXPECT_EQ(p.get_stats().saves, 1u);

    MergeableStore b("cpp-reader");
    b.set_value_json("mine", "1");
    Persister q = make(b, where, {});
    EXPECT_TRUE(q.load());
    EXPECT_EQ(q.get_stats().loads, 1u);
    EXPECT_EQ(b.get_mergeable_content_hashes().tables, h.tables);
    EXPECT_TRUE(b.has_value("mine"));
    EXPECT_TRUE(b.has_cell("pets", "tom", "toys"));

    p = Persister();  // freed: the lambda is released
    EXPECT_EQ(durables.use_count(), 1);
}

/// Auto-save in one persister, auto-load in another; flush, then a third store reloads.
void auto_save_load(const Factory& make, const std::string& where) {
    MergeableStore a("cpp-auto-a"), b("cpp-auto-b");
    PersisterOptions o;
    o.auto_load_interval_seconds = 0.02;
    Persister pa = make(a, where, o), pb = make(b, where, o);
    pa.start_auto_save();
    pb.start_auto_load();
    EXPECT_TRUE(pa.is_auto_saving());
    EXPECT_TRUE(pb.is_auto_loading());
    for (int i = 0; i < 10; ++i) a.set_cell_json("t", "r" + std::to_string(i), "n", std::to_string(i));
    EXPECT_TRUE(pa.flush(std::chrono::duration<double>(10 * scale())));
    EXPECT_TRUE(eventually([&] { return b.get_mergeable_content_hashes() == a.get_mergeable_content_hashes(); }));
    pb.stop_auto_load();
    pa.stop_auto_save();
    EXPECT_FALSE(pa.is_auto_saving());
    MergeableStore c("cpp-auto-c");
    Persister pc = make(c, where, {});
    EXPECT_TRUE(pc.load());
    EXPECT_EQ(c.get_mergeable_content_hashes(), a.get_mergeable_content_hashes());
}

Factory file_factory() {
    return [](const StoreRef& s, const std::string& w, const PersisterOptions& o) -> Persister { return FilePersister(s, w, o); };
}
Factory sqlite_factory(SqliteMode mode) {
    return [mode](const StoreRef& s, const std::string& w, const PersisterOptions& o) -> Persister { return SqlitePersister(s, w, mode, o); };
}
const char* postgres_dsn() {
    const char* d = std::getenv("TB_TEST_POSTGRES_DSN");
    return d && *d ? d : nullptr;
}
Factory postgres_factory() {
    return [](const StoreRef& s, const std::string& room, const PersisterOptions& o) -> Persister { return PostgresPersister(s, postgres_dsn(), room, o); };
}

}  // namespace

TEST_F(Persist, FileRoundTrip) { round_trip(file_factory(), path("m.json")); }
TEST_F(Persist, FileAutoSaveFlushReloadAutoLoad) { auto_save_load(file_factory(), path("auto.json")); }
TEST_F(Persist, SqliteJsonRoundTrip) { round_trip(sqlite_factory(SqliteMode::Json), path("m.db")); }
TEST_F(Persist, SqliteJsonAutoSave) { auto_save_load(sqlite_factory(SqliteMode::Json), path("auto.db")); }
TEST_F(Persist, SqliteIncrementalRoundTrip) { round_trip(sqlite_factory(SqliteMode::Incremental), path("mi.db")); }
TEST_F(Persist, SqliteIncrementalAutoSave) { auto_save_load(sqlite_factory(SqliteMode::Incremental), path("autoi.db")); }

TEST_F(Persist, PostgresRoundTripAndAutoSave) {
    if (!postgres_dsn()) GTEST_SKIP() << "TB_TEST_POSTGRES_DSN is not set";
    std::string room = "cpp-" + std::to_string(getpid());
    round_trip(postgres_factory(), room + "-m");
    auto_save_load(postgres_factory(), room + "-auto");
}

TEST_F(Persist, PlainStoreFileFormat) {
    Store st;
    st.set_cell_json("t", "r", "c", "1");
    st.set_value_json("v", "\"x\"");
    {
        FilePersister p(st, path("plain.json"));
        EXPECT_FALSE(p.load());  // nothing stored yet: the store is left as it is
        EXPECT_TRUE(st.has_cell("t", "r", "c"));
        p.save();
    }
    EXPECT_EQ(read_file(path("plain.json")), "[{\"t\":{\"r\":{\"c\":1}}},{\"v\":\"x\"}]");
    Store other;
    other.set_value_json("v", "\"old\"");
    other.set_value_json("kept", "true");
    FilePersister q(other, path("plain.json"));
    EXPECT_TRUE(q.load());
    EXPECT_EQ(other.get_content_json(), "[{\"t\":{\"r\":{\"c\":1}}},{\"v\":\"x\",\"kept\":true}]");
}

TEST_F(Persist, CorruptFileThrowsAndIsKept) {
    const std::string file = path("bad.json"), junk = "{\"not\": \"tinybase\"}";
    write_file(file, junk);
    MergeableStore m("cpp-corrupt");
    m.set_value_json("mine", "1");
    auto errors = std::make_shared<std::atomic<int>>(0);
    auto last_status = std::make_shared<std::atomic<int>>(0);
    PersisterOptions o;
    o.auto_load_interval_seconds = 0.02;
    o.on_ignored_error = [errors, last_status](tb_status status, std::string_view message) {
        EXPECT_FALSE(message.empty());
        *last_status = static_cast<int>(status);
        ++*errors;
    };
    FilePersister p(m, file, o);
    try {
        p.load();
        ADD_FAILURE() << "load of a corrupt file did not throw";
    } catch (const CorruptDataError& e) {
        EXPECT_EQ(e.status(), TB_ERROR_CORRUPT);
        EXPECT_NE(std::string(e.what()).find("bad.json"), std::string::npos) << e.what();
    }
    EXPECT_EQ(m.get_content_json(), "[{},{\"mine\":1}]");
    try {
        p.save();
        ADD_FAILURE() << "a save over unreadable data did not throw";
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), TB_ERROR_INVALID_STATE);
    }
    EXPECT_EQ(read_file(file), junk);
    auto aside = p.move_aside_unreadable();
    ASSERT_TRUE(aside.has_value());
    EXPECT_EQ(read_file(*aside), junk);
    EXPECT_FALSE(exists(file));
    p.save();
    EXPECT_TRUE(exists(file));
    EXPECT_FALSE(p.move_aside_unreadable().has_value());

    // Auto-load reports a file another process corrupted, through the lambda.
    p.start_auto_load();
    write_file(file + ".tmp", junk);
    ASSERT_EQ(std::rename((file + ".tmp").c_str(), file.c_str()), 0);
    EXPECT_TRUE(eventually([&] { return errors->load() > 0; }));
    EXPECT_EQ(last_status->load(), static_cast<int>(TB_ERROR_CORRUPT));
    p.stop_auto_load();
    EXPECT_EQ(read_file(file), junk);
}

TEST_F(Persist, DestroyedFromItsOwnCallback) {
    MergeableStore m("cpp-self");
    auto holder = std::make_shared<std::unique_ptr<Persister>>();
    auto freed = std::make_shared<std::atomic<int>>(0);
    auto armed = std::make_shared<std::atomic<bool>>(false);
    PersisterOptions o;
    o.on_durable = [holder, freed, armed](const DurableInfo&) {
        if (!armed->exchange(false)) return;
        Persister& self = **holder;
        EXPECT_THROW(self.save(), Error);  // its own commands are refused here
        EXPECT_GE(self.get_stats().saves, 1u);
        holder->reset();  // frees it: deferred until this callback returned
        ++*freed;
    };
    *holder = std::make_unique<FilePersister>(m, path("self.json"), o);
    o.on_durable = nullptr;
    Persister* raw = holder->get();
    raw->start_auto_save();
    *armed = true;
    m.set_cell_json("t", "r", "c", "1");
    EXPECT_TRUE(eventually([&] { return freed->load() == 1; }));
    // The lambda (and with it `holder`) is released once the persister's thread stopped.
    EXPECT_TRUE(eventually([&] { return freed.use_count() == 1; }));
    holder.reset();
}

TEST_F(Persist, MisuseThrows) {
    MergeableStore m("cpp-misuse");
    Store plain;
    try {
        FilePersister p(m, std::string_view("a\0b", 3));
        ADD_FAILURE();
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), TB_ERROR_INVALID_ARGUMENT);
    }
    auto hooks = std::make_shared<int>(0);
    PersisterOptions o;
    o.on_durable = [hooks](const DurableInfo&) {};
    o.lock_timeout_seconds = -1;
    EXPECT_THROW(FilePersister(m, path("x.json"), o), Error);
    EXPECT_EQ(hooks.use_count(), 2);  // not handed over: o still holds it, the library does not
    o.lock_timeout_seconds = 0;
    try {
        SqlitePersister p(plain, path("x.db"), SqliteMode::Incremental, o);
        ADD_FAILURE() << "an incremental persister of a plain store";
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), TB_ERROR_INVALID_STATE);
    }
    try {
        SqlitePersister p(m, path("x.db"), static_cast<SqliteMode>(9));
        ADD_FAILURE();
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), TB_ERROR_INVALID_ARGUMENT);
    }
    EXPECT_EQ(hooks.use_count(), 2);

    FilePersister p(m, path("x.json"));
    Persister moved(std::move(p));
    try {
        p.save();
        ADD_FAILURE();
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), TB_ERROR_NULL_PARAMETER);
    }
    moved.destroy();
    moved.destroy();
    EXPECT_THROW(moved.save(), Error);
    EXPECT_EQ(moved.get_status(), PersisterStatus::Idle);
}
