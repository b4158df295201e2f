//! Automerge: a "tables" map object under the root holding nested map objects, one transaction
//! per W1 and per W2 call; for W8 each document's change, applied in one batch.

use super::{refuse_over, Crdt, Prepared, W8_CELL};
use crate::measure::{cell_ids, Measure, W8_STORES};
use ::automerge::transaction::{Transactable, Transaction};
use ::automerge::{ActorId, Automerge, Change, ObjId, ObjType, ReadDoc, ScalarValue, Value, ROOT};

/// The library's name in the report and on the child command line.
pub const NAME: &str = "automerge";

/// The most cells `round` attempts: W1 slows as the document grows (about 3.2k cells/s at 100k,
/// 43 s for the round; 1.6k cells/s at 500k, 373 s and 330 MB peak RSS, here on 2 loaded cores),
/// so 250k cells take about 2-3 minutes and 1M would take well over 10.
pub const MAX_N: usize = 250_000;

/// The pinned crate version.
pub fn version() -> &'static str {
    super::pinned("automerge")
}

/// W1 cells/s, W2 calls/s and W3 bytes/cell at n cells.
pub fn round(n: usize) -> Vec<Measure> {
    refuse_over(NAME, n, MAX_N);
    super::round_of::<Am>(n)
}

/// W8: ms for the whole, the apply phase alone, and the total update bytes.
pub fn w8() -> Vec<Measure> {
    super::w8_of(
        |i| {
            let mut doc = Automerge::new().with_actor(actor(i));
            let mut tx = doc.transaction();
            tx.put(ROOT, "v", i as i64).expect("W8: put v");
            let tables = tx.put_object(ROOT, "tables", ObjType::Map).expect("W8: tables");
            let (t, r, c) = W8_CELL;
            set_cell(&mut tx, &tables, t, r, c, i as i64);
            tx.commit();
            doc.get_last_local_change().expect("W8: the change").raw_bytes().to_vec()
        },
        |updates| {
            let mut doc = Automerge::new().with_actor(actor(W8_STORES));
            let changes = updates.iter().map(|u| Change::from_bytes(u.clone()).expect("W8: decode"));
            doc.apply_changes(changes.collect::<Vec<_>>()).expect("W8: apply");
            doc
        },
        |doc| {
            let all = doc.get_all(ROOT, "v").expect("W8: v");
            assert_eq!(all.len(), W8_STORES, "W8: every document's write of v applied (as conflicts)");
            match doc.get(ROOT, "v").expect("W8: v") {
                Some((Value::Scalar(v), _)) => match v.as_ref() {
                    ScalarValue::Int(v) => assert!((0..W8_STORES as i64).contains(v), "W8: v = {v}"),
                    other => panic!("W8: v is {other:?}"),
                },
                other => panic!("W8: v is {other:?}"),
            }
            let (t, r, c) = W8_CELL;
            let doc = &doc;
            let tables = map(doc, &ROOT, "tables").expect("W8: tables");
            let cell = map(doc, &tables, t).and_then(|t| map(doc, &t, r)).map(|r| doc.get(&r, c));
            assert!(matches!(cell, Some(Ok(Some((Value::Scalar(_), _))))), "W8: t/r/c is {cell:?}");
        },
    )
}

/// Document i's actor id (distinct per document, as B3.1's clients).
fn actor(i: usize) -> ActorId {
    ActorId::from(&(i as u64 + 1).to_be_bytes()[..])
}

/// The document and its "tables" object.
struct AmDoc {
    doc: Automerge,
    tables: ObjId,
}

/// Automerge through the `Crdt` interface.
struct Am;

/// The map object at `key` in `obj`, if that is what it holds.
fn map<R: ReadDoc>(doc: &R, obj: &ObjId, key: &str) -> Option<ObjId> {
    match doc.get(obj, key).ok()?? {
        (Value::Object(ObjType::Map), id) => Some(id),
        _ => None,
    }
}

/// Sets tables/t/r/c, creating the map objects that are missing.
fn set_cell(tx: &mut Transaction, tables: &ObjId, t: &str, r: &str, c: &str, value: impl Into<ScalarValue>) {
    let child = |tx: &mut Transaction, obj: &ObjId, key: &str| match map(tx, obj, key) {
        Some(id) => id,
        None => tx.put_object(obj, key, ObjType::Map).expect("put_object"),
    };
    let table = child(tx, tables, t);
    let row = child(tx, &table, r);
    tx.put(&row, c, value).expect("put");
}

impl Crdt for Am {
    type Doc = AmDoc;

    fn w1(cells: Vec<Prepared>) -> AmDoc {
        let mut doc = Automerge::new().with_actor(actor(0));
        let mut tx = doc.transaction();
        let tables = tx.put_object(ROOT, "tables", ObjType::Map).expect("tables");
        for (t, r, c, v) in cells {
            set_cell(&mut tx, &tables, &t, &r, &c, v);
        }
        tx.commit();
        AmDoc { doc, tables }
    }

    fn w2(d: &mut AmDoc, (t, r, c, v): Prepared) {
        let mut tx = d.doc.transaction();
        set_cell(&mut tx, &d.tables, &t, &r, &c, v);
        tx.commit();
    }

    fn cell_count(d: &AmDoc) -> usize {
        let doc = &d.doc;
        let mut count = 0;
        for t in doc.keys(&d.tables) {
            let Some(table) = map(doc, &d.tables, &t) else { continue };
            for r in doc.keys(&table) {
                if let Some(row) = map(doc, &table, &r) {
                    count += doc.length(&row);
                }
            }
        }
        count
    }

    fn cell(d: &AmDoc, i: usize) -> Option<String> {
        let (t, r, c) = cell_ids(i);
        let doc = &d.doc;
        let row = map(doc, &d.tables, &t).and_then(|t| map(doc, &t, &r))?;
        match doc.get(&row, c).ok()?? {
            (Value::Scalar(v), _) => match v.as_ref() {
                ScalarValue::Str(s) => Some(s.to_string()),
                _ => None,
            },
            _ => None,
        }
    }
}
