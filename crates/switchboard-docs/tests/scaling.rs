//! docs/scaling.md's library examples against a real `redis-server` (on a
//! free port; a loud SKIPPED without one, a failure under
//! `SWITCHBOARD_REQUIRE_REDIS=1`): two instances of the chat server, the
//! tour of what a cluster can send, and a publish with history.

#[macro_use]
mod support;

#[allow(dead_code)]
mod cluster {
    snippet!("scaling-cluster");

    use crate::support::wait_for_room;
    use switchboard::TestClient;
    use switchboard_testredis::RedisServer;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_instances_chat_and_the_tour_reaches_who_it_says() {
        let Some(redis) = RedisServer::start() else {
            return;
        };
        let (a, app_a) = instance(&redis.url()).await.unwrap();
        let (b, app_b) = instance(&redis.url()).await.unwrap();
        let mut on_a = TestClient::new(app_a)
            .connect("/ws/chat/lobby")
            .await
            .unwrap();
        let mut on_b = TestClient::new(app_b)
            .connect("/ws/chat/lobby")
            .await
            .unwrap();
        wait_for_room(a.hub(), "lobby", 1).await;
        wait_for_room(b.hub(), "lobby", 1).await;
        // `chat` joins through the cluster: once both instances listen for the
        // room, a message on B reaches A, and not its sender.
        a.sync().await.unwrap();
        b.sync().await.unwrap();
        on_b.send_text("hi from b").await.unwrap();
        assert_eq!(on_a.recv_text().await.unwrap(), "hi from b");

        // The tour, from B, with A's client as `someone`.
        let id = a.hub().room_members("lobby")[0];
        tour(&b, a.address(id)).await.unwrap();
        for expected in ["hello", "maintenance at 22:00", "just you"] {
            assert_eq!(on_a.recv_text().await.unwrap(), expected);
        }
        for expected in ["hello", "maintenance at 22:00", "hi all"] {
            assert_eq!(on_b.recv_text().await.unwrap(), expected);
        }
        a.shutdown().await;
        b.shutdown().await;
    }
}

#[allow(dead_code)]
mod history {
    snippet!("scaling-history");

    use switchboard_redis::RedisConfig;
    use switchboard_testredis::RedisServer;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_retried_order_keeps_its_position_and_is_not_sent_again() {
        let Some(redis) = RedisServer::start() else {
            return;
        };
        let broker = RedisBroker::new(RedisConfig::new(redis.url())).unwrap();
        let cluster = member_with_history(Hub::new(), broker).unwrap();
        cluster.start().await.unwrap();
        let first = order_paid(&cluster, 42).await.unwrap();
        let position = first
            .position
            .clone()
            .expect("public:orders keeps a history");
        assert_eq!(position.offset, 1);
        assert!(!first.duplicate);
        let retry = order_paid(&cluster, 42).await.unwrap();
        assert_eq!(retry.position, Some(position));
        assert!(retry.duplicate);
        let next = order_paid(&cluster, 43).await.unwrap();
        assert_eq!(next.position.map(|p| p.offset), Some(2));
        cluster.shutdown().await;
    }
}
