//! Files and SQLite databases moving between the real TinyBase 10.0.1 (node) and us, both ways
//! (issue 9): TinyBase's `createFilePersister` and its sqlite-wasm persister in JSON mode
//! (`@sqlite.org/sqlite-wasm`, offline in node: a database file's bytes are handed between the
//! two), with a MergeableStore and a plain Store, on the fixture of
//! tests/interop/persist/fixture.json (every kind of cell and value, deletions, unicode and
//! awkward ids, JavaScript's key order).
//!
//! - `file_*_tinybase_saves_ours_loads`: our load gives TinyBase's content and hashes, and our
//!   save writes the file again byte for byte.
//! - `file_*_ours_saves_tinybase_loads`: TinyBase loads our file to our content and hashes.
//! - `sqlite_*`: the same through a SQLite database in JSON mode, default and custom table and
//!   column names.
//! - `file_*_auto_persisting_in_turn`: a TinyBase app and ours auto-load and auto-save one file
//!   while taking turns to change their stores; ours never loses a change TinyBase made.
//!
//! `cargo test --release --test persist_interop` (scripts/test-all.sh). Needs node and the
//! packages of tests/interop (`npm ci` there); says so clearly when they are missing. The
//! TinyBase side is tests/interop/persist/tb_persist.mjs.

use serde_json::Value as Json;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tinybase::persist::file::create_file_persister;
use tinybase::persist::sqlite::{create_sqlite_persister, SqliteConfig, SqliteMode};
use tinybase::persist::{Persister, PersisterOptions};
use tinybase::{MergeableStore, Store};

const TURN_TIMEOUT: Duration = Duration::from_secs(15);

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("interop")
}

/// Panics with what to do when node or the npm packages the TinyBase side needs are missing.
fn require_node() {
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        let version = Command::new("node").arg("--version").output();
        match version {
            Ok(out) if out.status.success() => {}
            _ => panic!(
                "node is not installed or does not run: the persistence interop runs TinyBase 10.0.1 in node \
                 (Debian package nodejs; scripts/test-all.sh installs it)"
            ),
        }
        for package in ["tinybase", "@sqlite.org/sqlite-wasm"] {
            assert!(
                interop_dir().join("node_modules").join(package).is_dir(),
                "tests/interop/node_modules/{package} is missing: run `npm ci` in tests/interop (scripts/test-all.sh does)"
            );
        }
    });
}

/// A temporary folder of its own for one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("tinybase-persist-interop-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Mergeable,
    Plain,
}

impl Kind {
    fn arg(self) -> &'static str {
        match self {
            Kind::Mergeable => "mergeable",
            Kind::Plain => "plain",
        }
    }
}

/// A store of `kind` (ours).
struct Ours {
    store: Store,
    mergeable: Option<MergeableStore>,
}

impl Ours {
    fn new(kind: Kind) -> Ours {
        match kind {
            Kind::Mergeable => {
                let m = MergeableStore::new(Some("ours"));
                Ours { store: m.as_store().clone(), mergeable: Some(m) }
            }
            Kind::Plain => Ours { store: Store::new(), mergeable: None },
        }
    }
    /// What TinyBase's file persister would write for this store.
    fn text(&self) -> String {
        match &self.mergeable {
            Some(m) => m.get_encoded_mergeable_content_json(),
            None => self.store.get_json(),
        }
    }
    fn hashes(&self) -> Option<(u32, u32)> {
        self.mergeable.as_ref().map(|m| m.get_mergeable_content_hashes())
    }
}

/// What the TinyBase side reported: its store's persisted text and hashes.
#[derive(Debug)]
struct TbState {
    content: String,
    hashes: Option<(u32, u32)>,
}

fn tb_state(json: &Json) -> TbState {
    let content = json["content"].as_str().unwrap_or_else(|| panic!("TinyBase side answered without content: {json}")).to_string();
    let hashes = json["hashes"].as_array().map(|h| (h[0].as_u64().unwrap() as u32, h[1].as_u64().unwrap() as u32));
    TbState { content, hashes }
}

/// Runs `node tb_persist.mjs args...` to completion; panics with its stderr when it fails.
fn tb(args: &[&str]) -> TbState {
    require_node();
    let out = Command::new("node")
        .arg(interop_dir().join("persist").join("tb_persist.mjs"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run node: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "TinyBase side `tb_persist.mjs {}` failed ({}):\n{}\n{}",
        args.join(" "),
        out.status,
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().last().unwrap_or_else(|| panic!("tb_persist.mjs {} printed nothing", args.join(" ")));
    tb_state(&serde_json::from_str(line).unwrap())
}

/// Applies tests/interop/persist/fixture.json (the steps TinyBase's side applies too).
fn apply_fixture(store: &Store) {
    let text = std::fs::read_to_string(interop_dir().join("persist").join("fixture.json")).unwrap();
    let steps: Json = serde_json::from_str(&text).unwrap();
    apply_steps(store, steps.as_array().unwrap());
}

fn apply_steps(store: &Store, steps: &[Json]) {
    for step in steps {
        let step = step.as_array().unwrap();
        let s = |i: usize| step[i].as_str().unwrap();
        let j = |i: usize| step[i].to_string();
        let result = match s(0) {
            "transaction" => {
                store.transaction(|s| apply_steps(s, step[1].as_array().unwrap()));
                Ok(())
            }
            "setCell" => store.set_cell_json(s(1), s(2), s(3), &j(4)),
            "setRow" => store.set_row_json(s(1), s(2), &j(3)),
            "setTable" => store.set_table_json(s(1), &j(2)),
            "setValue" => store.set_value_json(s(1), &j(2)),
            "delCell" => {
                store.del_cell(s(1), s(2), s(3));
                Ok(())
            }
            "delRow" => {
                store.del_row(s(1), s(2));
                Ok(())
            }
            "delTable" => {
                store.del_table(s(1));
                Ok(())
            }
            "delValue" => {
                store.del_value(s(1));
                Ok(())
            }
            op => panic!("fixture step {op} unknown"),
        };
        result.unwrap_or_else(|e| panic!("fixture step {step:?}: {e}"));
    }
}

fn options() -> PersisterOptions {
    PersisterOptions { auto_load_interval: Duration::from_millis(50), ..Default::default() }
}

fn file_persister(ours: &Ours, path: &Path) -> Persister {
    create_file_persister(&ours.store, path, options()).unwrap_or_else(|e| panic!("create_file_persister {}: {e}", path.display()))
}

/// Asserts that our store holds exactly what TinyBase's does.
fn assert_same(what: &str, ours: &Ours, tb: &TbState) {
    assert_eq!(ours.hashes(), tb.hashes, "{what}: content hashes (ours, TinyBase's)");
    assert_eq!(ours.text(), tb.content, "{what}: content (ours, TinyBase's)");
}

fn file_tinybase_saves_ours_loads(kind: Kind) {
    let dir = TempDir::new(&format!("file-tb-{}", kind.arg()));
    let path = dir.path("store.json");
    let tb_saved = tb(&["save", "file", kind.arg(), path.to_str().unwrap()]);
    let tb_bytes = std::fs::read(&path).unwrap();
    assert_eq!(tb_bytes, tb_saved.content.as_bytes(), "TinyBase's file is its persisted text");

    let ours = Ours::new(kind);
    let persister = file_persister(&ours, &path);
    assert!(persister.load().unwrap(), "a file was there to load");
    assert_same("loaded from TinyBase's file", &ours, &tb_saved);

    // Saved back (over the same file, and to a new one): TinyBase's bytes exactly.
    persister.save().unwrap();
    assert_eq!(String::from_utf8(std::fs::read(&path).unwrap()).unwrap(), tb_saved.content, "our save over TinyBase's file");
    persister.destroy();
    let copy = dir.path("copy.json");
    let p2 = file_persister(&ours, &copy);
    p2.save().unwrap();
    p2.destroy();
    assert_eq!(std::fs::read(&copy).unwrap(), tb_bytes, "our save of what we loaded is TinyBase's file byte for byte");
    // And TinyBase reads what we wrote to the same content.
    assert_same("TinyBase loading our re-save", &ours, &tb(&["load", "file", kind.arg(), copy.to_str().unwrap()]));
}

fn file_ours_saves_tinybase_loads(kind: Kind) {
    let dir = TempDir::new(&format!("file-ours-{}", kind.arg()));
    let path = dir.path("store.json");
    let ours = Ours::new(kind);
    apply_fixture(&ours.store);
    let persister = file_persister(&ours, &path);
    persister.save().unwrap();
    persister.destroy();
    assert_eq!(String::from_utf8(std::fs::read(&path).unwrap()).unwrap(), ours.text(), "our file is the store's persisted text");
    let tb_loaded = tb(&["load", "file", kind.arg(), path.to_str().unwrap()]);
    assert_same("TinyBase loading our file", &ours, &tb_loaded);
    // The same fixture applied by TinyBase gives the same content (stamps aside) as ours.
    let tb_own = tb(&["save", "file", kind.arg(), dir.path("tb.json").to_str().unwrap()]);
    if kind == Kind::Plain {
        assert_eq!(tb_own.content, ours.text(), "the fixture applied by TinyBase and by us");
    }
}

#[test]
fn file_mergeable_tinybase_saves_ours_loads() {
    file_tinybase_saves_ours_loads(Kind::Mergeable);
}

#[test]
fn file_plain_tinybase_saves_ours_loads() {
    file_tinybase_saves_ours_loads(Kind::Plain);
}

#[test]
fn file_mergeable_ours_saves_tinybase_loads() {
    file_ours_saves_tinybase_loads(Kind::Mergeable);
}

#[test]
fn file_plain_ours_saves_tinybase_loads() {
    file_ours_saves_tinybase_loads(Kind::Plain);
}

/// TinyBase's `startAutoLoad` on a missing file creates it empty (0 bytes) and its own load then
/// skips it. A file left so by a TinyBase app that only reads is nothing stored for us: our load
/// finds nothing, and we save there.
#[test]
fn file_left_empty_by_tinybase_auto_load_holds_nothing() {
    for kind in [Kind::Mergeable, Kind::Plain] {
        let dir = TempDir::new(&format!("file-empty-{}", kind.arg()));
        let path = dir.path("store.json");
        tb(&["autoload", "file", kind.arg(), path.to_str().unwrap()]);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "TinyBase's auto-load created the file empty");
        let ours = Ours::new(kind);
        ours.store.set_value("mine", 1).unwrap();
        let persister = file_persister(&ours, &path);
        assert!(!persister.load().unwrap(), "{kind:?}: an empty file holds nothing");
        assert!(ours.store.get_value("mine").is_some(), "{kind:?}: the store is untouched");
        persister.save().unwrap();
        persister.destroy();
        assert_same("TinyBase loading what we saved over its empty file", &ours, &tb(&["load", "file", kind.arg(), path.to_str().unwrap()]));
    }
}

/// TinyBase's default JSON-mode names, and custom ones that need quoting.
const NAMES: [Option<[&str; 3]>; 2] = [None, Some(["my \"store\" table", "key id", "json-content"])];

fn sqlite_config(names: Option<[&str; 3]>) -> SqliteConfig {
    let mut config = SqliteConfig { mode: SqliteMode::Json, ..Default::default() };
    if let Some([table, id, store]) = names {
        config.store_table_name = table.into();
        config.store_id_column_name = id.into();
        config.store_column_name = store.into();
    }
    config
}

fn sqlite_persister(ours: &Ours, path: &Path, names: Option<[&str; 3]>) -> Persister {
    create_sqlite_persister(&ours.store, path, sqlite_config(names), options())
        .unwrap_or_else(|e| panic!("create_sqlite_persister {}: {e}", path.display()))
}

fn tb_sqlite(command: &str, kind: Kind, path: &Path, names: Option<[&str; 3]>) -> TbState {
    let mut args = vec![command, "sqlite", kind.arg(), path.to_str().unwrap()];
    if let Some(names) = &names {
        args.extend(names.iter().copied());
    }
    tb(&args)
}

/// The JSON text stored in the database's one row `_`, and its SQLite type.
fn stored_row(path: &Path, names: Option<[&str; 3]>) -> (String, String) {
    let [table, id, store] = names.unwrap_or(["tinybase", "_id", "store"]);
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let db = rusqlite::Connection::open(path).unwrap();
    let rows: i64 = db.query_row(&format!("SELECT count(*) FROM {}", q(table)), [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 1, "one row in the store table");
    db.query_row(&format!("SELECT {}, typeof({}) FROM {} WHERE {} = '_'", q(store), q(store), q(table), q(id)), [], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .unwrap()
}

fn sqlite_tinybase_saves_ours_loads(kind: Kind) {
    for (i, names) in NAMES.into_iter().enumerate() {
        let what = format!("{kind:?} store, names {names:?}");
        let dir = TempDir::new(&format!("sqlite-tb-{}-{i}", kind.arg()));
        let path = dir.path("store.db");
        let tb_saved = tb_sqlite("save", kind, &path, names);
        let ours = Ours::new(kind);
        let persister = sqlite_persister(&ours, &path, names);
        assert!(persister.load().unwrap(), "{what}: TinyBase's database has content");
        assert_same(&format!("{what}: loaded from TinyBase's database"), &ours, &tb_saved);
        // Our save into TinyBase's database (its table, its row), read back by TinyBase.
        ours.store.set_value("savedByUs", true).unwrap();
        persister.save().unwrap();
        persister.destroy();
        drop(persister);
        assert_eq!(stored_row(&path, names), (ours.text(), "text".to_string()), "{what}: the row we wrote");
        assert_same(&format!("{what}: TinyBase loading our save"), &ours, &tb_sqlite("load", kind, &path, names));
    }
}

fn sqlite_ours_saves_tinybase_loads(kind: Kind) {
    for (i, names) in NAMES.into_iter().enumerate() {
        let what = format!("{kind:?} store, names {names:?}");
        let dir = TempDir::new(&format!("sqlite-ours-{}-{i}", kind.arg()));
        let path = dir.path("store.db");
        let ours = Ours::new(kind);
        apply_fixture(&ours.store);
        let persister = sqlite_persister(&ours, &path, names);
        persister.save().unwrap();
        persister.destroy();
        drop(persister);
        assert_eq!(stored_row(&path, names), (ours.text(), "text".to_string()), "{what}: the row we wrote");
        assert_same(&format!("{what}: TinyBase loading our database"), &ours, &tb_sqlite("load", kind, &path, names));
    }
}

#[test]
fn sqlite_json_mergeable_tinybase_saves_ours_loads() {
    sqlite_tinybase_saves_ours_loads(Kind::Mergeable);
}

#[test]
fn sqlite_json_plain_tinybase_saves_ours_loads() {
    sqlite_tinybase_saves_ours_loads(Kind::Plain);
}

#[test]
fn sqlite_json_mergeable_ours_saves_tinybase_loads() {
    sqlite_ours_saves_tinybase_loads(Kind::Mergeable);
}

#[test]
fn sqlite_json_plain_ours_saves_tinybase_loads() {
    sqlite_ours_saves_tinybase_loads(Kind::Plain);
}

/// A TinyBase app (tb_persist.mjs auto) auto-loading and auto-saving one file.
struct TbApp {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl TbApp {
    fn start(kind: Kind, path: &Path, stderr: &Path) -> TbApp {
        require_node();
        let mut child = Command::new("node")
            .arg(interop_dir().join("persist").join("tb_persist.mjs"))
            .args(["auto", "file", kind.arg(), path.to_str().unwrap()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(stderr).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run node: {e}"));
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut app = TbApp { child, stdin, stdout };
        let ready = app.read();
        assert_eq!(ready["ready"], true, "TinyBase app did not start: {ready}");
        app
    }
    fn read(&mut self) -> Json {
        let mut line = String::new();
        let n = self.stdout.read_line(&mut line).unwrap();
        assert!(n > 0, "the TinyBase app exited (its stderr is in the test's temporary folder)");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("TinyBase app printed {line:?}: {e}"))
    }
    fn call(&mut self, command: Json) -> Json {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        let answer = self.read();
        assert!(answer.get("error").is_none(), "TinyBase app: {command}: {answer}");
        answer
    }
    fn state(&mut self) -> TbState {
        let answer = self.call(serde_json::json!(["state"]));
        // The first load of a file that does not exist yet, or that its own auto-load has just
        // created empty, is an ignored error in TinyBase; anything else is a failure.
        for error in answer["errors"].as_array().unwrap() {
            let error = error.as_str().unwrap();
            assert!(error.contains("Unexpected end of JSON input") || error.contains("ENOENT"), "TinyBase app reported: {error}");
        }
        tb_state(&answer)
    }
}

impl Drop for TbApp {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "[\"quit\"]");
        let _ = self.stdin.flush();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < TURN_TIMEOUT, "{what}: not within {TURN_TIMEOUT:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The turns of the auto-persisting scenario: who changes what. A cell is [t, r, c, value].
fn turns(kind: Kind) -> Vec<(bool, Vec<Json>)> {
    use serde_json::json;
    let mut turns = Vec::new();
    for round in 0..6 {
        let tb = vec![
            json!(["setCell", "pets", format!("tb{round}"), "species", "dog"]),
            json!(["setCell", "pets", "shared", format!("c{}", round % 3), format!("tb {round}")]),
            json!(["setValue", format!("tb{round}"), round]),
        ];
        let ours = vec![
            json!(["setCell", "pets", format!("ours{round}"), "legs", round]),
            json!(["setCell", "pets", "shared", format!("c{}", (round + 1) % 3), {"round": round, "by": "ours"}]),
            json!(["setValue", "last", format!("ours {round}")]),
        ];
        turns.push((true, tb));
        turns.push((false, ours));
        if kind == Kind::Mergeable && round % 2 == 1 {
            // Deletions travel only with stamps: a plain store's file cannot carry them.
            turns.push((true, vec![json!(["delCell", "pets", format!("ours{}", round - 1), "legs"]), json!(["delValue", "last"])]));
            turns.push((false, vec![json!(["delCell", "pets", format!("tb{}", round - 1), "species"])]));
        }
    }
    turns
}

fn auto_persisting_in_turn(kind: Kind, tinybase_first: bool) {
    let dir = TempDir::new(&format!("auto-{}", kind.arg()));
    let path = dir.path("app.json");
    let stderr = dir.path("tb_app.stderr");
    let ours = Ours::new(kind);
    let start_ours = || {
        let p = file_persister(&ours, &path);
        p.start_auto_load().unwrap_or_else(|e| panic!("our start_auto_load: {e}"));
        p.start_auto_save().unwrap_or_else(|e| panic!("our start_auto_save: {e}"));
        p
    };
    let (mut app, persister) = if tinybase_first {
        let app = TbApp::start(kind, &path, &stderr);
        (app, start_ours())
    } else {
        let p = start_ours();
        (TbApp::start(kind, &path, &stderr), p)
    };
    let same = |app: &mut TbApp, ours: &Ours| {
        let tb = app.state();
        tb.hashes == ours.hashes() && tb.content == ours.text()
    };
    for (i, (tinybase_turn, steps)) in turns(kind).into_iter().enumerate() {
        if tinybase_turn {
            for step in &steps {
                app.call(step.clone());
            }
        } else {
            apply_steps(&ours.store, &steps);
        }
        let who = if tinybase_turn { "TinyBase" } else { "ours" };
        wait_until(&format!("turn {i} ({who}: {steps:?}): both stores equal"), || same(&mut app, &ours));
    }
    assert!(persister.flush(TURN_TIMEOUT).unwrap(), "our saves durable");
    let tb = app.state();
    assert_same("after the last turn", &ours, &tb);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), ours.text(), "the file holds everything");
    persister.destroy();
    drop(app);
    // What the file ends with loads, in a fresh store of ours, to the same content.
    let fresh = Ours::new(kind);
    let p = file_persister(&fresh, &path);
    assert!(p.load().unwrap());
    assert_eq!(fresh.text(), ours.text(), "a fresh load of the file");
}

#[test]
fn file_mergeable_auto_persisting_in_turn() {
    auto_persisting_in_turn(Kind::Mergeable, true);
}

#[test]
fn file_plain_auto_persisting_in_turn() {
    auto_persisting_in_turn(Kind::Plain, false);
}
