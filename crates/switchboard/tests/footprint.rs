//! The futures and state every connection keeps for its whole life stay
//! small (`footprint_heap.rs` measures the heap an idle connection keeps).
//! Each bound is what was measured when it was set, plus some headroom; a
//! change that puts a large state back inline (an `async fn`'s arguments,
//! the handshake, the upgrade's fields) fails here, naming the piece.

mod common;

use common::echo;
use switchboard::{Switchboard, WebSocketUpgrade};

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
