//! The checks of the fuzz targets, shared by the fuzz crate (`fuzz/`, libFuzzer, run by
//! scripts/fuzz.sh) and by the regression tests (tests/fuzz_regressions.rs, which replays every
//! saved input in tests/fuzz/regressions/TARGET/). Each target takes raw bytes and panics on any
//! failed property; serde_json is the reference JSON grammar.
#![allow(dead_code)]

use serde_json::Value as Json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tinybase::hlc::{Clock, Hlc};
use tinybase::sync::message::{parse_payload, payload, unframe};
use tinybase::sync::{Synchronizer, SynchronizerOptions, Transport};
use tinybase::value::{parse_json, to_json_string};
use tinybase::{MergeableStore, Store};
use tinybase::mergeable::is_input_error;

/// The fixed clock of every store here (ms): late enough that the seeds' HLCs are not in the future.
pub const NOW: f64 = 2_000_000_000_000.0;

/// The input as text; the library's entry points take `&str` (the C ABI checks UTF-8 first).
pub fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// A MergeableStore on the fixed clock with a little content (a table with scalar and object
/// cells, a deleted cell, values), the same on every call.
pub fn seeded_store(unique_id: &str) -> MergeableStore {
    let s = MergeableStore::with_clock(Some(unique_id), || NOW);
    s.as_store().set_tables_json(r#"{"pets":{"fido":{"species":"dog","legs":4,"toy":{"a":[1,"x"]}},"felix":{"species":"cat"}},"t":{"1":{"c":true}}}"#).unwrap();
    s.as_store().del_cell("pets", "felix", "species");
    s.as_store().set_values_json(r#"{"open":true,"n":-1.5,"arr":[null]}"#).unwrap();
    s
}

/// Everything observable about a store's content: mergeable content (with HLCs and hashes),
/// plain content, and the maintained hashes.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    mergeable: String,
    content: String,
    hashes: (u32, u32),
}

/// Takes a [`Snapshot`].
pub fn snapshot(s: &MergeableStore) -> Snapshot {
    Snapshot { mergeable: s.get_mergeable_content_json(), content: s.as_store().get_content_json(), hashes: s.get_mergeable_content_hashes() }
}

/// Two stores hold the same content with the same HLCs and hashes, key order aside: the order
/// of a plain store's rows and of a decoded object's keys depends on its history in TinyBase too
/// (a deleted row re-added moves to the end; an object cell received as a non-canonical wire
/// text keeps that text), so a copy made from mergeable content may list keys differently.
/// A store's decoded mergeable content without its hashes (values and HLCs), keys sorted.
fn sorted_content(s: &MergeableStore) -> Json {
    /// `[thing, hlc, hash]` to `[thing, hlc]`, with `depth` more stamp levels inside `thing`.
    fn strip(stamp: &Json, depth: usize) -> Json {
        let a = stamp.as_array().expect("a stamp");
        let thing = match (&a[0], depth) {
            (Json::Object(m), 1..) => Json::Object(m.iter().map(|(k, v)| (k.clone(), strip(v, depth - 1))).collect()),
            (v, _) => v.clone(),
        };
        Json::Array(vec![thing, a[1].clone()])
    }
    let content: Json = serde_json::from_str(&s.get_mergeable_content_json()).unwrap();
    sorted(&Json::Array(vec![strip(&content[0], 3), strip(&content[1], 1)]))
}

pub fn assert_same_content(copy: &MergeableStore, original: &MergeableStore, what: &str) {
    let a = snapshot(copy);
    let b = snapshot(original);
    assert_eq!(a.hashes, b.hashes, "{what}: hashes differ");
    for (x, y) in [(&a.mergeable, &b.mergeable), (&a.content, &b.content)] {
        let (x, y) = (sorted(&serde_json::from_str(x).unwrap()), sorted(&serde_json::from_str(y).unwrap()));
        assert_eq!(x, y, "{what}: content differs");
    }
}

/// The value with every object's keys sorted (serde_json's Map keeps insertion order here) and
/// every number a double.
fn sorted(v: &Json) -> Json {
    match v {
        Json::Array(a) => Json::Array(a.iter().map(sorted).collect()),
        Json::Object(m) => {
            let mut items: Vec<_> = m.iter().map(|(k, v)| (k.clone(), sorted(v))).collect();
            items.sort_by(|a, b| a.0.cmp(&b.0));
            Json::Object(items.into_iter().collect())
        }
        // Numbers as doubles: a wire text's `0e+21` is kept verbatim (as TinyBase keeps it).
        Json::Number(n) => n.as_f64().and_then(serde_json::Number::from_f64).map_or_else(|| v.clone(), Json::Number),
        Json::String(s) => match s.strip_prefix('\u{FFFD}').and_then(serde_parse) {
            // A wire-encoded object or array: compare what it means.
            Some(inner) => Json::String(format!("\u{FFFD}{}", sorted(&inner))),
            None => v.clone(),
        },
        _ => v.clone(),
    }
}

/// The maintained hashes equal a recomputation from scratch.
pub fn assert_hashes_consistent(s: &MergeableStore) {
    assert_eq!(s.get_mergeable_content_hashes(), s.compute_content_hashes(), "maintained hashes differ from recomputed ones");
}

/// serde_json's verdict on a text (the reference grammar).
pub enum Reference {
    /// Valid JSON, with serde_json's reading of it.
    Value(Json),
    /// Not JSON.
    Refused,
    /// Nested beyond serde_json's recursion limit (128, below the library's 256): no verdict.
    TooDeep,
}

/// Parses with serde_json.
pub fn reference(text: &str) -> Reference {
    match serde_json::from_str(text) {
        Ok(v) => Reference::Value(v),
        Err(e) if e.to_string().contains("recursion limit") => Reference::TooDeep,
        Err(_) => Reference::Refused,
    }
}

/// serde_json's reading of a text it accepts.
pub fn serde_parse(text: &str) -> Option<Json> {
    match reference(text) {
        Reference::Value(v) => Some(v),
        _ => None,
    }
}

/// serde_json's reading of `text` re-serialized in its own canonical form (no whitespace, its
/// own escapes and number formats): the library must treat it exactly as it treats `text`.
/// None when serde_json refuses the text.
pub fn canonical(text: &str) -> Option<String> {
    serde_parse(text).map(|v| serde_json::to_string(&v).unwrap())
}

/// Checks the grammar side of a library decoder's verdict: whatever it accepted, serde_json
/// accepts too (unless it is too deep for serde_json).
pub fn assert_accepted_is_json(text: &str) {
    assert!(!matches!(reference(text), Reference::Refused), "the library accepted text that serde_json refuses: {text:?}");
}

/// Whether two JSON values are equal as JavaScript sees them: numbers as doubles (so -0 == 0),
/// object keys in JavaScript order (integer-like keys first, ascending).
pub fn js_equal(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        (Json::Array(x), Json::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| js_equal(a, b)),
        (Json::Object(x), Json::Object(y)) => {
            let mut xs: Vec<_> = x.iter().collect();
            let mut ys: Vec<_> = y.iter().collect();
            tinybase::value::js_key_order(&mut xs, |e| e.0.as_str());
            tinybase::value::js_key_order(&mut ys, |e| e.0.as_str());
            xs.len() == ys.len() && xs.iter().zip(&ys).all(|((ka, va), (kb, vb))| ka == kb && js_equal(va, vb))
        }
        _ => a == b,
    }
}


// ---------------------------------------------------------------- json


/// The library's JSON parser (cells, values, every JSON setter) against serde_json: the same
/// texts accepted, equal values (as JavaScript sees them), and its writer's output reads back.
pub fn json(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let ours = parse_json(text);
    match (&ours, reference(text)) {
        (Ok(a), Reference::Value(b)) => assert!(js_equal(a, &b), "different values for {text:?}: {a:?} vs {b:?}"),
        (Ok(_), Reference::Refused) => panic!("accepted what serde_json refuses: {text:?}"),
        (Err(e), Reference::Value(_)) => panic!("refused valid JSON {text:?}: {e}"),
        _ => {}
    }
    if let Ok(v) = ours {
        let written = to_json_string(&v);
        let back = parse_json(&written).unwrap_or_else(|e| panic!("own output {written:?} does not parse: {e}"));
        assert!(js_equal(&v, &back), "round trip changed {text:?} -> {written:?}");
        match reference(&written) {
            Reference::Value(theirs) => assert!(js_equal(&v, &theirs), "serde_json reads our output {written:?} differently"),
            Reference::Refused => panic!("serde_json refuses our output {written:?}"),
            Reference::TooDeep => {}
        }
        assert_eq!(to_json_string(&back), written, "writing is not stable");
    }
}

// ---------------------------------------------------------------- hlc


const ALPHABET: &str = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

fn check_hlc(s: &str) -> Option<Hlc> {
    let parsed = Hlc::parse(s);
    let valid = s.is_empty() || (s.len() == 16 && s.chars().all(|c| ALPHABET.contains(c)));
    assert_eq!(parsed.is_ok(), valid, "{s:?}");
    let h = parsed.ok()?;
    assert_eq!(h.to_string(), s);
    assert_eq!(h.is_empty(), s.is_empty());
    if !s.is_empty() {
        assert_eq!(Hlc::new(h.time(), h.counter(), h.client_id()), h);
    }
    Some(h)
}

/// HLC strings: exactly "" or 16 characters of TinyBase's alphabet parse, round-trip, order as
/// their text, and a clock that has seen a valid remote HLC stamps later than it.
pub fn hlc(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (a, b) = match text.split_once('\n') {
        Some((a, b)) => (a, b),
        None => (text, ""),
    };
    let (Some(x), Some(y)) = (check_hlc(a), check_hlc(b)) else { return };
    assert_eq!(x.cmp(&y), a.cmp(b), "{a:?} vs {b:?}");
    // A clock just behind the remote HLC (within the five-minute window) moves past it.
    if !x.is_empty() && x.time() < (1 << 42) - 2 {
        let now = x.time() as f64;
        let mut clock = Clock::new(Some("fuzz"), Box::new(move || now));
        clock.seen(Some(x));
        let next = clock.next();
        assert!(next > x, "{next} after seeing {x}");
        assert_eq!(next.client_id(), clock.client_id());
    }
}

// ---------------------------------------------------------------- mergeable


fn run_mergeable(op: u8, s: &MergeableStore, text: &str) -> tinybase::Result<()> {
    match op % 4 {
        0 => s.apply_mergeable_changes_json(text),
        1 => s.apply_decoded_mergeable_changes_json(text),
        2 => s.set_mergeable_content_json(text),
        _ => s.set_decoded_mergeable_content_json(text),
    }
}

/// MergeableContent / MergeableChanges JSON (what a peer, a persisted file or a C caller
/// hands in): a refused input leaves the store as it was; accepted changes keep the maintained
/// hashes equal to a recomputation (loaded content keeps the hashes its stamps compute) and
/// apply idempotently, empty tables and rows included; the resulting content round-trips
/// through its own JSON; and serde_json's canonical re-serialization of the text gets the same verdict and result.
/// The first byte picks the entry point.
pub fn mergeable(data: &[u8]) {
    let Some((&op, rest)) = data.split_first() else { return };
    let Some(text) = text(rest) else { return };
    let (s, result) = check_input(text, |s, t| run_mergeable(op, s, t));
    if result.is_ok() {
        // The decoded form reads back as the same content too.
        let copy = MergeableStore::with_clock(Some("fuzz-c"), || NOW);
        copy.set_decoded_mergeable_content_json(&s.get_mergeable_content_json()).expect("own content refused");
        if copy.get_encoded_mergeable_content_json() == s.get_encoded_mergeable_content_json() {
            assert_same_content(&copy, &s, "decoded content round trip");
        } else {
            // An object text that is not canonical (`"\u{FFFD}{\"b\":1,\"10\":2}"`, never what a
            // TinyBase peer sends) is hashed as received; decoded, it re-encodes canonically and
            // loaded content keeps the hashes its stamps compute: the content alone compares.
            assert_eq!(sorted_content(&copy), sorted_content(&s), "decoded content round trip: content differs");
        }
        // Merging is idempotent: the same input again changes nothing (an empty table or row
        // included: TinyBase's hash toggles its parent's there, ours does not; see README).
        let after = snapshot(&s);
        run_mergeable(op, &s, text).expect("accepted once, refused the second time");
        assert_eq!(snapshot(&s), after, "applying the same input twice changed the store");
    }
}

// ---------------------------------------------------------------- diff


fn run_diff(op: u8, s: &MergeableStore, text: &str) -> tinybase::Result<String> {
    match op % 6 {
        0 => s.get_mergeable_table_diff_json(text),
        1 => s.get_mergeable_row_hashes_json(text),
        2 => s.get_mergeable_row_diff_json(text),
        3 => s.get_mergeable_cell_hashes_json(text),
        4 => s.get_mergeable_cell_diff_json(text),
        _ => s.get_mergeable_value_diff_json(text),
    }
}

/// The hash and diff queries that take a peer's hashes as JSON: never a change to the store,
/// an answer that is valid JSON, only for input serde_json accepts, and the same answer for
/// serde_json's canonical form of the input. The first byte picks the query.
pub fn diff(data: &[u8]) {
    let Some((&op, rest)) = data.split_first() else { return };
    let Some(text) = text(rest) else { return };
    let s = seeded_store("fuzz-a");
    let before = snapshot(&s);
    let result = run_diff(op, &s, text);
    assert_eq!(snapshot(&s), before, "a query changed the store");
    if let Ok(out) = &result {
        assert_accepted_is_json(text);
        assert!(serde_parse(out).is_some(), "answer is not JSON: {out:?}");
    }
    if let Some(c) = canonical(text) {
        let again = run_diff(op, &s, &c);
        assert_eq!(result, again, "{text:?} vs canonical {c:?}");
    }
}

// ---------------------------------------------------------------- store_json


fn run_store_json(op: u8, m: &MergeableStore, text: &str) -> tinybase::Result<()> {
    let s = m.as_store();
    match op % 14 {
        0 => s.set_cell_json("pets", "fido", "species", text),
        1 => s.set_value_json("open", text),
        2 => s.set_tables_json(text),
        3 => s.set_values_json(text),
        4 => s.set_json(text),
        5 => s.set_content_json(text),
        6 => s.set_table_json("pets", text),
        7 => s.set_row_json("pets", "rex", text),
        8 => s.set_partial_row_json("pets", "fido", text),
        9 => s.set_partial_values_json(text),
        10 => s.apply_changes_json(text),
        11 => s.add_row_json("t", text, op & 0x80 != 0).map(drop),
        12 => s.set_cell_json("t", "1", "c", text),
        _ => m.set_default_content_json(text),
    }
}

/// The Store's JSON setters (cells, values, rows, tables, content, changes) on a
/// MergeableStore, and its `set_default_content_json`: a refused input changes nothing; an
/// accepted one keeps the hashes equal to a
/// recomputation and content that round-trips through `get_json`; serde_json's canonical form
/// of the text gets the same verdict and result. The first byte picks the setter.
pub fn store_json(data: &[u8]) {
    let Some((&op, rest)) = data.split_first() else { return };
    let Some(text) = text(rest) else { return };
    let (s, result) = check_input(text, |s, t| run_store_json(op, s, t));
    if result.is_ok() {
        let json = s.as_store().get_json();
        let copy = Store::new();
        copy.set_json(&json).expect("own JSON refused");
        assert_eq!(copy.get_json(), json, "get_json does not round-trip");
    }
}

/// One input through an entry point `run` on a seeded store: a refused input is an input error
/// and changes nothing; an accepted one was JSON, keeps the hashes equal to a recomputation and
/// leaves content that round-trips through its encoded mergeable content; serde_json's canonical
/// form of the text gets the same verdict and result. Returns the store and the verdict.
fn check_input(text: &str, run: impl Fn(&MergeableStore, &str) -> tinybase::Result<()>) -> (MergeableStore, tinybase::Result<()>) {
    let s = seeded_store("fuzz-a");
    let before = snapshot(&s);
    let result = run(&s, text);
    match &result {
        Err(e) => {
            assert!(is_input_error(e), "{e}");
            assert_eq!(snapshot(&s), before, "a refused input ({e}) changed the store");
        }
        Ok(()) => {
            assert_accepted_is_json(text);
            assert_hashes_consistent(&s);
            let copy = MergeableStore::with_clock(Some("fuzz-b"), || NOW);
            copy.set_mergeable_content_json(&s.get_encoded_mergeable_content_json()).expect("own encoded content refused");
            assert_same_content(&copy, &s, "encoded content round trip");
        }
    }
    if let Some(c) = canonical(text) {
        let other = seeded_store("fuzz-a");
        let again = run(&other, &c);
        assert_eq!(result.is_ok(), again.is_ok(), "{text:?} vs canonical {c:?}: {result:?} vs {again:?}");
        assert_eq!(snapshot(&other), snapshot(&s), "{text:?} vs canonical {c:?}");
    }
    (s, result)
}

// ---------------------------------------------------------------- sync


struct Null;
impl Transport for Null {
    fn send(&self, _: Option<&str>, _: &str) {}
}

static VALID: AtomicUsize = AtomicUsize::new(0);
static INVALID: AtomicUsize = AtomicUsize::new(0);

fn synchronizer() -> &'static (MergeableStore, Synchronizer) {
    static S: OnceLock<(MergeableStore, Synchronizer)> = OnceLock::new();
    S.get_or_init(|| {
        let store = seeded_store("fuzz-sync");
        let options = SynchronizerOptions {
            request_timeout: Duration::from_millis(20),
            on_receive: Some(Arc::new(|_, _, _, _| {
                VALID.fetch_add(1, Ordering::SeqCst);
            })),
            on_ignored_error: Some(Arc::new(|e: &str| {
                if e == "tinybase:14" {
                    INVALID.fetch_add(1, Ordering::SeqCst);
                }
            })),
            ..Default::default()
        };
        let sync = Synchronizer::new(&store, Arc::new(Null), options);
        sync.start_sync(None);
        (store, sync)
    })
}

/// Received sync payloads (a Synchronizer's `receive`, framed or not): `parse_payload` agrees
/// with serde_json's canonical form of the text and with what it writes back; a live
/// synchronizer treats exactly the payloads `parse_payload` accepts as messages, never changes
/// its store for a refused one, and keeps the store's hashes equal to a recomputation.
/// The first byte chooses framed (odd) or plain.
pub fn sync(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let Some(text) = text(rest) else { return };
    let framed = mode & 1 == 1;
    let inner = if framed {
        match unframe(text) {
            Ok((from, p)) => {
                assert_eq!(from.map(|f| f.len() + 1).unwrap_or(1) + p.len(), text.len());
                p
            }
            Err(_) => {
                assert!(!text.contains('\n'));
                return;
            }
        }
    } else {
        text
    };
    let parsed = parse_payload(inner);
    if let Ok(r) = &parsed {
        assert_accepted_is_json(inner);
        let again = payload(r.request_id.as_deref(), r.message, &to_json_string(&r.body));
        assert_eq!(parse_payload(&again).as_ref(), Ok(r), "{inner:?} rewritten as {again:?}");
    }
    if let Some(c) = canonical(inner) {
        let again = parse_payload(&c);
        assert_eq!(parsed.is_ok(), again.is_ok(), "{inner:?} vs canonical {c:?}");
        if let (Ok(a), Ok(b)) = (&parsed, &again) {
            assert_eq!(to_json_string(&a.body), to_json_string(&b.body));
            assert_eq!((&a.request_id, a.message), (&b.request_id, b.message));
        }
    }
    // The live synchronizer (one per process; its store keeps what earlier inputs applied).
    if mode & 2 == 0 {
        return;
    }
    let (store, sync) = synchronizer();
    let before = snapshot(store);
    let counts = VALID.load(Ordering::SeqCst) + INVALID.load(Ordering::SeqCst);
    let valid = VALID.load(Ordering::SeqCst);
    if framed {
        sync.receive_framed(text).expect("a frame with a newline");
    } else {
        sync.receive("peer", text).expect("the inbox takes a payload when nothing waits");
    }
    let start = std::time::Instant::now();
    while VALID.load(Ordering::SeqCst) + INVALID.load(Ordering::SeqCst) == counts || !sync.is_settled() {
        assert!(start.elapsed() < Duration::from_secs(10), "the synchronizer did not handle the payload");
        std::thread::yield_now();
    }
    assert_eq!(VALID.load(Ordering::SeqCst) > valid, parsed.is_ok(), "{inner:?}: synchronizer and parse_payload disagree");
    if parsed.is_err() {
        assert_eq!(snapshot(store), before, "a refused payload changed the store");
    }
    assert_hashes_consistent(store);
}

// ---------------------------------------------------------------- c_abi

unsafe extern "C" fn fixed_now(_: *mut std::ffi::c_void) -> f64 {
    NOW
}

/// A C caller's bytes (any bytes but NUL): through the C ABI an input is refused as invalid
/// UTF-8 exactly when it is, leaving the store unchanged; otherwise the C call gives the Rust
/// call's verdict and leaves the same content. The first byte picks the function.
pub fn c_abi(data: &[u8]) {
    use std::ffi::{c_char, CStr, CString};
    use tinybase::ffi::*;
    let Some((&op, rest)) = data.split_first() else { return };
    let bytes: Vec<u8> = rest.iter().copied().filter(|&b| b != 0).collect();
    let text = CString::new(bytes.clone()).unwrap();
    let rust = seeded_store("fuzz-a");
    unsafe {
        let mut c = std::ptr::null_mut();
        let id = CString::new("fuzz-a").unwrap();
        assert_eq!(tb_mergeable_store_new_with_clock(id.as_ptr(), Some(fixed_now), std::ptr::null_mut(), None, &mut c), tb_status::TB_OK);
        let seed = CString::new(rust.get_encoded_mergeable_content_json()).unwrap();
        assert_eq!(tb_mergeable_store_set_mergeable_content_json(c, seed.as_ptr()), tb_status::TB_OK);
        let content = |c| {
            let mut out: *mut c_char = std::ptr::null_mut();
            assert_eq!(tb_mergeable_store_get_mergeable_content_json(c, &mut out), tb_status::TB_OK);
            let s = CStr::from_ptr(out).to_str().unwrap().to_string();
            tb_string_free(out);
            s
        };
        let before = content(c);
        let status = match op % 3 {
            0 => tb_mergeable_store_apply_mergeable_changes_json(c, text.as_ptr()),
            1 => tb_mergeable_store_set_mergeable_content_json(c, text.as_ptr()),
            _ => tb_store_set_json(tb_mergeable_store_as_store(c), text.as_ptr()),
        };
        match std::str::from_utf8(&bytes) {
            Err(_) => {
                assert_eq!(status, tb_status::TB_ERROR_INVALID_UTF8);
                assert_eq!(content(c), before, "refused input changed the store");
            }
            Ok(s) => {
                let result = match op % 3 {
                    0 => rust.apply_mergeable_changes_json(s),
                    1 => rust.set_mergeable_content_json(s),
                    _ => rust.as_store().set_json(s),
                };
                assert_eq!(status == tb_status::TB_OK, result.is_ok(), "{s:?}: C {status:?}, Rust {result:?}");
                assert_eq!(content(c), rust.get_mergeable_content_json(), "{s:?}");
            }
        }
        tb_mergeable_store_free(c);
    }
}

/// The WebSocket codec (src/sync/ws/codec.rs): frames separated by NUL go into a Reassembler (or,
/// with bit 0 of the first byte, through `parse_mux` first); nothing panics, the limits hold,
/// whatever is accepted is a valid payload made of what came in, and a multiplex frame that
/// parses is rebuilt byte for byte (controls up to JSON spelling). Then each frame's text, as
/// it is and inside a ContentDiff, is fragmented (size from the first byte's other bits) and
/// reassembled in order and in reverse: valid remainders come back whole.
pub fn ws_codec(data: &[u8]) {
    use tinybase::sync::ws::codec::*;
    use std::time::Instant;
    let Some((&mode, rest)) = data.split_first() else { return };
    let Some(text) = text(rest) else { return };
    let start = Instant::now();
    let step = Duration::from_millis(u64::from(mode >> 4) * 100);
    let mut r = Reassembler::new(Duration::from_secs(1));
    let mut now = start;
    for frame in text.split('\0') {
        now += step;
        let (channel, basic) = if mode & 1 == 1 {
            match parse_mux(frame) {
                Ok(MuxFrame::Data { channel_id, payload }) => {
                    assert_eq!(data_frame(channel_id, payload), frame);
                    assert_eq!(check_channel_id(channel_id), Ok(()));
                    (channel_id, payload)
                }
                Ok(MuxFrame::Control { request_id, control, body }) => {
                    let again = control_frame(request_id.as_deref(), control, &to_json_string(&body));
                    assert_eq!(parse_mux(&again), Ok(MuxFrame::Control { request_id, control, body }), "{frame:?}");
                    continue;
                }
                Err(close) => {
                    assert!(close.code == 1007 || close.code == 1013, "{close:?}");
                    continue;
                }
            }
        } else {
            ("", frame)
        };
        match r.push_channel(channel, basic, now) {
            Ok(Some(p)) => {
                assert!(parse_payload(&p.remainder).is_ok());
                assert_eq!(Some(p.client_id.as_str()), basic.split_once('\n').map(|(c, _)| c));
                if p.fragments.is_empty() {
                    assert_eq!(basic, format!("{}\n{}", p.client_id, p.remainder));
                } else {
                    let n = p.fragments.len();
                    let pieces: String = p.fragments.iter().enumerate().map(|(i, f)| {
                        let parts: Vec<&str> = f.splitn(4, '\n').collect();
                        assert_eq!(parts[0].len(), 16);
                        assert_eq!(parts[1].trim_start_matches('0').parse::<usize>().unwrap_or(0), i);
                        assert_eq!(parts[2].trim_start_matches('0').parse::<usize>().unwrap(), n);
                        parts[3]
                    }).collect();
                    assert_eq!(pieces, p.remainder);
                    assert!(p.fragments.iter().any(|f| basic.ends_with(f.as_str())), "the last frame is one of them");
                }
            }
            Ok(None) => assert!(r.incomplete() > 0),
            Err(close) => {
                assert!(close == Close::malformed() || close.code == 1013, "{close:?}");
                assert_eq!((r.incomplete(), r.buffered_bytes()), (0, 0));
            }
        }
        assert!(r.incomplete() <= MAX_INCOMPLETE_MESSAGES && r.buffered_bytes() <= MAX_PAYLOAD_BYTES);
    }
    let size = usize::from((mode >> 1) & 7) * usize::from(mode >> 4).max(1);
    for frame in text.split('\0') {
        let mut diff = String::from(r#"["tx",3,[[{"t":[{"r":[{"c":["#);
        tinybase::value::write_js_string(&mut diff, frame);
        diff.push_str(r#","NjEtLV-----7JQY8"]}]}]}],[{}],1]]"#);
        for remainder in [frame, diff.as_str()] {
            let valid = parse_payload(remainder).is_ok();
            let frames = fragment("to", remainder, Some(size));
            for order in [false, true] {
                let mut r = Reassembler::new(Duration::from_secs(1));
                let mut got = None;
                for (k, f) in frames.iter().enumerate() {
                    let f = if order { &frames[frames.len() - 1 - k] } else { f };
                    match r.push(f, start) {
                        Ok(Some(p)) => got = Some(p),
                        Ok(None) => {}
                        Err(close) => {
                            assert!(!valid, "{remainder:?} refused: {close:?}");
                            break;
                        }
                    }
                }
                if valid {
                    let p = got.unwrap_or_else(|| panic!("{remainder:?} never completed"));
                    assert_eq!((p.client_id.as_str(), p.remainder.as_str()), ("to", remainder));
                    assert_eq!(p.fragments.len(), if frames.len() == 1 { 0 } else { frames.len() });
                }
            }
        }
    }
}
