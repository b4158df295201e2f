//! Runs a conformance script (shared/conformance/README.md) against this library and produces
//! `{"results": [...], "final": {...}}` as TinyBase's oracle does. Shared by the replay example
//! and the conformance tests.

#![allow(dead_code)]

use serde_json::{json, Map, Value as Json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tinybase::value::{parse_json, to_json_string};
use tinybase::{Cell, ListenerKind, MergeableStore, Row, Tables, Values};

const UNDEFINED: &str = "\u{FFFC}";

fn undefined() -> Json {
    Json::String(UNDEFINED.to_string())
}

fn opt(cell: Option<Cell>) -> Json {
    cell.map(|c| c.to_json()).unwrap_or_else(undefined)
}

fn ids(v: Vec<String>) -> Json {
    Json::Array(v.into_iter().map(Json::String).collect())
}

fn parse(text: &str) -> Json {
    parse_json(text).expect("library JSON output parses")
}

fn row_json(row: &Row) -> Json {
    Json::Object(row.iter().map(|(k, c)| (k.clone(), c.to_json())).collect())
}

fn tables_json(t: &Tables) -> Json {
    Json::Object(
        t.iter()
            .map(|(k, table)| (k.clone(), Json::Object(table.iter().map(|(r, row)| (r.clone(), row_json(row))).collect())))
            .collect(),
    )
}

fn values_json(v: &Values) -> Json {
    row_json(v)
}

fn to_row(j: &Json) -> Option<Row> {
    j.as_object()?.iter().map(|(k, v)| Some((k.clone(), Cell::from_json(v).ok()?))).collect()
}

fn to_tables(j: &Json) -> Option<Tables> {
    j.as_object()?
        .iter()
        .map(|(t, table)| Some((t.clone(), table.as_object()?.iter().map(|(r, row)| Some((r.clone(), to_row(row)?))).collect::<Option<_>>()?)))
        .collect()
}

fn listener_kind(op: &str) -> Option<ListenerKind> {
    use ListenerKind::*;
    Some(match op {
        "addHasTablesListener" => HasTables,
        "addTablesListener" => Tables,
        "addTableIdsListener" => TableIds,
        "addHasTableListener" => HasTable,
        "addTableListener" => Table,
        "addTableCellIdsListener" => TableCellIds,
        "addHasTableCellListener" => HasTableCell,
        "addRowCountListener" => RowCount,
        "addRowIdsListener" => RowIds,
        "addHasRowListener" => HasRow,
        "addRowListener" => Row,
        "addCellIdsListener" => CellIds,
        "addHasCellListener" => HasCell,
        "addCellListener" => Cell,
        "addHasValuesListener" => HasValues,
        "addValuesListener" => Values,
        "addValueIdsListener" => ValueIds,
        "addHasValueListener" => HasValue,
        "addValueListener" => Value,
        "addStartTransactionListener" => StartTransaction,
        "addWillFinishTransactionListener" => WillFinishTransaction,
        "addDidFinishTransactionListener" => DidFinishTransaction,
        _ => return None,
    })
}

/// Calls TinyBase method `op` with wire-encoded `args` on a store; Ok(None) when the method
/// returns the store. `wire` reads content and changes in wire form (argsFrom), as synchronizers
/// move them.
pub fn call_op(st: &MergeableStore, op: &str, args: &[Json], wire: bool) -> Result<Option<Json>, String> {
    let ignore = |r: tinybase::Result<()>| {
        let _ = r;
        None
    };
    let v = match op {
        "getTables" => Some(tables_json(&st.get_tables())),
        "getValues" => Some(values_json(&st.get_values())),
        "getContent" => Some(json!([tables_json(&st.get_tables()), values_json(&st.get_values())])),
        "getTableIds" => Some(ids(st.get_table_ids())),
        "getTable" => Some(Json::Object(st.get_table(&s(args, 0)).iter().map(|(r, row)| (r.clone(), row_json(row))).collect())),
        "getTableCellIds" => Some(ids(st.get_table_cell_ids(&s(args, 0)))),
        "getRowCount" => Some(json!(st.get_row_count(&s(args, 0)))),
        "getRowIds" => Some(ids(st.get_row_ids(&s(args, 0)))),
        "getRow" => Some(row_json(&st.get_row(&s(args, 0), &s(args, 1)))),
        "getCellIds" => Some(ids(st.get_cell_ids(&s(args, 0), &s(args, 1)))),
        "getCell" => Some(opt(st.get_cell(&s(args, 0), &s(args, 1), &s(args, 2)))),
        "getValueIds" => Some(ids(st.get_value_ids())),
        "getValue" => Some(opt(st.get_value(&s(args, 0)))),
        "hasTables" => Some(json!(st.has_tables())),
        "hasTable" => Some(json!(st.has_table(&s(args, 0)))),
        "hasTableCell" => Some(json!(st.has_table_cell(&s(args, 0), &s(args, 1)))),
        "hasRow" => Some(json!(st.has_row(&s(args, 0), &s(args, 1)))),
        "hasCell" => Some(json!(st.has_cell(&s(args, 0), &s(args, 1), &s(args, 2)))),
        "hasValues" => Some(json!(st.has_values())),
        "hasValue" => Some(json!(st.has_value(&s(args, 0)))),
        "getJson" => Some(Json::String(st.get_json())),
        "getTablesJson" => Some(Json::String(st.get_tables_json())),
        "getValuesJson" => Some(Json::String(st.get_values_json())),
        "getTransactionChanges" => Some(parse(&st.get_transaction_changes_json())),
        "getMergeableContent" => Some(parse(&if wire { st.get_encoded_mergeable_content_json() } else { st.get_mergeable_content_json() })),
        "getTransactionMergeableChanges" => {
            let with_hashes = args.first().and_then(Json::as_bool).unwrap_or(false);
            Some(parse(&if wire {
                st.get_encoded_transaction_mergeable_changes_json(with_hashes)
            } else {
                st.get_transaction_mergeable_changes_json(with_hashes)
            }))
        }
        "getMergeableContentHashes" => {
            let (t, v) = st.get_mergeable_content_hashes();
            Some(json!([t, v]))
        }
        "getMergeableTableHashes" => Some(parse(&st.get_mergeable_table_hashes_json())),
        "getMergeableTableDiff" => Some(parse(&st.get_mergeable_table_diff_json(&arg_json(args, 0)).map_err(|e| e.to_string())?)),
        "getMergeableRowHashes" => Some(parse(&st.get_mergeable_row_hashes_json(&arg_json(args, 0)).map_err(|e| e.to_string())?)),
        "getMergeableRowDiff" => Some(parse(&st.get_mergeable_row_diff_json(&arg_json(args, 0)).map_err(|e| e.to_string())?)),
        "getMergeableCellHashes" => Some(parse(&st.get_mergeable_cell_hashes_json(&arg_json(args, 0)).map_err(|e| e.to_string())?)),
        "getMergeableCellDiff" => Some(parse(&st.get_mergeable_cell_diff_json(&arg_json(args, 0)).map_err(|e| e.to_string())?)),
        "getMergeableValueHashes" => Some(parse(&st.get_mergeable_value_hashes_json())),
        "getMergeableValueDiff" => Some(parse(&st.get_mergeable_value_diff_json(&arg_json(args, 0)).map_err(|e| e.to_string())?)),
        "setTables" => ignore(to_tables(&args[0]).ok_or(()).map_err(|_| tinybase::Error::InvalidShape(String::new())).and_then(|t| st.set_tables(&t))),
        "setTable" => ignore(st.set_table_json(&s(args, 0), &arg_json(args, 1))),
        "setRow" => ignore(st.set_row_json(&s(args, 0), &s(args, 1), &arg_json(args, 2))),
        "setPartialRow" => ignore(st.set_partial_row_json(&s(args, 0), &s(args, 1), &arg_json(args, 2))),
        "addRow" => Some(match st.add_row_json(&s(args, 0), &arg_json(args, 1), args.get(2) != Some(&Json::Bool(false))) {
            Ok(id) => Json::String(id),
            Err(_) => undefined(),
        }),
        "setCell" => ignore(st.set_cell_json(&s(args, 0), &s(args, 1), &s(args, 2), &arg_json(args, 3))),
        "setValues" => ignore(to_row(&args[0]).filter(|v| !v.is_empty()).ok_or(tinybase::Error::InvalidShape(String::new())).and_then(|v| st.set_values(&v))),
        "setPartialValues" => ignore(st.set_partial_values_json(&arg_json(args, 0))),
        "setValue" => ignore(st.set_value_json(&s(args, 0), &arg_json(args, 1))),
        "setContent" => ignore(st.set_content_json(&arg_json(args, 0))),
        "applyChanges" => ignore(st.apply_changes_json(&arg_json(args, 0))),
        "delTables" => {
            st.del_tables();
            None
        }
        "delTable" => {
            st.del_table(&s(args, 0));
            None
        }
        "delRow" => {
            st.del_row(&s(args, 0), &s(args, 1));
            None
        }
        "delCell" => {
            st.del_cell(&s(args, 0), &s(args, 1), &s(args, 2));
            None
        }
        "delValues" => {
            st.del_values();
            None
        }
        "delValue" => {
            st.del_value(&s(args, 0));
            None
        }
        "setMergeableContent" => ignore(st.set_mergeable_content_json(&arg_json(args, 0))),
        "applyMergeableChanges" => ignore(st.apply_mergeable_changes_json(&arg_json(args, 0))),
        "setDefaultContent" => ignore(st.set_default_content_json(&arg_json(args, 0))),
        _ => return Err(format!("unknown op {op}")),
    };
    Ok(v)
}

struct Runner {
    now: Arc<Mutex<f64>>,
    offsets: HashMap<String, Arc<Mutex<f64>>>,
    stores: HashMap<String, MergeableStore>,
    names: Vec<String>,
    listener_ids: HashMap<String, (String, u64)>,
    results: Arc<Mutex<Vec<Json>>>,
}

fn s(args: &[Json], i: usize) -> String {
    match args.get(i) {
        Some(Json::String(x)) => x.clone(),
        Some(other) => to_json_string(other),
        None => String::new(),
    }
}

fn arg_json(args: &[Json], i: usize) -> String {
    to_json_string(args.get(i).unwrap_or(&Json::Null))
}

impl Runner {
    fn store(&self, name: &str) -> &MergeableStore {
        self.stores.get(name).unwrap_or_else(|| panic!("unknown store {name}"))
    }

    /// Calls `op`; Ok(None) when it returns the store (nothing recorded). `wire` reads content
    /// and changes in wire form (argsFrom), as synchronizers move them.
    fn call(&self, name: &str, op: &str, args: &[Json], wire: bool) -> Result<Option<Json>, String> {
        call_op(self.store(name), op, args, wire)
    }


    fn args_of(&self, step: &Map<String, Json>) -> Result<Vec<Json>, String> {
        if let Some(from) = step.get("argsFrom").and_then(Json::as_array) {
            from.iter()
                .map(|src| {
                    let src = src.as_object().ok_or("bad argsFrom")?;
                    if let Some(op) = src.get("op").and_then(Json::as_str) {
                        let store = src.get("store").and_then(Json::as_str).ok_or("argsFrom without store")?;
                        let args: Vec<Json> = src.get("args").and_then(Json::as_array).cloned().unwrap_or_default();
                        Ok(self.call(store, op, &args, true)?.unwrap_or(Json::Null))
                    } else {
                        Ok(src.get("value").cloned().unwrap_or_else(undefined))
                    }
                })
                .collect()
        } else {
            Ok(step.get("args").and_then(Json::as_array).cloned().unwrap_or_default())
        }
    }

    fn add_listener(&mut self, name: &str, op: &str, step: &Map<String, Json>) -> Result<(), String> {
        let kind = listener_kind(op).ok_or_else(|| format!("unknown listener op {op}"))?;
        let args: Vec<Json> = step.get("args").and_then(Json::as_array).cloned().unwrap_or_default();
        let id_args: Vec<Option<String>> = (0..kind.id_count())
            .map(|i| match args.get(i) {
                None | Some(Json::Null) => None,
                Some(Json::String(s)) => Some(s.clone()),
                Some(other) => Some(to_json_string(other)),
            })
            .collect();
        let refs: Vec<Option<&str>> = id_args.iter().map(|o| o.as_deref()).collect();
        let label = step.get("id").cloned().unwrap_or(Json::Null);
        let results = self.results.clone();
        let id = self
            .store(name)
            .add_listener_of_kind(kind, &refs, move |_, e| {
                let mut call: Vec<Json> = e.ids.iter().map(|s| Json::String(s.clone())).collect();
                match e.kind {
                    ListenerKind::Cell | ListenerKind::Value => {
                        call.push(opt(e.new_cell.clone()));
                        call.push(opt(e.old_cell.clone()));
                    }
                    ListenerKind::HasTables
                    | ListenerKind::HasTable
                    | ListenerKind::HasTableCell
                    | ListenerKind::HasRow
                    | ListenerKind::HasCell
                    | ListenerKind::HasValues
                    | ListenerKind::HasValue => call.push(Json::Bool(e.has)),
                    ListenerKind::RowCount => call.push(json!(e.row_count)),
                    ListenerKind::StartTransaction | ListenerKind::WillFinishTransaction | ListenerKind::DidFinishTransaction => call.clear(),
                    _ => {}
                }
                results.lock().unwrap().push(json!({"listener": label.clone(), "call": call}));
            })
            .map_err(|e| e.to_string())?;
        if let Some(Json::String(l)) = step.get("id") {
            self.listener_ids.insert(l.clone(), (name.to_string(), id));
        } else if let Some(l) = step.get("id") {
            self.listener_ids.insert(to_json_string(l), (name.to_string(), id));
        }
        Ok(())
    }

    fn run_steps(&mut self, steps: &[Json]) -> Result<(), String> {
        for step in steps {
            let step = step.as_object().ok_or("step must be an object")?;
            let op = step.get("op").and_then(Json::as_str);
            let store = step.get("store").and_then(Json::as_str).map(str::to_string);
            let Some(op) = op else {
                let now = step.get("now").and_then(Json::as_f64).ok_or("step without op or now")?;
                match &store {
                    Some(name) => {
                        let shared = *self.now.lock().unwrap();
                        *self.offsets.get(name).ok_or("unknown store")?.lock().unwrap() = now - shared;
                    }
                    None => *self.now.lock().unwrap() = now,
                }
                continue;
            };
            let name = store.ok_or("step without store")?;
            match op {
                "transaction" => {
                    let inner: Vec<Json> = step.get("steps").and_then(Json::as_array).cloned().unwrap_or_default();
                    let rollback = step.get("rollback").and_then(Json::as_bool).unwrap_or(false);
                    let st = self.store(&name).clone();
                    let mut err = Ok(());
                    st.transaction_with(|_| err = self.run_steps(&inner), |_| rollback);
                    err?;
                }
                "merge" => {
                    let with = step.get("with").and_then(Json::as_str).ok_or("merge without with")?;
                    let (a, b) = (self.store(&name).clone(), self.store(with).clone());
                    let mine = a.get_encoded_mergeable_content_json();
                    let theirs = b.get_encoded_mergeable_content_json();
                    let _ = b.apply_mergeable_changes_json(&mine);
                    let _ = a.apply_mergeable_changes_json(&theirs);
                }
                "delListener" if step.get("args").is_none() => {
                    let key = match step.get("id") {
                        Some(Json::String(l)) => l.clone(),
                        Some(other) => to_json_string(other),
                        None => return Err("delListener without id".into()),
                    };
                    let (owner, id) = self.listener_ids.get(&key).cloned().ok_or("unknown listener")?;
                    self.store(&owner).del_listener(id);
                }
                _ if listener_kind(op).is_some() => self.add_listener(&name, op, step)?,
                _ => {
                    let args = self.args_of(step)?;
                    let value = self.call(&name, op, &args, false)?;
                    if let Some(value) = value {
                        if step.get("record") != Some(&Json::Bool(false)) {
                            let label = step.get("label").cloned().unwrap_or_else(|| Json::String(op.to_string()));
                            self.results.lock().unwrap().push(json!({"step": label, "value": value}));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Replays a script; returns `{"results": [...], "final": {...}}`.
pub fn run_script(script: &Json) -> Result<Json, String> {
    let now0 = script.get("now").and_then(Json::as_f64).unwrap_or(1_700_000_000_000.0);
    let now = Arc::new(Mutex::new(now0));
    let mut runner = Runner {
        now: now.clone(),
        offsets: HashMap::new(),
        stores: HashMap::new(),
        names: Vec::new(),
        listener_ids: HashMap::new(),
        results: Arc::new(Mutex::new(Vec::new())),
    };
    for (name, options) in script.get("stores").and_then(Json::as_object).ok_or("script without stores")? {
        let offset = Arc::new(Mutex::new(0.0));
        let unique_id = options.get("uniqueId").and_then(Json::as_str).map(str::to_string);
        let (n, o) = (now.clone(), offset.clone());
        let store = MergeableStore::with_clock(unique_id.as_deref(), move || *n.lock().unwrap() + *o.lock().unwrap());
        runner.offsets.insert(name.clone(), offset);
        runner.stores.insert(name.clone(), store);
        runner.names.push(name.clone());
    }
    let steps: Vec<Json> = script.get("steps").and_then(Json::as_array).cloned().unwrap_or_default();
    runner.run_steps(&steps)?;
    let mut final_ = Map::new();
    for name in &runner.names {
        let st = runner.store(name);
        let (t, v) = st.get_mergeable_content_hashes();
        final_.insert(
            name.clone(),
            json!({
                "content": [tables_json(&st.get_tables()), values_json(&st.get_values())],
                "mergeableContent": parse(&st.get_mergeable_content_json()),
                "encodedMergeableContent": parse(&st.get_encoded_mergeable_content_json()),
                "hashes": [t, v],
            }),
        );
    }
    let results = runner.results.lock().unwrap().clone();
    Ok(json!({"results": results, "final": final_}))
}

/// JSON equality as the conformance README defines it: object key order ignored, array order
/// significant, numbers as doubles.
pub fn same_json(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        (Json::Array(x), Json::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_json(p, q)),
        (Json::Object(x), Json::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w))),
        _ => a == b,
    }
}

/// A short description of the first difference between two JSON values.
pub fn first_difference(path: &str, a: &Json, b: &Json) -> Option<String> {
    match (a, b) {
        (Json::Array(x), Json::Array(y)) => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                if let Some(d) = first_difference(&format!("{path}[{i}]"), p, q) {
                    return Some(d);
                }
            }
            (x.len() != y.len()).then(|| format!("{path}: length {} vs {}", x.len(), y.len()))
        }
        (Json::Object(x), Json::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => {
                        if let Some(d) = first_difference(&format!("{path}.{k}"), v, w) {
                            return Some(d);
                        }
                    }
                    None => return Some(format!("{path}.{k}: only in ours")),
                }
            }
            y.keys().find(|k| !x.contains_key(*k)).map(|k| format!("{path}.{k}: only in expected"))
        }
        _ => (!same_json(a, b)).then(|| format!("{path}: ours {} vs expected {}", to_json_string(a), to_json_string(b))),
    }
}
