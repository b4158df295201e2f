//! What an idle connection costs the server: the heap bytes it holds (counted by a wrapping
//! allocator), with raw clients that allocate nearly nothing themselves. TinyBase's node WsServer
//! holds some 13.7 KB of memory per idle connection; this server aims at a quarter of that.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};
use tinybase_server::{Server, ServerOptions};

/// Counts the bytes allocated and not yet freed.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's layout is passed on as it came.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as for `dealloc`, and `new_size` is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A WebSocket client that only opens: the upgrade request, then the 101 read into the stack.
fn open(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /memory HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").unwrap();
    let mut buf = [0u8; 512];
    let mut got = 0;
    while !buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf[got..]).unwrap();
        assert!(n > 0, "closed during the handshake");
        got += n;
    }
    assert!(buf.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&buf[..got]));
    s
}

#[test]
fn an_idle_connection_holds_at_most_a_quarter_of_tinybases() {
    const N: usize = 500;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let options = ServerOptions { listen: "127.0.0.1:0".parse().unwrap(), log: false, ..ServerOptions::default() };
    let handle = rt.block_on(Server::start(options)).unwrap();
    let addr = handle.local_addr();
    let settle = || std::thread::sleep(Duration::from_millis(300));
    // The room (and its store) first, so only connections are counted.
    let mut clients = vec![open(addr)];
    settle();
    let before = LIVE.load(Ordering::Relaxed);
    clients.extend((0..N).map(|_| open(addr)));
    let end = Instant::now() + Duration::from_secs(10);
    while handle.get_client_ids("memory").len() != N + 1 {
        assert!(Instant::now() < end, "every client joined");
        std::thread::sleep(Duration::from_millis(10));
    }
    settle();
    let per_connection = (LIVE.load(Ordering::Relaxed) - before) as f64 / N as f64;
    eprintln!("heap per idle connection: {per_connection:.0} bytes");
    drop(clients);
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), handle.shutdown()).await.expect("shutdown in time") });
    // 13.7 KB / 4, less the allocator's own overhead per block (the RSS figure is some 5% more).
    assert!(per_connection < 3200.0, "{per_connection:.0} bytes per idle connection");
}
