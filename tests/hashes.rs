//! Hashes: equal content hashes equal (the empty-row deviation), and hashes from outside are
//! validated.

use tinybase::MergeableStore;

const NOW: f64 = 1_700_000_000_000.0;

fn store(id: &str) -> MergeableStore {
    MergeableStore::with_clock(Some(id), || NOW)
}

fn consistent(s: &MergeableStore) {
    assert_eq!(s.get_mergeable_content_hashes(), s.compute_content_hashes(), "{}", s.get_encoded_mergeable_content_json());
}

/// An empty row received in a message, later given cells (by a peer or locally): the stores
/// hold equal content and must hash equal (TinyBase keeps `H("ghost:0")` in the table for good).
#[test]
fn an_empty_row_from_a_message_does_not_split_the_hashes_of_equal_content() {
    let ghost = r#"[[{"pets":[{"ghost":[{}]}]}],[{}],1]"#;
    // A peer's cell lands in the empty row.
    let (a, b) = (store("a"), store("b"));
    b.apply_mergeable_changes_json(ghost).unwrap();
    consistent(&b);
    a.set_cell("pets", "ghost", "x", 1).unwrap();
    b.apply_mergeable_changes_json(&a.get_encoded_mergeable_content_json()).unwrap();
    assert_eq!(a.get_encoded_mergeable_content_json(), b.get_encoded_mergeable_content_json());
    assert_eq!(a.get_mergeable_content_hashes(), b.get_mergeable_content_hashes());
    consistent(&b);

    // A local write lands in it (the row came in an earlier transaction).
    let (c, d) = (store("c"), store("c"));
    c.apply_mergeable_changes_json(ghost).unwrap();
    c.set_cell("pets", "ghost", "x", 1).unwrap();
    d.set_cell("pets", "ghost", "x", 1).unwrap();
    assert_eq!(c.get_encoded_mergeable_content_json(), d.get_encoded_mergeable_content_json());
    assert_eq!(c.get_mergeable_content_hashes(), d.get_mergeable_content_hashes());
    consistent(&c);

    // The same with an empty table, and with both in one transaction of received changes.
    let (e, f) = (store("e"), store("e"));
    e.apply_mergeable_changes_json(r#"[[{"pets":[{}]}],[{}],1]"#).unwrap();
    consistent(&e);
    e.set_cell("pets", "rex", "x", 2).unwrap();
    f.set_cell("pets", "rex", "x", 2).unwrap();
    assert_eq!(e.get_mergeable_content_hashes(), f.get_mergeable_content_hashes());
    consistent(&e);
    let g = store("g");
    g.start_transaction();
    g.apply_mergeable_changes_json(ghost).unwrap();
    g.apply_mergeable_changes_json(&a.get_encoded_mergeable_content_json()).unwrap();
    g.finish_transaction(false).unwrap();
    assert_eq!(g.get_mergeable_content_hashes(), a.get_mergeable_content_hashes());
    consistent(&g);
}

/// The same when the empty row or table and the local write come in one transaction.
#[test]
fn an_empty_row_or_table_written_locally_in_the_same_transaction_hashes_as_its_content() {
    let (c, d) = (store("c"), store("c"));
    c.start_transaction();
    c.apply_mergeable_changes_json(r#"[[{"pets":[{"ghost":[{}]}]}],[{}],1]"#).unwrap();
    c.set_cell("pets", "ghost", "x", 1).unwrap();
    c.finish_transaction(false).unwrap();
    d.set_cell("pets", "ghost", "x", 1).unwrap();
    assert_eq!(c.get_mergeable_content_hashes(), d.get_mergeable_content_hashes());
    consistent(&c);
    let e = store("e");
    e.start_transaction();
    e.apply_mergeable_changes_json(r#"[[{"pets":[{}]}],[{}],1]"#).unwrap();
    e.set_cell("pets", "g", "x", 1).unwrap();
    e.finish_transaction(false).unwrap();
    consistent(&e);
    // Rolled back, nothing of either is left.
    let f = store("f");
    f.start_transaction();
    f.apply_mergeable_changes_json(r#"[[{"pets":[{"ghost":[{}]}]}],[{}],1]"#).unwrap();
    f.set_cell("pets", "ghost", "x", 1).unwrap();
    f.finish_transaction(true).unwrap();
    assert_eq!(f.get_mergeable_content_hashes(), (0, 0));
    consistent(&f);
}

/// An empty row alone is content TinyBase keeps and sends (a row diff carries it): as there.
#[test]
fn an_empty_row_alone_is_kept_as_tinybase_keeps_it() {
    let (a, b) = (store("a"), store("b"));
    a.set_cell("pets", "fido", "species", "dog").unwrap();
    b.apply_mergeable_changes_json(&a.get_encoded_mergeable_content_json()).unwrap();
    b.apply_mergeable_changes_json(r#"[[{"pets":[{"ghost":[{}]}]}],[{}],1]"#).unwrap();
    assert!(b.get_encoded_mergeable_content_json().contains(r#""ghost":[{},"",0]"#));
    consistent(&b);
    // What a pull from b brings a: the empty row, after which both hash equal.
    let diff = b.get_mergeable_row_diff_json(&a.get_mergeable_row_hashes_json(&b.get_mergeable_table_hashes_json()).unwrap()).unwrap();
    assert_eq!(diff, r#"[[{"pets":[{"ghost":[{}]}]}],{}]"#);
    a.apply_mergeable_changes_json(r#"[[{"pets":[{"ghost":[{}]}]}],[{}],1]"#).unwrap();
    assert_eq!(a.get_mergeable_content_hashes(), b.get_mergeable_content_hashes());
}

const H: &str = "NjEtLV-----Z21Zg";

fn content_with(hashes: [&str; 5]) -> String {
    let [cell, row, table, tables, values] = hashes;
    format!(r#"[[{{"t":[{{"r":[{{"c":[1,"{H}",{cell}]}},"",{row}]}},"",{table}]}},"",{tables}],[{{}},"",{values}]]"#)
}

/// Hashes in content must be integers from 0 to 2^32 - 1; anything else is refused whole.
#[test]
fn content_hashes_out_of_range_or_not_integers_are_refused() {
    let s = store("s");
    s.set_cell("keep", "r", "c", "me").unwrap();
    let before = s.get_encoded_mergeable_content_json();
    for bad in ["-1", "4294967296", "1.5", "1e10", "\"5\"", "null", "[1]", "{}", "true"] {
        for at in 0..5 {
            let mut h = ["0"; 5];
            h[at] = bad;
            let err = s.set_mergeable_content_json(&content_with(h)).expect_err(bad);
            assert!(err.to_string().contains("hash"), "{bad} at {at}: {err}");
            assert_eq!(s.get_encoded_mergeable_content_json(), before, "{bad} at {at}");
        }
    }
    // Changes keep ignoring a stamp's hash, as TinyBase does.
    s.apply_mergeable_changes_json(&format!(r#"[[{{"t":[{{"r":[{{"c":[1,"{H}",-1.5]}}]}}]}}],[{{}}],1]"#)).unwrap();
}

/// Whatever hashes content claims, the store keeps what its stamps compute; content from
/// TinyBase keeps exactly its own hashes.
#[test]
fn loaded_content_hashes_agree_with_recomputation() {
    let s = store("s");
    s.set_mergeable_content_json(&content_with(["1", "2", "3", "4", "5"])).unwrap();
    assert_eq!(s.get_mergeable_content_hashes(), s.compute_content_hashes());
    let honest = store("h");
    honest.apply_mergeable_changes_json(&format!(r#"[[{{"t":[{{"r":[{{"c":[1,"{H}"]}}]}}]}}],[{{}}],1]"#)).unwrap();
    assert_eq!(s.get_encoded_mergeable_content_json(), honest.get_encoded_mergeable_content_json());

    // Content TinyBase produced (vectors and conformance fixtures) loads with its hashes.
    let root = env!("CARGO_MANIFEST_DIR");
    let mut checked = 0;
    for file in ["container_hashes", "apply_changes", "local_ops", "diffs", "sync_transcript"] {
        let text = std::fs::read_to_string(format!("{root}/tests/vectors/{file}.json")).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut found = Vec::new();
        collect_content(&json, &mut found);
        for content in found {
            let t = store("t");
            t.set_mergeable_content_json(&content).unwrap();
            assert_eq!(t.get_encoded_mergeable_content_json(), content, "{file}");
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} TinyBase contents");
}

fn collect_content(json: &serde_json::Value, out: &mut Vec<String>) {
    match json {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match v.as_str() {
                    Some(s) if k.ends_with("ncodedMergeableContentJson") || k.ends_with("ncodedMergeableContentAfterJson") => out.push(s.to_string()),
                    _ => collect_content(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| collect_content(v, out)),
        _ => {}
    }
}

/// Whatever takes hashes from a peer refuses what is not a hash.
#[test]
fn diff_methods_refuse_what_is_not_a_hash() {
    let s = store("s");
    s.set_cell("t", "r", "c", 1).unwrap();
    s.set_value("v", 1).unwrap();
    for bad in ["\"5\"", "null", "[1]", "{}", "true", "-1", "1.5", "4294967296"] {
        assert!(s.get_mergeable_table_diff_json(&format!(r#"{{"t":{bad}}}"#)).is_err(), "{bad}");
        assert!(s.get_mergeable_row_hashes_json(&format!(r#"{{"t":{bad}}}"#)).is_err(), "{bad}");
        assert!(s.get_mergeable_row_diff_json(&format!(r#"{{"t":{{"r":{bad}}}}}"#)).is_err(), "{bad}");
        assert!(s.get_mergeable_cell_hashes_json(&format!(r#"{{"t":{{"r":{bad}}}}}"#)).is_err(), "{bad}");
        assert!(s.get_mergeable_cell_diff_json(&format!(r#"{{"t":{{"r":{{"c":{bad}}}}}}}"#)).is_err(), "{bad}");
        assert!(s.get_mergeable_value_diff_json(&format!(r#"{{"v":{bad}}}"#)).is_err(), "{bad}");
    }
    assert_eq!(s.get_mergeable_table_diff_json(r#"{"t":0,"u":4294967295}"#).unwrap().matches("\"t\"").count(), 1);
    assert!(s.get_mergeable_cell_diff_json(r#"{"t":{"r":{"c":0}}}"#).unwrap().contains("\"c\""));
    assert_eq!(s.get_mergeable_value_diff_json(r#"{"v":0}"#).unwrap().matches("\"v\"").count(), 1);
}

/// An object cell received as a non-canonical text (key order, number forms) is kept and hashed
/// as sent (what TinyBase hashes), and written decoded as JSON.stringify writes the parsed value.
#[test]
fn a_non_canonical_object_text_is_hashed_as_sent_and_written_decoded_canonically() {
    let peer = store("peer");
    peer.set_value("v", 1).unwrap();
    let content: serde_json::Value = serde_json::from_str(&peer.get_encoded_mergeable_content_json()).unwrap();
    let hlc = content[1][0]["v"][1].as_str().unwrap().to_string();
    let sent = format!(r#"[[{{"t":[{{"r":[{{"c":["\uFFFD{{\"b\":1,\"10\":2.50,\"a\":[1e0]}}","{hlc}"]}}]}}]}}],[{{}}],1]"#);
    let s = store("a");
    s.apply_mergeable_changes_json(&sent).unwrap();
    consistent(&s);
    assert_eq!(s.as_store().get_content_json(), r#"[{"t":{"r":{"c":{"10":2.5,"b":1,"a":[1]}}}},{}]"#);
    assert!(s.get_mergeable_content_json().contains(r#"{"10":2.5,"b":1,"a":[1]}"#), "{}", s.get_mergeable_content_json());
    let encoded = s.get_encoded_mergeable_content_json();
    assert!(encoded.contains(r#""\uFFFD{\"b\":1,\"10\":2.50,\"a\":[1e0]}""#) || encoded.contains("\u{FFFD}{\\\"b\\\":1,\\\"10\\\":2.50,\\\"a\\\":[1e0]}"), "{encoded}");
    // A copy made from the encoded content holds the same text and hashes.
    let copy = store("b");
    copy.set_mergeable_content_json(&encoded).unwrap();
    assert_eq!(copy.get_mergeable_content_hashes(), s.get_mergeable_content_hashes());
}
