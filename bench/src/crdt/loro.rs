//! Loro: a root map "tables" holding mergeable nested maps (`ensure_mergeable_map`, which the docs
//! advise for lazily created map children), one commit per W1 and per W2 call, `all_updates`
//! exports imported in one batch for W8.

use super::{refuse_over, Crdt, Prepared, W8_CELL};
use crate::measure::{cell_ids, Measure, W8_STORES};
use ::loro::{Container, ExportMode, LoroDoc, LoroMap, LoroValue, ValueOrContainer};

/// The library's name in the report and on the child command line.
pub const NAME: &str = "loro";

/// The most cells `round` attempts: at 1M, W1 ran at about 8k cells/s here (2 cores, loaded; 172 s
/// for the round, 1.6 GB peak RSS, 800 bytes/cell live), so 1.5M cells already take about 5 minutes.
pub const MAX_N: usize = 1_500_000;

/// The pinned crate version.
pub fn version() -> &'static str {
    super::pinned("loro")
}

/// W1 cells/s, W2 calls/s and W3 bytes/cell at n cells.
pub fn round(n: usize) -> Vec<Measure> {
    refuse_over(NAME, n, MAX_N);
    super::round_of::<Loro>(n)
}

/// W8: ms for the whole, the apply phase alone, and the total update bytes.
pub fn w8() -> Vec<Measure> {
    super::w8_of(
        |i| {
            let doc = new_doc(i as u64 + 1);
            doc.get_map("values").insert("v", i as i64).expect("W8: v");
            let (t, r, c) = W8_CELL;
            set_cell(&doc.get_map("tables"), t, r, c, i as i64);
            doc.commit();
            doc.export(ExportMode::all_updates()).expect("W8: export")
        },
        |updates| {
            let doc = new_doc(W8_STORES as u64 + 1);
            let status = doc.import_batch(updates).expect("W8: import");
            assert!(status.pending.is_none(), "W8: updates left pending");
            doc
        },
        |doc| {
            assert_eq!(doc.oplog_vv().len(), W8_STORES, "W8: every document's update applied");
            match doc.get_map("values").get("v") {
                Some(ValueOrContainer::Value(LoroValue::I64(v))) => {
                    assert!((0..W8_STORES as i64).contains(&v), "W8: v = {v}")
                }
                other => panic!("W8: v is {other:?}"),
            }
            let (t, r, c) = W8_CELL;
            let cell = get_map(&doc.get_map("tables"), t).and_then(|t| get_map(&t, r)).and_then(|r| r.get(c));
            assert!(matches!(cell, Some(ValueOrContainer::Value(LoroValue::I64(_)))), "W8: t/r/c is {cell:?}");
        },
    )
}

/// A document with peer id `peer` (distinct per document, as B3.1's clients).
fn new_doc(peer: u64) -> LoroDoc {
    let doc = LoroDoc::new();
    doc.set_peer_id(peer).expect("peer id");
    doc
}

/// The document and its root map.
struct LoroDocument {
    doc: LoroDoc,
    tables: LoroMap,
}

/// Loro through the `Crdt` interface.
struct Loro;

/// Sets tables/t/r/c, creating the nested maps that are missing.
fn set_cell(tables: &LoroMap, t: &str, r: &str, c: &str, value: impl Into<LoroValue>) {
    let table = tables.ensure_mergeable_map(t).expect("table");
    let row = table.ensure_mergeable_map(r).expect("row");
    row.insert(c, value).expect("cell");
}

/// The nested map at `key`, if that is what it holds.
fn get_map(map: &LoroMap, key: &str) -> Option<LoroMap> {
    match map.get(key)? {
        ValueOrContainer::Container(Container::Map(m)) => Some(m),
        _ => None,
    }
}

impl Crdt for Loro {
    type Doc = LoroDocument;

    fn w1(cells: Vec<Prepared>) -> LoroDocument {
        let doc = new_doc(1);
        let tables = doc.get_map("tables");
        for (t, r, c, v) in cells {
            set_cell(&tables, &t, &r, &c, v);
        }
        doc.commit();
        LoroDocument { doc, tables }
    }

    fn w2(d: &mut LoroDocument, (t, r, c, v): Prepared) {
        set_cell(&d.tables, &t, &r, &c, v);
        d.doc.commit();
    }

    fn cell_count(d: &LoroDocument) -> usize {
        let mut count = 0;
        d.tables.for_each(|_, table| {
            if let ValueOrContainer::Container(Container::Map(table)) = table {
                table.for_each(|_, row| {
                    if let ValueOrContainer::Container(Container::Map(row)) = row {
                        count += row.len();
                    }
                });
            }
        });
        count
    }

    fn cell(d: &LoroDocument, i: usize) -> Option<String> {
        let (t, r, c) = cell_ids(i);
        match get_map(&d.tables, &t).and_then(|t| get_map(&t, &r))?.get(&c)? {
            ValueOrContainer::Value(LoroValue::String(s)) => Some(s.to_string()),
            _ => None,
        }
    }
}
