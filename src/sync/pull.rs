//! TinyBase's pull procedure (`getChangesFromOtherStore`): content hashes, then the table,
//! row, cell and value diffs as needed, merged into one set of changes.

use super::message::Message;
use super::worker::{is_empty_obj, Body, Done, Worker};
use crate::value::to_json_string;
use parking_lot::Mutex;
use serde_json::{Map, Value as Json};
use std::sync::Arc;

/// The ignored error of a response that does not fit its request (TinyBase throws whatever its
/// destructuring throws there, without a code; ours carries the invalid-message code).
const BAD_RESPONSE: &str = "tinybase:14:response";

impl Worker {
    /// TinyBase's `getChangesFromOtherStore`: asks for content hashes (unless given), then for
    /// the table, row, cell and value diffs as needed; `done` gets `[tables, values, 1]`.
    pub(super) fn pull(&mut self, other: Option<String>, hashes: Option<Json>, tx: String, done: Done) {
        match hashes {
            Some(h) => self.pull_with(other, h, tx, done),
            None => self.request(
                None,
                Message::GetContentHashes,
                "\"\"",
                &tx.clone(),
                Box::new(move |w: &mut Worker, r| match r {
                    Ok((hashes, from)) => w.pull_with(Some(from), hashes.into_json(), tx, done),
                    Err(e) => done(w, Err(e)),
                }),
            ),
        }
    }

    fn pull_with(&mut self, other: Option<String>, hashes: Json, tx: String, done: Done) {
        let (their_tables, their_values) = match hashes.as_array().map(Vec::as_slice) {
            Some([Json::Number(t), Json::Number(v)]) => (t.as_f64().unwrap_or(-1.0), v.as_f64().unwrap_or(-1.0)),
            _ => return done(self, Err(format!("{BAD_RESPONSE}: content hashes are not [tablesHash, valuesHash]"))),
        };
        let (tables_hash, _) = self.store.get_mergeable_content_hashes();
        // The pull finishes once: with the changes, or with the first error.
        let done: SharedDone = Arc::new(Mutex::new(Some(done)));
        let values_step: Step = {
            let (other, tx, done) = (other.clone(), tx.clone(), done.clone());
            Arc::new(move |w: &mut Worker, tables: Body| {
                let (_, values_hash) = w.store.get_mergeable_content_hashes();
                if values_hash as f64 == their_values {
                    let changes = match tables {
                        // A table diff read from its text is these changes already.
                        Body::Parsed(p) => Body::Parsed(p),
                        Body::Json(tables) => Body::Json(Json::Array(vec![tables, Json::Array(vec![Json::Object(Map::new())]), Json::from(1)])),
                    };
                    finish(w, &done, Ok(changes));
                } else {
                    let tables = match tables {
                        Body::Parsed(p) => p.tables_json(),
                        Body::Json(tables) => tables,
                    };
                    let body = w.store.get_mergeable_value_hashes_json();
                    let done = done.clone();
                    w.request(
                        other.clone(),
                        Message::GetValueDiff,
                        &body,
                        &tx,
                        Box::new(move |w: &mut Worker, r| {
                            finish(w, &done, r.map(|(values, _)| Body::Json(Json::Array(vec![tables, values.into_json(), Json::from(1)]))))
                        }),
                    );
                }
            })
        };
        if tables_hash as f64 == their_tables {
            values_step(self, Body::Json(Json::Array(vec![Json::Object(Map::new())])));
            return;
        }
        let body = self.store.get_mergeable_table_hashes_json();
        let (other2, tx2) = (other.clone(), tx.clone());
        self.request(
            other,
            Message::GetTableDiff,
            &body,
            &tx,
            Box::new(move |w: &mut Worker, r| {
                let response = match r {
                    // `[tables, {}]` read from its text: no differing tables.
                    Ok((Body::Parsed(p), _)) if p.is_table_diff() => return values_step(w, Body::Parsed(p)),
                    Ok((response, _)) => response.into_json(),
                    Err(e) => return finish(w, &done, Err(e)),
                };
                let (mut tables, differing) = match split_diff(response) {
                    Ok(parts) => parts,
                    Err(e) => return finish(w, &done, Err(e)),
                };
                if is_empty_obj(&differing) {
                    return values_step(w, Body::Json(tables));
                }
                let body = match w.store.get_mergeable_row_hashes_json(&to_json_string(&differing)) {
                    Ok(b) => b,
                    Err(e) => return finish(w, &done, Err(format!("{BAD_RESPONSE}: {e}"))),
                };
                let (other3, tx3) = (other2.clone(), tx2.clone());
                w.request(
                    other2,
                    Message::GetRowDiff,
                    &body,
                    &tx2,
                    Box::new(move |w: &mut Worker, r| {
                        let (response, _) = match r {
                            Ok(r) => r,
                            Err(e) => return finish(w, &done, Err(e)),
                        };
                        let (rows, differing) = match split_diff(response.into_json()) {
                            Ok(parts) => parts,
                            Err(e) => return finish(w, &done, Err(e)),
                        };
                        merge_tables_stamps(&mut tables, rows);
                        if is_empty_obj(&differing) {
                            return values_step(w, Body::Json(tables));
                        }
                        let body = match w.store.get_mergeable_cell_hashes_json(&to_json_string(&differing)) {
                            Ok(b) => b,
                            Err(e) => return finish(w, &done, Err(format!("{BAD_RESPONSE}: {e}"))),
                        };
                        w.request(
                            other3,
                            Message::GetCellDiff,
                            &body,
                            &tx3,
                            Box::new(move |w: &mut Worker, r| match r {
                                Ok((cells, _)) => {
                                    merge_tables_stamps(&mut tables, cells.into_json());
                                    values_step(w, Body::Json(tables))
                                }
                                Err(e) => finish(w, &done, Err(e)),
                            }),
                        );
                    }),
                );
            }),
        );
    }
}

type SharedDone = Arc<Mutex<Option<Done>>>;
type Step = Arc<dyn Fn(&mut Worker, Body) + Send + Sync>;

fn finish(w: &mut Worker, done: &SharedDone, result: std::result::Result<Body, String>) {
    if let Some(done) = done.lock().take() {
        done(w, result);
    }
}

/// `[stamp, differingHashes]` from a table or row diff response.
fn split_diff(response: Json) -> std::result::Result<(Json, Json), String> {
    match response {
        Json::Array(mut parts) if parts.len() == 2 && parts[1].is_object() => {
            let differing = parts.pop().unwrap_or(Json::Null);
            Ok((parts.pop().unwrap_or(Json::Null), differing))
        }
        _ => Err(format!("{BAD_RESPONSE}: a diff is not [stamp, differingHashes]")),
    }
}

/// TinyBase's `mergeTablesStamps`: adds tables, rows and cells of `from` into `into`, taking the
/// later container HLC.
fn merge_tables_stamps(into: &mut Json, from: Json) {
    fn latest(a: Option<&Json>, b: Option<&Json>) -> Option<Json> {
        let (a, b) = (a.and_then(Json::as_str).unwrap_or(""), b.and_then(Json::as_str).unwrap_or(""));
        let l = if a > b { a } else { b };
        (!l.is_empty()).then(|| Json::String(l.to_string()))
    }
    fn set_hlc(stamp: &mut Vec<Json>, hlc: Option<Json>) {
        stamp.truncate(1);
        if let Some(h) = hlc {
            stamp.push(h);
        }
    }
    let Json::Array(from) = from else { return };
    let Some(Json::Array(into)) = Some(into) else { return };
    if into.is_empty() {
        into.push(Json::Object(Map::new()));
    }
    if let Some(Json::Object(tables)) = from.first() {
        for (t, table) in tables {
            let Some(table) = table.as_array() else { continue };
            let target = into[0].as_object_mut().map(|m| m.entry(t.clone()).or_insert_with(|| Json::Array(vec![Json::Object(Map::new())])));
            let Some(Json::Array(target)) = target else { continue };
            if let Some(Json::Object(rows)) = table.first() {
                for (r, row) in rows {
                    let Some(row) = row.as_array() else { continue };
                    let rt = target[0].as_object_mut().map(|m| m.entry(r.clone()).or_insert_with(|| Json::Array(vec![Json::Object(Map::new())])));
                    let Some(Json::Array(rt)) = rt else { continue };
                    if let (Some(Json::Object(cells)), Some(Json::Object(out))) = (row.first(), rt.first_mut()) {
                        for (c, cell) in cells {
                            out.insert(c.clone(), cell.clone());
                        }
                    }
                    let hlc = latest(rt.get(1), row.get(1));
                    set_hlc(rt, hlc);
                }
            }
            let hlc = latest(target.get(1), table.get(1));
            set_hlc(target, hlc);
        }
    }
    let hlc = latest(into.get(1), from.get(1));
    set_hlc(into, hlc);
}
