//! Rate limiting of new connections, and the client address it counts by.

mod security_common;

use http::StatusCode;
use security_common::*;
use switchboard::security::{IsAuthenticated, RateLimit, Security, TrustedProxies};
use switchboard::{RouteConfig, ServerConfig, TestClient};

fn limited(rate: RateLimit) -> RouteConfig {
    RouteConfig::default().with_security(Security::new().rate_limit(rate))
}

#[tokio::test]
async fn past_the_burst_a_client_gets_429_with_retry_after() {
    let (app, calls) = app(
        ServerConfig::default(),
        limited(RateLimit::per_minute(1.0).with_burst(2)),
    );
    let client = TestClient::new(app);
    let me = addr("198.51.100.1:1000");
    accepted(client.request("/ws").client_addr(me)).await;
    accepted(client.request("/ws").client_addr(me)).await;
    let headers = refused(
        client.request("/ws").client_addr(me),
        StatusCode::TOO_MANY_REQUESTS,
        "Rate limit exceeded",
    )
    .await;
    // One token a minute: the next one is a minute away.
    assert_eq!(headers["retry-after"], "60");
    assert_eq!(calls.get(), 2);
    // Another port of the same address is the same client; another address is not.
    refused(
        client.request("/ws").client_addr(addr("198.51.100.1:2000")),
        StatusCode::TOO_MANY_REQUESTS,
        "Rate limit exceeded",
    )
    .await;
    accepted(client.request("/ws").client_addr(addr("198.51.100.2:1000"))).await;
    assert_eq!(calls.get(), 3);
}

#[tokio::test]
async fn a_bad_origin_spends_no_token() {
    let (app, calls) = app(
        ServerConfig::default(),
        limited(RateLimit::per_minute(1.0).with_burst(1)),
    );
    let client = TestClient::new(app);
    for _ in 0..5 {
        refused(
            client.request("/ws").origin("https://evil.example"),
            StatusCode::FORBIDDEN,
            "Origin not allowed",
        )
        .await;
    }
    // The one token is still there...
    accepted(client.request("/ws")).await;
    // ...and now it is spent.
    refused(
        client.request("/ws"),
        StatusCode::TOO_MANY_REQUESTS,
        "Rate limit exceeded",
    )
    .await;
    assert_eq!(calls.get(), 1);
}

#[tokio::test]
async fn the_server_wide_limit_counts_across_routes() {
    let server = ServerConfig::default().with_rate_limit(RateLimit::per_minute(1.0).with_burst(2));
    let (app, calls) = app(server, RouteConfig::default());
    let client = TestClient::new(app);
    accepted(client.request("/ws")).await;
    accepted(client.request("/ws/default")).await;
    for path in ["/ws", "/ws/default"] {
        refused(
            client.request(path),
            StatusCode::TOO_MANY_REQUESTS,
            "Rate limit exceeded",
        )
        .await;
    }
    assert_eq!(calls.get(), 2);
}

#[tokio::test]
async fn each_route_has_its_own_buckets() {
    // The same policy on two routes: spending on one leaves the other alone.
    let server = ServerConfig::default()
        .with_security(Security::new().rate_limit(RateLimit::per_minute(1.0).with_burst(1)));
    let route = limited(RateLimit::per_minute(1.0).with_burst(1));
    let (app, _) = app(server, route);
    let client = TestClient::new(app);
    accepted(client.request("/ws")).await;
    accepted(client.request("/ws/default")).await;
    refused(
        client.request("/ws"),
        StatusCode::TOO_MANY_REQUESTS,
        "Rate limit exceeded",
    )
    .await;
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    let server =
        ServerConfig::default().with_trusted_proxies(TrustedProxies::new(["10.0.0.0/8"]).unwrap());
    let (app, calls) = app(server, limited(RateLimit::per_minute(1.0).with_burst(1)));
    let client = TestClient::new(app);
    let proxy = addr("10.0.0.1:5000");
    let via_proxy = |client_ip: &str| {
        client
            .request("/ws")
            .client_addr(proxy)
            .header("x-forwarded-for", client_ip)
    };
    // Behind the trusted proxy, each forwarded client has its own bucket.
    let (report, _ws) = accepted(via_proxy("203.0.113.1")).await;
    assert_eq!(report["client_ip"], "203.0.113.1");
    let (report, _ws) = accepted(via_proxy("203.0.113.2")).await;
    assert_eq!(report["client_ip"], "203.0.113.2");
    refused(
        via_proxy("203.0.113.1"),
        StatusCode::TOO_MANY_REQUESTS,
        "Rate limit exceeded",
    )
    .await;
    // A client's own claim left of the proxy's entry changes nothing.
    refused(
        via_proxy("6.6.6.6, 203.0.113.1"),
        StatusCode::TOO_MANY_REQUESTS,
        "Rate limit exceeded",
    )
    .await;

    // An untrusted peer cannot pick its address with the header.
    let direct = addr("198.51.100.7:4000");
    let (report, _ws) = accepted(
        client
            .request("/ws")
            .client_addr(direct)
            .header("x-forwarded-for", "203.0.113.3"),
    )
    .await;
    assert_eq!(report["client_ip"], "198.51.100.7");
    refused(
        client
            .request("/ws")
            .client_addr(direct)
            .header("x-forwarded-for", "203.0.113.4"),
        StatusCode::TOO_MANY_REQUESTS,
        "Rate limit exceeded",
    )
    .await;
    assert_eq!(calls.get(), 3);
}

#[tokio::test]
async fn a_flood_of_addresses_evicts_old_buckets_instead_of_growing() {
    // 64 buckets at most (one per shard). The guard refuses everyone after
    // the rate limit, so 401 means "passed the limiter", 429 "limited".
    let security = Security::new()
        .rate_limit(
            RateLimit::per_minute(1.0)
                .with_burst(1)
                .with_max_clients(64),
        )
        .guard(IsAuthenticated);
    let (app, calls) = app(
        ServerConfig::default(),
        RouteConfig::default().with_security(security),
    );
    let client = TestClient::new(app);
    let first = addr("198.51.100.1:1");
    let unauthenticated = (StatusCode::UNAUTHORIZED, "Authentication required");
    refused(
        client.request("/ws").client_addr(first),
        unauthenticated.0,
        unauthenticated.1,
    )
    .await;
    refused(
        client.request("/ws").client_addr(first),
        StatusCode::TOO_MANY_REQUESTS,
        "Rate limit exceeded",
    )
    .await;
    for n in 0..2000u32 {
        let ip = std::net::Ipv4Addr::from(0x0a00_0000 + n);
        let request = client
            .request("/ws")
            .client_addr(std::net::SocketAddr::from((ip, 1)));
        refused(request, unauthenticated.0, unauthenticated.1).await;
    }
    // The first client's bucket was the oldest in its shard: evicted, so it
    // starts again with a full bucket (the table stayed at 64 entries).
    refused(
        client.request("/ws").client_addr(first),
        unauthenticated.0,
        unauthenticated.1,
    )
    .await;
    assert_eq!(calls.get(), 0);
}
