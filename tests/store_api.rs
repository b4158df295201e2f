//! The Rust API as users rely on it: values, refusals of bad input, listeners, transactions.

use std::sync::{Arc, Mutex};
use tinybase::{Cell, Error, MergeableStore, Row, Store};

fn store() -> MergeableStore {
    MergeableStore::with_clock(Some("s1"), || 1_700_000_000_000.0)
}

#[test]
fn cells_values_and_ids_round_trip() {
    let s = store();
    s.set_cell("pets", "fido", "species", "dog").unwrap();
    s.set_cell("pets", "fido", "legs", 4).unwrap();
    s.set_cell_json("pets", "fido", "tags", r#"{"b":1,"a":[1,2],"10":3,"2":4}"#).unwrap();
    s.set_value("open", true).unwrap();
    s.set_value("nothing", Cell::Null).unwrap();
    assert_eq!(s.get_cell("pets", "fido", "species"), Some(Cell::from("dog")));
    assert_eq!(s.get_cell("pets", "fido", "legs"), Some(Cell::Number(4.0)));
    assert_eq!(s.get_cell("pets", "fido", "nope"), None);
    assert_eq!(s.get_value("nothing"), Some(Cell::Null));
    assert!(s.has_value("nothing") && !s.has_value("absent"));
    assert_eq!(s.get_cell_ids("pets", "fido"), vec!["species", "legs", "tags"]);
    assert_eq!(s.get_table_cell_ids("pets"), vec!["species", "legs", "tags"]);
    // Objects are held as JSON text in JavaScript key order (integer-like keys first).
    assert_eq!(s.get_tables_json(), "{\"pets\":{\"fido\":{\"species\":\"dog\",\"legs\":4,\"tags\":\"\u{FFFD}{\\\"2\\\":4,\\\"10\\\":3,\\\"b\\\":1,\\\"a\\\":[1,2]}\"}}}");
    assert_eq!(s.get_content_json(), r#"[{"pets":{"fido":{"species":"dog","legs":4,"tags":{"2":4,"10":3,"b":1,"a":[1,2]}}}},{"open":true,"nothing":null}]"#);
    let id = s.add_row("pets", &Row::from([("species".to_string(), Cell::from("cat"))]), true).unwrap();
    assert_eq!(id, "0");
    assert_eq!(s.get_row_ids("pets"), vec!["fido", "0"]);
    assert_eq!(s.get_row_count("pets"), 2);
    s.del_row("pets", "fido");
    assert_eq!(s.get_row_ids("pets"), vec!["0"]);
    // Tombstones stay in the mergeable content.
    assert!(s.get_mergeable_content_json().contains("\"fido\""));
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let s = store();
    s.set_json(r#"[{"t":{"r":{"c":1}}},{"v":"x"}]"#).unwrap();
    let before = (s.get_encoded_mergeable_content_json(), s.get_mergeable_content_hashes());
    let unchanged = |s: &MergeableStore| assert_eq!((s.get_encoded_mergeable_content_json(), s.get_mergeable_content_hashes()), before);
    assert!(matches!(s.set_cell("t", "r", "c", f64::NAN), Err(Error::InvalidValue(_))));
    assert!(matches!(s.set_value("v", f64::INFINITY), Err(Error::InvalidValue(_))));
    assert!(s.set_cell("t", "r", "c", "\u{FFFC}").is_err());
    assert!(s.set_cell("t", "r", "c", "\u{FFFD}{}").is_err());
    assert!(matches!(s.set_cell_json("t", "r", "c", "{nope"), Err(Error::InvalidJson(_))));
    assert!(s.set_row_json("t", "r", "{}").is_err());
    assert!(s.set_table_json("t", r#"{"r":{}}"#).is_err());
    assert!(s.set_row_json("t", "r", r#"{"a":1,"b":"\u0000ok","c":[1,{"x":null}],"d":"\uFFFC"}"#).is_err(), "one bad cell refuses the whole row");
    assert!(s.set_values_json("[1,2]").is_err());
    assert!(s.apply_changes_json(r#"[{"t":{"r":{"c":2}}},{},0]"#).is_err());
    unchanged(&s);
    // Mergeable input: far-future HLC, malformed HLC, wrong stamp lengths, trailing element.
    let future = "[[{\"t\":[{\"r\":[{\"c\":[9,\"NjEuUjW----6YM_I\"]}]}]}],[{}],1]";
    assert!(matches!(s.apply_mergeable_changes_json(future), Err(Error::InvalidHlc(_))));
    assert!(s.apply_mergeable_changes_json("[[{\"t\":[{\"r\":[{\"c\":[9,\"NjEtLV-----6YM_\"]}]}]}],[{}],1]").is_err());
    assert!(s.apply_mergeable_changes_json("[[{\"t\":[{\"r\":[{\"c\":[9,\"NjEtLV-----6YM_I\",1,2]}]}]}],[{}],1]").is_err());
    assert!(s.apply_mergeable_changes_json("[[{\"t\":[{\"r\":[{\"c\":[9,\"NjEtLV-----6YM_I\"]}]}]}],[{}],0]").is_err());
    assert!(s.apply_mergeable_changes_json("[[[],\"\"],[{}],1]").is_err());
    assert!(s.set_mergeable_content_json("[[{},\"\"],[{},\"\",0]]").is_err(), "content needs hashes");
    assert!(s.apply_mergeable_changes_json(&"[".repeat(100_000)).is_err());
    // A whole message with one bad leaf among good ones is refused whole.
    let mixed = "[[{\"t\":[{\"r\":[{\"ok\":[1,\"NjEtLV-----6YM_I\"],\"bad\":[2,\"NjEuUjW----6YM_I\"]}]}]}],[{}],1]";
    assert!(s.apply_mergeable_changes_json(mixed).is_err());
    unchanged(&s);
    assert_eq!(s.get_cell("t", "r", "ok"), None);
}

#[test]
fn listeners_follow_tinybase_order_and_can_be_removed() {
    let s = store();
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let wildcard = s.add_cell_listener(None, None, None, move |_, t, r, c, new, old| {
        l.lock().unwrap().push(format!("any {t}/{r}/{c} {new:?} {old:?}"));
    });
    let l = log.clone();
    s.add_cell_listener(Some("t"), Some("r"), Some("c"), move |_, _, _, _, _, _| l.lock().unwrap().push("exact".into()));
    let l = log.clone();
    s.add_has_row_listener(None, None, move |_, t, r, has| l.lock().unwrap().push(format!("has {t}/{r} {has}")));
    let l = log.clone();
    s.add_row_count_listener(Some("t"), move |_, _, n| l.lock().unwrap().push(format!("count {n}")));
    s.set_cell("t", "r", "c", 1).unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        vec!["count 1", "has t/r true", "exact", "any t/r/c Some(Number(1.0)) None"]
    );
    log.lock().unwrap().clear();
    assert!(s.del_listener(wildcard));
    assert!(!s.del_listener(wildcard));
    s.set_cell("t", "r", "c", 2).unwrap();
    assert_eq!(*log.lock().unwrap(), vec!["exact"]);
}

#[test]
fn listeners_added_after_unobserved_writes_or_mid_transaction_fire() {
    // A store with no listener takes a fast path past the listener bookkeeping; adding one
    // (even inside a transaction, or after all were removed) must bring it back.
    let s = store();
    s.set_cell("t", "r", "c", 1).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    s.transaction(|st| {
        st.set_cell("t", "r", "c", 2).unwrap();
        st.add_cell_listener(None, None, None, move |_, _, _, _, new, _| l.lock().unwrap().push(format!("{new:?}")));
        st.set_cell("t", "r", "c", 3).unwrap();
    });
    assert_eq!(*log.lock().unwrap(), vec!["Some(Number(3.0))"]);
    let l = log.clone();
    let start = s.add_start_transaction_listener(move |_| l.lock().unwrap().push("start".into()));
    s.set_cell("t", "r", "c", 4).unwrap();
    assert_eq!(*log.lock().unwrap(), vec!["Some(Number(3.0))", "start", "Some(Number(4.0))"]);
    assert!(s.del_listener(start));
    assert_eq!(s.get_listener_count(), 1);
    s.set_cell("t", "r", "c", 5).unwrap();
    assert_eq!(log.lock().unwrap().last().map(String::as_str), Some("Some(Number(5.0))"));
}

#[test]
fn listeners_may_read_and_write_the_store() {
    let s = store();
    s.add_value_listener(Some("a"), |st, _, new, _| {
        if let Some(Cell::Number(n)) = new {
            st.set_value("double", n * 2.0).unwrap();
        }
    });
    s.set_value("a", 21).unwrap();
    assert_eq!(s.get_value("double"), Some(Cell::Number(42.0)));
}

#[test]
fn rollback_leaves_no_trace_and_panics_roll_back() {
    let s = store();
    s.set_json(r#"[{"t":{"r":{"c":1}}},{"v":"x"}]"#).unwrap();
    let before = (s.get_content(), s.get_mergeable_content_hashes(), s.get_encoded_mergeable_content_json());
    let calls = Arc::new(Mutex::new(0));
    let c2 = calls.clone();
    s.add_cell_listener(None, None, None, move |_, _, _, _, _, _| *c2.lock().unwrap() += 1);
    s.transaction_with(
        |st| {
            st.set_cell("t", "r", "c", 2).unwrap();
            st.set_cell("u", "r", "c", 3).unwrap();
            st.del_value("v");
            assert_eq!(st.get_transaction_changes_json(), "[{\"t\":{\"r\":{\"c\":2}},\"u\":{\"r\":{\"c\":3}}},{\"v\":\"\u{FFFC}\"},1]");
        },
        |_| true,
    );
    assert_eq!((s.get_content(), s.get_mergeable_content_hashes(), s.get_encoded_mergeable_content_json()), before);
    assert_eq!(*calls.lock().unwrap(), 0);
    let s2 = s.clone();
    let result = std::panic::catch_unwind(move || {
        s2.transaction(|st| {
            st.set_cell("t", "r", "c", 9).unwrap();
            panic!("boom");
        })
    });
    assert!(result.is_err());
    assert_eq!(s.get_cell("t", "r", "c"), Some(Cell::Number(1.0)));
    assert_eq!(s.get_transaction_changes_json(), "[{},{},1]");
}

#[test]
fn did_finish_listeners_see_the_transaction_changes() {
    let s = store();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (seen2, m) = (seen.clone(), s.clone());
    s.add_did_finish_transaction_listener(move |st| {
        seen2.lock().unwrap().push(st.get_transaction_changes_json());
        seen2.lock().unwrap().push(m.get_encoded_transaction_mergeable_changes_json(false));
    });
    s.set_cell("t", "r", "c", "x").unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0], r#"[{"t":{"r":{"c":"x"}}},{},1]"#);
    assert_eq!(seen[1], r#"[[{"t":[{"r":[{"c":["x","NjEtLV-----7JQY8"]}]}]}],[{}],1]"#);
}

#[test]
fn replicas_converge_and_hashes_match_a_recount() {
    let a = MergeableStore::with_clock(Some("a"), || 1_700_000_000_000.0);
    let b = MergeableStore::with_clock(Some("b"), || 1_700_000_000_000.0);
    a.set_cell("t", "r", "x", 1).unwrap();
    b.set_cell("t", "r", "x", 2).unwrap();
    b.set_cell("t", "q", "y", "b").unwrap();
    a.del_cell("t", "r", "x");
    a.merge(&b).unwrap();
    assert_eq!(a.get_mergeable_content_hashes(), b.get_mergeable_content_hashes());
    assert_eq!(a.get_content(), b.get_content());
    assert_eq!(a.get_mergeable_content_hashes(), a.compute_content_hashes());
    // Applying the same content again changes nothing (idempotent).
    let json = b.get_encoded_mergeable_content_json();
    a.apply_mergeable_changes_json(&json).unwrap();
    assert_eq!(a.get_encoded_mergeable_content_json().len(), json.len());
}

#[test]
fn default_content_never_overrides_stamped_data() {
    let s = store();
    s.set_cell("t", "r", "c", "real").unwrap();
    s.set_default_content_json(r#"[{"t":{"r":{"c":"default","d":"filled"}}},{"v":1}]"#).unwrap();
    assert_eq!(s.get_cell("t", "r", "c"), Some(Cell::from("real")));
    assert_eq!(s.get_cell("t", "r", "d"), Some(Cell::from("filled")));
    assert!(s.get_encoded_mergeable_content_json().contains("\"d\":[\"filled\",\"\","));
}

#[test]
fn plain_store_works_without_metadata() {
    let s = Store::new();
    s.set_tables_json(r#"{"t":{"r":{"a":1,"b":2}}}"#).unwrap();
    s.del_cell("t", "r", "a");
    assert_eq!(s.get_tables_json(), r#"{"t":{"r":{"b":2}}}"#);
    assert!(MergeableStore::from_store(&s).is_none());
    s.start_transaction();
    s.set_cell("t", "r", "b", 3).unwrap();
    s.finish_transaction(true).unwrap();
    assert_eq!(s.get_cell("t", "r", "b"), Some(Cell::Number(2.0)));
}

#[test]
fn set_json_of_a_tables_object_sets_the_tables_as_tinybase_does() {
    // TinyBase 10: setJson falls back to setTablesJson when the text is not [tables, values].
    let s = Store::new();
    s.set_value("old", 9).unwrap();
    s.set_cell("x", "y", "z", 1).unwrap();
    s.set_json(r#"{"t":{"r":{"c":1}}}"#).unwrap();
    assert_eq!(s.get_json(), r#"[{"t":{"r":{"c":1}}},{"old":9}]"#);
    s.set_json("{}").unwrap();
    assert_eq!(s.get_json(), r#"[{},{"old":9}]"#);
    // Invalid tables are still refused (PROTOCOL.md 12: errors where TinyBase ignores), untouched.
    s.set_json(r#"{"t":{"r":{"c":{"o":1}}}}"#).unwrap();
    assert!(s.set_json(r#"{"t":1}"#).is_err());
    assert_eq!(s.get_json(), "[{\"t\":{\"r\":{\"c\":\"\u{FFFD}{\\\"o\\\":1}\"}}},{\"old\":9}]");
}

#[test]
#[allow(clippy::needless_borrows_for_generic_args)] // the borrowed forms are what is tested
fn set_cell_and_set_value_take_every_cell_argument_form() {
    let s = store();
    let owned = String::from("owned");
    let object = Cell::Object(serde_json::from_str(r#"{"b":1.5,"a":"x"}"#).unwrap());
    s.set_cell("t", "r", "str", "borrowed").unwrap();
    s.set_cell("t", "r", "string_ref", &owned).unwrap();
    s.set_cell("t", "r", "string", owned.clone()).unwrap();
    s.set_cell("t", "r", "f64", 1.5).unwrap();
    s.set_cell("t", "r", "i64", -7i64).unwrap();
    s.set_cell("t", "r", "i32", 3).unwrap();
    s.set_cell("t", "r", "bool", false).unwrap();
    s.set_cell("t", "r", "cell_ref", &object).unwrap();
    s.set_cell("t", "r", "cell", Cell::Null).unwrap();
    s.set_value("v", &owned).unwrap();
    s.set_value("w", object.clone()).unwrap();
    assert_eq!(
        s.get_tables_json(),
        r#"{"t":{"r":{"str":"borrowed","string_ref":"owned","string":"owned","f64":1.5,"i64":-7,"i32":3,"bool":false,"cell_ref":"�{\"b\":1.5,\"a\":\"x\"}","cell":null}}}"#
    );
    assert_eq!(s.get_cell("t", "r", "cell_ref"), Some(object.clone()));
    assert_eq!(s.get_value("v"), Some(Cell::from("owned")));
    assert_eq!(s.get_value("w"), Some(object));
    // Every form is validated, a borrowed string as much as an owned one.
    let before = s.get_mergeable_content_hashes();
    let reserved = String::from("\u{FFFD}[]");
    assert!(matches!(s.set_cell("t", "r", "str", reserved.as_str()), Err(Error::InvalidValue(_))));
    assert!(matches!(s.set_cell("t", "r", "str", &reserved), Err(Error::InvalidValue(_))));
    assert!(matches!(s.set_value("v", &Cell::Number(f64::NAN)), Err(Error::InvalidValue(_))));
    assert_eq!(s.get_mergeable_content_hashes(), before);
}

/// Local writes put a table's new term into the tables hash once per transaction, when
/// something reads it: every read, rollback, merge and commit sees the exact hash.
#[test]
fn tables_hash_is_exact_inside_and_after_transactions() {
    let s = store();
    s.set_json(r#"[{"t":{"r":{"c":1}},"u":{"r":{"c":2}}},{"v":1}]"#).unwrap();
    let exact = |s: &MergeableStore| assert_eq!(s.get_mergeable_content_hashes(), s.compute_content_hashes());
    let before = (s.get_encoded_mergeable_content_json(), s.get_mergeable_content_hashes());
    let other = MergeableStore::with_clock(Some("o"), || 1_700_000_000_000.0);
    other.set_cell("u", "x", "c", "other").unwrap();
    let incoming = other.get_encoded_mergeable_content_json();
    s.transaction_with(
        |st| {
            for i in 0..60 {
                st.set_cell(["t", "u", "w"][i % 3], &format!("r{i}"), "c", i as i32).unwrap();
            }
            exact(&s);
            st.del_row("t", "r0");
            s.apply_mergeable_changes_json(&incoming).unwrap();
            exact(&s);
            st.set_cell("w", "r", "c", 9).unwrap();
            assert!(s.get_transaction_mergeable_changes_json(true).contains("\"w\""));
            st.set_cell("w", "r", "d", 10).unwrap();
        },
        |_| true,
    );
    assert_eq!((s.get_encoded_mergeable_content_json(), s.get_mergeable_content_hashes()), before, "rolled back");
    // Committed, nested, then a whole content replaced inside a transaction that rolls back.
    s.transaction(|st| {
        st.transaction(|st| {
            for i in 0..30 {
                st.set_cell(["t", "u"][i % 2], &format!("n{i}"), "c", "x").unwrap();
            }
        });
        st.set_value("v", 2).unwrap();
        st.set_cell("t", "n0", "c", "y").unwrap();
    });
    exact(&s);
    let committed = (s.get_encoded_mergeable_content_json(), s.get_mergeable_content_hashes());
    s.transaction_with(
        |st| {
            st.set_cell("t", "z", "c", 1).unwrap();
            s.set_mergeable_content_json(&incoming).unwrap();
            exact(&s);
        },
        |_| true,
    );
    assert_eq!((s.get_encoded_mergeable_content_json(), s.get_mergeable_content_hashes()), committed, "content rolled back");
    // A replica given the content agrees on every hash.
    let copy = MergeableStore::with_clock(Some("c"), || 1_700_000_000_000.0);
    copy.apply_mergeable_changes_json(&committed.0).unwrap();
    assert_eq!(copy.get_mergeable_content_hashes(), committed.1);
}
