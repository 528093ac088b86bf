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
                    let owned = ids.len() / THREADS as usize;
                    let mut ops = 0;
                    while ops < MAX_OPS && started.elapsed() < Duration::from_secs(2) {
                        let id = ids[rng.below(ids.len())];
                        // Memberships of a connection change on one thread
                        // only (its own slice); racing a join and a leave of
                        // the same membership is the ignored test below.
                        let own = ids[t as usize + THREADS as usize * rng.below(owned)];
                        let room = rooms[rng.below(rooms.len())].clone();
                        match rng.below(20) {
                            0..=5 => {
                                hub.join(own, room);
                            }
                            6..=11 => {
                                hub.leave(own, room);
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

        // Every queued message arrives.
        let received = close_all_and_expect_empty(&hub, &ids, drains).await;
        let delivered = hub.stats().snapshot().deliveries as usize;
        assert_eq!(received, delivered, "after {total_ops} operations");
    })
    .await;
}

/// Runs `op(thread, connection)` on `threads` OS threads over `ids` until
/// `stop` is set; returns the threads.
fn spin(
    hub: &Hub,
    ids: &Arc<Vec<ConnectionId>>,
    stop: &Arc<AtomicBool>,
    threads: u64,
    op: fn(&Hub, u64, &mut Rng, ConnectionId),
) -> Vec<std::thread::JoinHandle<()>> {
    (0..threads)
        .map(|t| {
            let (hub, ids, stop) = (hub.clone(), Arc::clone(ids), Arc::clone(stop));
            std::thread::spawn(move || {
                let mut rng = Rng(0x2545_F491_4F6C_DD1D ^ (t + 1).wrapping_mul(0x9E37_79B9));
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..64 {
                        let id = ids[rng.below(ids.len())];
                        op(&hub, t, &mut rng, id);
                    }
                }
            })
        })
        .collect()
}

async fn join_threads(workers: Vec<std::thread::JoinHandle<()>>) {
    tokio::task::spawn_blocking(move || {
        for w in workers {
            w.join().expect("worker panicked");
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leave_racing_the_join_of_one_membership_leaves_no_member_behind() {
    const PAIRS: usize = 4;
    const ROOMS: usize = 20_000;
    let _watchdog = Watchdog::arm(Duration::from_secs(30), "join/leave race");
    bounded(Duration::from_secs(20), async {
        let hub = Hub::new();
        let client = TestClient::new(member_app(&hub)).with_timeout(Duration::from_secs(15));
        let (ids, drains) = members(&client, PAIRS).await;
        // Per connection, one thread joins fresh rooms one after another and
        // another leaves each as soon as the connection lists it, that is
        // while the join may still be in progress. Every room is joined
        // then left once, so none may keep a member.
        let mut workers = Vec::new();
        for &id in &ids {
            let hub_j = hub.clone();
            workers.push(std::thread::spawn(move || {
                for k in 0..ROOMS {
                    assert!(hub_j.join(id, format!("{id}/{k}")));
                }
            }));
            let hub_l = hub.clone();
            workers.push(std::thread::spawn(move || {
                let started = Instant::now();
                for k in 0..ROOMS {
                    let room = Room::from(format!("{id}/{k}"));
                    while !hub_l.leave(id, room.clone()) {
                        assert!(
                            started.elapsed() < Duration::from_secs(10),
                            "room {room} never joined"
                        );
                        std::hint::spin_loop();
                    }
                }
            }));
        }
        join_threads(workers).await;
        for &id in &ids {
            assert!(hub.rooms_of(id).is_empty());
        }
        let stale: Vec<_> = hub.rooms();
        assert!(
            stale.is_empty(),
            "{} rooms still list a member that left them, e.g. {:?}",
            stale.len(),
            stale.first()
        );
        close_all_and_expect_empty(&hub, &ids, drains).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_racing_a_disconnect_leave_no_room_membership_behind() {
    const CONNECTIONS: usize = 10;
    let _watchdog = Watchdog::arm(Duration::from_secs(30), "join/disconnect race");
    bounded(Duration::from_secs(20), async {
        let hub = Hub::new();
        let client = TestClient::new(member_app(&hub)).with_timeout(Duration::from_secs(15));
        for round in 0..20 {
            let (ids, drains) = members(&client, CONNECTIONS).await;
            let ids = Arc::new(ids);
            let stop = Arc::new(AtomicBool::new(false));
            // Keep joining the connections to fresh rooms while they close.
            let workers = spin(&hub, &ids, &stop, 2, |hub, _, rng, id| {
                hub.join(id, format!("r{}", rng.below(1024)));
            });
            for &id in ids.iter() {
                hub.close(id, CloseCode::Normal, "done");
            }
            for drain in drains {
                drain.await.expect("subscriber");
            }
            let gone = eventually(Duration::from_secs(5), || hub.connection_count() == 0).await;
            stop.store(true, Ordering::Relaxed);
            join_threads(workers).await;
            assert!(
                gone,
                "round {round}: {} connections left",
                hub.connection_count()
            );
            // The count drops when a connection's entry is removed; its
            // memberships go just after, so allow for that.
            let clean = eventually(Duration::from_secs(2), || hub.rooms().is_empty()).await;
            let leaked: Vec<_> = hub
                .rooms()
                .into_iter()
                .map(|(room, _)| (room.clone(), hub.room_members(room)))
                .collect();
            assert!(
                clean,
                "round {round}: closed connections are still room members: {leaked:?}"
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identifies_racing_a_disconnect_leave_no_user_membership_behind() {
    const CONNECTIONS: usize = 10;
    const USERS: usize = 64;
    let _watchdog = Watchdog::arm(Duration::from_secs(30), "identify/disconnect race");
    bounded(Duration::from_secs(20), async {
        let hub = Hub::new();
        let client = TestClient::new(member_app(&hub)).with_timeout(Duration::from_secs(15));
        let leftover_users = |hub: &Hub| -> Vec<(UserId, Vec<ConnectionId>)> {
            (0..USERS)
                .map(|k| UserId::from(format!("u{k}")))
                .map(|user| (user.clone(), hub.user_connections(user)))
                .filter(|(_, conns)| !conns.is_empty())
                .collect()
        };
        for round in 0..20 {
            let (ids, drains) = members(&client, CONNECTIONS).await;
            let ids = Arc::new(ids);
            let stop = Arc::new(AtomicBool::new(false));
            // Keep moving the connections between users while they close.
            let workers = spin(&hub, &ids, &stop, 2, |hub, _, rng, id| {
                hub.identify(id, UserId::from(format!("u{}", rng.below(USERS))));
            });
            for &id in ids.iter() {
                hub.close(id, CloseCode::Normal, "done");
            }
            for drain in drains {
                drain.await.expect("subscriber");
            }
            let gone = eventually(Duration::from_secs(5), || hub.connection_count() == 0).await;
            stop.store(true, Ordering::Relaxed);
            join_threads(workers).await;
            assert!(
                gone,
                "round {round}: {} connections left",
                hub.connection_count()
            );
            let clean =
                eventually(Duration::from_secs(2), || leftover_users(&hub).is_empty()).await;
            assert!(
                clean,
                "round {round}: closed connections are still listed under users: {:?}",
                leftover_users(&hub)
            );
        }
    })
    .await;
}
