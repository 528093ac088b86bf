//! What an idle connection costs the server: the heap it keeps. The only
//! test in its binary, with a counting allocator, so that the count is this
//! test's alone (`footprint.rs` checks the pieces: the futures kept per
//! connection).
//!
//! The bound is what was measured when it was set, plus about 15 %
//! headroom. A change that puts a large state back inline (an `async fn`'s
//! arguments, a rare path's timer, the upgrade's fields) fails here before
//! it shows in `switchboard-bench idle`.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use common::{UPGRADE_HEADERS, echo, spawn_server};
use switchboard::Switchboard;

/// The system allocator, counting the bytes live at any moment.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

#[allow(unsafe_code)]
// SAFETY: every call is forwarded to `System` unchanged; the counter is
// only arithmetic on the sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Heap bytes requested and not freed (allocator overhead not included).
fn live_bytes() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// Connections opened for the heap measurement.
const IDLE: usize = 200;

/// Most heap bytes one idle echo connection may keep: 3,884 B measured
/// (request head and its parsed headers, the connection's task and its
/// writer's, the handler's future, the queue and reader, the socket's
/// registration, the hub's entry).
const MAX_IDLE_HEAP: isize = 4_450;

/// Opens a WebSocket over a blocking socket (the client side allocates
/// nothing per connection but this socket) and reads the 101 to its end.
fn open_raw(addr: std::net::SocketAddr) -> std::net::TcpStream {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let request = format!("GET /ws/echo HTTP/1.1\r\nHost: {addr}\r\n{UPGRADE_HEADERS}\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut head = [0u8; 1024];
    let mut n = 0;
    while !head[..n].ends_with(b"\r\n\r\n") {
        let read = stream.read(&mut head[n..]).expect("the 101");
        assert!(read > 0, "closed during the handshake");
        n += read;
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{:?}", &head[..n]);
    stream
}

/// Waits until the server has registered `count` connections in its hub.
async fn registered(app: &switchboard::App, count: usize) {
    let all_in = common::eventually(Duration::from_secs(10), || {
        app.hub().connection_count() == count
    })
    .await;
    assert!(
        all_in,
        "{} of {count} registered",
        app.hub().connection_count()
    );
}

/// Waits until the live heap stops changing (the connections' tasks have
/// run up to their first wait), at most 3 s.
async fn settled() {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut last = live_bytes();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = live_bytes();
        if now == last || tokio::time::Instant::now() >= deadline {
            return;
        }
        last = now;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_keeps_less_than_its_heap_budget() {
    let server = spawn_server(Switchboard::new().route("/ws/echo", echo)).await;
    let addr = server.addr;
    // Warm up: the runtime's, the hub's and the route's first allocations.
    let warm = tokio::task::spawn_blocking(move || open_raw(addr))
        .await
        .unwrap();
    registered(&server.app, 1).await;
    settled().await;

    let before = live_bytes();
    let sockets =
        tokio::task::spawn_blocking(move || (0..IDLE).map(|_| open_raw(addr)).collect::<Vec<_>>())
            .await
            .unwrap();
    registered(&server.app, IDLE + 1).await;
    settled().await;
    let per_connection = (live_bytes() - before) / IDLE as isize;
    assert!(
        per_connection <= MAX_IDLE_HEAP,
        "{per_connection} heap bytes per idle connection (budget {MAX_IDLE_HEAP})"
    );
    drop(sockets);
    drop(warm);
}
