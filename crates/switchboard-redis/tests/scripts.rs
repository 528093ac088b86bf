//! The append script on its own, against a real `redis-server`: how it
//! decides a channel's epoch from the server's `run_id`.

use switchboard_redis::streams::APPEND_SCRIPT;
use switchboard_testredis::RedisServer;

/// Runs the append script for `sb:room:r` the way the broker does, with
/// `run_id`; returns (epoch, offset).
async fn append(
    conn: &mut redis::aio::MultiplexedConnection,
    run_id: &str,
    fresh_epoch: &str,
) -> (String, u64) {
    let (epoch, offset, _duplicate, _listening): (String, u64, u8, u64) =
        redis::Script::new(APPEND_SCRIPT)
            .key("sb:m:r")
            .key("sb:s:r")
            .key("")
            .arg(r#"{"v":1}"#)
            .arg(100)
            .arg(600_000)
            .arg(86_400_000)
            .arg("sb:room:r")
            .arg(fresh_epoch)
            .arg(300_000)
            .arg(0)
            .arg(run_id)
            .invoke_async(conn)
            .await
            .expect("the append script runs");
    (epoch, offset)
}

#[tokio::test]
async fn a_stream_begun_without_a_run_id_is_kept_and_adopts_the_next_one() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let mut conn = server.connection().await;
    // A writer that could not read INFO (an ACL) begins the stream.
    assert_eq!(append(&mut conn, "", "e1").await, ("e1".into(), 1));
    // One that can read it continues it rather than starting over.
    assert_eq!(append(&mut conn, "run-a", "e2").await, ("e1".into(), 2));
    assert_eq!(append(&mut conn, "", "e3").await, ("e1".into(), 3));
    let len: u64 = redis::cmd("XLEN")
        .arg("sb:s:r")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(len, 3, "nothing was deleted");
    // From then on a different run_id means Redis restarted: a new epoch.
    assert_eq!(append(&mut conn, "run-b", "e4").await, ("e4".into(), 1));
    assert_eq!(append(&mut conn, "run-b", "e5").await, ("e4".into(), 2));
}
