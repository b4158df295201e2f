//! The clock's bounds: when it cannot stamp a newer change (get_now at or past 2^42 ms, or the
//! counter exhausted at the largest time), a local write fails and the store is untouched, as
//! TinyBase throws `tinybase:13`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tinybase::{Error, MergeableStore};

const MAX: f64 = 4_398_046_511_103.0; // 2^42 - 1

fn store_at(now: Arc<AtomicU64>) -> MergeableStore {
    MergeableStore::with_clock(Some("s"), move || f64::from_bits(now.load(Ordering::Relaxed)))
}

fn refused(r: tinybase::Result<()>) -> bool {
    matches!(r, Err(Error::InvalidState(ref m)) if m.contains("tinybase:13"))
}

#[test]
fn get_now_at_or_past_2_pow_42_refuses_local_writes() {
    for far in [MAX + 1.0, MAX + 5.0, 2f64.powi(53), 1e300, f64::INFINITY] {
        let now = Arc::new(AtomicU64::new(1_700_000_000_000f64.to_bits()));
        let s = store_at(now.clone());
        s.set_cell("t", "r", "c", 1).unwrap();
        let before = (s.get_encoded_mergeable_content_json(), s.get_json());
        now.store(far.to_bits(), Ordering::Relaxed);
        assert!(refused(s.set_cell("t", "r", "c", 2)), "{far}");
        assert!(refused(s.set_cell("t", "r", "new", 2)), "{far}");
        assert!(refused(s.set_value("v", 2)), "{far}");
        assert!(refused(s.set_json(r#"[{"t":{"r":{"c":3}}},{}]"#)), "{far}");
        assert_eq!((s.get_encoded_mergeable_content_json(), s.get_json()), before, "{far}");
        // Back in range, writes work again.
        now.store(1_700_000_000_001f64.to_bits(), Ordering::Relaxed);
        s.set_cell("t", "r", "c", 4).unwrap();
    }
    // At exactly the largest time the clock still works.
    let s = store_at(Arc::new(AtomicU64::new(MAX.to_bits())));
    s.set_cell("t", "r", "c", 1).unwrap();
    assert!(s.get_encoded_mergeable_content_json().contains("zzzzzzz"));
}

#[test]
fn a_write_after_a_remote_hlc_at_the_very_end_of_time_is_refused() {
    let s = store_at(Arc::new(AtomicU64::new(MAX.to_bits())));
    s.apply_mergeable_changes_json(r#"[[{"t":[{"r":[{"c":[1,"zzzzzzzzzzzzzzzz"]}]}]}],[{}],1]"#).unwrap();
    let before = (s.get_encoded_mergeable_content_json(), s.get_json());
    // TinyBase throws tinybase:13 here; the value must not land under the other client's HLC.
    assert!(refused(s.set_cell("t", "r", "c", 2)));
    assert!(refused(s.set_cell("t", "r", "d", 2)));
    assert_eq!((s.get_encoded_mergeable_content_json(), s.get_json()), before);
    // With room left in the counter, the next write is newer than the remote one.
    let s = store_at(Arc::new(AtomicU64::new(MAX.to_bits())));
    s.apply_mergeable_changes_json(r#"[[{"t":[{"r":[{"c":[1,"zzzzzzz----zzzzz"]}]}]}],[{}],1]"#).unwrap();
    s.set_cell("t", "r", "c", 2).unwrap();
    assert!(s.get_encoded_mergeable_content_json().contains(r#"[2,"zzzzzzz---0"#));
}
