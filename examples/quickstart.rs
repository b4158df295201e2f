//! Two replicas edited concurrently (on two threads), then merged: both end with the same
//! content and the same content hashes, as two TinyBase MergeableStores would.
//!
//! `cargo run --release --example quickstart`

use std::thread;
use tinybase::MergeableStore;

fn main() -> tinybase::Result<()> {
    let phone = MergeableStore::new(Some("phone"));
    let laptop = MergeableStore::new(Some("laptop"));

    // Shared starting point.
    phone.set_json(r#"[{"pets":{"fido":{"species":"dog","legs":4}}},{"open":true}]"#)?;
    laptop.merge(&phone)?;

    // Concurrent, conflicting edits on two threads.
    let (p, l) = (phone.clone(), laptop.clone());
    let a = thread::spawn(move || -> tinybase::Result<()> {
        p.set_cell("pets", "fido", "color", "brown")?;
        p.set_cell("pets", "felix", "species", "cat")?;
        p.set_value("open", false)
    });
    let b = thread::spawn(move || -> tinybase::Result<()> {
        l.transaction(|s| -> tinybase::Result<()> {
            s.set_cell("pets", "fido", "color", "black")?;
            s.del_cell("pets", "fido", "legs");
            s.set_cell_json("pets", "rex", "tags", r#"["good","loud"]"#)
        })
    });
    a.join().expect("phone thread")?;
    b.join().expect("laptop thread")?;

    println!("before merge:");
    println!("  phone  {}  hashes {:?}", phone.get_json(), phone.get_mergeable_content_hashes());
    println!("  laptop {}  hashes {:?}", laptop.get_json(), laptop.get_mergeable_content_hashes());

    phone.merge(&laptop)?;

    println!("after merge:");
    println!("  phone  {}  hashes {:?}", phone.get_content_json(), phone.get_mergeable_content_hashes());
    println!("  laptop {}  hashes {:?}", laptop.get_content_json(), laptop.get_mergeable_content_hashes());
    assert_eq!(phone.get_mergeable_content_hashes(), laptop.get_mergeable_content_hashes());
    // Same content (ids may be listed in a different order, as in TinyBase).
    assert_eq!(phone.get_content(), laptop.get_content());
    println!("converged: same content, same hashes");
    Ok(())
}
