//! The benchmark command's contract: one command writes the report and its plots.

use std::process::Command;

#[test]
fn quick_run_writes_the_report_and_plots() {
    let out = std::env::temp_dir().join(format!("tinybase-bench-smoke-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let status = Command::new(env!("CARGO_BIN_EXE_tinybase-bench"))
        .args(["--quick", "--only", "ours", "--out"])
        .arg(&out)
        .status()
        .expect("run tinybase-bench");
    assert!(status.success(), "tinybase-bench --quick failed: {status}");
    let report = std::fs::read_to_string(out.join("REPORT.md")).expect("REPORT.md written");
    for part in ["# Benchmark report", "- Machine:", "- Versions: tinybase-native", "| W1 cells/s |", "## Scale", "## Profiles"] {
        assert!(report.contains(part), "REPORT.md lacks {part:?}:\n{report}");
    }
    for png in ["scale.png", "ratios.png"] {
        let bytes = std::fs::read(out.join(png)).unwrap_or_else(|e| panic!("{png}: {e}"));
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{png} is not a PNG");
        assert!(report.contains(&format!("]({png})")), "REPORT.md does not show {png}");
    }
    std::fs::remove_dir_all(&out).unwrap();
}
