//! Replays every conformance script under tests/conformance (and $TB_CONFORMANCE_DIR, if set)
//! and compares the output with what TinyBase produced.

mod support {
    pub mod script;
}

use std::path::{Path, PathBuf};
use support::script::{first_difference, run_script};
use tinybase::value::parse_json;

fn scripts(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(scripts(&p));
            } else if p.extension().is_some_and(|x| x == "json") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn check_dir(dir: &Path) -> (usize, Vec<String>) {
    let files = scripts(dir);
    let mut failures = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let script = parse_json(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let expected = script.get("expected").cloned().unwrap_or_else(|| panic!("{} has no expected", f.display()));
        match run_script(&script) {
            Ok(out) => {
                if let Some(d) = first_difference("", &out, &expected) {
                    failures.push(format!("{}: {d}", f.display()));
                }
            }
            Err(e) => failures.push(format!("{}: {e}", f.display())),
        }
    }
    (files.len(), failures)
}

fn assert_dir(dir: &Path, min: usize) {
    let (n, failures) = check_dir(dir);
    assert!(n >= min, "expected at least {min} scripts in {}, found {n}", dir.display());
    assert!(failures.is_empty(), "{} of {n} scripts differ from TinyBase:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn public_scripts_match_tinybase() {
    assert_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/public"), 45);
}

#[test]
fn edge_case_scripts_match_tinybase() {
    assert_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/edge"), 20);
}

#[test]
fn generated_scripts_match_tinybase() {
    match std::env::var("TB_CONFORMANCE_DIR") {
        Ok(dir) => assert_dir(Path::new(&dir), 1),
        Err(_) => eprintln!("TB_CONFORMANCE_DIR not set: generated scripts skipped (the README test command sets it)"),
    }
}
