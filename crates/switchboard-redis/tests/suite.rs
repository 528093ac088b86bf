//! The shared broker suite (`switchboard::testing::broker`) against Redis:
//! every case on its own private `redis-server`.

mod support;

async fn factory() -> Option<support::RedisFactory> {
    support::RedisFactory::start()
}

switchboard::broker_suite!(factory);
