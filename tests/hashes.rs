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
