//! The writer task: keeps the publisher connection up (reconnecting with
//! jittered backoff) and writes this instance's counts every heartbeat.

use std::sync::Arc;

use redis::AsyncConnectionConfig;
use switchboard::broker::{LocalNode, TopicWatch};

use crate::backoff::Backoff;
use crate::broker::{Shared, stopped};
use crate::counts::CountWriter;

pub(crate) async fn run(shared: Arc<Shared>, node: LocalNode, watch: TopicWatch) {
    let mut stop = shared.stop.subscribe();
    let mut backoff = Backoff::new(shared.config.backoff_min, shared.config.backoff_max);
    let mut counts = CountWriter::new(&shared, node.instance());
    loop {
        if shared.stopping() {
            return;
        }
        let connected = tokio::select! {
            connected = connect(&shared) => connected,
            () = stopped(&mut stop) => return,
        };
        match connected {
            Ok(conn) => {
                backoff.reset();
                let run_id = run_id(&shared, conn.clone()).await;
                let generation = shared.install_publisher(conn.clone(), run_id);
                counts.rewrite_all();
                let mut tick = tokio::time::interval(shared.config.heartbeat);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        () = stopped(&mut stop) => {
                            counts.withdraw(conn).await;
                            return;
                        }
                        () = shared.publisher_broken.notified() => {
                            if !shared.publisher_is(generation) {
                                break;
                            }
                        }
                        _ = tick.tick() => {
                            if let Err(e) = counts.write(conn.clone(), &node, &watch).await {
                                shared.publisher_failed(generation, &format!("count heartbeat: {e}"));
                                break;
                            }
                        }
                    }
                }
            }
            Err(why) => shared.failed("publisher connection", &why),
        }
        let delay = backoff.next_delay();
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stopped(&mut stop) => return,
        }
    }
}

async fn connect(shared: &Shared) -> Result<redis::aio::MultiplexedConnection, String> {
    let config = &shared.config;
    let settings = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(config.connect_timeout))
        .set_response_timeout(Some(config.command_timeout));
    match tokio::time::timeout(
        config.connect_timeout,
        shared
            .client
            .get_multiplexed_async_connection_with_config(&settings),
    )
    .await
    {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".to_owned()),
    }
}

/// The server's `run_id` (from `INFO server`; it changes at every restart),
/// or empty when Redis does not say (`INFO` disabled): then a restart is
/// noticed only when it lost the channel's keys.
async fn run_id(shared: &Shared, mut conn: redis::aio::MultiplexedConnection) -> String {
    let info = tokio::time::timeout(
        shared.config.command_timeout,
        redis::cmd("INFO")
            .arg("server")
            .query_async::<String>(&mut conn),
    )
    .await;
    match info {
        Ok(Ok(info)) => info
            .lines()
            .find_map(|line| line.strip_prefix("run_id:"))
            .map(|id| id.trim().to_owned())
            .unwrap_or_default(),
        _ => String::new(),
    }
}
