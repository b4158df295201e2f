//! The one-minute tour: a `tinybase-server` with rooms kept on disk, and native apps syncing
//! through it over WebSockets.
//!
//! 1. The server starts (embedded here through the crate's library API; the `tinybase-server`
//!    binary runs the same code) with a data folder.
//! 2. Three apps join the room `shop/pets`: a phone and a laptop with TinyBase's legacy framing,
//!    and a tablet that multiplexes two stores (`pets` and `orders`) over one socket. All edit
//!    at once from their own threads; they converge to the same content hashes.
//! 3. The server stops (saving every room) while the apps keep editing offline; it restarts from
//!    its folder, the apps reconnect by themselves and pull what they missed.
//! 4. A late joiner gets everything from the room's server store.
//!
//! `cargo run --release -p tinybase-server --example demo`

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tinybase::sync::ws::{WsClient, WsOptions, WsSynchronizer};
use tinybase::sync::ConnectionState;
use tinybase::MergeableStore;
use tinybase_server::{Server, ServerHandle, ServerOptions};

const EDITS_PER_APP: usize = 200;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a tokio runtime");
    let data = std::env::temp_dir().join(format!("tinybase-demo-{}", std::process::id()));
    let started = Instant::now();

    let server = start_server(&runtime, &data, SocketAddr::from(([127, 0, 0, 1], 0)));
    let addr = server.local_addr();
    println!("1. tinybase-server listening on ws://{addr}, rooms kept in {}", data.display());

    let apps = ["phone", "laptop"];
    let mut stores = Vec::new();
    let mut syncs = Vec::new();
    for name in apps {
        let store = MergeableStore::new(Some(name));
        let sync = WsSynchronizer::new(&store, options(&format!("ws://{addr}/shop/pets"))).expect("a WebSocket synchronizer");
        sync.start_sync(None);
        stores.push((name, store));
        syncs.push(sync);
    }
    // The tablet: one socket on the base path /shop, two channels (rooms shop/pets, shop/orders).
    let tablet = WsClient::new(&options(&format!("ws://{addr}/shop"))).expect("a multiplexed client");
    let tablet_pets = MergeableStore::new(Some("tablet"));
    let tablet_orders = MergeableStore::new(Some("tablet-orders"));
    for (store, channel) in [(&tablet_pets, "pets"), (&tablet_orders, "orders")] {
        let sync = tablet.join(store, channel, Default::default()).expect("a channel");
        sync.start_sync(None);
        syncs.push(sync);
    }
    stores.push(("tablet", tablet_pets.clone()));
    println!(
        "2. phone and laptop joined shop/pets (legacy framing); the tablet multiplexes shop/pets and shop/orders over one socket: {:?}",
        tablet.connection_state()
    );

    edit_concurrently(&stores, "before");
    tablet_orders.set_cell("orders", "o1", "pet", "fido").expect("a write");
    wait_idle(&syncs);
    report(&stores, "   all edited at once from their own threads");
    println!(
        "   the server: {} rooms, {} client memberships, {} messages relayed",
        server.get_stats().paths,
        server.get_stats().clients,
        server.metrics().messages_out.load(std::sync::atomic::Ordering::Relaxed)
    );

    runtime.block_on(server.shutdown());
    let files: Vec<String> = std::fs::read_dir(&data).map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default();
    println!("3. server stopped (rooms saved: {files:?}); the apps keep editing offline...");
    edit_concurrently(&stores, "offline");
    std::thread::sleep(Duration::from_millis(300));
    println!("   phone's connection: {:?}", syncs[0].connection_state());

    let server = start_server(&runtime, &data, addr);
    println!("   server restarted from its folder on ws://{addr}; the apps reconnect and pull again (no app code involved)");
    wait_open(&syncs);
    wait_idle(&syncs);
    report(&stores, "   after the restart");

    let late = MergeableStore::new(Some("late-joiner"));
    let t = Instant::now();
    let late_sync = WsSynchronizer::new(&late, options(&format!("ws://{addr}/shop/pets"))).expect("a WebSocket synchronizer");
    late_sync.start_sync(None);
    late_sync.wait_for_idle(Duration::from_secs(10));
    let end = Instant::now() + Duration::from_secs(30);
    let in_step = || late.get_mergeable_content_hashes() == stores[0].1.get_mergeable_content_hashes();
    while !in_step() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    let joined = in_step();
    println!(
        "4. a late joiner received {} rows from the room in {:.1} ms; hashes {}",
        late.get_row_count("pets"),
        t.elapsed().as_secs_f64() * 1000.0,
        if joined { "equal" } else { "DIFFERENT" }
    );
    if !joined {
        std::process::exit(1);
    }

    drop(late_sync);
    drop(syncs);
    runtime.block_on(server.shutdown());
    let _ = std::fs::remove_dir_all(&data);
    println!("done in {:.1} s", started.elapsed().as_secs_f64());
}

fn start_server(runtime: &tokio::runtime::Runtime, data: &Path, listen: SocketAddr) -> ServerHandle {
    let options = ServerOptions { listen, data_dir: Some(data.to_path_buf()), log: false, ..Default::default() };
    runtime.block_on(Server::start(options)).expect("the server starts")
}

fn options(url: &str) -> WsOptions {
    WsOptions { url: url.to_string(), reconnect_max: Duration::from_millis(500), ..Default::default() }
}

fn edit_concurrently(stores: &[(&str, MergeableStore)], phase: &str) {
    std::thread::scope(|s| {
        for (name, store) in stores {
            s.spawn(move || {
                for i in 0..EDITS_PER_APP {
                    let row = format!("{name}-{phase}-{}", i % 50);
                    store.set_cell("pets", &row, "visits", i as f64).expect("a write");
                    store.set_cell("pets", "shared", "last_seen_by", *name).expect("a write");
                }
            });
        }
    });
}

fn wait_open(syncs: &[WsSynchronizer]) {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end && !syncs.iter().all(|s| s.connection_state() == ConnectionState::Open) {
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_idle(syncs: &[WsSynchronizer]) {
    for s in syncs {
        s.wait_for_idle(Duration::from_secs(10));
    }
}

/// Prints the apps' row counts and whether their hashes agree; a demo that did not converge exits 1
/// (the test command runs it).
fn report(stores: &[(&str, MergeableStore)], what: &str) {
    // Each app being idle does not mean the server has relayed everything to the others yet
    // (a loaded machine showed it): wait for equal hashes, within a deadline.
    let hashes_of = || -> Vec<(u32, u32)> { stores.iter().map(|(_, s)| s.get_mergeable_content_hashes()).collect() };
    let end = Instant::now() + Duration::from_secs(30);
    let mut hashes = hashes_of();
    while !hashes.windows(2).all(|w| w[0] == w[1]) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
        hashes = hashes_of();
    }
    let same = hashes.windows(2).all(|w| w[0] == w[1]);
    if !same {
        eprintln!("the apps did not converge: {hashes:?}");
        std::process::exit(1);
    }
    let summary: Vec<String> = stores.iter().map(|(n, s)| format!("{n}: {} rows", s.get_row_count("pets"))).collect();
    println!("{what}: {} -> content hashes {} {:?}", summary.join(", "), if same { "equal" } else { "DIFFERENT" }, hashes[0]);
}
