//! W4 (encode the content as wire JSON) and W5 (parse + merge that text into an empty store)
//! alone at size N, each in an `#[inline(never)]` function to toggle callgrind's collection on:
//! `valgrind --tool=callgrind --toggle-collect='text_profile::w5' target/release/examples/text_profile 100000`.
//! Args: `N [w4|w5|both]`.

use tinybase::MergeableStore;

/// W4: the store's content as wire-form JSON.
#[inline(never)]
fn w4(store: &MergeableStore) -> String {
    store.get_encoded_mergeable_content_json()
}

/// W5: the text merged into a fresh store.
#[inline(never)]
fn w5(json: &str) -> MergeableStore {
    let fresh = MergeableStore::with_clock(Some("fresh"), || 1_700_000_000_000.0);
    fresh.apply_mergeable_changes_json(json).unwrap();
    fresh
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let which = args.get(1).map(String::as_str).unwrap_or("both");
    let store = MergeableStore::with_clock(Some("bench"), || 1_700_000_000_000.0);
    store.transaction(|s| {
        for i in 0..n {
            s.set_cell(&format!("t{}", i % 10), &format!("r{}", i / 10), &format!("c{}", i % 3), format!("v{i}").as_str())
                .unwrap();
        }
    });
    let json = w4(&store);
    if which == "w4" {
        for _ in 0..2 {
            std::hint::black_box(w4(&store));
        }
    }
    if which != "w4" {
        let fresh = w5(&json);
        assert_eq!(fresh.get_mergeable_content_hashes(), store.get_mergeable_content_hashes());
    }
    eprintln!("{} bytes", json.len());
}
