//! The hub under concurrency (issue 5): many threads joining, leaving and
//! sending at once must not panic or deadlock, must keep the two views of
//! membership (a connection's rooms and a room's members) in agreement, must
//! deliver every queued message, and must leave nothing behind once every
//! connection is gone, including joins and identifies that race a disconnect.
//!
//! Hub operations are synchronous, so the load runs on OS threads: real
//! parallel contention, independent of the runtime's workers. A watchdog
//! thread aborts the process if a test deadlocks, so no test can hang.

mod hub_common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hub_common::{bounded, connect_member, eventually, member_app};
use switchboard::{
    CloseCode, ConnectionId, Hub, Outgoing, Room, TestClient, TestError, TestSocket, UserId,
};
use tokio::task::JoinHandle;

/// Aborts the process if not dropped within the deadline: a deadlocked hub
/// blocks threads a runtime timeout cannot interrupt.
struct Watchdog(Option<std::sync::mpsc::Sender<()>>);

impl Watchdog {
    fn arm(within: Duration, name: &'static str) -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(within) {
                eprintln!("{name}: no progress within {within:?} (deadlock?); aborting");
                std::process::abort();
            }
        });
        Self(Some(tx))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

/// xorshift64: reproducible pseudo-random choices without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Connects `n` members (no rooms) and spawns a task per socket that reads
/// until the server's close, returning how many data messages it got.
async fn members(
    client: &TestClient,
    n: usize,
) -> (
    Vec<ConnectionId>,
    Vec<JoinHandle<(usize, Option<CloseCode>)>>,
) {
    let mut ids = Vec::with_capacity(n);
    let mut drains = Vec::with_capacity(n);
    for _ in 0..n {
        let (socket, id) = connect_member(client, &[], None).await;
        ids.push(id);
        drains.push(tokio::spawn(drain(socket)));
    }
    (ids, drains)
}

async fn drain(mut socket: TestSocket) -> (usize, Option<CloseCode>) {
    let mut data = 0;
    loop {
        match socket.recv().await {
            Ok(_) => data += 1,
            Err(TestError::Closed(frame)) => return (data, frame.map(|f| f.code)),
            Err(e) => panic!("subscriber failed after {data} messages: {e}"),
        }
    }
}

/// Every membership seen from both sides agrees: each room a connection
/// lists has it as a member, and each member of each room lists the room.
/// Call only while nothing changes memberships.
fn assert_consistent(hub: &Hub, ids: &[ConnectionId]) {
    for &id in ids {
        for room in hub.rooms_of(id) {
            assert!(
                hub.room_members(room.clone()).contains(&id),
                "{id} lists {room} but is not among its members"
            );
        }
    }
    for (room, size) in hub.rooms() {
        let members = hub.room_members(room.clone());
        assert_eq!(members.len(), size, "room {room}");
        assert!(size > 0, "empty room {room} still listed");
        for id in members {
            assert!(
                hub.rooms_of(id).contains(&room),
                "{id} is a member of {room} but does not list it"
            );
        }
    }
}

/// Closes every connection from the hub and waits for the registry to empty.
async fn close_all_and_expect_empty(
    hub: &Hub,
    ids: &[ConnectionId],
    drains: Vec<JoinHandle<(usize, Option<CloseCode>)>>,
) -> usize {
    for &id in ids {
        hub.close(id, CloseCode::Normal, "done");
    }
    let mut received = 0;
    for drain in drains {
        let (data, code) = drain.await.expect("subscriber");
        assert_eq!(code, Some(CloseCode::Normal));
        received += data;
    }
    let empty = eventually(Duration::from_secs(5), || {
        hub.connection_count() == 0 && hub.rooms().is_empty()
    })
    .await;
    assert!(
        empty,
        "left behind: {} connections, rooms {:?}",
        hub.connection_count(),
        hub.rooms()
    );
    received
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_join_leave_and_sends_keep_the_registry_consistent() {
    const CONNECTIONS: usize = 100;
    const ROOMS: usize = 20;
    const THREADS: u64 = 8;
    const MAX_OPS: usize = 20_000;
    let _watchdog = Watchdog::arm(Duration::from_secs(30), "hub stress");
    bounded(Duration::from_secs(20), async {
        let hub = Hub::new();
        let client = TestClient::new(member_app(&hub)).with_timeout(Duration::from_secs(15));
        let (ids, drains) = members(&client, CONNECTIONS).await;
        let ids = Arc::new(ids);
        let rooms: Arc<Vec<Room>> =
            Arc::new((0..ROOMS).map(|r| Room::from(format!("room{r}"))).collect());

        let started = Instant::now();
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (hub, ids, rooms) = (hub.clone(), Arc::clone(&ids), Arc::clone(&rooms));
                std::thread::spawn(move || {
                    let mut rng =
                        Rng(0x9E37_79B9_7F4A_7C15 ^ (t + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9));
                    let mut ops = 0;
                    while ops < MAX_OPS && started.elapsed() < Duration::from_secs(2) {
                        let id = ids[rng.below(ids.len())];
                        let room = rooms[rng.below(rooms.len())].clone();
                        match rng.below(20) {
                            0..=5 => {
                                hub.join(id, room);
                            }
                            6..=11 => {
                                hub.leave(id, room);
                            }
                            12..=14 => {
                                let text = format!("{t}:{ops}");
                                let reached = hub.send_to_room(room, &Outgoing::text(text), None);
                                assert!(reached <= ids.len());
                            }
                            15 => {
                                let picked = [room, rooms[rng.below(rooms.len())].clone()];
                                let reached =
                                    hub.send_to_rooms(picked, &Outgoing::text("many"), Some(id));
                                assert!(reached < ids.len());
                            }
                            16 => {
                                let size = hub.room_size(room.clone());
                                assert!(size <= ids.len());
                                assert!(hub.room_members(room).len() <= ids.len());
                            }
                            17 => {
                                assert!(hub.rooms_of(id).len() <= rooms.len());
                                assert!(hub.rooms().len() <= rooms.len());
                            }
                            18 => {
                                assert_eq!(hub.send_to(id, &Outgoing::text("direct")), 1);
                            }
                            _ => {
                                if rng.below(50) == 0 {
                                    assert_eq!(
                                        hub.broadcast(&Outgoing::text("all"), None),
                                        ids.len()
                                    );
                                }
                                assert_eq!(hub.connection_count(), ids.len());
                            }
                        }
                        ops += 1;
                    }
                    ops
                })
            })
            .collect();
        let total_ops: usize = tokio::task::spawn_blocking(move || {
            workers
                .into_iter()
                .map(|w| w.join().expect("worker panicked"))
                .sum()
        })
        .await
        .unwrap();
        assert!(total_ops > 0);

        // Quiescent: both views agree, and a room send reaches exactly the
        // connections that list the room.
        assert_consistent(&hub, &ids);
        for room in rooms.iter() {
            let listing = ids
                .iter()
                .filter(|&&id| hub.rooms_of(id).contains(room))
                .count();
            assert_eq!(
                hub.send_to_room(room.clone(), &Outgoing::text("check"), None),
                listing,
                "room {room}"
            );
        }
        let stats = hub.stats().snapshot();
        assert_eq!(
            (stats.drops, stats.slow_consumer_evictions),
            (0, 0),
            "{stats:?}"
        );

        // Every queued message arrives (the greetings were sent by the handlers).
        let received = close_all_and_expect_empty(&hub, &ids, drains).await;
        let delivered = hub.stats().snapshot().deliveries as usize;
        assert_eq!(
            received,
            delivered + CONNECTIONS,
            "after {total_ops} operations"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_join_and_leave_of_the_same_memberships_keep_both_views_in_agreement() {
    const CONNECTIONS: usize = 16;
    let _watchdog = Watchdog::arm(Duration::from_secs(30), "join/leave race");
    bounded(Duration::from_secs(20), async {
        let hub = Hub::new();
        let client = TestClient::new(member_app(&hub)).with_timeout(Duration::from_secs(15));
        let (ids, drains) = members(&client, CONNECTIONS).await;
        let ids = Arc::new(ids);

        let started = Instant::now();
        let workers: Vec<_> = (0..4)
            .map(|t| {
                let (hub, ids) = (hub.clone(), Arc::clone(&ids));
                std::thread::spawn(move || {
                    let mut i = 0usize;
                    while i < 400_000 && started.elapsed() < Duration::from_secs(1) {
                        let id = ids[i % ids.len()];
                        if t % 2 == 0 {
                            hub.join(id, "hot");
                        } else {
                            hub.leave(id, "hot");
                        }
                        i += 1;
                    }
                })
            })
            .collect();
        tokio::task::spawn_blocking(move || {
            for w in workers {
                w.join().expect("worker panicked");
            }
        })
        .await
        .unwrap();

        let members: BTreeSet<_> = hub.room_members("hot").into_iter().collect();
        let listing: BTreeSet<_> = ids
            .iter()
            .copied()
            .filter(|&id| hub.rooms_of(id).contains(&Room::from("hot")))
            .collect();
        assert_eq!(
            members, listing,
            "room members vs connections listing the room differ"
        );
        close_all_and_expect_empty(&hub, &ids, drains).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_and_identifies_racing_disconnects_leave_nothing_behind() {
    const CONNECTIONS: usize = 50;
    const ROUNDS: usize = 4;
    let _watchdog = Watchdog::arm(Duration::from_secs(30), "join/disconnect race");
    bounded(Duration::from_secs(20), async {
        let hub = Hub::new();
        let client = TestClient::new(member_app(&hub)).with_timeout(Duration::from_secs(15));
        for round in 0..ROUNDS {
            let (ids, drains) = members(&client, CONNECTIONS).await;
            let ids = Arc::new(ids);
            let stop = Arc::new(AtomicBool::new(false));
            // Keep joining new rooms and switching users on every connection
            // while they are being closed.
            let workers: Vec<_> = (0..2)
                .map(|t| {
                    let (hub, ids, stop) = (hub.clone(), Arc::clone(&ids), Arc::clone(&stop));
                    std::thread::spawn(move || {
                        let mut k = 0usize;
                        while !stop.load(Ordering::Relaxed) {
                            for &id in ids.iter() {
                                if t == 0 {
                                    hub.join(id, format!("r{}", k % 64));
                                } else {
                                    hub.identify(id, UserId::from(format!("u{}", k % 64)));
                                }
                            }
                            k += 1;
                        }
                    })
                })
                .collect();
            tokio::time::sleep(Duration::from_millis(20)).await;
            for &id in ids.iter() {
                hub.close(id, CloseCode::Normal, "done");
            }
            for drain in drains {
                drain.await.expect("subscriber");
            }
            let gone = eventually(Duration::from_secs(5), || hub.connection_count() == 0).await;
            stop.store(true, Ordering::Relaxed);
            tokio::task::spawn_blocking(move || {
                for w in workers {
                    w.join().expect("worker panicked");
                }
            })
            .await
            .unwrap();
            assert!(gone, "round {round}: {} connections left", hub.connection_count());
            let rooms = hub.rooms();
            let users: Vec<_> = (0..64)
                .map(|k| (k, hub.user_connections(format!("u{k}"))))
                .filter(|(_, conns)| !conns.is_empty())
                .collect();
            assert!(
                rooms.is_empty() && users.is_empty(),
                "round {round}: memberships of closed connections left behind: rooms {rooms:?}, users {users:?}"
            );
        }
    })
    .await;
}
