//! The random edits of the interop suites (the op mix of tests/interop/random/edits.mjs, which
//! the TinyBase peers use), for this library's peers. Needs `mod rng` beside it.

use crate::rng::Rng;
use serde_json::{json, Value as Json};

/// One random edit in the suite's small id space (3 tables × 40 rows × 8 cells, 8 values), as a
/// store op and its arguments; the same mix as tb_peer.mjs.
pub fn random_op(rng: &mut Rng, tag: &str) -> (&'static str, Vec<Json>) {
    let table = format!("t{}", rng.below(3));
    let row = format!("r{}", rng.below(40));
    let cell = format!("c{}", rng.below(8));
    let value = match rng.below(3) {
        0 => json!(rng.below(100)),
        1 => json!(format!("{tag}{}", rng.below(100))),
        _ => json!(rng.below(2) == 0),
    };
    match rng.below(100) {
        0..=59 => ("setCell", vec![json!(table), json!(row), json!(cell), value]),
        60..=71 => ("delCell", vec![json!(table), json!(row), json!(cell)]),
        72..=74 => ("delRow", vec![json!(table), json!(row)]),
        75..=91 => ("setValue", vec![json!(format!("v{}", rng.below(8))), value]),
        _ => ("delValue", vec![json!(format!("v{}", rng.below(8)))]),
    }
}
