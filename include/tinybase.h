/*
 * tinybase.h - the C API of tinybase-native: TinyBase's Store and MergeableStore.
 *
 * ============================================================================================
 * NAMING
 *   tb_<type>_<verb>, verbs are TinyBase's method names in snake_case (setCell ->
 *   tb_store_set_cell). Functions taking or returning JSON text end in _json. Opaque handles:
 *   tb_store, tb_mergeable_store, tb_event_queue,
 *   tb_synchronizer, tb_local_bus, tb_ws_client, tb_persister. Bulk shapes (tables, content, changes,
 *   mergeable content, hashes, diffs) cross the boundary as JSON text in TinyBase's encoding
 *   (undefined / deleted is the string "\uFFFC"; "wire form" writes object and array cells
 *   as strings prefixed with U+FFFD).
 *
 * MERGEABLE STORES
 *   A tb_mergeable_store is also a tb_store: tb_mergeable_store_as_store() returns a borrowed
 *   tb_store view of the same store (valid while the mergeable handle is), so every tb_store_*
 *   function works on a mergeable store; only the CRDT-specific operations have
 *   tb_mergeable_store_* functions. tb_store_as_mergeable() goes the other way.
 *
 * ERRORS
 *   Every fallible function returns a tb_status. Out-parameters are written only when it
 *   returns TB_OK. On failure a message is recorded for the calling thread:
 *   tb_last_error_message() (borrowed, valid until the next failing call on this thread) or
 *   tb_last_error_message_copy() (copies into a caller buffer; call it right after the failing
 *   call, before the host may move the task to another OS thread). No panic crosses the
 *   boundary: an internal panic becomes TB_ERROR_PANIC. Outside a transaction the store is
 *   left unchanged (the call's own transaction is rolled back); inside an open transaction the
 *   failed call may have left part of its changes in it: roll that transaction back.
 *   NULL where a pointer is required gives TB_ERROR_NULL_PARAMETER; invalid UTF-8 gives
 *   TB_ERROR_INVALID_UTF8.
 *
 * OWNERSHIP
 *   - Handles: *_new() gives an owned reference; *_clone() another owned reference to the
 *     same store (reference counted; the same pointer value); *_free() releases one reference
 *     (NULL is fine). Freeing a store's last reference removes the listeners added through it
 *     (see THREAD-SAFETY for when it waits); the store's content lives on while a synchronizer
 *     uses it. Borrowed views (tb_mergeable_store_as_store, tb_store_as_mergeable, the store
 *     passed to callbacks) must not be freed.
 *   - *_free() must not race other calls that use the reference it releases: free a reference
 *     only once every call made with it on other threads has returned, and never use it
 *     afterwards. The library does not make that safe: keep one reference per thread
 *     (tb_store_clone()) when threads' lifetimes differ. On the calling thread, a callback of
 *     a write, transaction, merge or tb_store_call_listener() made with a store reference may
 *     free that reference: the call keeps the store until it returns.
 *   - char* returned through an out-parameter is owned by the caller and freed only with
 *     tb_string_free() (never libc free()).
 *   - tb_value written by tb_store_get_cell()/tb_store_get_value() owns its string; release it
 *     with tb_value_free(). tb_value passed into the library is borrowed for the call only.
 *   - tb_event* from tb_event_queue_poll()/wait() is owned: tb_event_free(). A const tb_event*
 *     passed to a listener callback is borrowed for the duration of the call only.
 *   - tb_debug_live_handles() counts every object currently owned by the host that needs a
 *     free (handle references, strings, values, events, queues) plus registered listeners
 *     whose user_data has not been released yet. Tests assert it returns to its start value.
 *
 * ============================================================================================
 * THREAD-SAFETY CONTRACT
 *   - Every handle may be used from any thread at any time, concurrently. Each function is
 *     atomic; a transaction (tb_store_transaction, or tb_store_start_transaction ...
 *     tb_store_finish_transaction on one thread) is atomic: readers on other threads never
 *     see half of it.
 *   - BLOCKING: every tb_store_* / tb_mergeable_store_* function may wait while another
 *     thread is inside a transaction on the same store (transactions hold the store's lock
 *     from start to finish; it is re-entrant for the owning thread), or inside a start- or
 *     will-finish-transaction listener (they run with the lock held). tb_store_del_listener()
 *     waits until in-flight calls of the listener on other threads have returned. The free of a
 *     store's last reference waits until every listener callback using it on other threads
 *     (e.g. on a synchronizer's worker) has returned, then removes the listeners and releases
 *     their user_data: once it returns, none of them runs again. Called from inside one of
 *     the store's listener callbacks or a tb_store_transaction() body it does not wait (no
 *     deadlock): the listeners are removed, and their release called, when the last such
 *     callback in flight returns, on that callback's thread. Do
 *     not free a store's last reference while this thread holds a transaction open on it.
 *     tb_event_queue_wait() blocks up to its timeout.
 *     Synchronizers: tb_synchronizer_start_sync(), _load() and _start_auto_load() block until
 *     their load has finished (up to the request timeout, a few times at most, when no peer
 *     answers); the other commands (_stop_sync, _save, _start/_stop_auto_*) block briefly
 *     while the worker handles what was queued before them; _wait_for_idle() and
 *     tb_local_bus_wait_for_idle() block up to their timeout; _destroy() and _free() block
 *     until the worker thread has stopped. Nothing else blocks: in particular
 *     tb_synchronizer_receive() and _receive_framed() never do.
 *     Persisters: _load(), _save(), _start_auto_load(), _start_auto_save(),
 *     _move_aside_unreadable() and the constructors block while they do I/O (a save up to
 *     lock_timeout_seconds for another process's lock); _stop_auto_save() until what was
 *     queued is durable; _flush() up to its timeout; _destroy() and _free() until the
 *     persister's thread has stopped. Their getters (status, stats, is_auto_*) never block.
 *   - Change listeners (tables ... value kinds) and did-finish-transaction listeners run after
 *     the transaction commits, on the thread that made the change, with the store's lock
 *     released (also when it ends in tb_store_finish_transaction()). A listener may read the
 *     store, write it (a new transaction; its listeners run when it finishes), add and remove
 *     listeners. Start-transaction and will-finish-transaction listeners run inside the
 *     transaction with the store's lock held (other threads wait for them); their writes join
 *     the transaction.
 *   - Deadlock caveat: do not call tb_store_del_listener() for a listener that may be running
 *     on another thread and waiting for this store while the calling thread holds an open
 *     transaction.
 *   - tb_store_start_transaction() and tb_store_finish_transaction() must be called on the
 *     same thread; finishing on another thread gives TB_ERROR_INVALID_STATE.
 *
 * CALLBACK CONTRACT
 *   - Every callback takes the host's user_data first. An optional release(user_data) is
 *     called exactly once, when the library no longer needs user_data (listener removed,
 *     store's last reference freed, ...), on the thread whose call let go of it; when that call
 *     ran inside a callback still using user_data (a listener removing itself, a last free
 *     from inside a listener), after that callback returned, on its thread. If the registering
 *     call fails, the library has not taken ownership and release is NOT called.
 *   - Listener callbacks (tb_listener_fn) are called on the thread that committed the change
 *     (any thread that writes the store, a synchronizer's worker included; or the caller of
 *     tb_store_call_listener()), possibly concurrently from several threads; the
 *     user_data must therefore be safe to use from any thread. Change and did-finish listeners
 *     run with no lock of the library held; start and will-finish transaction listeners run
 *     inside the transaction, with the store's lock held (other threads wait). They may
 *     re-enter the API (read, write, add or remove listeners, even remove themselves: then
 *     release runs after the callback returns); a removal from inside any callback does not
 *     wait (see tb_store_del_listener). Listener calls nest at most TB_MAX_LISTENER_NESTING
 *     deep on a thread: a write that would go deeper fails with TB_ERROR_INVALID_STATE.
 *     Arguments (the store view, the event and all its strings) are borrowed for the duration
 *     of the call only: copy what you keep.
 *   - Hosts that need notifications on a thread of their choosing use buffered delivery:
 *     tb_store_add_buffered_listener() queues owned events into a tb_event_queue that the
 *     host drains with tb_event_queue_poll()/tb_event_queue_wait() on its own thread; an
 *     optional notify callback says when the queue becomes non-empty. It runs on the writing
 *     thread with no lock of the library held; it must not block for long.
 *   - The clock callback (tb_now_fn) of a mergeable store is called with the store's lock
 *     held, on any thread that writes or merges the store, never concurrently for one store.
 *     It must not call into this library.
 *   - Transaction callbacks (tb_transaction_fn) are called once, synchronously, on the
 *     calling thread, with the store's lock held; they may call any tb_store_* function on the
 *     store they receive (freeing it last: see OWNERSHIP).
 *
 * ============================================================================================
 * SYNCHRONIZERS
 *   - A tb_synchronizer speaks TinyBase's sync protocol for one mergeable store. Each has one
 *     worker thread: the transport's send (tb_sync_send_fn / tb_sync_send_frame_fn) and the
 *     on_send / on_receive / on_ignored_error / on_status hooks are called there, never
 *     concurrently for one synchronizer, never under a store lock, with arguments borrowed for
 *     the call only.
 *     Callbacks may call tb_synchronizer_receive() and store functions; they must not destroy
 *     or free other synchronizers (destroying their own gives TB_ERROR_INVALID_STATE; freeing
 *     their own is deferred until the callback returned, see tb_synchronizer_free) and should
 *     not call the blocking synchronizer functions (from a synchronizer's own callback,
 *     start_sync/load/... are queued instead of waited for).
 *   - Custom transports are the first-class way to sync: the host sends what send() gives it
 *     (payload `[requestId, message, body]` to a client id, or to all when NULL; or a frame
 *     `toClientId
[...]`) and pushes what arrives with tb_synchronizer_receive(sync, from,
 *     payload) or tb_synchronizer_receive_framed(sync, "fromClientId
[...]"), from any
 *     thread, at any time; it never blocks. Invalid payloads are ignored and reported through
 *     on_ignored_error, never applied.
 *   - Local changes reach the worker without blocking the writer; every store function stays
 *     usable from any thread while synchronizers run.
 *   - tb_synchronizer_free() destroys the synchronizer if needed, then releases the
 *     transport's and the options' user_data exactly once each, after the worker stopped.
 *   - WebSocket synchronizers (tb_ws_synchronizer_new, or tb_ws_client_create_synchronizer for
 *     several stores over one socket) are normal tb_synchronizers with one more I/O thread per
 *     socket; their hooks still run on the worker. tb_synchronizer_get_connection_state() and
 *     on_status tell the connection's state (connecting, open, closed with code and reason);
 *     destroy closes the socket cleanly (1000) or unsubscribes the channel.
 *
 * ============================================================================================
 * PERSISTERS
 *   - A tb_persister keeps one store's content in a file (tb_file_persister_new, TinyBase's
 *     format), a SQLite database (tb_sqlite_persister_new, TinyBase's JSON layout or the
 *     incremental one) or a PostgreSQL room (tb_postgres_persister_new). Beyond TinyBase, a
 *     load merges into the store, loaded hashes are verified, and data that could not be
 *     loaded (TB_ERROR_CORRUPT) is never written over: saves are refused until a load succeeds
 *     or tb_persister_move_aside_unreadable() moved it aside.
 *   - Each persister has one thread for auto-load and auto-save. on_durable and
 *     on_ignored_error run there (or on the calling thread, for the save a command makes),
 *     never concurrently for one persister, never under a lock of the library, with arguments
 *     borrowed for the call only. They may read and write stores and call the persister's
 *     getters; its other functions give TB_ERROR_INVALID_STATE there, and freeing their own
 *     persister is deferred until the callback returned (see tb_persister_free).
 *   - Persisting and synchronizing one mergeable store at once is supported: what a
 *     synchronizer merges in is saved like any local change.
 *   - tb_persister_free() destroys the persister if needed (what auto-save queued is written
 *     first), then releases the options' user_data exactly once, after its thread stopped.
 * ============================================================================================
 */


#ifndef TINYBASE_H
#define TINYBASE_H

/* Generated by cbindgen from src/ffi/ (see build.rs). Do not edit by hand: scripts/check-header.sh --update refreshes it. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** This header's library version (matches Cargo.toml and tb_version()). */
#define TB_VERSION_MAJOR 0
#define TB_VERSION_MINOR 1
#define TB_VERSION_PATCH 0
#define TB_VERSION_STRING "0.1.0"


/**
 * How deeply listener calls may nest on one thread (listeners writing the store that calls
 * them again): a write that would commit from deeper fails with TB_ERROR_INVALID_STATE and
 * changes nothing. About 2 KiB of stack per level in this library.
 */
#define TB_MAX_LISTENER_NESTING 100

/**
 * The result of every fallible function. Out-parameters are written only with TB_OK.
 */
typedef enum tb_status {
    /**
     * Success.
     */
    TB_OK = 0,
    /**
     * A required pointer argument was NULL.
     */
    TB_ERROR_NULL_PARAMETER = 1,
    /**
     * A string argument was not valid UTF-8.
     */
    TB_ERROR_INVALID_UTF8 = 2,
    /**
     * JSON text was malformed (or exceeded the size or depth limits).
     */
    TB_ERROR_INVALID_JSON = 3,
    /**
     * A cell or value was not a string, finite number, boolean, null, object or array, or
     * was a reserved string, or a tb_value had an unknown or absent kind where one is needed.
     */
    TB_ERROR_INVALID_VALUE = 4,
    /**
     * Valid JSON without the shape the function expects.
     */
    TB_ERROR_INVALID_SHAPE = 5,
    /**
     * A malformed HLC, or one more than five minutes in the future.
     */
    TB_ERROR_INVALID_HLC = 6,
    /**
     * Not allowed in the current state (for example finishing a transaction that was not
     * started on this thread, or a plain store where a mergeable one is needed).
     */
    TB_ERROR_INVALID_STATE = 7,
    /**
     * An argument out of range (for example an unknown listener kind).
     */
    TB_ERROR_INVALID_ARGUMENT = 8,
    /**
     * An internal error (a Rust panic) was caught at the boundary. The store is unchanged.
     */
    TB_ERROR_PANIC = 9,
    /**
     * Persistence: reading or writing the storage failed (I/O, a database error, a lock held
     * by another process past the timeout). The store is unchanged.
     */
    TB_ERROR_IO = 10,
    /**
     * Persistence: the stored data cannot be loaded (not TinyBase content, a wrong shape, bad
     * hashes, an HLC far in the future). Nothing was loaded; the stored data is kept.
     */
    TB_ERROR_CORRUPT = 11,
} tb_status;

/**
 * A queue of owned listener events, for hosts that must handle notifications on a thread of
 * their choosing. Any thread may push (listeners) and drain it.
 */
typedef struct tb_event_queue tb_event_queue;

/**
 * An in-process bus (TinyBase's LocalSynchronizer medium): every synchronizer created on the
 * same bus reaches the others. Opaque; tb_local_bus_new() or tb_broadcast_channel_open(),
 * freed with tb_local_bus_free().
 */
typedef struct tb_local_bus tb_local_bus;

/**
 * A TinyBase MergeableStore. Opaque; tb_mergeable_store_as_store() gives its tb_store view.
 */
typedef struct tb_mergeable_store tb_mergeable_store;

/**
 * A persister: TinyBase's Persister, keeping one store's content in a file, a SQLite database
 * or a PostgreSQL room, with its own thread for auto-load and auto-save. Opaque; create with
 * tb_file_persister_new(), tb_sqlite_persister_new() or tb_postgres_persister_new(); free
 * with tb_persister_free().
 */
typedef struct tb_persister tb_persister;

/**
 * A TinyBase Store (plain or mergeable). Opaque; use through tb_store_* functions.
 */
typedef struct tb_store tb_store;

/**
 * A synchronizer: TinyBase's sync protocol between one mergeable store and its peers, with
 * its own worker thread. Opaque; create with tb_synchronizer_new_custom(),
 * tb_synchronizer_new_custom_framed() or tb_local_bus_create_synchronizer(); free with
 * tb_synchronizer_free().
 */
typedef struct tb_synchronizer tb_synchronizer;

/**
 * A multiplexed WebSocket connection (subprotocol "tinybase") that any number of
 * synchronizers share, one per channel: several stores over one socket. Opaque;
 * tb_ws_client_new(), freed with tb_ws_client_free().
 */
typedef struct tb_ws_client tb_ws_client;

/**
 * A mergeable store's clock: milliseconds since the Unix epoch (as JavaScript's Date.now()).
 * Called with the store's lock held, on any thread that writes or merges the store, never
 * concurrently for one store. Must not call into this library.
 */
typedef double (*tb_now_fn)(void *user_data);

/**
 * Frees host data a callback was registered with. Called exactly once (see the callback
 * contract at the top of this header). May be NULL.
 */
typedef void (*tb_release_fn)(void *user_data);

/**
 * The kind of a listener (a uint32_t; one of the TB_LISTENER_* constants), after TinyBase's
 * add…Listener methods.
 */
typedef uint32_t tb_listener_kind;

/**
 * The type of a tb_value (a uint32_t; one of the TB_VALUE_* constants).
 */
typedef uint32_t tb_value_kind;

/**
 * A cell or value. `kind` says which field holds it.
 *
 * Input (setters): the library reads `kind` and the matching field; `string` is
 * NUL-terminated UTF-8 borrowed for the call; `length` and `owned` are ignored. Build one
 * with tb_value_null(), tb_value_boolean(), tb_value_number(), tb_value_string(),
 * tb_value_json().
 *
 * Output (tb_store_get_cell, tb_store_get_value): for TB_VALUE_STRING and TB_VALUE_JSON,
 * `string` is NUL-terminated and `length` is its size in bytes without the NUL (a string
 * cell may contain NUL bytes: use `length`); `owned` is true and the caller releases the
 * string with tb_value_free(). Values inside a tb_event are borrowed from the event
 * (`owned` is false).
 */
typedef struct tb_value {
    /**
     * One of the TB_VALUE_* constants.
     */
    tb_value_kind kind;
    /**
     * The value of a TB_VALUE_BOOLEAN.
     */
    bool boolean;
    /**
     * The value of a TB_VALUE_NUMBER.
     */
    double number;
    /**
     * The text of a TB_VALUE_STRING or TB_VALUE_JSON (NULL otherwise).
     */
    const char *string;
    /**
     * Output only: the byte length of `string`, without the terminating NUL.
     */
    size_t length;
    /**
     * Output only: whether `string` is owned by this tb_value (freed by tb_value_free).
     */
    bool owned;
} tb_value;

/**
 * What a listener is called with. Everything in it is borrowed for the duration of the
 * callback (or owned by the tb_event from a queue until tb_event_free()).
 */
typedef struct tb_event {
    /**
     * The kind of listener (a TB_LISTENER_* constant).
     */
    tb_listener_kind kind;
    /**
     * The id of the listener called (as returned when it was added).
     */
    uint64_t listener_id;
    /**
     * The table id, for table, row and cell kinds (NULL otherwise).
     */
    const char *table_id;
    /**
     * The row id, for row and cell kinds (NULL otherwise).
     */
    const char *row_id;
    /**
     * The cell id, for cell kinds and TB_LISTENER_HAS_TABLE_CELL (NULL otherwise).
     */
    const char *cell_id;
    /**
     * The value id, for TB_LISTENER_HAS_VALUE and TB_LISTENER_VALUE (NULL otherwise).
     */
    const char *value_id;
    /**
     * TB_LISTENER_CELL / TB_LISTENER_VALUE: the new cell or value (absent when deleted).
     */
    struct tb_value new_value;
    /**
     * TB_LISTENER_CELL / TB_LISTENER_VALUE: the old cell or value (absent when it was new).
     */
    struct tb_value old_value;
    /**
     * Has-listeners: whether the thing now exists.
     */
    bool has;
    /**
     * TB_LISTENER_ROW_COUNT: the table's new row count.
     */
    size_t row_count;
} tb_event;

/**
 * A listener callback. Called on the thread that committed the change (any thread writing the
 * store), possibly concurrently on several threads. Change and did-finish listeners run after
 * the transaction committed, with no lock of the library held; start and will-finish
 * transaction listeners run inside the transaction, with the store's lock held. `store` (a
 * borrowed view; for a mergeable store use tb_store_as_mergeable()) and `event` are valid for
 * the duration of the call only. May re-enter the API, including removing this very listener
 * (a removal from inside any callback does not wait: see tb_store_del_listener). A write
 * from listener calls nested TB_MAX_LISTENER_NESTING deep fails with TB_ERROR_INVALID_STATE.
 */
typedef void (*tb_listener_fn)(void *user_data, struct tb_store *store, const struct tb_event *event);

/**
 * Called when a tb_event_queue goes from empty to non-empty, on the thread that queued the
 * event (a thread that committed a change), with no lock of the library held (typically to
 * wake the host's event loop). Must not block for long; may call tb_event_queue_* functions.
 */
typedef void (*tb_notify_fn)(void *user_data);

/**
 * What the durable callback is told: the content now durable. Borrowed for the call only.
 */
typedef struct tb_durable_info {
    /**
     * The mergeable store's tables hash of the content made durable (for an incremental
     * write, the hash of that transaction's table changes); 0 for a plain store.
     */
    uint32_t tables_hash;
    /**
     * Likewise for the values.
     */
    uint32_t values_hash;
    /**
     * Saves completed so far (as tb_persister_get_stats()).
     */
    uint64_t saves;
} tb_durable_info;

/**
 * Called each time content becomes durable (synced to disk or committed): on the persister's
 * thread for auto-save and destroy, on the calling thread for tb_persister_save() and the
 * save tb_persister_start_auto_save() starts with. Never concurrently for one persister,
 * never with a lock of the library held; `info` is borrowed for the call only. It may call
 * the non-blocking tb_persister_* functions (get_status, get_stats, is_auto_*, describe) and
 * any store function; the other tb_persister_* functions of its own persister give
 * TB_ERROR_INVALID_STATE there, and freeing its own persister is deferred until it returned
 * (see tb_persister_free()).
 */
typedef void (*tb_persister_durable_fn)(void *user_data, const struct tb_durable_info *info);

/**
 * Called with an error that auto-load or auto-save met and could not return (TinyBase's
 * onIgnoredError): `status` is its code (TB_ERROR_IO, TB_ERROR_CORRUPT, ...), `message` its
 * text, borrowed for the call only. Same thread and re-entrancy rules as
 * tb_persister_durable_fn.
 */
typedef void (*tb_persister_error_fn)(void *user_data, enum tb_status status, const char *message);

/**
 * Options of a persister. Zero-initialize (`tb_persister_options o = {0};`) and set what you
 * need; passing NULL instead means all defaults. Read during the creating call only (the
 * struct and its strings are not kept).
 */
typedef struct tb_persister_options {
    /**
     * Called when content becomes durable (see tb_persister_durable_fn). May be NULL.
     */
    tb_persister_durable_fn on_durable;
    /**
     * Called for errors auto-load and auto-save met (see tb_persister_error_fn). May be NULL.
     */
    tb_persister_error_fn on_ignored_error;
    /**
     * Passed to the two callbacks above.
     */
    void *user_data;
    /**
     * If not NULL, called once with user_data when the persister is freed, after its thread
     * stopped (not called when the creating call fails).
     */
    tb_release_fn release;
    /**
     * How often auto-load checks the storage for other processes' writes, in seconds; 0 means
     * the default, 0.25. Finite, not negative.
     */
    double auto_load_interval_seconds;
    /**
     * How long a save waits for another process's write lock before failing with
     * TB_ERROR_IO, in seconds; 0 means the default, 10.
     */
    double lock_timeout_seconds;
    /**
     * SQLite JSON mode: the table's name; NULL means "tinybase". Ignored by other storages.
     */
    const char *sqlite_table_name;
    /**
     * SQLite JSON mode: the id column's name; NULL means "_id".
     */
    const char *sqlite_id_column_name;
    /**
     * SQLite JSON mode: the content column's name; NULL means "store".
     */
    const char *sqlite_store_column_name;
} tb_persister_options;

/**
 * How a SQLite persister lays the store out (a uint32_t; one of the TB_SQLITE_* constants).
 */
typedef uint32_t tb_sqlite_mode;

/**
 * A persister's status (a uint32_t; one of the TB_PERSISTER_* constants; TinyBase's
 * getStatus()).
 */
typedef uint32_t tb_persister_status;

/**
 * A transaction body: called once, synchronously, on the calling thread, with the store's
 * lock held (other threads wait). May call any tb_store_* function on `store` (borrowed for the
 * call). Return true to roll the transaction back, false to commit.
 */
typedef bool (*tb_transaction_fn)(void *user_data, struct tb_store *store);

/**
 * A custom transport's send: delivers `payload` (JSON text `[requestId, message, body]` in
 * TinyBase's wire encoding, `len` bytes, NUL-terminated) to the client `to_client_id`, or to
 * every other client when `to_client_id` is NULL. Called on the synchronizer's worker thread,
 * never concurrently for one synchronizer, with no store lock held. All arguments are borrowed
 * for the call only: copy what you keep. It should hand the payload over and return quickly.
 * It may call tb_synchronizer_receive() (of any synchronizer) and tb_store_* /
 * tb_mergeable_store_* functions; it must not destroy or free synchronizers (destroying its
 * own gives TB_ERROR_INVALID_STATE) and should not call the blocking synchronizer functions.
 */
typedef void (*tb_sync_send_fn)(void *user_data,
                                const char *to_client_id,
                                const char *payload,
                                size_t len);

/**
 * A protocol message type (a uint32_t; one of the TB_SYNC_MESSAGE_* constants), as TinyBase
 * numbers them on the wire.
 */
typedef uint32_t tb_sync_message;

/**
 * A message hook (on_send / on_receive): `client_id` is the client sent to (NULL: every other
 * client) or received from; `request_id` is the request or transaction id (NULL for null);
 * `message` a TB_SYNC_MESSAGE_* number; `body_json` the message body as JSON text (`body_len`
 * bytes, NUL-terminated). Called on the synchronizer's worker thread, never concurrently for
 * one synchronizer; arguments borrowed for the call only. Same re-entrancy rules as
 * tb_sync_send_fn.
 */
typedef void (*tb_sync_message_fn)(void *user_data,
                                   const char *client_id,
                                   const char *request_id,
                                   tb_sync_message message,
                                   const char *body_json,
                                   size_t body_len);

/**
 * The ignored-error hook: an error the protocol ignores, always starting with its TinyBase
 * code: "tinybase:14" an invalid message ("tinybase:14:response..." a response that does not
 * fit its request, "tinybase:14:..." changes refused for their content); "tinybase:13:..."
 * changes refused for their HLC; "tinybase:3:..." a request timed out or the synchronizer
 * was destroyed; "tinybase:15:requests" / "tinybase:15:inbox" an overflow; "tinybase:1:..."
 * initial content that could not be set. Called on the
 * synchronizer's worker thread, never concurrently for one synchronizer; `error` is borrowed
 * for the call only. Same re-entrancy rules as tb_sync_send_fn.
 */
typedef void (*tb_sync_error_fn)(void *user_data, const char *error);

/**
 * The coarse state a status callback reports (a uint32_t; one of the TB_SYNC_STATE_*
 * constants; beyond TinyBase).
 */
typedef uint32_t tb_sync_state;

/**
 * The state of a synchronizer's connection (a uint32_t; one of the TB_CONNECTION_*
 * constants; beyond TinyBase).
 */
typedef uint32_t tb_connection_state;

/**
 * What a status callback is told (beyond TinyBase, for UIs). Borrowed for the call only:
 * copy what you keep.
 */
typedef struct tb_sync_status_info {
    /**
     * A TB_SYNC_STATE_* value.
     */
    tb_sync_state state;
    /**
     * Requests waiting for a response.
     */
    size_t pending_requests;
    /**
     * Protocol messages sent so far.
     */
    uint64_t sends;
    /**
     * Valid messages received so far.
     */
    uint64_t receives;
    /**
     * The last ignored error while `state` is TB_SYNC_STATE_ERROR, else NULL.
     */
    const char *last_error;
    /**
     * A TB_CONNECTION_* value (TB_CONNECTION_NONE for synchronizers without a connection).
     */
    tb_connection_state connection;
    /**
     * The WebSocket close code when `connection` is TB_CONNECTION_CLOSED, else 0.
     */
    uint16_t close_code;
    /**
     * The close reason when `connection` is TB_CONNECTION_CLOSED (possibly ""), else NULL.
     */
    const char *close_reason;
} tb_sync_status_info;

/**
 * A status callback (beyond TinyBase): called when the sync state (idle, syncing, error)
 * changes, and for WebSocket synchronizers when the connection opens, closes or starts
 * reconnecting. Called on the synchronizer's worker thread, never concurrently for one
 * synchronizer; `status` and its strings are borrowed for the call only. Same re-entrancy
 * rules as tb_sync_send_fn.
 */
typedef void (*tb_sync_status_fn)(void *user_data, const struct tb_sync_status_info *status);

/**
 * Options of a synchronizer. Zero-initialize (`tb_synchronizer_options o = {0};`) and set what
 * you need; passing NULL instead of options means all defaults. The options are read during
 * the creating call only (the struct itself is not kept).
 */
typedef struct tb_synchronizer_options {
    /**
     * How long a request waits for its response, in seconds (TinyBase's
     * requestTimeoutSeconds). 0 means the default: 1 s for custom transports, 0.01 s on a
     * local bus (as TinyBase). Must be finite and not negative.
     */
    double request_timeout_seconds;
    /**
     * Beyond TinyBase, off with 0: while auto-saving, this often (seconds) re-announce the
     * content hashes and pull from a peer (a load), so that a lost or never-sent message is
     * repaired without a restart. Recommended whenever TinyBase peers take part.
     */
    double anti_entropy_seconds;
    /**
     * Called for every message sent (TinyBase's onSend). May be NULL.
     */
    tb_sync_message_fn on_send;
    /**
     * Called for every valid message received (TinyBase's onReceive). May be NULL.
     */
    tb_sync_message_fn on_receive;
    /**
     * Called for every ignored error (TinyBase's onIgnoredError). May be NULL.
     */
    tb_sync_error_fn on_ignored_error;
    /**
     * Passed to the three hooks above.
     */
    void *user_data;
    /**
     * If not NULL, called once with user_data when the synchronizer is freed, after its
     * worker has stopped (not called when the creating call fails).
     */
    tb_release_fn release;
    /**
     * Beyond TinyBase: at most this many received payloads wait for the worker; 0 means the
     * default, 10,000. Beyond it tb_synchronizer_receive() refuses payloads (see there).
     */
    size_t inbox_max_payloads;
    /**
     * Beyond TinyBase: at most this many bytes of received payloads wait for the worker; 0
     * means the default, 64 MiB. One payload is always taken when no other waits, whatever
     * its size.
     */
    size_t inbox_max_bytes;
    /**
     * Beyond TinyBase: called with user_data when the sync state or the connection changes
     * (see tb_sync_status_fn). May be NULL.
     */
    tb_sync_status_fn on_status;
} tb_synchronizer_options;

/**
 * A framed custom transport's send: delivers `frame`, TinyBase's WebSocket form
 * `toClientId\n[requestId, message, body]` (`len` bytes, NUL-terminated; an empty client id
 * means every other client). Same thread, concurrency, borrowing and re-entrancy rules as
 * tb_sync_send_fn.
 */
typedef void (*tb_sync_send_frame_fn)(void *user_data, const char *frame, size_t len);

/**
 * A synchronizer's status (a uint32_t; TinyBase's getStatus()).
 */
typedef uint32_t tb_sync_status;

/**
 * Options of a WebSocket synchronizer. Zero-initialize
 * (`tb_ws_synchronizer_options o = {0};`) and set what you need: zero means the default for
 * every field; passing NULL instead of options means all defaults. Read during the creating
 * call only (the struct and its strings are not kept).
 */
typedef struct tb_ws_synchronizer_options {
    /**
     * The synchronizer's options (request timeout, default 1 s; anti-entropy; on_send,
     * on_receive, on_ignored_error and on_status with their user_data and release; inbox
     * limits). on_status is also called when the connection opens, closes or starts
     * reconnecting.
     */
    struct tb_synchronizer_options sync;
    /**
     * NULL: TinyBase's legacy framing (one store per socket; the room is the URL's path).
     * Otherwise the multiplexed protocol (subprotocol "tinybase") on this channel.
     */
    const char *channel_id;
    /**
     * Outgoing payloads are cut into fragments of at most this many bytes; 0: never.
     * Incoming fragments are always reassembled.
     */
    size_t fragment_size;
    /**
     * false (the default): a lost connection is re-opened with backoff and jitter, and the
     * store pulls again after each re-open. true: the creating call waits for the socket to
     * open and fails when it cannot; a later loss leaves the synchronizer closed.
     */
    bool no_reconnect;
    /**
     * The first reconnect delay in seconds (doubled after each failure, with jitter); 0 is
     * the default.
     */
    double reconnect_min_seconds;
    /**
     * The longest reconnect delay in seconds; 0 is the default.
     */
    double reconnect_max_seconds;
    /**
     * How often a silent server is pinged, in seconds (a dead one is noticed and the socket
     * re-opened); 0 is the default.
     */
    double ping_interval_seconds;
    /**
     * How long one connection attempt may take, in seconds; 0 is the default.
     */
    double connect_timeout_seconds;
    /**
     * NULL, or a PEM file of CA certificates trusted for wss:// in addition to the built-in
     * roots (private CAs).
     */
    const char *ca_file;
    /**
     * `header_count` extra headers for the upgrade request, each "Name: value" (for example
     * "Authorization: Bearer ..."). May be NULL when header_count is 0.
     */
    const char *const *headers;
    /**
     * The number of strings in `headers`.
     */
    size_t header_count;
} tb_ws_synchronizer_options;

/**
 * addHasTablesListener: whether the store has any tables. No ids.
 */
#define TB_LISTENER_HAS_TABLES 0

/**
 * addTablesListener: any change to any table. No ids.
 */
#define TB_LISTENER_TABLES 1

/**
 * addTableIdsListener. No ids.
 */
#define TB_LISTENER_TABLE_IDS 2

/**
 * addHasTableListener. Ids: table.
 */
#define TB_LISTENER_HAS_TABLE 3

/**
 * addTableListener. Ids: table.
 */
#define TB_LISTENER_TABLE 4

/**
 * addTableCellIdsListener. Ids: table.
 */
#define TB_LISTENER_TABLE_CELL_IDS 5

/**
 * addHasTableCellListener. Ids: table, cell.
 */
#define TB_LISTENER_HAS_TABLE_CELL 6

/**
 * addRowCountListener (the event's row_count is the new count). Ids: table.
 */
#define TB_LISTENER_ROW_COUNT 7

/**
 * addRowIdsListener. Ids: table.
 */
#define TB_LISTENER_ROW_IDS 8

/**
 * addHasRowListener. Ids: table, row.
 */
#define TB_LISTENER_HAS_ROW 9

/**
 * addRowListener. Ids: table, row.
 */
#define TB_LISTENER_ROW 10

/**
 * addCellIdsListener. Ids: table, row.
 */
#define TB_LISTENER_CELL_IDS 11

/**
 * addHasCellListener. Ids: table, row, cell.
 */
#define TB_LISTENER_HAS_CELL 12

/**
 * addCellListener (the event carries new_value and old_value). Ids: table, row, cell.
 */
#define TB_LISTENER_CELL 13

/**
 * addHasValuesListener. No ids.
 */
#define TB_LISTENER_HAS_VALUES 14

/**
 * addValuesListener. No ids.
 */
#define TB_LISTENER_VALUES 15

/**
 * addValueIdsListener. No ids.
 */
#define TB_LISTENER_VALUE_IDS 16

/**
 * addHasValueListener. Ids: value.
 */
#define TB_LISTENER_HAS_VALUE 17

/**
 * addValueListener (the event carries new_value and old_value). Ids: value.
 */
#define TB_LISTENER_VALUE 18

/**
 * addStartTransactionListener (called inside the transaction, store locked). No ids.
 */
#define TB_LISTENER_START_TRANSACTION 19

/**
 * addWillFinishTransactionListener (called inside the transaction, store locked). No ids.
 */
#define TB_LISTENER_WILL_FINISH_TRANSACTION 20

/**
 * addDidFinishTransactionListener (tb_store_get_transaction_changes_json works inside it).
 * No ids.
 */
#define TB_LISTENER_DID_FINISH_TRANSACTION 21

/**
 * Neither loading nor saving.
 */
#define TB_PERSISTER_IDLE 0

/**
 * Loading.
 */
#define TB_PERSISTER_LOADING 1

/**
 * Saving.
 */
#define TB_PERSISTER_SAVING 2

/**
 * TinyBase's layout: the whole content as JSON in one row (table "tinybase", columns "_id"
 * and "store", row "_"; the names are options), readable and writable by TinyBase's own
 * SQLite persisters.
 */
#define TB_SQLITE_JSON 0

/**
 * Beyond TinyBase: one row per cell and per value with its HLC and hash, each committed
 * transaction written as one SQLite transaction (WAL). Needs a mergeable store.
 */
#define TB_SQLITE_INCREMENTAL 1

/**
 * The answer to a request (same request id).
 */
#define TB_SYNC_MESSAGE_RESPONSE 0

/**
 * Asks for content hashes (body `""`).
 */
#define TB_SYNC_MESSAGE_GET_CONTENT_HASHES 1

/**
 * Announces content hashes `[tablesHash, valuesHash]`.
 */
#define TB_SYNC_MESSAGE_CONTENT_HASHES 2

/**
 * Mergeable changes `[tables, values, 1]` (sent after each local transaction).
 */
#define TB_SYNC_MESSAGE_CONTENT_DIFF 3

/**
 * Asks for a table diff (body: the sender's table hashes).
 */
#define TB_SYNC_MESSAGE_GET_TABLE_DIFF 4

/**
 * Asks for a row diff (body: the sender's row hashes).
 */
#define TB_SYNC_MESSAGE_GET_ROW_DIFF 5

/**
 * Asks for a cell diff (body: the sender's cell hashes).
 */
#define TB_SYNC_MESSAGE_GET_CELL_DIFF 6

/**
 * Asks for a value diff (body: the sender's value hashes).
 */
#define TB_SYNC_MESSAGE_GET_VALUE_DIFF 7

/**
 * Neither loading nor saving.
 */
#define TB_SYNC_STATUS_IDLE 0

/**
 * Pulling or applying other peers' changes.
 */
#define TB_SYNC_STATUS_LOADING 1

/**
 * Announcing or sending local changes.
 */
#define TB_SYNC_STATUS_SAVING 2

/**
 * Nothing in flight.
 */
#define TB_SYNC_STATE_IDLE 0

/**
 * Requests in flight, or changes being loaded.
 */
#define TB_SYNC_STATE_SYNCING 1

/**
 * The last pull or request failed (timeout, invalid message...); cleared by the next valid
 * message from a peer.
 */
#define TB_SYNC_STATE_ERROR 2

/**
 * The synchronizer has no connection of its own (custom transports, local buses).
 */
#define TB_CONNECTION_NONE 0

/**
 * Opening, or re-opening after a loss, the connection.
 */
#define TB_CONNECTION_CONNECTING 1

/**
 * Open: messages flow.
 */
#define TB_CONNECTION_OPEN 2

/**
 * Closed, with a WebSocket close code and reason (1006 when the connection was lost or never
 * opened). A reconnecting synchronizer goes back to TB_CONNECTION_CONNECTING after a backoff.
 */
#define TB_CONNECTION_CLOSED 3

/**
 * No cell or value there (what a getter returns for a missing one). Not accepted by setters.
 */
#define TB_VALUE_ABSENT 0

/**
 * JSON null (a real value, different from absent).
 */
#define TB_VALUE_NULL 1

/**
 * A boolean, in `boolean`.
 */
#define TB_VALUE_BOOLEAN 2

/**
 * A finite number, in `number`.
 */
#define TB_VALUE_NUMBER 3

/**
 * A string, in `string` (NUL-terminated UTF-8; `length` bytes when returned).
 */
#define TB_VALUE_STRING 4

/**
 * An object or array, as JSON text in `string` (as JavaScript's JSON.stringify writes it).
 */
#define TB_VALUE_JSON 5

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

/**
 * The number of objects currently owned by the host that need a free: store and mergeable
 * store references, queues, events, strings and values returned by the library,
 * synchronizers, local buses, WebSocket clients and persisters, plus registered listeners
 * whose user_data has not been released yet. A debugging aid: a program that frees
 * everything and removes every listener gets back the value it started with.
 */
int64_t tb_debug_live_handles(void);

/**
 * The library's version, "MAJOR.MINOR.PATCH" (equal to TB_VERSION_STRING of the header the
 * library was built with). A static string: never free it.
 */
const char *tb_version(void);

/**
 * The message of the last failed call on this thread ("" if none failed yet). Borrowed:
 * valid until the next failing call on this thread; never free it.
 */
const char *tb_last_error_message(void);

/**
 * The status of the last failed call on this thread (TB_OK if none failed yet).
 */
enum tb_status tb_last_error_status(void);

/**
 * Copies the message of the last failed call on this thread into `buf` (at most `len` bytes
 * including the terminating NUL, cut at a UTF-8 character boundary; nothing is written when
 * `buf` is NULL or `len` is 0). Returns the full message length in bytes (without the NUL),
 * as snprintf does: a return value >= len means the copy was truncated.
 */
size_t tb_last_error_message_copy(char *buf, size_t len);

/**
 * Forgets the last error of this thread (tb_last_error_status() is TB_OK afterwards).
 */
void tb_last_error_clear(void);

/**
 * Creates an empty plain Store (no CRDT metadata). Free with tb_store_free().
 */
enum tb_status tb_store_new(struct tb_store **out);

/**
 * Another owned reference to the same store (shared; the store lives until every reference is
 * freed). Works on tb_store views of mergeable stores too. TB_ERROR_INVALID_STATE when the
 * last reference was already freed (seen only by a callback still running after it).
 */
enum tb_status tb_store_clone(struct tb_store *store, struct tb_store **out);

/**
 * Releases one reference from tb_store_new() or tb_store_clone(). NULL is fine. Never free a
 * borrowed view, nor a reference that a call in progress on another thread uses. From inside
 * a callback of a write, transaction, merge or tb_store_call_listener() made with it on this
 * thread it may be freed: that call keeps the store until it returns (but do not use the
 * reference after the free). Freeing the last reference removes the listeners added
 * through it and releases their user_data; it first BLOCKS until listener callbacks running on
 * other threads (e.g. on a synchronizer's worker) have returned, so once it returns none runs
 * again. Called from inside one of those callbacks (or a tb_store_transaction() body) it does
 * not wait: the listeners are removed (and their release called) when the last callback in
 * flight returns. The store's content lives on while a synchronizer uses it.
 */
void tb_store_free(struct tb_store *store);

/**
 * The mergeable store behind a tb_store, borrowed: valid as long as `store` is; never free
 * it. TB_ERROR_INVALID_STATE when the store is a plain one.
 */
enum tb_status tb_store_as_mergeable(struct tb_store *store, struct tb_mergeable_store **out);

/**
 * Creates an empty MergeableStore. `unique_id` fixes the HLC client id (give every replica
 * its own); NULL picks a random one. Time comes from the system clock. Free with
 * tb_mergeable_store_free().
 */
enum tb_status tb_mergeable_store_new(const char *unique_id, struct tb_mergeable_store **out);

/**
 * Creates an empty MergeableStore whose clock is `now(user_data)` (TinyBase's getNow).
 * `unique_id` may be NULL (random). `release(user_data)`, if given, is called once when the
 * store itself is destroyed: its last reference freed and every synchronizer of it freed (a
 * synchronizer keeps the store, and its clock, until then). On failure nothing is taken over.
 */
enum tb_status tb_mergeable_store_new_with_clock(const char *unique_id,
                                                 tb_now_fn now,
                                                 void *user_data,
                                                 tb_release_fn release,
                                                 struct tb_mergeable_store **out);

/**
 * Another owned reference to the same mergeable store (TB_ERROR_INVALID_STATE as
 * tb_store_clone()).
 */
enum tb_status tb_mergeable_store_clone(struct tb_mergeable_store *store,
                                        struct tb_mergeable_store **out);

/**
 * Releases one reference from tb_mergeable_store_new*() or tb_mergeable_store_clone(). NULL
 * is fine. The last one BLOCKS as tb_store_free() says (same rules).
 */
void tb_mergeable_store_free(struct tb_mergeable_store *store);

/**
 * The tb_store view of a mergeable store, borrowed: valid as long as `store` is; never free
 * it (use tb_store_clone() for an owned reference). Every tb_store_* function works on it.
 * NULL for NULL.
 */
struct tb_store *tb_mergeable_store_as_store(struct tb_mergeable_store *store);

/**
 * Adds a listener of any kind. `id1`..`id3` are the ids the kind takes, in TinyBase's order
 * (table, row, cell; or table, cell for TB_LISTENER_HAS_TABLE_CELL; or value), NULL meaning
 * any (a wildcard); ids the kind does not take are ignored. On success `*out_id` is the
 * listener id (for tb_store_del_listener and tb_store_call_listener) and the library owns
 * user_data until the listener is removed (then release is called once). On failure release
 * is not called.
 */
enum tb_status tb_store_add_listener(struct tb_store *store,
                                     tb_listener_kind kind,
                                     const char *id1,
                                     const char *id2,
                                     const char *id3,
                                     tb_listener_fn callback,
                                     void *user_data,
                                     tb_release_fn release,
                                     uint64_t *out_id);

/**
 * addHasTablesListener (see tb_store_add_listener).
 */
enum tb_status tb_store_add_has_tables_listener(struct tb_store *store,
                                                tb_listener_fn callback,
                                                void *user_data,
                                                tb_release_fn release,
                                                uint64_t *out_id);

/**
 * addTablesListener (see tb_store_add_listener).
 */
enum tb_status tb_store_add_tables_listener(struct tb_store *store,
                                            tb_listener_fn callback,
                                            void *user_data,
                                            tb_release_fn release,
                                            uint64_t *out_id);

/**
 * addTableIdsListener (see tb_store_add_listener).
 */
enum tb_status tb_store_add_table_ids_listener(struct tb_store *store,
                                               tb_listener_fn callback,
                                               void *user_data,
                                               tb_release_fn release,
                                               uint64_t *out_id);

/**
 * addHasTableListener; NULL table_id: any table (see tb_store_add_listener).
 */
enum tb_status tb_store_add_has_table_listener(struct tb_store *store,
                                               const char *table_id,
                                               tb_listener_fn callback,
                                               void *user_data,
                                               tb_release_fn release,
                                               uint64_t *out_id);

/**
 * addTableListener; NULL table_id: any table (see tb_store_add_listener).
 */
enum tb_status tb_store_add_table_listener(struct tb_store *store,
                                           const char *table_id,
                                           tb_listener_fn callback,
                                           void *user_data,
                                           tb_release_fn release,
                                           uint64_t *out_id);

/**
 * addTableCellIdsListener; NULL table_id: any table (see tb_store_add_listener).
 */
enum tb_status tb_store_add_table_cell_ids_listener(struct tb_store *store,
                                                    const char *table_id,
                                                    tb_listener_fn callback,
                                                    void *user_data,
                                                    tb_release_fn release,
                                                    uint64_t *out_id);

/**
 * addHasTableCellListener; NULL ids are wildcards (see tb_store_add_listener).
 */
enum tb_status tb_store_add_has_table_cell_listener(struct tb_store *store,
                                                    const char *table_id,
                                                    const char *cell_id,
                                                    tb_listener_fn callback,
                                                    void *user_data,
                                                    tb_release_fn release,
                                                    uint64_t *out_id);

/**
 * addRowCountListener; NULL table_id: any table (see tb_store_add_listener).
 */
enum tb_status tb_store_add_row_count_listener(struct tb_store *store,
                                               const char *table_id,
                                               tb_listener_fn callback,
                                               void *user_data,
                                               tb_release_fn release,
                                               uint64_t *out_id);

/**
 * addRowIdsListener; NULL table_id: any table (see tb_store_add_listener).
 */
enum tb_status tb_store_add_row_ids_listener(struct tb_store *store,
                                             const char *table_id,
                                             tb_listener_fn callback,
                                             void *user_data,
                                             tb_release_fn release,
                                             uint64_t *out_id);

/**
 * addHasRowListener; NULL ids are wildcards (see tb_store_add_listener).
 */
enum tb_status tb_store_add_has_row_listener(struct tb_store *store,
                                             const char *table_id,
                                             const char *row_id,
                                             tb_listener_fn callback,
                                             void *user_data,
                                             tb_release_fn release,
                                             uint64_t *out_id);

/**
 * addRowListener; NULL ids are wildcards (see tb_store_add_listener).
 */
enum tb_status tb_store_add_row_listener(struct tb_store *store,
                                         const char *table_id,
                                         const char *row_id,
                                         tb_listener_fn callback,
                                         void *user_data,
                                         tb_release_fn release,
                                         uint64_t *out_id);

/**
 * addCellIdsListener; NULL ids are wildcards (see tb_store_add_listener).
 */
enum tb_status tb_store_add_cell_ids_listener(struct tb_store *store,
                                              const char *table_id,
                                              const char *row_id,
                                              tb_listener_fn callback,
                                              void *user_data,
                                              tb_release_fn release,
                                              uint64_t *out_id);

/**
 * addHasCellListener; NULL ids are wildcards (see tb_store_add_listener).
 */
enum tb_status tb_store_add_has_cell_listener(struct tb_store *store,
                                              const char *table_id,
                                              const char *row_id,
                                              const char *cell_id,
                                              tb_listener_fn callback,
                                              void *user_data,
                                              tb_release_fn release,
                                              uint64_t *out_id);

/**
 * addCellListener; NULL ids are wildcards (see tb_store_add_listener).
 */
enum tb_status tb_store_add_cell_listener(struct tb_store *store,
                                          const char *table_id,
                                          const char *row_id,
                                          const char *cell_id,
                                          tb_listener_fn callback,
                                          void *user_data,
                                          tb_release_fn release,
                                          uint64_t *out_id);

/**
 * addHasValuesListener (see tb_store_add_listener).
 */
enum tb_status tb_store_add_has_values_listener(struct tb_store *store,
                                                tb_listener_fn callback,
                                                void *user_data,
                                                tb_release_fn release,
                                                uint64_t *out_id);

/**
 * addValuesListener (see tb_store_add_listener).
 */
enum tb_status tb_store_add_values_listener(struct tb_store *store,
                                            tb_listener_fn callback,
                                            void *user_data,
                                            tb_release_fn release,
                                            uint64_t *out_id);

/**
 * addValueIdsListener (see tb_store_add_listener).
 */
enum tb_status tb_store_add_value_ids_listener(struct tb_store *store,
                                               tb_listener_fn callback,
                                               void *user_data,
                                               tb_release_fn release,
                                               uint64_t *out_id);

/**
 * addHasValueListener; NULL value_id: any value (see tb_store_add_listener).
 */
enum tb_status tb_store_add_has_value_listener(struct tb_store *store,
                                               const char *value_id,
                                               tb_listener_fn callback,
                                               void *user_data,
                                               tb_release_fn release,
                                               uint64_t *out_id);

/**
 * addValueListener; NULL value_id: any value (see tb_store_add_listener).
 */
enum tb_status tb_store_add_value_listener(struct tb_store *store,
                                           const char *value_id,
                                           tb_listener_fn callback,
                                           void *user_data,
                                           tb_release_fn release,
                                           uint64_t *out_id);

/**
 * addStartTransactionListener (see tb_store_add_listener).
 */
enum tb_status tb_store_add_start_transaction_listener(struct tb_store *store,
                                                       tb_listener_fn callback,
                                                       void *user_data,
                                                       tb_release_fn release,
                                                       uint64_t *out_id);

/**
 * addWillFinishTransactionListener (see tb_store_add_listener).
 */
enum tb_status tb_store_add_will_finish_transaction_listener(struct tb_store *store,
                                                             tb_listener_fn callback,
                                                             void *user_data,
                                                             tb_release_fn release,
                                                             uint64_t *out_id);

/**
 * addDidFinishTransactionListener (see tb_store_add_listener).
 */
enum tb_status tb_store_add_did_finish_transaction_listener(struct tb_store *store,
                                                            tb_listener_fn callback,
                                                            void *user_data,
                                                            tb_release_fn release,
                                                            uint64_t *out_id);

/**
 * delListener. Synchronous: when it returns the listener is never called again, its calls in
 * flight on other threads have returned and its user_data has been released. Except when
 * called from inside a listener callback (any listener's) or inside a transaction on this
 * thread, where waiting could deadlock (the call in flight may be waiting for this thread):
 * then it returns at once; the listener is never called again after its calls in flight, and
 * release happens as the last of them returns. For a buffered listener, its events still in
 * the queue are discarded. BLOCKS (outside those cases) until calls of this listener in flight
 * on other threads return. Unknown ids (and ids already removed) are ignored: TB_OK. Ids are
 * never reused, so a stale id never removes another listener.
 */
enum tb_status tb_store_del_listener(struct tb_store *store, uint64_t listener_id);

/**
 * callListener: calls a listener now, once for everything its ids match (wildcards
 * expanded), on the calling thread. Unknown ids are ignored.
 */
enum tb_status tb_store_call_listener(struct tb_store *store, uint64_t listener_id);

/**
 * The number of listeners registered on the store (by any handle, buffered ones included).
 */
enum tb_status tb_store_get_listener_count(struct tb_store *store, size_t *out);

/**
 * Creates an event queue. `notify(user_data)`, if not NULL, is called whenever the queue goes
 * from empty to non-empty (see tb_notify_fn); `release(user_data)` is called once when the
 * queue is destroyed (after tb_event_queue_free() and the removal of its last buffered
 * listener). Free with tb_event_queue_free(). On failure nothing is taken over.
 */
enum tb_status tb_event_queue_new(tb_notify_fn notify,
                                  void *user_data,
                                  tb_release_fn release,
                                  struct tb_event_queue **out);

/**
 * Closes the queue (events still queued are discarded; buffered listeners still attached stop
 * queueing) and releases the host's reference. NULL is fine. Threads waiting in
 * tb_event_queue_wait() on it are woken and return with NULL (they keep the queue's memory
 * until they return); no other call on the queue may start once this one has. Remove the
 * buffered listeners too: they keep the queue's memory until removed.
 */
void tb_event_queue_free(struct tb_event_queue *queue);

/**
 * Adds a buffered listener: instead of calling back, each call queues an owned tb_event
 * (with this listener's id) into `queue`, to be drained with tb_event_queue_poll() or
 * tb_event_queue_wait() on any thread. Kinds and ids as in tb_store_add_listener(). The
 * listener holds a reference to the queue until it is removed (tb_store_del_listener, which
 * also discards its queued events).
 */
enum tb_status tb_store_add_buffered_listener(struct tb_store *store,
                                              struct tb_event_queue *queue,
                                              tb_listener_kind kind,
                                              const char *id1,
                                              const char *id2,
                                              const char *id3,
                                              uint64_t *out_id);

/**
 * Takes the oldest queued event without waiting: `*out` is the event (owned: free it with
 * tb_event_free()) or NULL when the queue is empty.
 */
enum tb_status tb_event_queue_poll(struct tb_event_queue *queue, struct tb_event **out);

/**
 * Takes the oldest queued event, waiting up to `timeout_ms` milliseconds for one: `*out` is
 * the event (owned: tb_event_free()) or NULL on timeout or when the queue is closed.
 * BLOCKS up to timeout_ms.
 */
enum tb_status tb_event_queue_wait(struct tb_event_queue *queue,
                                   uint32_t timeout_ms,
                                   struct tb_event **out);

/**
 * The number of events waiting in the queue.
 */
enum tb_status tb_event_queue_len(struct tb_event_queue *queue, size_t *out);

/**
 * Frees an event from tb_event_queue_poll() or tb_event_queue_wait(). NULL is fine. Never
 * pass the borrowed event a callback receives.
 */
void tb_event_free(struct tb_event *event);

/**
 * getMergeableContent as JSON `[tablesStamp, valuesStamp]` with hashes, object and array
 * cells decoded. `*out`: tb_string_free().
 */
enum tb_status tb_mergeable_store_get_mergeable_content_json(struct tb_mergeable_store *store,
                                                             char **out);

/**
 * getMergeableContent in wire form (object and array cells as U+FFFD-prefixed strings): what
 * a synchronizer sends and a persisted file holds; tb_mergeable_store_set_mergeable_content_json
 * and tb_mergeable_store_apply_mergeable_changes_json take it. `*out`: tb_string_free().
 */
enum tb_status tb_mergeable_store_get_encoded_mergeable_content_json(struct tb_mergeable_store *store,
                                                                     char **out);

/**
 * getMergeableContentHashes: the tables hash and the values hash.
 */
enum tb_status tb_mergeable_store_get_mergeable_content_hashes(struct tb_mergeable_store *store,
                                                               uint32_t *out_tables_hash,
                                                               uint32_t *out_values_hash);

/**
 * getMergeableContentHashes as JSON `[tablesHash, valuesHash]`. `*out`: tb_string_free().
 */
enum tb_status tb_mergeable_store_get_mergeable_content_hashes_json(struct tb_mergeable_store *store,
                                                                    char **out);

/**
 * getTransactionMergeableChanges as JSON (decoded form), with or without hashes, for the
 * transaction open on this thread or whose did-finish listeners are running. `*out`:
 * tb_string_free().
 */
enum tb_status tb_mergeable_store_get_transaction_mergeable_changes_json(struct tb_mergeable_store *store,
                                                                         bool with_hashes,
                                                                         char **out);

/**
 * getTransactionMergeableChanges in wire form (without hashes: the body of a ContentDiff
 * sync message; apply it elsewhere with tb_mergeable_store_apply_mergeable_changes_json).
 * `*out`: tb_string_free().
 */
enum tb_status tb_mergeable_store_get_encoded_transaction_mergeable_changes_json(struct tb_mergeable_store *store,
                                                                                 bool with_hashes,
                                                                                 char **out);

/**
 * applyMergeableChanges with wire-form JSON (mergeable changes `[tables, values, 1]` or
 * mergeable content). All or nothing: any invalid part (including an HLC more than five
 * minutes ahead) refuses the whole input.
 */
enum tb_status tb_mergeable_store_apply_mergeable_changes_json(struct tb_mergeable_store *store,
                                                               const char *json);

/**
 * applyMergeableChanges with decoded-form JSON (object and array cells as plain JSON).
 */
enum tb_status tb_mergeable_store_apply_decoded_mergeable_changes_json(struct tb_mergeable_store *store,
                                                                       const char *json);

/**
 * setMergeableContent with wire-form content (as from
 * tb_mergeable_store_get_encoded_mergeable_content_json).
 */
enum tb_status tb_mergeable_store_set_mergeable_content_json(struct tb_mergeable_store *store,
                                                             const char *json);

/**
 * setMergeableContent with decoded-form content (as from
 * tb_mergeable_store_get_mergeable_content_json).
 */
enum tb_status tb_mergeable_store_set_decoded_mergeable_content_json(struct tb_mergeable_store *store,
                                                                     const char *json);

/**
 * setDefaultContent with `[tables, values]` JSON: sets them with empty HLCs, only where no
 * stamp exists yet.
 */
enum tb_status tb_mergeable_store_set_default_content_json(struct tb_mergeable_store *store,
                                                           const char *json);

/**
 * merge: both stores apply each other's full content. BLOCKS while another thread is in a
 * transaction on either store. Merging a store with itself is allowed (no change).
 */
enum tb_status tb_mergeable_store_merge(struct tb_mergeable_store *store,
                                        struct tb_mergeable_store *other);

/**
 * getMergeableTableHashes as JSON `{tableId: hash}`. `*out`: tb_string_free().
 */
enum tb_status tb_mergeable_store_get_mergeable_table_hashes_json(struct tb_mergeable_store *store,
                                                                  char **out);

/**
 * getMergeableTableDiff(otherTableHashes): `[newTables, differingTableHashes]`. `*out`:
 * tb_string_free().
 */
enum tb_status tb_mergeable_store_get_mergeable_table_diff_json(struct tb_mergeable_store *store,
                                                                const char *other_hashes_json,
                                                                char **out);

/**
 * getMergeableRowHashes(otherTableHashes): `{tableId: {rowId: hash}}`. `*out`:
 * tb_string_free().
 */
enum tb_status tb_mergeable_store_get_mergeable_row_hashes_json(struct tb_mergeable_store *store,
                                                                const char *other_hashes_json,
                                                                char **out);

/**
 * getMergeableRowDiff(otherRowHashes): `[newRows, differingRowHashes]`. `*out`:
 * tb_string_free().
 */
enum tb_status tb_mergeable_store_get_mergeable_row_diff_json(struct tb_mergeable_store *store,
                                                              const char *other_hashes_json,
                                                              char **out);

/**
 * getMergeableCellHashes(otherRowHashes): `{tableId: {rowId: {cellId: hash}}}`. `*out`:
 * tb_string_free().
 */
enum tb_status tb_mergeable_store_get_mergeable_cell_hashes_json(struct tb_mergeable_store *store,
                                                                 const char *other_hashes_json,
                                                                 char **out);

/**
 * getMergeableCellDiff(otherCellHashes): a TablesStamp of the differing cells. `*out`:
 * tb_string_free().
 */
enum tb_status tb_mergeable_store_get_mergeable_cell_diff_json(struct tb_mergeable_store *store,
                                                               const char *other_hashes_json,
                                                               char **out);

/**
 * getMergeableValueHashes as JSON `{valueId: hash}`. `*out`: tb_string_free().
 */
enum tb_status tb_mergeable_store_get_mergeable_value_hashes_json(struct tb_mergeable_store *store,
                                                                  char **out);

/**
 * getMergeableValueDiff(otherValueHashes): a ValuesStamp of the differing values. `*out`:
 * tb_string_free().
 */
enum tb_status tb_mergeable_store_get_mergeable_value_diff_json(struct tb_mergeable_store *store,
                                                                const char *other_hashes_json,
                                                                char **out);

/**
 * Recomputes every hash from scratch (a consistency check): equal to
 * tb_mergeable_store_get_mergeable_content_hashes() for content that grew normally.
 */
enum tb_status tb_mergeable_store_compute_content_hashes(struct tb_mergeable_store *store,
                                                         uint32_t *out_tables_hash,
                                                         uint32_t *out_values_hash);

/**
 * createFilePersister: a persister of `store` (plain or mergeable: pass
 * tb_mergeable_store_as_store()) to the file at `path`, in TinyBase's format (a mergeable
 * store's wire-form content with hashes, or a plain store's `[tables, values]`), written
 * atomically and durably (temporary file, fsync, rename, fsync of the folder) under a lock
 * file that keeps two processes from writing at once. Nothing is read or written until a
 * command is called. `options` may be NULL. The persister keeps the store alive until it is
 * freed. On success the library owns the options' user_data until tb_persister_free(); on
 * failure release is not called.
 */
enum tb_status tb_file_persister_new(struct tb_store *store,
                                     const char *path,
                                     const struct tb_persister_options *options,
                                     struct tb_persister **out);

/**
 * createSqlitePersister: a persister of `store` to the SQLite database at `path` (created if
 * missing), in `mode` (TB_SQLITE_JSON: TinyBase's layout, with the table and column names of
 * the options; TB_SQLITE_INCREMENTAL: a row per cell and value, mergeable stores only, else
 * TB_ERROR_INVALID_STATE). TB_ERROR_INVALID_ARGUMENT for another mode, TB_ERROR_IO when the
 * database cannot be opened. BLOCKS while it opens the database. Ownership as
 * tb_file_persister_new().
 */
enum tb_status tb_sqlite_persister_new(struct tb_store *store,
                                       const char *path,
                                       tb_sqlite_mode mode,
                                       const struct tb_persister_options *options,
                                       struct tb_persister **out);

/**
 * A persister of `store` to the room `room` of the PostgreSQL database at `dsn` (a libpq
 * connection string or postgres:// URL), in the incremental layout with rooms as keys, so
 * several processes can share one database. Mergeable stores only (else
 * TB_ERROR_INVALID_STATE). TB_ERROR_IO when the database cannot be reached;
 * TB_ERROR_INVALID_STATE "built without PostgreSQL" when the library was built without it.
 * BLOCKS while it connects. Ownership as tb_file_persister_new().
 */
enum tb_status tb_postgres_persister_new(struct tb_store *store,
                                         const char *dsn,
                                         const char *room,
                                         const struct tb_persister_options *options,
                                         struct tb_persister **out);

/**
 * load: merges what is stored into the store (a mergeable store merges stamps; a plain store
 * takes the stored cells and values over its own, keeping those only it has). `*out_loaded`
 * (out_loaded may be NULL) is false when nothing is stored yet: the store is left as it is.
 * TB_ERROR_CORRUPT when the stored data cannot be loaded: nothing is loaded, the data is
 * kept, and saves are refused (TB_ERROR_INVALID_STATE) until a load succeeds or
 * tb_persister_move_aside_unreadable() is called. TB_ERROR_IO when reading failed. BLOCKS
 * while it reads.
 */
enum tb_status tb_persister_load(struct tb_persister *p, bool *out_loaded);

/**
 * save: writes the whole content (under the storage's cross-process lock, merging in first
 * what another process wrote since) and returns once it is durable; on_durable is called on
 * this thread before it returns. TB_ERROR_IO when writing failed, TB_ERROR_INVALID_STATE
 * while stored data could not be loaded (see tb_persister_load()) or after destroy. BLOCKS
 * until durable (up to lock_timeout_seconds for another process's lock).
 */
enum tb_status tb_persister_save(struct tb_persister *p);

/**
 * startAutoLoad: loads now (its errors are returned, and auto-load stays off), then merges
 * what other processes write to the storage, checked every auto_load_interval_seconds on the
 * persister's thread (errors then go to on_ignored_error). BLOCKS during the first load.
 */
enum tb_status tb_persister_start_auto_load(struct tb_persister *p);

/**
 * stopAutoLoad. BLOCKS briefly while a check in progress finishes.
 */
enum tb_status tb_persister_stop_auto_load(struct tb_persister *p);

/**
 * startAutoSave: saves now (its errors are returned, and auto-save stays off), then writes
 * after every committed transaction on the persister's thread (the whole content, coalescing
 * transactions that queued meanwhile; or each transaction on its own in incremental
 * storages); errors then go to on_ignored_error and to the next tb_persister_flush(). Refused
 * (TB_ERROR_INVALID_STATE) while stored data could not be loaded. BLOCKS during the first
 * save.
 */
enum tb_status tb_persister_start_auto_save(struct tb_persister *p);

/**
 * stopAutoSave: writes what is queued first. BLOCKS until that is durable.
 */
enum tb_status tb_persister_stop_auto_save(struct tb_persister *p);

/**
 * isAutoLoading.
 */
enum tb_status tb_persister_is_auto_loading(struct tb_persister *p, bool *out);

/**
 * isAutoSaving.
 */
enum tb_status tb_persister_is_auto_saving(struct tb_persister *p, bool *out);

/**
 * getStatus: `*out` is a TB_PERSISTER_* value.
 */
enum tb_status tb_persister_get_status(struct tb_persister *p, tb_persister_status *out);

/**
 * getStats: loads and saves completed so far.
 */
enum tb_status tb_persister_get_stats(struct tb_persister *p,
                                      uint64_t *out_loads,
                                      uint64_t *out_saves);

/**
 * Waits until every transaction committed before the call is durable (auto-save), or
 * `timeout_seconds` (finite, not negative) passed: `*out_durable` is true then, false on
 * timeout. The first auto-save error since the last call is returned instead (its status).
 * BLOCKS up to timeout_seconds.
 */
enum tb_status tb_persister_flush(struct tb_persister *p,
                                  double timeout_seconds,
                                  bool *out_durable);

/**
 * After a load failed with TB_ERROR_CORRUPT: moves the unreadable data aside (a file renamed
 * `<name>.corrupt...`, a database's data kept under another name) so that saves may start
 * afresh. `*out_path` is where it went (free it with tb_string_free()), or NULL when no load
 * has failed. TB_ERROR_IO when it cannot be moved. BLOCKS while it moves.
 */
enum tb_status tb_persister_move_aside_unreadable(struct tb_persister *p, char **out_path);

/**
 * Names the storage (`file /data/room.json`, `sqlite /x.db (json)`, ...). `*out` is a new
 * string: free it with tb_string_free().
 */
enum tb_status tb_persister_describe(struct tb_persister *p, char **out);

/**
 * destroy: stops auto-load and auto-save (writing what is queued, on_durable included) and
 * releases the storage (its lock, its connection). The handle stays valid for status and
 * stats; commands then give TB_ERROR_INVALID_STATE. Idempotent. BLOCKS until the persister's
 * thread stopped. TB_ERROR_INVALID_STATE from inside the persister's own callbacks.
 */
enum tb_status tb_persister_destroy(struct tb_persister *p);

/**
 * Frees a persister (NULL is fine): destroys it if needed (BLOCKS as tb_persister_destroy()
 * does), then calls the options' release(user_data) once, after the persister's thread
 * stopped. The store is not freed (the host frees its own store handle; the persister kept
 * its own reference until now). Called from inside one of the persister's own callbacks, it
 * returns at once: the destroy and the release happen on a library thread once that callback
 * (and the call it ran in) returned.
 */
void tb_persister_free(struct tb_persister *p);

/**
 * getTablesJson: all tables as JSON `{tableId: {rowId: {cellId: cell}}}`, object and array
 * cells in wire form (U+FFFD-prefixed strings). `*out` is owned: tb_string_free().
 */
enum tb_status tb_store_get_tables_json(struct tb_store *store, char **out);

/**
 * getValuesJson: all values as JSON `{valueId: value}` (wire form). `*out`: tb_string_free().
 */
enum tb_status tb_store_get_values_json(struct tb_store *store, char **out);

/**
 * getJson: `[tables, values]` (wire form). `*out`: tb_string_free().
 */
enum tb_status tb_store_get_json(struct tb_store *store, char **out);

/**
 * getContent as JSON: `[tables, values]` with object and array cells decoded (plain JSON).
 * `*out`: tb_string_free().
 */
enum tb_status tb_store_get_content_json(struct tb_store *store, char **out);

/**
 * getTable as JSON `{rowId: {cellId: cell}}` (decoded; `{}` when absent). `*out`:
 * tb_string_free().
 */
enum tb_status tb_store_get_table_json(struct tb_store *store, const char *table_id, char **out);

/**
 * getRow as JSON `{cellId: cell}` (decoded; `{}` when absent). `*out`: tb_string_free().
 */
enum tb_status tb_store_get_row_json(struct tb_store *store,
                                     const char *table_id,
                                     const char *row_id,
                                     char **out);

/**
 * getTableIds as a JSON array of strings. `*out`: tb_string_free().
 */
enum tb_status tb_store_get_table_ids_json(struct tb_store *store, char **out);

/**
 * getTableCellIds as a JSON array of strings. `*out`: tb_string_free().
 */
enum tb_status tb_store_get_table_cell_ids_json(struct tb_store *store,
                                                const char *table_id,
                                                char **out);

/**
 * getRowIds as a JSON array of strings. `*out`: tb_string_free().
 */
enum tb_status tb_store_get_row_ids_json(struct tb_store *store, const char *table_id, char **out);

/**
 * getCellIds as a JSON array of strings. `*out`: tb_string_free().
 */
enum tb_status tb_store_get_cell_ids_json(struct tb_store *store,
                                          const char *table_id,
                                          const char *row_id,
                                          char **out);

/**
 * getValueIds as a JSON array of strings. `*out`: tb_string_free().
 */
enum tb_status tb_store_get_value_ids_json(struct tb_store *store, char **out);

/**
 * getRowCount.
 */
enum tb_status tb_store_get_row_count(struct tb_store *store, const char *table_id, size_t *out);

/**
 * getCell: `*out` is the cell, or kind TB_VALUE_ABSENT when there is none. Release it with
 * tb_value_free() (needed for strings and JSON, harmless otherwise).
 */
enum tb_status tb_store_get_cell(struct tb_store *store,
                                 const char *table_id,
                                 const char *row_id,
                                 const char *cell_id,
                                 struct tb_value *out);

/**
 * getValue: `*out` is the value, or kind TB_VALUE_ABSENT. Release it with tb_value_free().
 */
enum tb_status tb_store_get_value(struct tb_store *store,
                                  const char *value_id,
                                  struct tb_value *out);

/**
 * hasTables.
 */
enum tb_status tb_store_has_tables(struct tb_store *store, bool *out);

/**
 * hasTable.
 */
enum tb_status tb_store_has_table(struct tb_store *store, const char *table_id, bool *out);

/**
 * hasTableCell: whether a cell id is used anywhere in a table.
 */
enum tb_status tb_store_has_table_cell(struct tb_store *store,
                                       const char *table_id,
                                       const char *cell_id,
                                       bool *out);

/**
 * hasRow.
 */
enum tb_status tb_store_has_row(struct tb_store *store,
                                const char *table_id,
                                const char *row_id,
                                bool *out);

/**
 * hasCell.
 */
enum tb_status tb_store_has_cell(struct tb_store *store,
                                 const char *table_id,
                                 const char *row_id,
                                 const char *cell_id,
                                 bool *out);

/**
 * hasValues.
 */
enum tb_status tb_store_has_values(struct tb_store *store, bool *out);

/**
 * hasValue.
 */
enum tb_status tb_store_has_value(struct tb_store *store, const char *value_id, bool *out);

/**
 * setTablesJson: replaces all tables (`{}` deletes them all). Cells may be plain JSON objects
 * and arrays or their wire form.
 */
enum tb_status tb_store_set_tables_json(struct tb_store *store, const char *json);

/**
 * setValuesJson: replaces all values (`{}` deletes them all).
 */
enum tb_status tb_store_set_values_json(struct tb_store *store, const char *json);

/**
 * setJson: sets tables and values from `[tables, values]` (wire form accepted); as in
 * TinyBase, a JSON object is taken as the tables alone (setTablesJson).
 */
enum tb_status tb_store_set_json(struct tb_store *store, const char *json);

/**
 * setContent with `[tables, values]` JSON in plain (decoded) form.
 */
enum tb_status tb_store_set_content_json(struct tb_store *store, const char *json);

/**
 * setPartialValues from JSON `{valueId: value}`.
 */
enum tb_status tb_store_set_partial_values_json(struct tb_store *store, const char *json);

/**
 * applyChanges with `[tables, values, 1]` JSON ("\uFFFC" deletes).
 */
enum tb_status tb_store_apply_changes_json(struct tb_store *store, const char *json);

/**
 * setTable from JSON `{rowId: {cellId: cell}}`.
 */
enum tb_status tb_store_set_table_json(struct tb_store *store,
                                       const char *table_id,
                                       const char *json);

/**
 * setRow from JSON `{cellId: cell}`.
 */
enum tb_status tb_store_set_row_json(struct tb_store *store,
                                     const char *table_id,
                                     const char *row_id,
                                     const char *json);

/**
 * setPartialRow from JSON `{cellId: cell}`.
 */
enum tb_status tb_store_set_partial_row_json(struct tb_store *store,
                                             const char *table_id,
                                             const char *row_id,
                                             const char *json);

/**
 * addRow from JSON `{cellId: cell}`: `*out_row_id` is the new row's id (owned:
 * tb_string_free()). With reuse_row_ids, ids of deleted rows are used first.
 */
enum tb_status tb_store_add_row_json(struct tb_store *store,
                                     const char *table_id,
                                     const char *json,
                                     bool reuse_row_ids,
                                     char **out_row_id);

/**
 * setCell from a tb_value (TB_VALUE_ABSENT is refused: use tb_store_del_cell).
 */
enum tb_status tb_store_set_cell(struct tb_store *store,
                                 const char *table_id,
                                 const char *row_id,
                                 const char *cell_id,
                                 const struct tb_value *cell);

/**
 * setCell with a string cell (a NUL-terminated UTF-8 string): the common case without a
 * tb_value (bindings use it for speed).
 */
enum tb_status tb_store_set_cell_string(struct tb_store *store,
                                        const char *table_id,
                                        const char *row_id,
                                        const char *cell_id,
                                        const char *cell);

/**
 * setCell from the JSON text of the cell (`"text"`, `1`, `true`, `null`, `{...}`, `[...]`).
 */
enum tb_status tb_store_set_cell_json(struct tb_store *store,
                                      const char *table_id,
                                      const char *row_id,
                                      const char *cell_id,
                                      const char *json);

/**
 * setValue from a tb_value (TB_VALUE_ABSENT is refused: use tb_store_del_value).
 */
enum tb_status tb_store_set_value(struct tb_store *store,
                                  const char *value_id,
                                  const struct tb_value *value);

/**
 * setValue from the JSON text of the value.
 */
enum tb_status tb_store_set_value_json(struct tb_store *store,
                                       const char *value_id,
                                       const char *json);

/**
 * delTables.
 */
enum tb_status tb_store_del_tables(struct tb_store *store);

/**
 * delTable.
 */
enum tb_status tb_store_del_table(struct tb_store *store, const char *table_id);

/**
 * delRow.
 */
enum tb_status tb_store_del_row(struct tb_store *store, const char *table_id, const char *row_id);

/**
 * delCell.
 */
enum tb_status tb_store_del_cell(struct tb_store *store,
                                 const char *table_id,
                                 const char *row_id,
                                 const char *cell_id);

/**
 * delValues.
 */
enum tb_status tb_store_del_values(struct tb_store *store);

/**
 * delValue.
 */
enum tb_status tb_store_del_value(struct tb_store *store, const char *value_id);

/**
 * transaction: runs `actions` in a transaction (nested calls join the outer one); listeners
 * are called once, after the outermost transaction commits. Rolled back when `actions`
 * returns true. BLOCKS while another thread is in a transaction on this store.
 */
enum tb_status tb_store_transaction(struct tb_store *store,
                                    tb_transaction_fn actions,
                                    void *user_data);

/**
 * startTransaction: begins a transaction that tb_store_finish_transaction() ends on the same
 * thread. Other threads wait for the store until then. Nested starts join the outer one (each
 * needs its finish). A thread that ends with a started transaction still open does not leave
 * the store locked: as the thread exits, the transaction is rolled back without calling any
 * listener, its lock released, a line is written to stderr and
 * tb_store_get_abandoned_transaction_count() counts it.
 */
enum tb_status tb_store_start_transaction(struct tb_store *store);

/**
 * finishTransaction: ends a transaction begun on this thread with
 * tb_store_start_transaction(), rolling it back when `rollback` is true, then calls the
 * listeners. TB_ERROR_INVALID_STATE, changing nothing, when this thread has no started
 * transaction open on this store: in particular from inside tb_store_transaction() or a
 * transaction listener, which cannot end a transaction they did not start.
 */
enum tb_status tb_store_finish_transaction(struct tb_store *store, bool rollback);

/**
 * How many transactions were rolled back because the thread that started them with
 * tb_store_start_transaction() ended without finishing them (see there).
 */
enum tb_status tb_store_get_abandoned_transaction_count(struct tb_store *store, uint64_t *out);

/**
 * getTransactionChanges as `[tables, values, 1]` JSON ("\uFFFC" for deletions): the changes
 * of the transaction open on this thread, or of the one whose did-finish listeners are
 * running; `[{},{},1]` otherwise. `*out`: tb_string_free().
 */
enum tb_status tb_store_get_transaction_changes_json(struct tb_store *store, char **out);

/**
 * Frees a string returned by this library through a `char **` out-parameter. NULL is fine.
 * Never pass strings from elsewhere, borrowed strings, or memory from libc malloc.
 */
void tb_string_free(char *s);

/**
 * createCustomSynchronizer: a synchronizer for `store` whose messages go out through
 * `send(user_data, to_client_id_or_NULL, payload, len)` (see tb_sync_send_fn: worker thread,
 * not concurrent, arguments borrowed) and come in through tb_synchronizer_receive().
 * `options` may be NULL (defaults; see tb_synchronizer_options). It starts stopped: call
 * tb_synchronizer_start_sync(). On success the library owns user_data until
 * tb_synchronizer_free(), which calls release(user_data) once, after the worker has stopped;
 * on failure neither release (transport's nor options') is called.
 */
enum tb_status tb_synchronizer_new_custom(struct tb_mergeable_store *store,
                                          tb_sync_send_fn send,
                                          void *user_data,
                                          tb_release_fn release,
                                          const struct tb_synchronizer_options *options,
                                          struct tb_synchronizer **out);

/**
 * As tb_synchronizer_new_custom(), for byte-stream or message media that carry TinyBase's
 * WebSocket frames: `send_frame(user_data, frame, len)` receives `toClientId\n[...]` (an
 * empty client id meaning every other client; see tb_sync_send_frame_fn). Feed inbound frames
 * (`fromClientId\n[...]`) to tb_synchronizer_receive_framed().
 */
enum tb_status tb_synchronizer_new_custom_framed(struct tb_mergeable_store *store,
                                                 tb_sync_send_frame_fn send_frame,
                                                 void *user_data,
                                                 tb_release_fn release,
                                                 const struct tb_synchronizer_options *options,
                                                 struct tb_synchronizer **out);

/**
 * Hands a payload `[requestId, message, body]` received from client `from_client_id` to the
 * synchronizer. Any thread (including inside any synchronizer callback); never blocks: the
 * payload is queued for the worker, which validates it (invalid ones are reported through
 * on_ignored_error and never applied). Payloads received after destroy are ignored (TB_OK).
 * TB_ERROR_INVALID_STATE when the inbox is full (see inbox_max_payloads / inbox_max_bytes in
 * tb_synchronizer_options): the payload is refused at once (the caller is never blocked),
 * on_ignored_error gets "tinybase:15:inbox" on the worker, and
 * tb_synchronizer_get_inbox_stats() counts it; the next load (anti-entropy) repairs what it
 * carried.
 */
enum tb_status tb_synchronizer_receive(struct tb_synchronizer *sync,
                                       const char *from_client_id,
                                       const char *payload);

/**
 * Hands a frame `fromClientId\n[requestId, message, body]` (TinyBase's WebSocket form) to the
 * synchronizer: as tb_synchronizer_receive(). TB_ERROR_INVALID_SHAPE when there is no newline.
 */
enum tb_status tb_synchronizer_receive_framed(struct tb_synchronizer *sync, const char *frame);

/**
 * startSync: auto-load (pull the changes of whichever peer answers first), then auto-save
 * (announce this store's hashes, then send a ContentDiff after every local transaction).
 * `initial_content_json` (`[tables, values]`, or NULL) becomes default content when no peer
 * answers. BLOCKS until the initial load has finished: up to the request timeout (a few
 * timeouts at most) when no peer answers. Called from inside one of this synchronizer's
 * callbacks it is queued instead and returns at once. TB_ERROR_INVALID_STATE after destroy.
 */
enum tb_status tb_synchronizer_start_sync(struct tb_synchronizer *sync,
                                          const char *initial_content_json);

/**
 * stopSync: stops auto-loading and auto-saving (requests in flight still complete). BLOCKS
 * briefly until the worker has handled what was queued before it.
 */
enum tb_status tb_synchronizer_stop_sync(struct tb_synchronizer *sync);

/**
 * load: pulls the first answering peer's changes once (`initial_content_json` as in
 * tb_synchronizer_start_sync). BLOCKS until done: up to the request timeout(s).
 */
enum tb_status tb_synchronizer_load(struct tb_synchronizer *sync, const char *initial_content_json);

/**
 * save: announces this store's content hashes once (peers that auto-load then pull).
 * BLOCKS briefly until the worker has sent it.
 */
enum tb_status tb_synchronizer_save(struct tb_synchronizer *sync);

/**
 * startAutoLoad: acts on peers' ContentHashes and ContentDiff messages from now on, after a
 * first load. BLOCKS until that load has finished (up to the request timeout(s)).
 */
enum tb_status tb_synchronizer_start_auto_load(struct tb_synchronizer *sync,
                                               const char *initial_content_json);

/**
 * stopAutoLoad. BLOCKS briefly (see tb_synchronizer_stop_sync).
 */
enum tb_status tb_synchronizer_stop_auto_load(struct tb_synchronizer *sync);

/**
 * startAutoSave: saves, then broadcasts a ContentDiff after every local transaction. BLOCKS
 * briefly (see tb_synchronizer_save).
 */
enum tb_status tb_synchronizer_start_auto_save(struct tb_synchronizer *sync);

/**
 * stopAutoSave. BLOCKS briefly (see tb_synchronizer_stop_sync).
 */
enum tb_status tb_synchronizer_stop_auto_save(struct tb_synchronizer *sync);

/**
 * getStatus: `*out` is a TB_SYNC_STATUS_* value (TB_SYNC_STATUS_IDLE after destroy).
 */
enum tb_status tb_synchronizer_get_status(struct tb_synchronizer *sync, tb_sync_status *out);

/**
 * The synchronizer's connection (beyond TinyBase): `*state` is a TB_CONNECTION_* value
 * (TB_CONNECTION_NONE for synchronizers without a connection of their own: custom transports,
 * local buses). When it is TB_CONNECTION_CLOSED, `*close_code` is the WebSocket close code
 * and `*close_reason` a new string (free it with tb_string_free()); otherwise they are 0 and
 * NULL. `close_code` and `close_reason` may be NULL when not wanted. Readable after destroy
 * (a destroyed WebSocket synchronizer is closed, normally with 1000).
 */
enum tb_status tb_synchronizer_get_connection_state(struct tb_synchronizer *sync,
                                                    tb_connection_state *state,
                                                    uint16_t *close_code,
                                                    char **close_reason);

/**
 * getSynchronizerStats: protocol messages sent and valid messages received so far.
 */
enum tb_status tb_synchronizer_get_stats(struct tb_synchronizer *sync,
                                         uint64_t *out_sends,
                                         uint64_t *out_receives);

/**
 * The inbox of received payloads (beyond TinyBase): `*out_queued` payloads holding
 * `*out_queued_bytes` bytes wait for the worker; `*out_refused` payloads were refused so far
 * because it was full.
 */
enum tb_status tb_synchronizer_get_inbox_stats(struct tb_synchronizer *sync,
                                               size_t *out_queued,
                                               size_t *out_queued_bytes,
                                               uint64_t *out_refused);

/**
 * Whether nothing is queued, running or waiting for a response right now (true after
 * destroy). Messages still inside the host's transport are not seen: a host with its own
 * queues checks those too.
 */
enum tb_status tb_synchronizer_is_idle(struct tb_synchronizer *sync, bool *out);

/**
 * Whether the worker has handled everything queued so far, local transactions included, even
 * if requests still wait for responses (true after destroy). A host that must see a local
 * transaction's ContentDiff sent before it goes on waits for this.
 */
enum tb_status tb_synchronizer_is_settled(struct tb_synchronizer *sync, bool *out);

/**
 * Waits until the synchronizer has stayed idle briefly (see tb_synchronizer_is_idle): `*idle`
 * is true then, false when `timeout_seconds` (finite, not negative) passed first. BLOCKS up
 * to timeout_seconds. TB_ERROR_INVALID_STATE from inside one of this synchronizer's own
 * callbacks (it could never become idle).
 */
enum tb_status tb_synchronizer_wait_for_idle(struct tb_synchronizer *sync,
                                             double timeout_seconds,
                                             bool *idle);

/**
 * destroy: fails pending requests, stops syncing, leaves the bus (if any) and stops the
 * worker thread; nothing is sent once it has begun (work queued before it is dropped), and
 * afterwards no callback of this synchronizer is running or will run. Called on the worker
 * thread itself (from a store listener while the worker applies a peer's changes) it returns
 * at once, and the worker stops when that listener returns. The
 * handle stays valid (stats, status; commands give TB_ERROR_INVALID_STATE; received payloads
 * are ignored) until tb_synchronizer_free(). Idempotent; concurrent calls all return after
 * the worker has stopped. BLOCKS until the worker finishes what it is doing.
 * TB_ERROR_INVALID_STATE when called from inside one of this synchronizer's own callbacks.
 */
enum tb_status tb_synchronizer_destroy(struct tb_synchronizer *sync);

/**
 * Frees a synchronizer (NULL is fine): destroys it if needed (BLOCKS as
 * tb_synchronizer_destroy does), then calls the transport's and the options' release once
 * each, on this thread, after the worker has stopped. The store is not freed (the host frees
 * its own store handle; the synchronizer kept its own reference until now). Called from
 * inside one of this synchronizer's own callbacks (discouraged), the destroy and the releases
 * happen on a library thread once that callback has returned. Called on its worker thread
 * otherwise (a store listener running while the worker applies a peer's changes), it returns
 * at once and the releases happen on the worker thread as it exits, after its last callback.
 */
void tb_synchronizer_free(struct tb_synchronizer *sync);

/**
 * Creates an empty in-process bus (TinyBase's LocalSynchronizer medium). Free with
 * tb_local_bus_free().
 */
enum tb_status tb_local_bus_new(struct tb_local_bus **out);

/**
 * Releases the host's reference to a bus (NULL is fine). Synchronizers created on it keep
 * working (they hold the bus) until they are destroyed.
 */
void tb_local_bus_free(struct tb_local_bus *bus);

/**
 * createLocalSynchronizer: a synchronizer for `store` on this bus, with a random client id;
 * it reaches every other synchronizer on the bus. `options` may be NULL (defaults; the request
 * timeout defaults to TinyBase's 0.01 s here, which a busy machine may exceed: timeouts are
 * ignored errors and the peers still converge once the next announcement is answered).
 * Free with tb_synchronizer_free() (which also releases the options' user_data).
 */
enum tb_status tb_local_bus_create_synchronizer(struct tb_local_bus *bus,
                                                struct tb_mergeable_store *store,
                                                const struct tb_synchronizer_options *options,
                                                struct tb_synchronizer **out);

/**
 * Waits until every synchronizer on the bus has stayed idle briefly: `*idle` is true then,
 * false when `timeout_seconds` (finite, not negative) passed first. BLOCKS up to
 * timeout_seconds (do not call it from a synchronizer callback).
 */
enum tb_status tb_local_bus_wait_for_idle(struct tb_local_bus *bus,
                                          double timeout_seconds,
                                          bool *idle);

/**
 * The bus of the named in-process channel `name` (TinyBase's BroadcastChannelSynchronizer
 * medium): any number of stores whose synchronizers are created on buses opened with the same
 * name sync with each other. The channel lives while any bus handle or synchronizer uses it.
 * Free the handle with tb_local_bus_free().
 */
enum tb_status tb_broadcast_channel_open(const char *name, struct tb_local_bus **out);

/**
 * A value of kind TB_VALUE_ABSENT.
 */
struct tb_value tb_value_absent(void);

/**
 * A value of kind TB_VALUE_NULL.
 */
struct tb_value tb_value_null(void);

/**
 * A TB_VALUE_BOOLEAN value.
 */
struct tb_value tb_value_boolean(bool boolean);

/**
 * A TB_VALUE_NUMBER value (setters refuse non-finite numbers).
 */
struct tb_value tb_value_number(double number);

/**
 * A TB_VALUE_STRING value borrowing `string` (NUL-terminated UTF-8; not copied, not freed).
 */
struct tb_value tb_value_string(const char *string);

/**
 * A TB_VALUE_JSON value borrowing `json` (the JSON text of an object or array).
 */
struct tb_value tb_value_json(const char *json);

/**
 * Releases the text a library-written tb_value owns (when `owned` is true) and resets it to
 * TB_VALUE_ABSENT. NULL, scalar values and values with `owned` false are left alone, so it is
 * always safe to call on a value a getter wrote. Calling it twice is harmless.
 */
void tb_value_free(struct tb_value *value);

/**
 * createWsSynchronizer: a synchronizer for `store` through the WebSocket server at `url`
 * (`ws://` or `wss://`; TinyBase's WsServer or tinybase-server). `options` may be NULL (all
 * defaults; see tb_ws_synchronizer_options). Returns a normal synchronizer: start it with
 * tb_synchronizer_start_sync(), read its connection with
 * tb_synchronizer_get_connection_state(), destroy it (the socket is closed cleanly, 1000)
 * and free it with tb_synchronizer_destroy() / tb_synchronizer_free(). With a channel id it
 * has a multiplexed socket of its own; tb_ws_client_new() shares one between stores.
 *
 * An invalid URL, channel id, header, CA file or duration fails at once (nothing created, no
 * release called). BLOCKS for the first connection attempt (up to the connect timeout and
 * two request timeouts); with `no_reconnect` a failed attempt fails the call
 * (TB_ERROR_INVALID_STATE, "tinybase:5..."), otherwise it keeps trying in the background. On
 * success the library owns the options' user_data until tb_synchronizer_free().
 */
enum tb_status tb_ws_synchronizer_new(struct tb_mergeable_store *store,
                                      const char *url,
                                      const struct tb_ws_synchronizer_options *options,
                                      struct tb_synchronizer **out);

/**
 * A multiplexed connection to the WebSocket server at `url`, for several stores over one
 * socket: each tb_ws_client_create_synchronizer() joins a channel. `options` may be NULL;
 * its `sync` and `channel_id` fields are not used here (each synchronizer brings its own).
 * Nothing is opened yet: the socket opens when the first synchronizer joins and closes
 * (1000) when the last one is destroyed. An invalid URL, header, CA file or duration fails
 * at once. Free with tb_ws_client_free().
 */
enum tb_status tb_ws_client_new(const char *url,
                                const struct tb_ws_synchronizer_options *options,
                                struct tb_ws_client **out);

/**
 * Releases the host's handle on a shared connection (NULL is fine). Synchronizers created
 * on it keep working (they hold the connection) until they are destroyed.
 */
void tb_ws_client_free(struct tb_ws_client *client);

/**
 * A synchronizer for `store` on channel `channel_id` of this shared connection (TinyBase's
 * multiplexed createWsSynchronizer). `options` may be NULL (request timeout 1 s by default).
 * Fails for an invalid or duplicate channel id or too many channels; BLOCKS and fails as
 * tb_ws_synchronizer_new() does for the connection (per the client's reconnect option). Free
 * with tb_synchronizer_free(); destroying it unsubscribes its channel.
 */
enum tb_status tb_ws_client_create_synchronizer(struct tb_ws_client *client,
                                                struct tb_mergeable_store *store,
                                                const char *channel_id,
                                                const struct tb_synchronizer_options *options,
                                                struct tb_synchronizer **out);

/**
 * The shared socket's state (TB_CONNECTION_OPEN from the upgrade on; each synchronizer's own
 * state, tb_synchronizer_get_connection_state(), is open once its channel is subscribed).
 * `close_code` and `close_reason` as in tb_synchronizer_get_connection_state() (may be NULL).
 */
enum tb_status tb_ws_client_get_connection_state(struct tb_ws_client *client,
                                                 tb_connection_state *state,
                                                 uint16_t *close_code,
                                                 char **close_reason);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* TINYBASE_H */
