//! What an idle connection costs the server: the heap it keeps, and the
//! futures it keeps for its whole life. Alone in its own test binary, with a
//! counting allocator, so that the count is this test's alone.
//!
//! Each bound is what was measured when it was set, plus about 15 %
//! headroom. A change that puts a large state back inline (an `async fn`'s
//! arguments, a rare path's timer, the upgrade's fields) fails here, naming
//! the piece, before it shows in `switchboard-bench idle`.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use common::{UPGRADE_HEADERS, echo, spawn_server};
use switchboard::{Switchboard, WebSocketUpgrade};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_keeps_less_than_its_heap_budget() {
    let server = spawn_server(Switchboard::new().route("/ws/echo", echo)).await;
    let addr = server.addr;
    // Warm up: the runtime's, the hub's and the route's first allocations.
    let warm = tokio::task::spawn_blocking(move || open_raw(addr))
        .await
        .unwrap();
    registered(&server.app, 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    let before = live_bytes();
    let sockets =
        tokio::task::spawn_blocking(move || (0..IDLE).map(|_| open_raw(addr)).collect::<Vec<_>>())
            .await
            .unwrap();
    registered(&server.app, IDLE + 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let per_connection = (live_bytes() - before) / IDLE as isize;
    assert!(
        per_connection <= MAX_IDLE_HEAP,
        "{per_connection} heap bytes per idle connection (budget {MAX_IDLE_HEAP})"
    );
    drop(sockets);
    drop(warm);
}

/// The size of the future `handler` returns, without calling it.
fn future_size<F, Fut>(_: &F) -> usize
where
    F: Fn(WebSocketUpgrade) -> Fut,
{
    std::mem::size_of::<Fut>()
}

#[test]
fn an_upgrade_is_one_pointer_wide() {
    // A handler's future keeps its arguments for the connection's life.
    assert_eq!(
        std::mem::size_of::<WebSocketUpgrade>(),
        std::mem::size_of::<usize>()
    );
}

#[test]
fn an_echo_handlers_future_is_small() {
    // 280 bytes measured: the socket, a receive and a send; the handshake,
    // and a send's wait for room, run in allocations of their own.
    let size = future_size(&echo);
    assert!(size <= 320, "the echo handler's future is {size} bytes");
}

#[tokio::test]
async fn a_served_connections_future_is_small() {
    let app = Switchboard::new().route("/ws/echo", echo).into_app();
    let (_client, server) = tokio::io::duplex(64);
    let serving = app.serve_connection(server, "127.0.0.1:9".parse().unwrap());
    // 312 bytes measured: the app, the entry under the caps and the
    // handler's run; the handshake and its arguments are boxed and freed.
    let size = std::mem::size_of_val(&serving);
    assert!(size <= 360, "a served connection's future is {size} bytes");
}
