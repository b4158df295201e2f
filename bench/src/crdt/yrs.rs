//! Yrs (the Rust port of Yjs): a root map "tables" holding nested maps, one transaction per W1 and
//! per W2 call, v1 updates for W8 (crdt-benchmarks' encoding).

use super::{refuse_over, Crdt, Prepared, W8_CELL};
use crate::measure::{cell_ids, Measure, W8_STORES};
use ::yrs::updates::decoder::Decode;
use ::yrs::{Any, Doc, Map, MapRef, Number, Out, ReadTxn, StateVector, Transact, TransactionMut, Update};

/// The library's name in the report and on the child command line.
pub const NAME: &str = "yrs";

/// The most cells `round` attempts: about 830 bytes/cell and 38k cells/s at 1M measured here (2
/// cores, loaded; 46 s and 0.9 GB peak RSS at 1M), so 3M cells already take a few minutes.
pub const MAX_N: usize = 3_000_000;

/// The pinned crate version.
pub fn version() -> &'static str {
    super::pinned("yrs")
}

/// W1 cells/s, W2 calls/s and W3 bytes/cell at n cells.
pub fn round(n: usize) -> Vec<Measure> {
    refuse_over(NAME, n, MAX_N);
    super::round_of::<Yrs>(n)
}

/// W8: ms for the whole, the apply phase alone, and the total update bytes.
pub fn w8() -> Vec<Measure> {
    super::w8_of(
        |i| {
            let doc = Doc::with_client_id(i as u64 + 1);
            let values = doc.get_or_insert_map("values");
            let tables = doc.get_or_insert_map("tables");
            let mut txn = doc.transact_mut();
            values.insert(&mut txn, "v", i as f64);
            let (t, r, c) = W8_CELL;
            set_cell(&tables, &mut txn, t, r, c, i as f64);
            txn.encode_state_as_update_v1(&StateVector::default())
        },
        |updates| {
            let doc = Doc::with_client_id(W8_STORES as u64 + 1);
            {
                let mut txn = doc.transact_mut();
                for update in updates {
                    txn.apply_update(Update::decode_v1(update).expect("W8: decode")).expect("W8: apply");
                }
            }
            doc
        },
        |doc| {
            let values = doc.get_or_insert_map("values");
            let tables = doc.get_or_insert_map("tables");
            let txn = doc.transact();
            assert_eq!(txn.state_vector().len(), W8_STORES, "W8: every document's update applied");
            let v = match values.get(&txn, "v") {
                Some(Out::Any(Any::Number(Number::Int(v)))) => v,
                Some(Out::Any(Any::Number(Number::Float(v)))) => v as i64,
                other => panic!("W8: v is {other:?}"),
            };
            assert!((0..W8_STORES as i64).contains(&v), "W8: v = {v}");
            let (t, r, c) = W8_CELL;
            let cell = get_map(&tables, &txn, t).and_then(|t| get_map(&t, &txn, r)).and_then(|r| r.get(&txn, c));
            assert!(matches!(cell, Some(Out::Any(Any::Number(_)))), "W8: t/r/c is {cell:?}");
        },
    )
}

/// The document and its root map.
struct YrsDoc {
    doc: Doc,
    tables: MapRef,
}

/// Yrs through the `Crdt` interface.
struct Yrs;

/// Sets tables/t/r/c, creating the nested maps that are missing (Yrs' get_or_init).
fn set_cell(tables: &MapRef, txn: &mut TransactionMut, t: &str, r: &str, c: &str, value: impl Into<Any>) {
    let table: MapRef = tables.get_or_init(txn, t);
    let row: MapRef = table.get_or_init(txn, r);
    row.insert(txn, c, value.into());
}

/// The nested map at `key`, if that is what it holds.
fn get_map<T: ReadTxn>(map: &MapRef, txn: &T, key: &str) -> Option<MapRef> {
    match map.get(txn, key) {
        Some(Out::YMap(m)) => Some(m),
        _ => None,
    }
}

impl Crdt for Yrs {
    type Doc = YrsDoc;

    fn w1(cells: Vec<Prepared>) -> YrsDoc {
        let doc = Doc::with_client_id(1);
        let tables = doc.get_or_insert_map("tables");
        {
            let mut txn = doc.transact_mut();
            for (t, r, c, v) in cells {
                set_cell(&tables, &mut txn, &t, &r, &c, v);
            }
        }
        YrsDoc { doc, tables }
    }

    fn w2(d: &mut YrsDoc, (t, r, c, v): Prepared) {
        let mut txn = d.doc.transact_mut();
        set_cell(&d.tables, &mut txn, &t, &r, &c, v);
    }

    fn cell_count(d: &YrsDoc) -> usize {
        let txn = d.doc.transact();
        let mut count = 0;
        for (_, table) in d.tables.iter(&txn) {
            let Out::YMap(table) = table else { continue };
            for (_, row) in table.iter(&txn) {
                if let Out::YMap(row) = row {
                    count += row.len(&txn) as usize;
                }
            }
        }
        count
    }

    fn cell(d: &YrsDoc, i: usize) -> Option<String> {
        let (t, r, c) = cell_ids(i);
        let txn = d.doc.transact();
        match get_map(&d.tables, &txn, &t).and_then(|t| get_map(&t, &txn, &r))?.get(&txn, &c)? {
            Out::Any(Any::String(s)) => Some(s.to_string()),
            _ => None,
        }
    }
}
