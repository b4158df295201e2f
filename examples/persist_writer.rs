//! The crash test's writing process (tests/persist_crash.rs): opens a MergeableStore over a
//! file or SQLite database, loads it, starts auto-save and commits transactions as fast as it
//! can, printing `durable <i>` for each transaction the persister reports durable. Kill it at
//! any moment: reopening must give a valid store holding every transaction reported durable.
//!
//! `persist_writer KIND PATH SEED [COUNT]` with KIND = file | sqlite-json | sqlite-incremental;
//! without COUNT it runs until killed. Lines: `loaded true|false`, `auto-save started`,
//! `durable <i>` ..., `done`; `load-error ...` (exit 3) when the stored data cannot be loaded.

#[path = "../tests/support/persist_writer.rs"]
mod persist_writer;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: persist_writer KIND PATH SEED [COUNT]   (KIND: file | sqlite-json | sqlite-incremental)";
    let (Some(kind), Some(path), Some(seed)) = (args.first(), args.get(1), args.get(2).and_then(|s| s.parse().ok())) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let count = args.get(3).map(|c| c.parse().unwrap_or_else(|_| {
        eprintln!("{usage}");
        std::process::exit(2)
    }));
    std::process::exit(persist_writer::run_writer(kind, std::path::Path::new(path), seed, count));
}
