// tinybase.hpp - header-only C++17 wrapper over the C API of tinybase-native (tinybase.h).
//
// ============================================================================================
// NAMING
//   Methods are TinyBase's method names in snake_case, as in the C API and the Rust crate
//   (setCell -> set_cell, getMergeableContent -> get_mergeable_content_json). Methods that take
//   or return JSON text end in _json, exactly as their tb_* counterparts; each method is a thin
//   call of the C function of the same name (tb_store_<name> / tb_mergeable_store_<name>).
//
// TYPES
//   tinybase::Store            owns one reference to a plain Store (move-only; clone() shares).
//   tinybase::MergeableStore   owns one reference to a MergeableStore (move-only). It is also a
//                              StoreRef: every Store method works on it.
//   tinybase::StoreRef /       non-owning views (what listeners and transaction bodies receive;
//   MergeableStoreRef          Store/MergeableStore derive from them). Valid while an owner is.
//   tinybase::EventQueue       owns a queue for buffered listener delivery (move-only).
//   tinybase::Listener         RAII registration: removes the listener when destroyed (or on
//                              remove()); detach() leaves it registered for the store's life.
//                              It holds its own reference to the store, so it may outlive the
//                              Store object it came from.
//   tinybase::Value            a cell or value: null, bool, double, std::string, or Json (the
//                              JSON text of an object or array). A missing cell/value is
//                              std::nullopt (std::optional<Value>), distinct from Value(nullptr).
//   tinybase::Event            an owned copy of a listener event.
//   tinybase::Error            std::runtime_error with the tb_status (status()) and the
//                              library's message; every failing call throws it.
//   tinybase::Synchronizer     owns a tb_synchronizer (move-only; destroyed and freed with it).
//   tinybase::WsSynchronizer   a Synchronizer through a WebSocket server (WsSynchronizerOptions;
//                              hooks and on_status as std::function, run on the worker thread).
//   tinybase::WsClient         one multiplexed socket shared by several stores' WsSynchronizers.
//   tinybase::CustomSynchronizer  createCustomSynchronizer: a Synchronizer over the host's own
//                              transport, a lambda send(to_client_id, payload) (or framed():
//                              send_frame(frame)); what arrives goes to receive() /
//                              receive_framed() of any Synchronizer, from any thread.
//   tinybase::LocalBus         an in-process bus: create_synchronizer(store) is TinyBase's
//                              createLocalSynchronizer (move-only; synchronizers keep the bus).
//   tinybase::BroadcastChannel open(name) gives the LocalBus of a named in-process channel
//                              (TinyBase's createBroadcastChannelSynchronizer).
//   tinybase::Persister        owns a tb_persister (move-only; destroyed and freed with it):
//                              load, save, start_auto_load/save ... (TinyBase's Persister).
//   tinybase::FilePersister /  its factories: a file in TinyBase's format, a SQLite database
//   SqlitePersister /          (SqliteMode::Json, TinyBase's layout, or SqliteMode::Incremental)
//   PostgresPersister          or a PostgreSQL room (PersisterOptions: on_durable and
//                              on_ignored_error as std::function, run on the persister's thread).
//   tinybase::StorageError /   Errors for TB_ERROR_IO (storage could not be read or written) and
//   CorruptDataError           TB_ERROR_CORRUPT (stored data could not be loaded; kept as it is).
//
// STRINGS
//   Ids and JSON text are taken as std::string_view (copied to a NUL-terminated buffer for the
//   call: views need not be NUL-terminated). A view containing a NUL byte cannot cross the C
//   API: it throws Error(TB_ERROR_INVALID_ARGUMENT). Results are std::string (string cells may
//   hold NUL bytes: the C API gives their length). Wildcard ids of listeners are
//   std::optional<std::string_view>: pass tinybase::any_id (std::nullopt) for "any".
//
// TRANSACTIONS
//   store.transaction(f) runs f inside tb_store_transaction (the store's lock held; other
//   threads wait). f may take no argument or a StoreRef. It commits unless:
//     - f returns bool true (TinyBase's doRollback), or
//     - f throws: the transaction is rolled back and the exception is rethrown from
//       transaction() (it never crosses the C frames); tinybase::Rollback is the exception to
//       throw for "roll back quietly": it unwinds to the outermost transaction() call on this
//       thread (rolling back every transaction it leaves) and is swallowed there.
//   As in TinyBase, nested transactions join the outer one, so a nested rollback decision by
//   return value is ignored; an exception (or Rollback) propagates and rolls back the outermost.
//   transaction() returns true when it committed (false when it rolled back).
//   start_transaction()/finish_transaction(rollback) wrap the C begin/finish pair.
//
// CALLBACKS (listeners, notify, clock)
//   Listeners are any callable taking (const Event&) or (StoreRef, const Event&), kept in a
//   std::function until the listener is removed. They run as the C API's callback contract says
//   (on the thread that committed the change, possibly concurrently on several threads, may
//   re-enter the store). An exception escaping a listener or notify callback cannot cross the C
//   frames: it is caught and passed to the handler set with set_callback_exception_handler()
//   (default: ignored). A clock that throws falls back to the system clock for that call.
//
// THREADS: as the C API (include/tinybase.h): every object may be used from any thread; owner
//   objects themselves are not synchronised for move/assignment (as any C++ value).
// ============================================================================================

#ifndef TINYBASE_HPP
#define TINYBASE_HPP

#include "tinybase.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace tinybase {

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// A failed call: the tb_status and the library's message.
class Error : public std::runtime_error {
public:
    Error(tb_status status, const std::string& message)
        : std::runtime_error(message), status_(status) {}
    /// The C API's status code.
    tb_status status() const noexcept { return status_; }

private:
    tb_status status_;
};

/// TB_ERROR_IO: reading or writing a persister's storage failed (I/O, database, a lock held
/// by another process past the timeout).
class StorageError : public Error {
public:
    using Error::Error;
};

/// TB_ERROR_CORRUPT: a persister's stored data cannot be loaded; nothing was loaded and the
/// data is kept (saves are refused until Persister::move_aside_unreadable()).
class CorruptDataError : public Error {
public:
    using Error::Error;
};

/// Throw from a transaction body to roll back without an error (see TRANSACTIONS above).
struct Rollback {};

/// Receives exceptions that escaped a listener, notify or clock callback (they cannot cross
/// the C API). Called on the callback's thread. Must not throw.
using CallbackExceptionHandler = void (*)(std::exception_ptr) noexcept;

namespace detail {

inline std::atomic<CallbackExceptionHandler>& exception_handler() {
    static std::atomic<CallbackExceptionHandler> handler{nullptr};
    return handler;
}

inline void report_callback_exception(std::exception_ptr e) noexcept {
    if (auto h = exception_handler().load()) h(std::move(e));
}

[[noreturn]] inline void throw_last(tb_status status) {
    const char* msg = tb_last_error_message();
    std::string text = msg && *msg ? std::string(msg) : std::string("tinybase error ") + std::to_string(static_cast<int>(status));
    switch (status) {
        case TB_ERROR_IO: throw StorageError(status, text);
        case TB_ERROR_CORRUPT: throw CorruptDataError(status, text);
        default: throw Error(status, text);
    }
}

inline void check(tb_status status) {
    if (status != TB_OK) throw_last(status);
}

/// A NUL-terminated copy of a string_view for one call (inline buffer for short strings).
class CStr {
public:
    explicit CStr(std::string_view s) {
        if (s.find('\0') != std::string_view::npos)
            throw Error(TB_ERROR_INVALID_ARGUMENT, "string contains a NUL byte, which the C API cannot take");
        if (s.size() < sizeof(buf_)) {
            if (!s.empty()) std::memcpy(buf_, s.data(), s.size());
            buf_[s.size()] = '\0';
            ptr_ = buf_;
        } else {
            heap_.assign(s.data(), s.size());
            ptr_ = heap_.c_str();
        }
    }
    CStr(const CStr&) = delete;
    CStr& operator=(const CStr&) = delete;
    const char* get() const noexcept { return ptr_; }

private:
    char buf_[128];
    std::string heap_;
    const char* ptr_ = nullptr;
};

/// An optional id: NULL (wildcard) or a NUL-terminated copy.
class OptCStr {
public:
    explicit OptCStr(std::optional<std::string_view> s) {
        if (s) str_.emplace(*s);
    }
    const char* get() const noexcept { return str_ ? str_->get() : nullptr; }

private:
    std::optional<CStr> str_;
};

/// Takes a library-owned char* and frees it with tb_string_free.
inline std::string take_string(char* s) {
    if (!s) return std::string();
    std::string out;
    try {
        out = s;
    } catch (...) {
        tb_string_free(s);
        throw;
    }
    tb_string_free(s);
    return out;
}

/// Calls f(char**) and returns the owned result as std::string.
template <class F>
std::string get_string(F&& f) {
    char* out = nullptr;
    tb_status st = f(&out);
    if (st != TB_OK) throw_last(st);
    return take_string(out);
}

/// Parses a JSON array of strings (as the *_ids_json functions return).
inline void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

inline std::vector<std::string> parse_string_array(std::string_view j) {
    std::vector<std::string> out;
    size_t i = 0;
    auto bad = [] { return Error(TB_ERROR_INVALID_JSON, "unexpected id list from the library"); };
    auto ws = [&] {
        while (i < j.size() && (j[i] == ' ' || j[i] == '\n' || j[i] == '\t' || j[i] == '\r')) ++i;
    };
    auto hex4 = [&]() -> uint32_t {
        if (i + 4 > j.size()) throw bad();
        uint32_t v = 0;
        for (int k = 0; k < 4; ++k) {
            char c = j[i++];
            v <<= 4;
            if (c >= '0' && c <= '9') v |= static_cast<uint32_t>(c - '0');
            else if (c >= 'a' && c <= 'f') v |= static_cast<uint32_t>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') v |= static_cast<uint32_t>(c - 'A' + 10);
            else throw bad();
        }
        return v;
    };
    ws();
    if (i >= j.size() || j[i] != '[') throw bad();
    ++i;
    ws();
    if (i < j.size() && j[i] == ']') return out;
    for (;;) {
        ws();
        if (i >= j.size() || j[i] != '"') throw bad();
        ++i;
        std::string s;
        for (;;) {
            if (i >= j.size()) throw bad();
            char c = j[i++];
            if (c == '"') break;
            if (c != '\\') {
                s += c;
                continue;
            }
            if (i >= j.size()) throw bad();
            char e = j[i++];
            switch (e) {
                case '"': s += '"'; break;
                case '\\': s += '\\'; break;
                case '/': s += '/'; break;
                case 'b': s += '\b'; break;
                case 'f': s += '\f'; break;
                case 'n': s += '\n'; break;
                case 'r': s += '\r'; break;
                case 't': s += '\t'; break;
                case 'u': {
                    uint32_t cp = hex4();
                    if (cp >= 0xD800 && cp < 0xDC00 && i + 6 <= j.size() && j[i] == '\\' && j[i + 1] == 'u') {
                        size_t save = i;
                        i += 2;
                        uint32_t lo = hex4();
                        if (lo >= 0xDC00 && lo < 0xE000) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        else i = save;
                    }
                    append_utf8(s, cp);
                    break;
                }
                default: throw bad();
            }
        }
        out.push_back(std::move(s));
        ws();
        if (i < j.size() && j[i] == ',') {
            ++i;
            continue;
        }
        if (i < j.size() && j[i] == ']') return out;
        throw bad();
    }
}

}  // namespace detail

/// Sets the handler for exceptions escaping callbacks (nullptr: ignore them). Returns the old one.
inline CallbackExceptionHandler set_callback_exception_handler(CallbackExceptionHandler h) noexcept {
    return detail::exception_handler().exchange(h);
}

/// The library's version ("MAJOR.MINOR.PATCH").
inline std::string version() { return tb_version(); }

/// tb_debug_live_handles(): objects owned by the host that need a free, plus listeners.
inline int64_t debug_live_handles() noexcept { return tb_debug_live_handles(); }

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

/// The JSON text of an object or array cell/value (e.g. Json{"{\"a\":1}"}).
struct Json {
    std::string text;
    bool operator==(const Json& o) const { return text == o.text; }
    bool operator!=(const Json& o) const { return text != o.text; }
};

/// A cell or value: null, boolean, number, string or JSON (object/array). Absent is
/// std::nullopt in std::optional<Value>.
class Value {
public:
    enum class Kind { Null, Boolean, Number, String, Json };
    using Variant = std::variant<std::nullptr_t, bool, double, std::string, tinybase::Json>;

    Value() noexcept : v_(nullptr) {}
    Value(std::nullptr_t) noexcept : v_(nullptr) {}
    Value(bool b) noexcept : v_(b) {}
    template <class T, std::enable_if_t<std::is_arithmetic_v<T> && !std::is_same_v<T, bool>, int> = 0>
    Value(T n) noexcept : v_(static_cast<double>(n)) {}
    Value(const char* s) : v_(std::string(s)) {}
    Value(std::string s) noexcept : v_(std::move(s)) {}
    Value(std::string_view s) : v_(std::string(s)) {}
    Value(tinybase::Json j) noexcept : v_(std::move(j)) {}

    /// An object or array value from its JSON text.
    static Value json(std::string_view text) { return Value(tinybase::Json{std::string(text)}); }

    Kind kind() const noexcept { return static_cast<Kind>(v_.index()); }
    bool is_null() const noexcept { return v_.index() == 0; }
    bool is_boolean() const noexcept { return v_.index() == 1; }
    bool is_number() const noexcept { return v_.index() == 2; }
    bool is_string() const noexcept { return v_.index() == 3; }
    bool is_json() const noexcept { return v_.index() == 4; }

    /// Typed access; std::bad_variant_access when the kind differs.
    bool as_boolean() const { return std::get<bool>(v_); }
    double as_number() const { return std::get<double>(v_); }
    const std::string& as_string() const { return std::get<std::string>(v_); }
    const std::string& as_json() const { return std::get<tinybase::Json>(v_).text; }

    const Variant& variant() const noexcept { return v_; }

    bool operator==(const Value& o) const { return v_ == o.v_; }
    bool operator!=(const Value& o) const { return v_ != o.v_; }

    /// A tb_value borrowing this Value's text (valid while this Value is unchanged).
    tb_value to_c() const {
        switch (v_.index()) {
            case 0: return tb_value_null();
            case 1: return tb_value_boolean(std::get<bool>(v_));
            case 2: return tb_value_number(std::get<double>(v_));
            case 3: {
                const std::string& s = std::get<std::string>(v_);
                if (s.find('\0') != std::string::npos)
                    throw Error(TB_ERROR_INVALID_ARGUMENT, "string contains a NUL byte, which the C API cannot take");
                return tb_value_string(s.c_str());
            }
            default: {
                const std::string& s = std::get<tinybase::Json>(v_).text;
                if (s.find('\0') != std::string::npos)
                    throw Error(TB_ERROR_INVALID_ARGUMENT, "JSON contains a NUL byte");
                return tb_value_json(s.c_str());
            }
        }
    }

    /// Copies a tb_value (borrowed or owned; not freed). Absent gives std::nullopt.
    static std::optional<Value> from_c(const tb_value& v) {
        switch (v.kind) {
            case TB_VALUE_NULL: return Value(nullptr);
            case TB_VALUE_BOOLEAN: return Value(v.boolean);
            case TB_VALUE_NUMBER: return Value(v.number);
            case TB_VALUE_STRING:
                return Value(std::string(v.string ? v.string : "", v.string ? v.length : 0));
            case TB_VALUE_JSON:
                return Value(tinybase::Json{std::string(v.string ? v.string : "", v.string ? v.length : 0)});
            default: return std::nullopt;
        }
    }

private:
    Variant v_;
};

// ---------------------------------------------------------------------------------------------
// Listeners and events
// ---------------------------------------------------------------------------------------------

/// TinyBase's listener kinds (the TB_LISTENER_* constants).
enum class ListenerKind : tb_listener_kind {
    HasTables = TB_LISTENER_HAS_TABLES,
    Tables = TB_LISTENER_TABLES,
    TableIds = TB_LISTENER_TABLE_IDS,
    HasTable = TB_LISTENER_HAS_TABLE,
    Table = TB_LISTENER_TABLE,
    TableCellIds = TB_LISTENER_TABLE_CELL_IDS,
    HasTableCell = TB_LISTENER_HAS_TABLE_CELL,
    RowCount = TB_LISTENER_ROW_COUNT,
    RowIds = TB_LISTENER_ROW_IDS,
    HasRow = TB_LISTENER_HAS_ROW,
    Row = TB_LISTENER_ROW,
    CellIds = TB_LISTENER_CELL_IDS,
    HasCell = TB_LISTENER_HAS_CELL,
    Cell = TB_LISTENER_CELL,
    HasValues = TB_LISTENER_HAS_VALUES,
    Values = TB_LISTENER_VALUES,
    ValueIds = TB_LISTENER_VALUE_IDS,
    HasValue = TB_LISTENER_HAS_VALUE,
    Value = TB_LISTENER_VALUE,
    StartTransaction = TB_LISTENER_START_TRANSACTION,
    WillFinishTransaction = TB_LISTENER_WILL_FINISH_TRANSACTION,
    DidFinishTransaction = TB_LISTENER_DID_FINISH_TRANSACTION,
};

/// A wildcard id for listeners ("any table", "any row", ...).
inline constexpr std::nullopt_t any_id = std::nullopt;

/// An id that may be a wildcard.
using Id = std::optional<std::string_view>;

/// An owned copy of a listener event.
struct Event {
    ListenerKind kind = ListenerKind::Tables;
    uint64_t listener_id = 0;
    std::optional<std::string> table_id, row_id, cell_id, value_id;
    /// Cell and Value kinds: the new and old cell/value (nullopt: deleted / was new).
    std::optional<Value> new_value, old_value;
    /// Has-kinds: whether the thing now exists.
    bool has = false;
    /// RowCount: the table's new row count.
    size_t row_count = 0;

    static Event from_c(const tb_event& e) {
        Event out;
        out.kind = static_cast<ListenerKind>(e.kind);
        out.listener_id = e.listener_id;
        if (e.table_id) out.table_id = e.table_id;
        if (e.row_id) out.row_id = e.row_id;
        if (e.cell_id) out.cell_id = e.cell_id;
        if (e.value_id) out.value_id = e.value_id;
        out.new_value = Value::from_c(e.new_value);
        out.old_value = Value::from_c(e.old_value);
        out.has = e.has;
        out.row_count = e.row_count;
        return out;
    }
};

class StoreRef;
class MergeableStoreRef;
class EventQueue;

/// A registered listener. Removes it when destroyed (or on remove()); move-only. Holds its own
/// reference to the store, so the store lives at least as long as this handle.
class Listener {
public:
    Listener() noexcept = default;
    /// Adopts a registered listener id on `store_ref` (an owned tb_store reference).
    Listener(tb_store* store_ref, uint64_t id) noexcept : store_(store_ref), id_(id) {}
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;
    Listener(Listener&& o) noexcept : store_(std::exchange(o.store_, nullptr)), id_(std::exchange(o.id_, 0)) {}
    Listener& operator=(Listener&& o) noexcept {
        if (this != &o) {
            reset();
            store_ = std::exchange(o.store_, nullptr);
            id_ = std::exchange(o.id_, 0);
        }
        return *this;
    }
    ~Listener() { reset(); }

    /// The listener id (0 when empty: registered ids are never 0 and never reused, so a handle
    /// only ever removes its own registration).
    uint64_t id() const noexcept { return id_; }
    /// Whether this handle still owns a registration.
    bool active() const noexcept { return store_ != nullptr; }
    explicit operator bool() const noexcept { return active(); }

    /// Removes the listener now (synchronous: see tb_store_del_listener). Throws on failure;
    /// no-op when empty.
    void remove() {
        if (!store_) return;
        tb_status st = tb_store_del_listener(store_, id_);
        tb_store_free(std::exchange(store_, nullptr));
        id_ = 0;
        detail::check(st);
    }

    /// Leaves the listener registered (until the store is destroyed or the id is removed with
    /// StoreRef::del_listener) and empties this handle. Returns the id.
    uint64_t detach() noexcept {
        tb_store_free(std::exchange(store_, nullptr));
        return std::exchange(id_, 0);
    }

    /// callListener: calls the listener now for everything its ids match.
    void call() const { detail::check(tb_store_call_listener(store_, id_)); }

private:
    void reset() noexcept {
        if (!store_) return;
        (void)tb_store_del_listener(store_, id_);
        tb_store_free(std::exchange(store_, nullptr));
        id_ = 0;
    }
    tb_store* store_ = nullptr;
    uint64_t id_ = 0;
};

/// A queue for buffered listener delivery: events are drained with poll()/wait() on any
/// thread. Move-only; frees the queue when destroyed (remove its listeners too: a Listener
/// handle does that).
class EventQueue {
public:
    /// A queue without a notify callback.
    EventQueue() { detail::check(tb_event_queue_new(nullptr, nullptr, nullptr, &q_)); }
    /// A queue whose notify() runs whenever it goes from empty to non-empty (on the thread
    /// that queued the event; it must not block for long).
    explicit EventQueue(std::function<void()> notify) {
        auto* f = new std::function<void()>(std::move(notify));
        tb_status st = tb_event_queue_new(&notify_trampoline, f, &release_notify, &q_);
        if (st != TB_OK) {
            delete f;
            detail::throw_last(st);
        }
    }
    EventQueue(const EventQueue&) = delete;
    EventQueue& operator=(const EventQueue&) = delete;
    EventQueue(EventQueue&& o) noexcept : q_(std::exchange(o.q_, nullptr)) {}
    EventQueue& operator=(EventQueue&& o) noexcept {
        if (this != &o) {
            tb_event_queue_free(q_);
            q_ = std::exchange(o.q_, nullptr);
        }
        return *this;
    }
    ~EventQueue() { tb_event_queue_free(q_); }

    /// The oldest event, or nullopt when empty.
    std::optional<Event> poll() {
        tb_event* e = nullptr;
        detail::check(tb_event_queue_poll(q_, &e));
        return take(e);
    }
    /// The oldest event, waiting up to `timeout`; nullopt on timeout.
    std::optional<Event> wait(std::chrono::milliseconds timeout) {
        tb_event* e = nullptr;
        auto ms = timeout.count() < 0 ? 0 : timeout.count();
        uint32_t t = ms > 0xFFFFFFFFLL ? 0xFFFFFFFFu : static_cast<uint32_t>(ms);
        detail::check(tb_event_queue_wait(q_, t, &e));
        return take(e);
    }
    /// Every event queued now.
    std::vector<Event> drain() {
        std::vector<Event> out;
        while (auto e = poll()) out.push_back(std::move(*e));
        return out;
    }
    /// The number of queued events.
    size_t size() const {
        size_t n = 0;
        detail::check(tb_event_queue_len(q_, &n));
        return n;
    }
    tb_event_queue* get() const noexcept { return q_; }

private:
    static std::optional<Event> take(tb_event* e) {
        if (!e) return std::nullopt;
        std::unique_ptr<tb_event, void (*)(tb_event*)> owned(e, &tb_event_free);
        return Event::from_c(*e);
    }
    static void notify_trampoline(void* ud) {
        try {
            (*static_cast<std::function<void()>*>(ud))();
        } catch (...) {
            detail::report_callback_exception(std::current_exception());
        }
    }
    static void release_notify(void* ud) { delete static_cast<std::function<void()>*>(ud); }

    tb_event_queue* q_ = nullptr;
};

// ---------------------------------------------------------------------------------------------
// Stores
// ---------------------------------------------------------------------------------------------

class Store;
class MergeableStore;

namespace detail {
inline int& rollback_depth() {
    thread_local int depth = 0;
    return depth;
}
}  // namespace detail

/// A non-owning view of a store (plain or mergeable) with every Store method.
class StoreRef {
public:
    using ListenerFn = std::function<void(StoreRef, const Event&)>;

    StoreRef() noexcept = default;
    explicit StoreRef(tb_store* s) noexcept : s_(s) {}

    /// The C handle (borrowed).
    tb_store* get() const noexcept { return s_; }
    explicit operator bool() const noexcept { return s_ != nullptr; }

    /// Another owned reference to the same store.
    Store clone() const;
    /// Whether this is a mergeable store.
    bool is_mergeable() const noexcept {
        tb_mergeable_store* m = nullptr;
        bool ok = s_ && tb_store_as_mergeable(s_, &m) == TB_OK;
        if (!ok) tb_last_error_clear();
        return ok;
    }
    /// The mergeable view (throws Error(TB_ERROR_INVALID_STATE) for a plain store).
    MergeableStoreRef as_mergeable() const;

    // --- whole-store JSON -------------------------------------------------------------------
    std::string get_tables_json() const { return str([&](char** o) { return tb_store_get_tables_json(s_, o); }); }
    std::string get_values_json() const { return str([&](char** o) { return tb_store_get_values_json(s_, o); }); }
    std::string get_json() const { return str([&](char** o) { return tb_store_get_json(s_, o); }); }
    std::string get_content_json() const { return str([&](char** o) { return tb_store_get_content_json(s_, o); }); }
    std::string get_table_json(std::string_view table_id) const {
        detail::CStr t(table_id);
        return str([&](char** o) { return tb_store_get_table_json(s_, t.get(), o); });
    }
    std::string get_row_json(std::string_view table_id, std::string_view row_id) const {
        detail::CStr t(table_id), r(row_id);
        return str([&](char** o) { return tb_store_get_row_json(s_, t.get(), r.get(), o); });
    }

    // --- ids ----------------------------------------------------------------------------------
    std::string get_table_ids_json() const { return str([&](char** o) { return tb_store_get_table_ids_json(s_, o); }); }
    std::string get_table_cell_ids_json(std::string_view table_id) const {
        detail::CStr t(table_id);
        return str([&](char** o) { return tb_store_get_table_cell_ids_json(s_, t.get(), o); });
    }
    std::string get_row_ids_json(std::string_view table_id) const {
        detail::CStr t(table_id);
        return str([&](char** o) { return tb_store_get_row_ids_json(s_, t.get(), o); });
    }
    std::string get_cell_ids_json(std::string_view table_id, std::string_view row_id) const {
        detail::CStr t(table_id), r(row_id);
        return str([&](char** o) { return tb_store_get_cell_ids_json(s_, t.get(), r.get(), o); });
    }
    std::string get_value_ids_json() const { return str([&](char** o) { return tb_store_get_value_ids_json(s_, o); }); }

    std::vector<std::string> get_table_ids() const { return detail::parse_string_array(get_table_ids_json()); }
    std::vector<std::string> get_table_cell_ids(std::string_view table_id) const {
        return detail::parse_string_array(get_table_cell_ids_json(table_id));
    }
    std::vector<std::string> get_row_ids(std::string_view table_id) const {
        return detail::parse_string_array(get_row_ids_json(table_id));
    }
    std::vector<std::string> get_cell_ids(std::string_view table_id, std::string_view row_id) const {
        return detail::parse_string_array(get_cell_ids_json(table_id, row_id));
    }
    std::vector<std::string> get_value_ids() const { return detail::parse_string_array(get_value_ids_json()); }

    size_t get_row_count(std::string_view table_id) const {
        detail::CStr t(table_id);
        size_t n = 0;
        detail::check(tb_store_get_row_count(s_, t.get(), &n));
        return n;
    }

    // --- cells and values -----------------------------------------------------------------------
    /// getCell: nullopt when there is no such cell.
    std::optional<Value> get_cell(std::string_view table_id, std::string_view row_id, std::string_view cell_id) const {
        detail::CStr t(table_id), r(row_id), c(cell_id);
        tb_value v = tb_value_absent();
        detail::check(tb_store_get_cell(s_, t.get(), r.get(), c.get(), &v));
        return take_value(v);
    }
    /// getValue: nullopt when there is no such value.
    std::optional<Value> get_value(std::string_view value_id) const {
        detail::CStr id(value_id);
        tb_value v = tb_value_absent();
        detail::check(tb_store_get_value(s_, id.get(), &v));
        return take_value(v);
    }

    bool has_tables() const { return flag([&](bool* o) { return tb_store_has_tables(s_, o); }); }
    bool has_table(std::string_view table_id) const {
        detail::CStr t(table_id);
        return flag([&](bool* o) { return tb_store_has_table(s_, t.get(), o); });
    }
    bool has_table_cell(std::string_view table_id, std::string_view cell_id) const {
        detail::CStr t(table_id), c(cell_id);
        return flag([&](bool* o) { return tb_store_has_table_cell(s_, t.get(), c.get(), o); });
    }
    bool has_row(std::string_view table_id, std::string_view row_id) const {
        detail::CStr t(table_id), r(row_id);
        return flag([&](bool* o) { return tb_store_has_row(s_, t.get(), r.get(), o); });
    }
    bool has_cell(std::string_view table_id, std::string_view row_id, std::string_view cell_id) const {
        detail::CStr t(table_id), r(row_id), c(cell_id);
        return flag([&](bool* o) { return tb_store_has_cell(s_, t.get(), r.get(), c.get(), o); });
    }
    bool has_values() const { return flag([&](bool* o) { return tb_store_has_values(s_, o); }); }
    bool has_value(std::string_view value_id) const {
        detail::CStr v(value_id);
        return flag([&](bool* o) { return tb_store_has_value(s_, v.get(), o); });
    }

    // --- setters (all return *this for chaining) ------------------------------------------------
    const StoreRef& set_tables_json(std::string_view json) const { return js(json, &tb_store_set_tables_json); }
    const StoreRef& set_values_json(std::string_view json) const { return js(json, &tb_store_set_values_json); }
    const StoreRef& set_json(std::string_view json) const { return js(json, &tb_store_set_json); }
    const StoreRef& set_content_json(std::string_view json) const { return js(json, &tb_store_set_content_json); }
    const StoreRef& set_partial_values_json(std::string_view json) const { return js(json, &tb_store_set_partial_values_json); }
    const StoreRef& apply_changes_json(std::string_view json) const { return js(json, &tb_store_apply_changes_json); }
    const StoreRef& set_table_json(std::string_view table_id, std::string_view json) const {
        detail::CStr t(table_id), j(json);
        detail::check(tb_store_set_table_json(s_, t.get(), j.get()));
        return *this;
    }
    const StoreRef& set_row_json(std::string_view table_id, std::string_view row_id, std::string_view json) const {
        detail::CStr t(table_id), r(row_id), j(json);
        detail::check(tb_store_set_row_json(s_, t.get(), r.get(), j.get()));
        return *this;
    }
    const StoreRef& set_partial_row_json(std::string_view table_id, std::string_view row_id, std::string_view json) const {
        detail::CStr t(table_id), r(row_id), j(json);
        detail::check(tb_store_set_partial_row_json(s_, t.get(), r.get(), j.get()));
        return *this;
    }
    /// addRow: returns the new row's id.
    std::string add_row_json(std::string_view table_id, std::string_view json, bool reuse_row_ids = true) const {
        detail::CStr t(table_id), j(json);
        return str([&](char** o) { return tb_store_add_row_json(s_, t.get(), j.get(), reuse_row_ids, o); });
    }
    const StoreRef& set_cell(std::string_view table_id, std::string_view row_id, std::string_view cell_id, const Value& cell) const {
        detail::CStr t(table_id), r(row_id), c(cell_id);
        tb_value v = cell.to_c();
        detail::check(tb_store_set_cell(s_, t.get(), r.get(), c.get(), &v));
        return *this;
    }
    const StoreRef& set_cell_json(std::string_view table_id, std::string_view row_id, std::string_view cell_id, std::string_view json) const {
        detail::CStr t(table_id), r(row_id), c(cell_id), j(json);
        detail::check(tb_store_set_cell_json(s_, t.get(), r.get(), c.get(), j.get()));
        return *this;
    }
    const StoreRef& set_value(std::string_view value_id, const Value& value) const {
        detail::CStr id(value_id);
        tb_value v = value.to_c();
        detail::check(tb_store_set_value(s_, id.get(), &v));
        return *this;
    }
    const StoreRef& set_value_json(std::string_view value_id, std::string_view json) const {
        detail::CStr id(value_id), j(json);
        detail::check(tb_store_set_value_json(s_, id.get(), j.get()));
        return *this;
    }

    const StoreRef& del_tables() const {
        detail::check(tb_store_del_tables(s_));
        return *this;
    }
    const StoreRef& del_table(std::string_view table_id) const {
        detail::CStr t(table_id);
        detail::check(tb_store_del_table(s_, t.get()));
        return *this;
    }
    const StoreRef& del_row(std::string_view table_id, std::string_view row_id) const {
        detail::CStr t(table_id), r(row_id);
        detail::check(tb_store_del_row(s_, t.get(), r.get()));
        return *this;
    }
    const StoreRef& del_cell(std::string_view table_id, std::string_view row_id, std::string_view cell_id) const {
        detail::CStr t(table_id), r(row_id), c(cell_id);
        detail::check(tb_store_del_cell(s_, t.get(), r.get(), c.get()));
        return *this;
    }
    const StoreRef& del_values() const {
        detail::check(tb_store_del_values(s_));
        return *this;
    }
    const StoreRef& del_value(std::string_view value_id) const {
        detail::CStr v(value_id);
        detail::check(tb_store_del_value(s_, v.get()));
        return *this;
    }

    // --- transactions -------------------------------------------------------------------------
    /// Runs `actions` (callable with () or (StoreRef); may return bool: true = roll back) in a
    /// transaction. Returns true when committed. See TRANSACTIONS at the top of this header.
    template <class F>
    bool transaction(F&& actions) const {
        // F is a reference type for lvalues (named, const, std::function, function pointers).
        struct Ctx {
            std::remove_reference_t<F>* f;
            std::exception_ptr error;
            bool rollback;
            bool quiet;
        } ctx{&actions, nullptr, false, false};
        auto body = [](void* ud, tb_store* view) -> bool {
            Ctx& c = *static_cast<Ctx*>(ud);
            ++detail::rollback_depth();
            try {
                c.rollback = invoke_body(*c.f, StoreRef(view));
            } catch (const Rollback&) {
                c.rollback = true;
                c.quiet = true;
                c.error = std::current_exception();
            } catch (...) {
                c.rollback = true;
                c.error = std::current_exception();
            }
            --detail::rollback_depth();
            return c.rollback;
        };
        detail::check(tb_store_transaction(s_, body, &ctx));
        if (ctx.error && !(ctx.quiet && detail::rollback_depth() == 0)) std::rethrow_exception(ctx.error);
        return !ctx.rollback;
    }
    /// startTransaction (finish it on the same thread).
    void start_transaction() const { detail::check(tb_store_start_transaction(s_)); }
    /// finishTransaction, rolling back when `rollback` is true.
    void finish_transaction(bool rollback = false) const { detail::check(tb_store_finish_transaction(s_, rollback)); }
    /// getTransactionChanges as `[tables, values, 1]` JSON.
    std::string get_transaction_changes_json() const {
        return str([&](char** o) { return tb_store_get_transaction_changes_json(s_, o); });
    }

    // --- listeners ------------------------------------------------------------------------------
    /// Adds a listener of any kind; ids as in tb_store_add_listener (nullopt: wildcard). `fn` is
    /// callable with (const Event&) or (StoreRef, const Event&).
    template <class F>
    Listener add_listener(ListenerKind kind, Id id1, Id id2, Id id3, F&& fn) const {
        detail::OptCStr a(id1), b(id2), c(id3);
        auto* holder = new ListenerFn(wrap_listener(std::forward<F>(fn)));
        uint64_t id = 0;
        tb_status st = tb_store_add_listener(s_, static_cast<tb_listener_kind>(kind), a.get(), b.get(), c.get(),
                                             &listener_trampoline, holder, &listener_release, &id);
        if (st != TB_OK) {
            delete holder;
            detail::throw_last(st);
        }
        return adopt_listener(id);
    }
    template <class F> Listener add_has_tables_listener(F&& f) const { return add_listener(ListenerKind::HasTables, {}, {}, {}, std::forward<F>(f)); }
    template <class F> Listener add_tables_listener(F&& f) const { return add_listener(ListenerKind::Tables, {}, {}, {}, std::forward<F>(f)); }
    template <class F> Listener add_table_ids_listener(F&& f) const { return add_listener(ListenerKind::TableIds, {}, {}, {}, std::forward<F>(f)); }
    template <class F> Listener add_has_table_listener(Id table_id, F&& f) const { return add_listener(ListenerKind::HasTable, table_id, {}, {}, std::forward<F>(f)); }
    template <class F> Listener add_table_listener(Id table_id, F&& f) const { return add_listener(ListenerKind::Table, table_id, {}, {}, std::forward<F>(f)); }
    template <class F> Listener add_table_cell_ids_listener(Id table_id, F&& f) const { return add_listener(ListenerKind::TableCellIds, table_id, {}, {}, std::forward<F>(f)); }
    template <class F> Listener add_has_table_cell_listener(Id table_id, Id cell_id, F&& f) const { return add_listener(ListenerKind::HasTableCell, table_id, cell_id, {}, std::forward<F>(f)); }
    template <class F> Listener add_row_count_listener(Id table_id, F&& f) const { return add_listener(ListenerKind::RowCount, table_id, {}, {}, std::forward<F>(f)); }
    template <class F> Listener add_row_ids_listener(Id table_id, F&& f) const { return add_listener(ListenerKind::RowIds, table_id, {}, {}, std::forward<F>(f)); }
    template <class F> Listener add_has_row_listener(Id table_id, Id row_id, F&& f) const { return add_listener(ListenerKind::HasRow, table_id, row_id, {}, std::forward<F>(f)); }
    template <class F> Listener add_row_listener(Id table_id, Id row_id, F&& f) const { return add_listener(ListenerKind::Row, table_id, row_id, {}, std::forward<F>(f)); }
    template <class F> Listener add_cell_ids_listener(Id table_id, Id row_id, F&& f) const { return add_listener(ListenerKind::CellIds, table_id, row_id, {}, std::forward<F>(f)); }
    template <class F> Listener add_has_cell_listener(Id table_id, Id row_id, Id cell_id, F&& f) const { return add_listener(ListenerKind::HasCell, table_id, row_id, cell_id, std::forward<F>(f)); }
    template <class F> Listener add_cell_listener(Id table_id, Id row_id, Id cell_id, F&& f) const { return add_listener(ListenerKind::Cell, table_id, row_id, cell_id, std::forward<F>(f)); }
    template <class F> Listener add_has_values_listener(F&& f) const { return add_listener(ListenerKind::HasValues, {}, {}, {}, std::forward<F>(f)); }
    template <class F> Listener add_values_listener(F&& f) const { return add_listener(ListenerKind::Values, {}, {}, {}, std::forward<F>(f)); }
    template <class F> Listener add_value_ids_listener(F&& f) const { return add_listener(ListenerKind::ValueIds, {}, {}, {}, std::forward<F>(f)); }
    template <class F> Listener add_has_value_listener(Id value_id, F&& f) const { return add_listener(ListenerKind::HasValue, value_id, {}, {}, std::forward<F>(f)); }
    template <class F> Listener add_value_listener(Id value_id, F&& f) const { return add_listener(ListenerKind::Value, value_id, {}, {}, std::forward<F>(f)); }
    template <class F> Listener add_start_transaction_listener(F&& f) const { return add_listener(ListenerKind::StartTransaction, {}, {}, {}, std::forward<F>(f)); }
    template <class F> Listener add_will_finish_transaction_listener(F&& f) const { return add_listener(ListenerKind::WillFinishTransaction, {}, {}, {}, std::forward<F>(f)); }
    template <class F> Listener add_did_finish_transaction_listener(F&& f) const { return add_listener(ListenerKind::DidFinishTransaction, {}, {}, {}, std::forward<F>(f)); }

    /// A buffered listener: events go to `queue` instead of a callback.
    Listener add_buffered_listener(EventQueue& queue, ListenerKind kind, Id id1 = {}, Id id2 = {}, Id id3 = {}) const {
        detail::OptCStr a(id1), b(id2), c(id3);
        uint64_t id = 0;
        detail::check(tb_store_add_buffered_listener(s_, queue.get(), static_cast<tb_listener_kind>(kind), a.get(), b.get(), c.get(), &id));
        return adopt_listener(id);
    }

    /// delListener by id (for ids from Listener::detach()).
    void del_listener(uint64_t listener_id) const { detail::check(tb_store_del_listener(s_, listener_id)); }
    /// callListener by id.
    void call_listener(uint64_t listener_id) const { detail::check(tb_store_call_listener(s_, listener_id)); }
    /// The number of listeners registered on the store.
    size_t get_listener_count() const {
        size_t n = 0;
        detail::check(tb_store_get_listener_count(s_, &n));
        return n;
    }

protected:
    template <class F>
    static std::string str(F&& f) { return detail::get_string(std::forward<F>(f)); }
    template <class F>
    static bool flag(F&& f) {
        bool b = false;
        detail::check(f(&b));
        return b;
    }
    const StoreRef& js(std::string_view json, tb_status (*f)(tb_store*, const char*)) const {
        detail::CStr j(json);
        detail::check(f(s_, j.get()));
        return *this;
    }
    static std::optional<Value> take_value(tb_value& v) {
        struct Free {
            tb_value* v;
            ~Free() { tb_value_free(v); }
        } guard{&v};
        return Value::from_c(v);
    }

    template <class F>
    static bool invoke_body(F& f, StoreRef view) {
        if constexpr (std::is_invocable_v<F&, StoreRef>) {
            if constexpr (std::is_convertible_v<std::invoke_result_t<F&, StoreRef>, bool>) return static_cast<bool>(f(view));
            else return (void)f(view), false;
        } else {
            static_assert(std::is_invocable_v<F&>, "a transaction body takes () or (tinybase::StoreRef)");
            if constexpr (std::is_convertible_v<std::invoke_result_t<F&>, bool>) return static_cast<bool>(f());
            else return (void)f(), false;
        }
    }

    template <class F>
    static ListenerFn wrap_listener(F&& fn) {
        using D = std::decay_t<F>;
        if constexpr (std::is_invocable_v<D&, StoreRef, const Event&>) {
            return ListenerFn(std::forward<F>(fn));
        } else {
            static_assert(std::is_invocable_v<D&, const Event&>,
                          "a listener takes (const tinybase::Event&) or (tinybase::StoreRef, const tinybase::Event&)");
            return [f = D(std::forward<F>(fn))](StoreRef, const Event& e) mutable { f(e); };
        }
    }
    static void listener_trampoline(void* ud, tb_store* store, const tb_event* event) {
        try {
            (*static_cast<ListenerFn*>(ud))(StoreRef(store), Event::from_c(*event));
        } catch (...) {
            detail::report_callback_exception(std::current_exception());
        }
    }
    static void listener_release(void* ud) { delete static_cast<ListenerFn*>(ud); }

    Listener adopt_listener(uint64_t id) const {
        tb_store* ref = nullptr;
        tb_status st = tb_store_clone(s_, &ref);
        if (st != TB_OK) {
            (void)tb_store_del_listener(s_, id);
            detail::throw_last(st);
        }
        return Listener(ref, id);
    }

    tb_store* s_ = nullptr;
};

/// The table and values hashes of a mergeable store.
struct ContentHashes {
    uint32_t tables = 0;
    uint32_t values = 0;
    bool operator==(const ContentHashes& o) const { return tables == o.tables && values == o.values; }
    bool operator!=(const ContentHashes& o) const { return !(*this == o); }
};

/// A non-owning view of a mergeable store: every Store method plus the CRDT operations.
class MergeableStoreRef : public StoreRef {
public:
    MergeableStoreRef() noexcept = default;
    explicit MergeableStoreRef(tb_mergeable_store* m) noexcept : StoreRef(tb_mergeable_store_as_store(m)), m_(m) {}

    tb_mergeable_store* get_mergeable() const noexcept { return m_; }
    /// Another owned reference to the same mergeable store.
    MergeableStore clone() const;

    std::string get_mergeable_content_json() const { return mstr(&tb_mergeable_store_get_mergeable_content_json); }
    /// The wire form (what a synchronizer sends and a file holds).
    std::string get_encoded_mergeable_content_json() const { return mstr(&tb_mergeable_store_get_encoded_mergeable_content_json); }
    ContentHashes get_mergeable_content_hashes() const {
        ContentHashes h;
        detail::check(tb_mergeable_store_get_mergeable_content_hashes(m_, &h.tables, &h.values));
        return h;
    }
    std::string get_mergeable_content_hashes_json() const { return mstr(&tb_mergeable_store_get_mergeable_content_hashes_json); }
    std::string get_transaction_mergeable_changes_json(bool with_hashes = false) const {
        return str([&](char** o) { return tb_mergeable_store_get_transaction_mergeable_changes_json(m_, with_hashes, o); });
    }
    /// Wire form (the body of a ContentDiff sync message).
    std::string get_encoded_transaction_mergeable_changes_json(bool with_hashes = false) const {
        return str([&](char** o) { return tb_mergeable_store_get_encoded_transaction_mergeable_changes_json(m_, with_hashes, o); });
    }
    /// applyMergeableChanges with wire-form JSON (changes or content); all or nothing.
    const MergeableStoreRef& apply_mergeable_changes_json(std::string_view json) const { return mjs(json, &tb_mergeable_store_apply_mergeable_changes_json); }
    const MergeableStoreRef& apply_decoded_mergeable_changes_json(std::string_view json) const { return mjs(json, &tb_mergeable_store_apply_decoded_mergeable_changes_json); }
    const MergeableStoreRef& set_mergeable_content_json(std::string_view json) const { return mjs(json, &tb_mergeable_store_set_mergeable_content_json); }
    const MergeableStoreRef& set_decoded_mergeable_content_json(std::string_view json) const { return mjs(json, &tb_mergeable_store_set_decoded_mergeable_content_json); }
    const MergeableStoreRef& set_default_content_json(std::string_view json) const { return mjs(json, &tb_mergeable_store_set_default_content_json); }
    /// merge: both stores apply each other's content.
    const MergeableStoreRef& merge(const MergeableStoreRef& other) const {
        detail::check(tb_mergeable_store_merge(m_, other.m_));
        return *this;
    }

    std::string get_mergeable_table_hashes_json() const { return mstr(&tb_mergeable_store_get_mergeable_table_hashes_json); }
    std::string get_mergeable_table_diff_json(std::string_view other_table_hashes_json) const { return diff(other_table_hashes_json, &tb_mergeable_store_get_mergeable_table_diff_json); }
    std::string get_mergeable_row_hashes_json(std::string_view other_table_hashes_json) const { return diff(other_table_hashes_json, &tb_mergeable_store_get_mergeable_row_hashes_json); }
    std::string get_mergeable_row_diff_json(std::string_view other_row_hashes_json) const { return diff(other_row_hashes_json, &tb_mergeable_store_get_mergeable_row_diff_json); }
    std::string get_mergeable_cell_hashes_json(std::string_view other_row_hashes_json) const { return diff(other_row_hashes_json, &tb_mergeable_store_get_mergeable_cell_hashes_json); }
    std::string get_mergeable_cell_diff_json(std::string_view other_cell_hashes_json) const { return diff(other_cell_hashes_json, &tb_mergeable_store_get_mergeable_cell_diff_json); }
    std::string get_mergeable_value_hashes_json() const { return mstr(&tb_mergeable_store_get_mergeable_value_hashes_json); }
    std::string get_mergeable_value_diff_json(std::string_view other_value_hashes_json) const { return diff(other_value_hashes_json, &tb_mergeable_store_get_mergeable_value_diff_json); }
    /// Recomputes every hash from scratch (a consistency check).
    ContentHashes compute_content_hashes() const {
        ContentHashes h;
        detail::check(tb_mergeable_store_compute_content_hashes(m_, &h.tables, &h.values));
        return h;
    }

protected:
    std::string mstr(tb_status (*f)(tb_mergeable_store*, char**)) const {
        return str([&](char** o) { return f(m_, o); });
    }
    std::string diff(std::string_view json, tb_status (*f)(tb_mergeable_store*, const char*, char**)) const {
        detail::CStr j(json);
        return str([&](char** o) { return f(m_, j.get(), o); });
    }
    const MergeableStoreRef& mjs(std::string_view json, tb_status (*f)(tb_mergeable_store*, const char*)) const {
        detail::CStr j(json);
        detail::check(f(m_, j.get()));
        return *this;
    }

    tb_mergeable_store* m_ = nullptr;
};

/// Owns one reference to a plain Store. Move-only; clone() gives another owner of the same
/// store. A moved-from Store is empty: its methods throw Error(TB_ERROR_NULL_PARAMETER).
class Store : public StoreRef {
public:
    /// A new empty store.
    Store() { detail::check(tb_store_new(&s_)); }
    /// Adopts an owned reference (from tb_store_new / tb_store_clone).
    static Store adopt(tb_store* owned) noexcept { return Store(owned, Adopt{}); }

    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;
    Store(Store&& o) noexcept : StoreRef(std::exchange(o.s_, nullptr)) {}
    Store& operator=(Store&& o) noexcept {
        if (this != &o) {
            tb_store_free(s_);
            s_ = std::exchange(o.s_, nullptr);
        }
        return *this;
    }
    ~Store() { tb_store_free(s_); }

    /// Gives up ownership: the caller frees the returned handle with tb_store_free().
    tb_store* release() noexcept { return std::exchange(s_, nullptr); }

private:
    struct Adopt {};
    Store(tb_store* s, Adopt) noexcept : StoreRef(s) {}
};

/// Owns one reference to a MergeableStore. Move-only; clone() gives another owner.
class MergeableStore : public MergeableStoreRef {
public:
    /// A new store with a random unique id and the system clock.
    MergeableStore() { init(nullptr); }
    /// A new store whose HLC client id is `unique_id` (give every replica its own).
    explicit MergeableStore(std::string_view unique_id) {
        detail::CStr id(unique_id);
        init(id.get());
    }
    /// A new store with a host clock (milliseconds since the epoch, as Date.now()). The clock is
    /// called with the store's lock held and must not call into the library. `unique_id`
    /// nullopt picks a random id.
    MergeableStore(std::optional<std::string_view> unique_id, std::function<double()> now) {
        detail::OptCStr id(unique_id);
        auto* f = new std::function<double()>(std::move(now));
        tb_mergeable_store* m = nullptr;
        tb_status st = tb_mergeable_store_new_with_clock(id.get(), &clock_trampoline, f, &clock_release, &m);
        if (st != TB_OK) {
            delete f;
            detail::throw_last(st);
        }
        set(m);
    }
    /// Adopts an owned reference (from tb_mergeable_store_new* / _clone).
    static MergeableStore adopt(tb_mergeable_store* owned) noexcept { return MergeableStore(owned, Adopt{}); }

    MergeableStore(const MergeableStore&) = delete;
    MergeableStore& operator=(const MergeableStore&) = delete;
    MergeableStore(MergeableStore&& o) noexcept { set(o.take()); }
    MergeableStore& operator=(MergeableStore&& o) noexcept {
        if (this != &o) {
            tb_mergeable_store_free(m_);
            set(o.take());
        }
        return *this;
    }
    ~MergeableStore() { tb_mergeable_store_free(m_); }

    /// Gives up ownership: the caller frees it with tb_mergeable_store_free().
    tb_mergeable_store* release() noexcept { return take(); }

private:
    struct Adopt {};
    MergeableStore(tb_mergeable_store* m, Adopt) noexcept { set(m); }
    void init(const char* id) {
        tb_mergeable_store* m = nullptr;
        detail::check(tb_mergeable_store_new(id, &m));
        set(m);
    }
    void set(tb_mergeable_store* m) noexcept {
        m_ = m;
        s_ = m ? tb_mergeable_store_as_store(m) : nullptr;
    }
    tb_mergeable_store* take() noexcept {
        s_ = nullptr;
        return std::exchange(m_, nullptr);
    }
    static double clock_trampoline(void* ud) {
        try {
            return (*static_cast<std::function<double()>*>(ud))();
        } catch (...) {
            detail::report_callback_exception(std::current_exception());
            return std::chrono::duration<double, std::milli>(std::chrono::system_clock::now().time_since_epoch()).count();
        }
    }
    static void clock_release(void* ud) { delete static_cast<std::function<double()>*>(ud); }
};

inline Store StoreRef::clone() const {
    tb_store* out = nullptr;
    detail::check(tb_store_clone(s_, &out));
    return Store::adopt(out);
}

inline MergeableStoreRef StoreRef::as_mergeable() const {
    tb_mergeable_store* m = nullptr;
    detail::check(tb_store_as_mergeable(s_, &m));
    return MergeableStoreRef(m);
}

inline MergeableStore MergeableStoreRef::clone() const {
    tb_mergeable_store* out = nullptr;
    detail::check(tb_mergeable_store_clone(m_, &out));
    return MergeableStore::adopt(out);
}

// ---------------------------------------------------------------------------------------------
// Synchronizers
// ---------------------------------------------------------------------------------------------

/// The coarse state an on_status callback reports (TB_SYNC_STATE_*; beyond TinyBase).
enum class SyncState : tb_sync_state { Idle = TB_SYNC_STATE_IDLE, Syncing = TB_SYNC_STATE_SYNCING, Error = TB_SYNC_STATE_ERROR };

/// A synchronizer's connection (TB_CONNECTION_*). None: no connection of its own (custom
/// transports, local buses).
enum class ConnectionState : tb_connection_state {
    None = TB_CONNECTION_NONE,
    Connecting = TB_CONNECTION_CONNECTING,
    Open = TB_CONNECTION_OPEN,
    Closed = TB_CONNECTION_CLOSED,
};

/// A connection's state; close_code and close_reason are set when it is Closed (1006 when the
/// connection was lost or never opened).
struct Connection {
    ConnectionState state = ConnectionState::None;
    uint16_t close_code = 0;
    std::string close_reason;
};

/// What an on_status callback receives (an owned copy of tb_sync_status_info).
struct SyncStatusInfo {
    SyncState state = SyncState::Idle;
    size_t pending_requests = 0;
    uint64_t sends = 0;
    uint64_t receives = 0;
    /// The last ignored error while state is Error.
    std::optional<std::string> last_error;
    Connection connection;
};

/// getSynchronizerStats.
struct SynchronizerStats {
    uint64_t sends = 0;
    uint64_t receives = 0;
};

/// The inbox of received payloads waiting for a synchronizer's worker (beyond TinyBase;
/// tb_synchronizer_get_inbox_stats): what waits now, and how many payloads receive() refused so
/// far because the inbox was full.
struct InboxStats {
    size_t queued_payloads = 0;
    size_t queued_bytes = 0;
    uint64_t refused_payloads = 0;
};

/// Options of a synchronizer (tb_synchronizer_options). Zero durations and limits mean the
/// library's defaults. The hooks run on the synchronizer's worker thread (one at a time), as
/// the C API's callback contract says; an exception escaping one goes to the handler set with
/// set_callback_exception_handler().
struct SynchronizerOptions {
    /// Signature of on_send / on_receive: (other client id or nullopt for "every other
    /// client", request id or nullopt, TB_SYNC_MESSAGE_* number, body JSON).
    using MessageFn = std::function<void(std::optional<std::string_view>, std::optional<std::string_view>, tb_sync_message, std::string_view)>;
    double request_timeout_seconds = 0;
    double anti_entropy_seconds = 0;
    MessageFn on_send;
    MessageFn on_receive;
    std::function<void(std::string_view)> on_ignored_error;
    /// Beyond TinyBase: the sync state or the connection changed.
    std::function<void(const SyncStatusInfo&)> on_status;
    size_t inbox_max_payloads = 0;
    size_t inbox_max_bytes = 0;
};

namespace detail {

/// The hooks of one synchronizer, owned by the library from a successful creating call until
/// its release (tb_synchronizer_free, after the worker stopped).
struct SyncHooks {
    SynchronizerOptions::MessageFn on_send, on_receive;
    std::function<void(std::string_view)> on_ignored_error;
    std::function<void(const SyncStatusInfo&)> on_status;

    static std::optional<std::string_view> opt(const char* s) { return s ? std::optional<std::string_view>(s) : std::nullopt; }
    static void sent(void* ud, const char* c, const char* r, tb_sync_message m, const char* b, size_t n) {
        call(static_cast<SyncHooks*>(ud)->on_send, c, r, m, b, n);
    }
    static void received(void* ud, const char* c, const char* r, tb_sync_message m, const char* b, size_t n) {
        call(static_cast<SyncHooks*>(ud)->on_receive, c, r, m, b, n);
    }
    static void call(const SynchronizerOptions::MessageFn& f, const char* c, const char* r, tb_sync_message m, const char* b, size_t n) {
        try {
            f(opt(c), opt(r), m, std::string_view(b, n));
        } catch (...) {
            report_callback_exception(std::current_exception());
        }
    }
    static void ignored(void* ud, const char* e) {
        try {
            static_cast<SyncHooks*>(ud)->on_ignored_error(e ? e : "");
        } catch (...) {
            report_callback_exception(std::current_exception());
        }
    }
    static void status(void* ud, const tb_sync_status_info* s) {
        try {
            SyncStatusInfo i;
            i.state = static_cast<SyncState>(s->state);
            i.pending_requests = s->pending_requests;
            i.sends = s->sends;
            i.receives = s->receives;
            if (s->last_error) i.last_error = s->last_error;
            i.connection.state = static_cast<ConnectionState>(s->connection);
            i.connection.close_code = s->close_code;
            if (s->close_reason) i.connection.close_reason = s->close_reason;
            static_cast<SyncHooks*>(ud)->on_status(i);
        } catch (...) {
            report_callback_exception(std::current_exception());
        }
    }
    static void release(void* ud) { delete static_cast<SyncHooks*>(ud); }
};

/// A connection state read by `get(state*, close_code*, close_reason**)`.
template <class F>
Connection read_connection(F&& get) {
    Connection c;
    tb_connection_state state = TB_CONNECTION_NONE;
    char* reason = nullptr;
    check(get(&state, &c.close_code, &reason));
    c.state = static_cast<ConnectionState>(state);
    c.close_reason = take_string(reason);
    return c;
}

/// Fills `o` from `opts`; returns the hooks to hand over (nullptr when there are none). The
/// caller deletes them when the creating call fails (the library then never releases them).
inline std::unique_ptr<SyncHooks> sync_options_in(const SynchronizerOptions& opts, tb_synchronizer_options& o) {
    o = tb_synchronizer_options{};
    o.request_timeout_seconds = opts.request_timeout_seconds;
    o.anti_entropy_seconds = opts.anti_entropy_seconds;
    o.inbox_max_payloads = opts.inbox_max_payloads;
    o.inbox_max_bytes = opts.inbox_max_bytes;
    if (!opts.on_send && !opts.on_receive && !opts.on_ignored_error && !opts.on_status) return nullptr;
    auto hooks = std::make_unique<SyncHooks>(SyncHooks{opts.on_send, opts.on_receive, opts.on_ignored_error, opts.on_status});
    if (opts.on_send) o.on_send = &SyncHooks::sent;
    if (opts.on_receive) o.on_receive = &SyncHooks::received;
    if (opts.on_ignored_error) o.on_ignored_error = &SyncHooks::ignored;
    if (opts.on_status) o.on_status = &SyncHooks::status;
    o.user_data = hooks.get();
    o.release = &SyncHooks::release;
    return hooks;
}

}  // namespace detail

/// Owns a tb_synchronizer (move-only): destroyed and freed when this object is. Every
/// tb_synchronizer_* function has a method here. The blocking ones (start_sync, load,
/// start_auto_load; briefly the others) block as the C API says. A moved-from Synchronizer is
/// empty: its methods throw Error(TB_ERROR_NULL_PARAMETER).
class Synchronizer {
public:
    Synchronizer() noexcept = default;
    /// Adopts an owned tb_synchronizer (freed with tb_synchronizer_free).
    explicit Synchronizer(tb_synchronizer* owned) noexcept : s_(owned) {}
    Synchronizer(const Synchronizer&) = delete;
    Synchronizer& operator=(const Synchronizer&) = delete;
    Synchronizer(Synchronizer&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    Synchronizer& operator=(Synchronizer&& o) noexcept {
        if (this != &o) {
            tb_synchronizer_free(s_);
            s_ = std::exchange(o.s_, nullptr);
        }
        return *this;
    }
    virtual ~Synchronizer() { tb_synchronizer_free(s_); }

    /// The C handle (borrowed).
    tb_synchronizer* get() const noexcept { return s_; }
    explicit operator bool() const noexcept { return s_ != nullptr; }

    /// Hands a payload `[requestId, message, body]` received from client `from_client_id` to
    /// the synchronizer (the receive half of a custom transport). Any thread, also inside any
    /// synchronizer callback; never blocks: the worker validates it later, and an invalid one
    /// goes to on_ignored_error and is never applied. Ignored after destroy(). Throws
    /// Error(TB_ERROR_INVALID_STATE) when the inbox is full (inbox_max_payloads /
    /// inbox_max_bytes): the payload is dropped, and the next load (anti-entropy) repairs it.
    void receive(std::string_view from_client_id, std::string_view payload) {
        detail::CStr from(from_client_id), p(payload);
        detail::check(tb_synchronizer_receive(s_, from.get(), p.get()));
    }
    /// As receive(), for a frame `fromClientId\n[requestId, message, body]` (TinyBase's
    /// WebSocket form; what a framed CustomSynchronizer's peers send). Throws
    /// Error(TB_ERROR_INVALID_SHAPE) when there is no newline.
    void receive_framed(std::string_view frame) {
        detail::CStr f(frame);
        detail::check(tb_synchronizer_receive_framed(s_, f.get()));
    }

    /// startSync (initial_content_json: `[tables, values]` used when no peer answers).
    void start_sync(std::optional<std::string_view> initial_content_json = std::nullopt) {
        detail::OptCStr i(initial_content_json);
        detail::check(tb_synchronizer_start_sync(s_, i.get()));
    }
    void stop_sync() { detail::check(tb_synchronizer_stop_sync(s_)); }
    void load(std::optional<std::string_view> initial_content_json = std::nullopt) {
        detail::OptCStr i(initial_content_json);
        detail::check(tb_synchronizer_load(s_, i.get()));
    }
    void save() { detail::check(tb_synchronizer_save(s_)); }
    void start_auto_load(std::optional<std::string_view> initial_content_json = std::nullopt) {
        detail::OptCStr i(initial_content_json);
        detail::check(tb_synchronizer_start_auto_load(s_, i.get()));
    }
    void stop_auto_load() { detail::check(tb_synchronizer_stop_auto_load(s_)); }
    void start_auto_save() { detail::check(tb_synchronizer_start_auto_save(s_)); }
    void stop_auto_save() { detail::check(tb_synchronizer_stop_auto_save(s_)); }

    /// getStatus (TB_SYNC_STATUS_*).
    tb_sync_status get_status() const {
        tb_sync_status out = TB_SYNC_STATUS_IDLE;
        detail::check(tb_synchronizer_get_status(s_, &out));
        return out;
    }
    SynchronizerStats get_synchronizer_stats() const {
        SynchronizerStats st;
        detail::check(tb_synchronizer_get_stats(s_, &st.sends, &st.receives));
        return st;
    }
    /// Beyond TinyBase: the connection (ConnectionState::None without one of its own).
    Connection get_connection() const {
        return detail::read_connection([&](tb_connection_state* st, uint16_t* code, char** reason) { return tb_synchronizer_get_connection_state(s_, st, code, reason); });
    }
    ConnectionState connection_state() const { return get_connection().state; }
    /// Beyond TinyBase: the inbox of received payloads (see receive()).
    InboxStats get_inbox_stats() const {
        InboxStats st;
        detail::check(tb_synchronizer_get_inbox_stats(s_, &st.queued_payloads, &st.queued_bytes, &st.refused_payloads));
        return st;
    }
    /// Whether nothing is queued, running or waiting for a response (true after destroy).
    /// Messages still inside the host's own transport are not seen: check those too.
    bool is_idle() const {
        bool out = false;
        detail::check(tb_synchronizer_is_idle(s_, &out));
        return out;
    }
    /// Whether the worker has handled everything queued so far, local transactions included
    /// (their ContentDiff has been handed to send), even if requests still wait for responses.
    bool is_settled() const {
        bool out = false;
        detail::check(tb_synchronizer_is_settled(s_, &out));
        return out;
    }
    /// Waits up to `timeout` for the synchronizer to stay idle briefly; false on timeout.
    bool wait_for_idle(std::chrono::duration<double> timeout = std::chrono::seconds(10)) const {
        bool out = false;
        detail::check(tb_synchronizer_wait_for_idle(s_, timeout.count(), &out));
        return out;
    }
    /// destroy: stops it (idempotent); the object stays usable for stats and state.
    void destroy() { detail::check(tb_synchronizer_destroy(s_)); }

protected:
    tb_synchronizer* s_ = nullptr;
};

/// Options of a WebSocket synchronizer (tb_ws_synchronizer_options). Zero durations mean the
/// library's defaults.
struct WsSynchronizerOptions {
    SynchronizerOptions sync;
    /// nullopt: TinyBase's legacy framing; a channel id: the multiplexed protocol.
    std::optional<std::string> channel_id;
    /// Outgoing fragments of at most this many bytes; 0: never.
    size_t fragment_size = 0;
    /// Re-open lost connections (backoff with jitter, then pull again). false: the constructor
    /// waits for the socket to open and throws when it cannot.
    bool reconnect = true;
    double reconnect_min_seconds = 0;
    double reconnect_max_seconds = 0;
    double ping_interval_seconds = 0;
    double connect_timeout_seconds = 0;
    /// A PEM file of extra CA certificates for wss://.
    std::optional<std::string> ca_file;
    /// Extra headers of the upgrade request (e.g. {"Authorization", "Bearer ..."}).
    std::vector<std::pair<std::string, std::string>> headers;
};

namespace detail {

/// The C view of WsSynchronizerOptions (but the synchronizer's options), with the strings it
/// points at, for one creating call.
class WsOptionsIn {
public:
    explicit WsOptionsIn(const WsSynchronizerOptions& options)
        : channel_(options.channel_id ? std::optional<std::string_view>(*options.channel_id) : std::nullopt),
          ca_(options.ca_file ? std::optional<std::string_view>(*options.ca_file) : std::nullopt) {
        for (const auto& h : options.headers) {
            if (h.first.find('\0') != std::string::npos || h.second.find('\0') != std::string::npos)
                throw Error(TB_ERROR_INVALID_ARGUMENT, "a header contains a NUL byte, which the C API cannot take");
            lines_.push_back(h.first + ": " + h.second);
        }
        for (const auto& l : lines_) ptrs_.push_back(l.c_str());
        o_.channel_id = channel_.get();
        o_.fragment_size = options.fragment_size;
        o_.no_reconnect = !options.reconnect;
        o_.reconnect_min_seconds = options.reconnect_min_seconds;
        o_.reconnect_max_seconds = options.reconnect_max_seconds;
        o_.ping_interval_seconds = options.ping_interval_seconds;
        o_.connect_timeout_seconds = options.connect_timeout_seconds;
        o_.ca_file = ca_.get();
        o_.headers = ptrs_.empty() ? nullptr : ptrs_.data();
        o_.header_count = ptrs_.size();
    }
    WsOptionsIn(const WsOptionsIn&) = delete;
    WsOptionsIn& operator=(const WsOptionsIn&) = delete;
    tb_ws_synchronizer_options& get() noexcept { return o_; }

private:
    OptCStr channel_, ca_;
    std::vector<std::string> lines_;
    std::vector<const char*> ptrs_;
    tb_ws_synchronizer_options o_{};
};

/// Creates a synchronizer with `create(tb_synchronizer_options*, tb_synchronizer**)`; the
/// hooks are handed over only when it succeeds.
template <class F>
tb_synchronizer* new_synchronizer(const SynchronizerOptions& options, tb_synchronizer_options& o, F&& create) {
    auto hooks = sync_options_in(options, o);
    tb_synchronizer* out = nullptr;
    check(create(&o, &out));
    (void)hooks.release();  // the library owns them now (released by tb_synchronizer_free)
    return out;
}

}  // namespace detail

class WsClient;

/// createWsSynchronizer: a Synchronizer through the WebSocket server at `url` (ws:// or
/// wss://). Throws Error on invalid arguments, or (reconnect = false) when the socket cannot
/// be opened. Starts stopped: call start_sync(). Destroying it closes the socket (1000).
class WsSynchronizer : public Synchronizer {
public:
    WsSynchronizer(const MergeableStoreRef& store, std::string_view url, const WsSynchronizerOptions& options = {}) {
        detail::CStr u(url);
        detail::WsOptionsIn in(options);
        s_ = detail::new_synchronizer(options.sync, in.get().sync, [&](const tb_synchronizer_options*, tb_synchronizer** out) {
            return tb_ws_synchronizer_new(store.get_mergeable(), u.get(), &in.get(), out);
        });
    }

private:
    friend class WsClient;
    explicit WsSynchronizer(tb_synchronizer* owned) noexcept : Synchronizer(owned) {}
};

/// A multiplexed WebSocket connection (tb_ws_client) that several stores share, one channel
/// each: create_synchronizer() joins one. The socket opens when the first synchronizer joins
/// and closes (1000) when the last one is destroyed. Move-only; the synchronizers keep the
/// connection after this object is gone.
class WsClient {
public:
    /// `options`: the connection's options (its `sync` and `channel_id` are not used).
    explicit WsClient(std::string_view url, const WsSynchronizerOptions& options = {}) {
        detail::CStr u(url);
        detail::WsOptionsIn in(options);
        detail::check(tb_ws_client_new(u.get(), &in.get(), &c_));
    }
    WsClient(const WsClient&) = delete;
    WsClient& operator=(const WsClient&) = delete;
    WsClient(WsClient&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
    WsClient& operator=(WsClient&& o) noexcept {
        if (this != &o) {
            tb_ws_client_free(c_);
            c_ = std::exchange(o.c_, nullptr);
        }
        return *this;
    }
    ~WsClient() { tb_ws_client_free(c_); }

    /// A synchronizer for `store` on channel `channel_id` (throws for an invalid or taken
    /// channel, and as WsSynchronizer does for the connection).
    WsSynchronizer create_synchronizer(const MergeableStoreRef& store, std::string_view channel_id, const SynchronizerOptions& options = {}) {
        detail::CStr ch(channel_id);
        tb_synchronizer_options o{};
        return WsSynchronizer(detail::new_synchronizer(options, o, [&](const tb_synchronizer_options* opts, tb_synchronizer** out) {
            return tb_ws_client_create_synchronizer(c_, store.get_mergeable(), ch.get(), opts, out);
        }));
    }
    /// The shared socket's state.
    Connection get_connection() const {
        return detail::read_connection([&](tb_connection_state* st, uint16_t* code, char** reason) { return tb_ws_client_get_connection_state(c_, st, code, reason); });
    }
    tb_ws_client* get() const noexcept { return c_; }

private:
    tb_ws_client* c_ = nullptr;
};

namespace detail {

/// Deletes a callable the library held as user_data (a transport's release).
template <class Fn>
void delete_callable(void* ud) {
    delete static_cast<Fn*>(ud);
}

/// Creates a custom-transport synchronizer. `fn` becomes the transport's user_data, handed to
/// the library only when `create(fn*, release, options*, out)` succeeds (then
/// tb_synchronizer_free releases it once, after the worker stopped); on failure it is deleted
/// here, with the hooks, since the library then calls neither release.
template <class Fn, class Create>
tb_synchronizer* new_custom_synchronizer(Fn fn, const SynchronizerOptions& options, Create&& create) {
    if (!fn) throw Error(TB_ERROR_NULL_PARAMETER, "a custom synchronizer needs a send function (it is empty)");
    auto owned = std::make_unique<Fn>(std::move(fn));
    tb_synchronizer_options o{};
    tb_synchronizer* out = new_synchronizer(options, o, [&](const tb_synchronizer_options* opts, tb_synchronizer** s) {
        return create(owned.get(), &delete_callable<Fn>, opts, s);
    });
    (void)owned.release();  // the library owns it now
    return out;
}

}  // namespace detail

/// createCustomSynchronizer: TinyBase's sync protocol over a transport the host provides (BLE,
/// MQTT, a pipe, a message queue...). `send(to_client_id, payload)` delivers `payload` (JSON
/// text `[requestId, message, body]` in TinyBase's wire encoding) to the client
/// `to_client_id`, or to every other client when it is std::nullopt; the host pushes what
/// arrives with receive(from_client_id, payload), from any thread. The framed() variant sends
/// and receives TinyBase's WebSocket frames `clientId\n[...]` instead.
///
/// Client ids are the host's: the id a peer's payloads are received from is the one its
/// replies are sent to. `send` runs on the synchronizer's worker thread (never concurrently
/// with itself, no store lock held) and should hand the payload over and return quickly; the
/// views are valid for the call only (copy what you keep). It may call receive() of any
/// synchronizer and store methods; it must not destroy synchronizers and should not call their
/// blocking methods. An exception escaping it goes to the handler set with
/// set_callback_exception_handler() (the message is then lost: anti-entropy repairs that).
/// The library owns `send` (and the options' hooks) from a successful construction until the
/// synchronizer is freed (this object, or the Synchronizer it was moved into, is destroyed);
/// a failed construction throws Error and keeps nothing. Starts stopped: call start_sync().
class CustomSynchronizer : public Synchronizer {
public:
    /// (to_client_id or nullopt for every other client, payload `[requestId, message, body]`).
    using SendFn = std::function<void(std::optional<std::string_view> to_client_id, std::string_view payload)>;
    /// (frame `toClientId\n[requestId, message, body]`; an empty id means every other client).
    using SendFrameFn = std::function<void(std::string_view frame)>;

    /// A synchronizer for `store` sending through `send` (an empty `send` throws
    /// Error(TB_ERROR_NULL_PARAMETER)). The request timeout defaults to 1 s.
    CustomSynchronizer(const MergeableStoreRef& store, SendFn send, const SynchronizerOptions& options = {})
        : Synchronizer(detail::new_custom_synchronizer(std::move(send), options, [&](SendFn* fn, tb_release_fn release, const tb_synchronizer_options* o, tb_synchronizer** out) {
              return tb_synchronizer_new_custom(store.get_mergeable(), &send_trampoline, fn, release, o, out);
          })) {}

    /// For media that carry TinyBase's WebSocket frames: `send_frame(frame)` gets
    /// `toClientId\n[...]`; feed inbound frames `fromClientId\n[...]` to receive_framed().
    static CustomSynchronizer framed(const MergeableStoreRef& store, SendFrameFn send_frame, const SynchronizerOptions& options = {}) {
        return CustomSynchronizer(detail::new_custom_synchronizer(std::move(send_frame), options, [&](SendFrameFn* fn, tb_release_fn release, const tb_synchronizer_options* o, tb_synchronizer** out) {
            return tb_synchronizer_new_custom_framed(store.get_mergeable(), &send_frame_trampoline, fn, release, o, out);
        }));
    }

private:
    explicit CustomSynchronizer(tb_synchronizer* owned) noexcept : Synchronizer(owned) {}

    static void send_trampoline(void* ud, const char* to, const char* payload, size_t len) {
        try {
            (*static_cast<SendFn*>(ud))(detail::SyncHooks::opt(to), std::string_view(payload, len));
        } catch (...) {
            detail::report_callback_exception(std::current_exception());
        }
    }
    static void send_frame_trampoline(void* ud, const char* frame, size_t len) {
        try {
            (*static_cast<SendFrameFn*>(ud))(std::string_view(frame, len));
        } catch (...) {
            detail::report_callback_exception(std::current_exception());
        }
    }
};

/// An in-process bus (TinyBase's LocalSynchronizer medium; tb_local_bus): every synchronizer
/// created on it with create_synchronizer() (TinyBase's createLocalSynchronizer) reaches the
/// others. BroadcastChannel::open(name) gives the bus of a named channel. Move-only; a
/// moved-from LocalBus is empty (its methods throw Error(TB_ERROR_NULL_PARAMETER)).
/// Synchronizers created on a bus keep it alive: this object may go first.
class LocalBus {
public:
    /// A new empty bus.
    LocalBus() { detail::check(tb_local_bus_new(&b_)); }
    /// Adopts an owned bus handle (from tb_local_bus_new / tb_broadcast_channel_open).
    static LocalBus adopt(tb_local_bus* owned) noexcept { return LocalBus(owned, Adopt{}); }
    LocalBus(const LocalBus&) = delete;
    LocalBus& operator=(const LocalBus&) = delete;
    LocalBus(LocalBus&& o) noexcept : b_(std::exchange(o.b_, nullptr)) {}
    LocalBus& operator=(LocalBus&& o) noexcept {
        if (this != &o) {
            tb_local_bus_free(b_);
            b_ = std::exchange(o.b_, nullptr);
        }
        return *this;
    }
    ~LocalBus() { tb_local_bus_free(b_); }

    /// createLocalSynchronizer: a Synchronizer for `store` on this bus (random client id). The
    /// request timeout defaults to TinyBase's 0.01 s, which a busy machine may exceed: the
    /// timeouts are ignored errors and the peers still converge with the next announcement.
    /// Starts stopped: call start_sync().
    Synchronizer create_synchronizer(const MergeableStoreRef& store, const SynchronizerOptions& options = {}) {
        tb_synchronizer_options o{};
        return Synchronizer(detail::new_synchronizer(options, o, [&](const tb_synchronizer_options* opts, tb_synchronizer** out) {
            return tb_local_bus_create_synchronizer(b_, store.get_mergeable(), opts, out);
        }));
    }
    /// Waits up to `timeout` until every synchronizer on the bus has stayed idle briefly;
    /// false on timeout. Not from a synchronizer callback.
    bool wait_for_idle(std::chrono::duration<double> timeout = std::chrono::seconds(10)) const {
        bool out = false;
        detail::check(tb_local_bus_wait_for_idle(b_, timeout.count(), &out));
        return out;
    }
    /// The C handle (borrowed).
    tb_local_bus* get() const noexcept { return b_; }
    explicit operator bool() const noexcept { return b_ != nullptr; }

private:
    struct Adopt {};
    LocalBus(tb_local_bus* b, Adopt) noexcept : b_(b) {}
    tb_local_bus* b_ = nullptr;
};

/// Named in-process channels (TinyBase's BroadcastChannelSynchronizer medium, within this
/// process): synchronizers created on buses opened with the same name sync with each other,
/// other names do not. `BroadcastChannel::open("room").create_synchronizer(store)` is
/// TinyBase's createBroadcastChannelSynchronizer(store, "room").
struct BroadcastChannel {
    BroadcastChannel() = delete;
    /// The bus of channel `name` (it lives while any bus handle or synchronizer uses it).
    static LocalBus open(std::string_view name) {
        detail::CStr n(name);
        tb_local_bus* out = nullptr;
        detail::check(tb_broadcast_channel_open(n.get(), &out));
        return LocalBus::adopt(out);
    }
};

// ---------------------------------------------------------------------------------------------
// Persisters
// ---------------------------------------------------------------------------------------------

/// A persister's status (TinyBase's getStatus()).
enum class PersisterStatus : uint32_t { Idle = TB_PERSISTER_IDLE, Loading = TB_PERSISTER_LOADING, Saving = TB_PERSISTER_SAVING };

/// How a SqlitePersister lays the store out.
enum class SqliteMode : uint32_t {
    /// TinyBase's layout: the whole content as JSON in one row (readable by TinyBase).
    Json = TB_SQLITE_JSON,
    /// A row per cell and value, each transaction one SQLite transaction (mergeable stores).
    Incremental = TB_SQLITE_INCREMENTAL,
};

/// TinyBase's getStats().
struct PersisterStats {
    uint64_t loads = 0;
    uint64_t saves = 0;
};

/// What on_durable is told: the content hashes made durable (0, 0 for a plain store) and the
/// saves completed so far.
struct DurableInfo {
    uint32_t tables_hash = 0;
    uint32_t values_hash = 0;
    uint64_t saves = 0;
};

/// Options of a persister (tb_persister_options). Zero durations mean the library's defaults
/// (auto-load every 0.25 s, a 10 s lock timeout). The callbacks run on the persister's thread
/// (or on the thread calling save()), one at a time, as the C API's PERSISTERS section says:
/// they may use stores and the persister's getters, not its other methods (those throw
/// Error(TB_ERROR_INVALID_STATE) there); destroying the Persister object from one of them is
/// allowed (its free is deferred). An exception escaping one goes to the handler set with
/// set_callback_exception_handler().
struct PersisterOptions {
    std::function<void(const DurableInfo&)> on_durable;
    /// (status, message): an error auto-load or auto-save met (TinyBase's onIgnoredError).
    std::function<void(tb_status, std::string_view)> on_ignored_error;
    double auto_load_interval_seconds = 0;
    double lock_timeout_seconds = 0;
    /// SqlitePersister in SqliteMode::Json: table and column names (TinyBase's
    /// "tinybase", "_id", "store" when unset).
    std::optional<std::string> sqlite_table_name;
    std::optional<std::string> sqlite_id_column_name;
    std::optional<std::string> sqlite_store_column_name;
};

namespace detail {

/// The callbacks of one persister, owned by the library from a successful creating call until
/// its release (tb_persister_free, after the persister's thread stopped).
struct PersisterHooks {
    std::function<void(const DurableInfo&)> on_durable;
    std::function<void(tb_status, std::string_view)> on_ignored_error;

    static void durable(void* ud, const tb_durable_info* info) {
        try {
            static_cast<PersisterHooks*>(ud)->on_durable(DurableInfo{info->tables_hash, info->values_hash, info->saves});
        } catch (...) {
            report_callback_exception(std::current_exception());
        }
    }
    static void ignored(void* ud, tb_status status, const char* message) {
        try {
            static_cast<PersisterHooks*>(ud)->on_ignored_error(status, message ? message : "");
        } catch (...) {
            report_callback_exception(std::current_exception());
        }
    }
    static void release(void* ud) { delete static_cast<PersisterHooks*>(ud); }
};

/// The C view of PersisterOptions for one creating call; create(options, out) runs it, and
/// the hooks are handed over only when it succeeds.
template <class F>
tb_persister* new_persister(const PersisterOptions& options, F&& create) {
    tb_persister_options o{};
    o.auto_load_interval_seconds = options.auto_load_interval_seconds;
    o.lock_timeout_seconds = options.lock_timeout_seconds;
    auto opt = [](const std::optional<std::string>& s) { return s ? std::optional<std::string_view>(*s) : std::nullopt; };
    OptCStr table(opt(options.sqlite_table_name)), id(opt(options.sqlite_id_column_name)), store(opt(options.sqlite_store_column_name));
    o.sqlite_table_name = table.get();
    o.sqlite_id_column_name = id.get();
    o.sqlite_store_column_name = store.get();
    std::unique_ptr<PersisterHooks> hooks;
    if (options.on_durable || options.on_ignored_error) {
        hooks = std::make_unique<PersisterHooks>(PersisterHooks{options.on_durable, options.on_ignored_error});
        if (options.on_durable) o.on_durable = &PersisterHooks::durable;
        if (options.on_ignored_error) o.on_ignored_error = &PersisterHooks::ignored;
        o.user_data = hooks.get();
        o.release = &PersisterHooks::release;
    }
    tb_persister* out = nullptr;
    check(create(&o, &out));
    (void)hooks.release();  // the library owns them now (released by tb_persister_free)
    return out;
}

}  // namespace detail

/// Owns a tb_persister (move-only): destroyed and freed when this object is (what auto-save
/// queued is written first). Every tb_persister_* function has a method here; they block as
/// the C API says. Failures throw Error (StorageError for TB_ERROR_IO, CorruptDataError for
/// TB_ERROR_CORRUPT). A moved-from Persister is empty: its methods throw
/// Error(TB_ERROR_NULL_PARAMETER).
class Persister {
public:
    Persister() noexcept = default;
    /// Adopts an owned tb_persister (freed with tb_persister_free).
    explicit Persister(tb_persister* owned) noexcept : p_(owned) {}
    Persister(const Persister&) = delete;
    Persister& operator=(const Persister&) = delete;
    Persister(Persister&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    Persister& operator=(Persister&& o) noexcept {
        if (this != &o) {
            tb_persister_free(p_);
            p_ = std::exchange(o.p_, nullptr);
        }
        return *this;
    }
    virtual ~Persister() { tb_persister_free(p_); }

    /// The C handle (borrowed).
    tb_persister* get() const noexcept { return p_; }
    explicit operator bool() const noexcept { return p_ != nullptr; }

    /// load: merges what is stored into the store; false when nothing is stored yet.
    bool load() {
        bool loaded = false;
        detail::check(tb_persister_load(p_, &loaded));
        return loaded;
    }
    /// save: returns once the whole content is durable.
    void save() { detail::check(tb_persister_save(p_)); }
    void start_auto_load() { detail::check(tb_persister_start_auto_load(p_)); }
    void stop_auto_load() { detail::check(tb_persister_stop_auto_load(p_)); }
    void start_auto_save() { detail::check(tb_persister_start_auto_save(p_)); }
    void stop_auto_save() { detail::check(tb_persister_stop_auto_save(p_)); }
    bool is_auto_loading() const {
        bool out = false;
        detail::check(tb_persister_is_auto_loading(p_, &out));
        return out;
    }
    bool is_auto_saving() const {
        bool out = false;
        detail::check(tb_persister_is_auto_saving(p_, &out));
        return out;
    }
    PersisterStatus get_status() const {
        tb_persister_status out = TB_PERSISTER_IDLE;
        detail::check(tb_persister_get_status(p_, &out));
        return static_cast<PersisterStatus>(out);
    }
    PersisterStats get_stats() const {
        PersisterStats st;
        detail::check(tb_persister_get_stats(p_, &st.loads, &st.saves));
        return st;
    }
    /// Waits up to `timeout` until every transaction committed before the call is durable;
    /// false on timeout. Throws the first auto-save error since the last call.
    bool flush(std::chrono::duration<double> timeout = std::chrono::seconds(10)) {
        bool out = false;
        detail::check(tb_persister_flush(p_, timeout.count(), &out));
        return out;
    }
    /// After a load threw CorruptDataError: moves the unreadable data aside so saves may start
    /// afresh; where it went, or nullopt when no load failed.
    std::optional<std::string> move_aside_unreadable() {
        char* out = nullptr;
        detail::check(tb_persister_move_aside_unreadable(p_, &out));
        if (!out) return std::nullopt;
        return detail::take_string(out);
    }
    /// Names the storage ("file /data/room.json", ...).
    std::string describe() const {
        return detail::get_string([&](char** o) { return tb_persister_describe(p_, o); });
    }
    /// destroy: stops it (idempotent); the object stays usable for status and stats.
    void destroy() { detail::check(tb_persister_destroy(p_)); }

protected:
    tb_persister* p_ = nullptr;
};

/// createFilePersister: a Persister of `store` (plain or mergeable) to the file at `path`, in
/// TinyBase's format, written atomically and durably.
class FilePersister : public Persister {
public:
    FilePersister(const StoreRef& store, std::string_view path, const PersisterOptions& options = {}) {
        detail::CStr pa(path);
        p_ = detail::new_persister(options, [&](const tb_persister_options* o, tb_persister** out) {
            return tb_file_persister_new(store.get(), pa.get(), o, out);
        });
    }
};

/// createSqlitePersister: a Persister of `store` to the SQLite database at `path` in `mode`
/// (SqliteMode::Incremental needs a mergeable store).
class SqlitePersister : public Persister {
public:
    SqlitePersister(const StoreRef& store, std::string_view path, SqliteMode mode = SqliteMode::Json, const PersisterOptions& options = {}) {
        detail::CStr pa(path);
        p_ = detail::new_persister(options, [&](const tb_persister_options* o, tb_persister** out) {
            return tb_sqlite_persister_new(store.get(), pa.get(), static_cast<tb_sqlite_mode>(mode), o, out);
        });
    }
};

/// A Persister of a mergeable `store` to the room `room` of the PostgreSQL database at `dsn`
/// (a connection string or postgres:// URL). Throws Error(TB_ERROR_INVALID_STATE) when the
/// library was built without PostgreSQL, StorageError when the database cannot be reached.
class PostgresPersister : public Persister {
public:
    PostgresPersister(const StoreRef& store, std::string_view dsn, std::string_view room, const PersisterOptions& options = {}) {
        detail::CStr d(dsn), r(room);
        p_ = detail::new_persister(options, [&](const tb_persister_options* o, tb_persister** out) {
            return tb_postgres_persister_new(store.get(), d.get(), r.get(), o, out);
        });
    }
};

}  // namespace tinybase

#endif  // TINYBASE_HPP
