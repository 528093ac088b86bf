//! Validation names the key and says what is wrong.

use super::*;
use crate::config::EXAMPLE;
use crate::config::exposure::MetricsPlan;
use crate::config::load::parse_str;

fn build(text: &str) -> Result<Plan, Problems> {
    let config = parse_str(text).map_err(|(k, m)| Problems::one(k, m))?;
    Plan::build(&config)
}

/// The problems of `text`, as `key: message` lines.
fn problems(text: &str) -> String {
    match build(text) {
        Ok(_) => panic!("expected problems in:\n{text}"),
        Err(problems) => problems.to_string(),
    }
}

fn assert_problem(text: &str, key: &str, needle: &str) {
    let found = problems(text);
    let hit = found
        .lines()
        .any(|line| line.starts_with(&format!("{key}: ")) && line.contains(needle));
    assert!(hit, "expected `{key}: ...{needle}...` in:\n{found}");
}

/// The example with every `#:` line uncommented.
fn maximal_example() -> String {
    EXAMPLE
        .lines()
        .map(|line| line.strip_prefix("#: ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn no_config_at_all_builds_the_defaults() {
    let plan = Plan::build(&Config::default()).unwrap();
    assert_eq!(plan.listen, "127.0.0.1:8080".parse().unwrap());
    let paths: Vec<&str> = plan.endpoints.iter().map(|e| e.path.as_str()).collect();
    assert!(
        paths.contains(&"/ws/echo") && paths.contains(&"/ws/broadcast"),
        "{paths:?}"
    );
    assert!(matches!(plan.broker, BrokerPlan::Memory));
    assert!(plan.api.enabled && plan.api.keys.is_empty());
    assert!(
        plan.exposure.metrics == MetricsPlan::Main { key: false }
            && plan.exposure.demo
            && !plan.exposure.public
            && plan.tls.is_none()
    );
    let route = &plan.endpoints[0].route;
    assert_eq!(route.limits.max_message_size, 1 << 20);
    assert_eq!(route.limits.max_fragments, 128);
    assert!(route.compression.is_some());
}

#[test]
fn the_example_checks_and_is_the_defaults() {
    let plan = build(EXAMPLE).unwrap();
    let defaults = Plan::build(&Config::default()).unwrap();
    assert_eq!(plan.listen, defaults.listen);
    assert_eq!(plan.endpoints.len(), defaults.endpoints.len());
    assert_eq!(
        format!("{:?}", plan.server.route.limits),
        format!("{:?}", defaults.server.route.limits)
    );
    assert_eq!(
        plan.server.shutdown_timeout,
        defaults.server.shutdown_timeout
    );
}

#[test]
fn every_commented_example_setting_is_a_real_key() {
    // Keys are checked by serde (deny_unknown_fields); values that need
    // files or secrets are not built here.
    let text = maximal_example();
    if let Err((key, message)) = parse_str(&text) {
        panic!("the example's #: settings do not parse: {key}: {message}\n{text}");
    }
}

#[test]
fn endpoint_paths_must_start_with_a_slash() {
    assert_problem(
        "[[endpoints]]\npath = \"/ok\"\nprotocol = \"echo\"\n[[endpoints]]\npath = \"ws/chat\"\nprotocol = \"echo\"\n",
        "endpoints[1].path",
        "must start with '/'",
    );
}

#[test]
fn duplicate_and_reserved_paths_are_refused() {
    assert_problem(
        "[[endpoints]]\npath = \"/a\"\nprotocol = \"echo\"\n[[endpoints]]\npath = \"/a\"\nprotocol = \"broadcast\"\n",
        "endpoints[1].path",
        "conflict",
    );
    assert_problem(
        "[[endpoints]]\npath = \"/metrics\"\nprotocol = \"echo\"\n",
        "endpoints[0].path",
        "served over HTTP",
    );
    assert_problem(
        "[[endpoints]]\npath = \"/api/v1/ws\"\nprotocol = \"echo\"\n",
        "endpoints[0].path",
        "served over HTTP",
    );
    assert_problem("endpoints = []\n", "endpoints", "empty");
}

#[test]
fn rooms_are_only_for_broadcast_endpoints() {
    assert_problem(
        "[[endpoints]]\npath = \"/e\"\nprotocol = \"echo\"\nroom = \"x\"\n",
        "endpoints[0].room",
        "only for protocol = \"broadcast\"",
    );
}

#[test]
fn structured_endpoints_take_the_protocol_settings() {
    let plan = build(
        r#"
[[endpoints]]
path = "/ws"
protocol = "structured"
limits = { max_message_size = "16KiB" }
[endpoints.structured]
require_auth = true
heartbeat_interval = "10s"
max_subscriptions = 8
chat_channels = []
channels = [{ pattern = "team:*", access = "authenticated" }]
"#,
    )
    .unwrap();
    let EndpointKind::Structured(s) = &plan.endpoints[0].kind else {
        panic!("{:?}", plan.endpoints[0].kind);
    };
    assert!(s.config.require_auth);
    assert_eq!(
        s.config.heartbeat_interval,
        std::time::Duration::from_secs(10)
    );
    assert_eq!(s.config.max_subscriptions, 8);
    assert_eq!(s.config.max_message_size, 16 << 10);
    assert!(s.chat.is_empty());
    assert_eq!(s.rules.rules().count(), 1);

    // Without settings: the protocol's defaults, 64 KiB messages.
    let plan = build("[[endpoints]]\npath = \"/ws\"\nprotocol = \"structured\"\n").unwrap();
    let EndpointKind::Structured(s) = &plan.endpoints[0].kind else {
        panic!()
    };
    assert_eq!(s.config.max_message_size, 64 << 10);
    assert_eq!(s.chat.len(), 1);
}

#[test]
fn structured_settings_are_checked() {
    assert_problem(
        "[[endpoints]]\npath = \"/ws\"\nprotocol = \"structured\"\n[endpoints.structured]\nchannels = [{ pattern = \"bad pattern\", access = \"anyone\" }]\n",
        "endpoints[0].structured.channels[0].pattern",
        "invalid channel pattern",
    );
    assert_problem(
        "[[endpoints]]\npath = \"/ws\"\nprotocol = \"structured\"\n[endpoints.structured]\nchannels = [{ pattern = \"a:*\", access = \"everybody\" }]\n",
        "endpoints[0].structured.channels[0].access",
        "unknown access",
    );
    assert_problem(
        "[[endpoints]]\npath = \"/ws\"\nprotocol = \"structured\"\n[endpoints.structured]\nmax_subscriptions = 0\nheartbeat_timeout = 0\n",
        "endpoints[0].structured.max_subscriptions",
        "at least 1",
    );
    assert_problem(
        "[[endpoints]]\npath = \"/e\"\nprotocol = \"echo\"\n[endpoints.structured]\nrequire_auth = true\n",
        "endpoints[0].structured",
        "only for protocol = \"structured\"",
    );
    assert_problem(
        "[[endpoints]]\npath = \"/b\"\nprotocol = \"broadcast\"\nroom = \"a room\"\n",
        "endpoints[0].room",
        "channel name contains",
    );
}

#[test]
fn the_api_needs_a_key_beyond_loopback() {
    assert_problem(
        "[server]\nlisten = \"0.0.0.0:8080\"\n",
        "api.keys",
        "beyond loopback",
    );
    assert!(
        build("[server]\nlisten = \"0.0.0.0:8080\"\n[api]\nkeys = [\"0123456789abcdef\"]\n")
            .is_ok()
    );
    // Without the API there is no key to guard /metrics with.
    assert_problem(
        "[server]\nlisten = \"0.0.0.0:8080\"\n[api]\nenabled = false\n",
        "metrics",
        "/metrics would be open to anyone",
    );
    assert!(
        build("[server]\nlisten = \"0.0.0.0:8080\"\n[api]\nenabled = false\n[metrics]\nenabled = false\n")
            .is_ok()
    );
    assert!(
        build("[server]\nlisten = \"0.0.0.0:8080\"\n[api]\nenabled = false\n[metrics]\nlisten = \"127.0.0.1:9090\"\n")
            .is_ok()
    );
    assert_problem(
        "[server]\nlisten = \"127.0.0.1:8080\"\npublic = true\n",
        "api.keys",
        "server.public = true",
    );
    assert!(build("[server]\nlisten = \"[::1]:8080\"\n").is_ok());
    assert_problem("[api]\nkeys = [\"short\"]\n", "api.keys[0]", "too short");
}

#[test]
fn the_broker_is_checked() {
    assert_problem(
        "[broker]\ntype = \"redis\"\n",
        "broker.url",
        "required with type = \"redis\"",
    );
    assert_problem(
        "[broker]\nurl = \"redis://127.0.0.1:6379\"\n",
        "broker.url",
        "only used with type = \"redis\"",
    );
    assert_problem(
        "[broker]\ntype = \"redis\"\nurl = \"http://x\"\n",
        "broker",
        "Redis URL",
    );
    assert_problem(
        "[broker]\ninstance_id = \"a b\"\n",
        "broker.instance_id",
        "not valid",
    );
    let plan =
        build("[broker]\ntype = \"redis\"\nurl = \"redis://user:pw@127.0.0.1:6379/0\"\n").unwrap();
    match plan.broker {
        BrokerPlan::Redis { url, .. } => assert_eq!(url, "redis://[redacted]@127.0.0.1:6379/0"),
        BrokerPlan::Memory => panic!("expected redis"),
    }
}

#[test]
fn limits_compression_and_keepalive_are_checked() {
    assert_problem(
        "[limits]\nmax_message_size = \"64KiB\"\nmax_frame_size = \"1MiB\"\n",
        "limits.max_frame_size",
        "larger than max_message_size",
    );
    assert_problem(
        "[limits]\nmax_fragments = 0\n",
        "limits.max_fragments",
        "at least 1",
    );
    assert_problem(
        "[limits]\nmax_queue_bytes = 10\n",
        "limits.max_queue_bytes",
        "at least 1KiB",
    );
    assert_problem(
        "[compression]\nlevel = 12\n",
        "compression.level",
        "use 0 to 9",
    );
    assert_problem(
        "[keepalive]\ninterval = \"30s\"\ntimeout = \"30s\"\n",
        "keepalive.timeout",
        "longer than the interval",
    );
    assert_problem(
        "[[endpoints]]\npath = \"/e\"\nprotocol = \"echo\"\nkeepalive = { timeout = \"1s\" }\n",
        "endpoints[0].keepalive.timeout",
        "longer than the interval",
    );
    assert_problem("[server]\nworkers = 0\n", "server.workers", "at least 1");
    assert_problem(
        "[server]\nhandshake_timeout = 0\n",
        "server.handshake_timeout",
        "more than 0",
    );
}

#[test]
fn endpoint_settings_override_the_defaults() {
    let plan = build(
        "[limits]\nmax_message_size = \"2MiB\"\n[[endpoints]]\npath = \"/e\"\nprotocol = \"echo\"\nlimits = { max_message_size = \"64KiB\" }\ncompression = { enabled = false }\n[[endpoints]]\npath = \"/b\"\nprotocol = \"broadcast\"\n",
    )
    .unwrap();
    assert_eq!(plan.endpoints[0].route.limits.max_message_size, 64 << 10);
    assert_eq!(plan.endpoints[0].route.limits.max_frame_size, 64 << 10);
    assert!(plan.endpoints[0].route.compression.is_none());
    assert_eq!(plan.endpoints[1].route.limits.max_message_size, 2 << 20);
    assert!(
        matches!(&plan.endpoints[1].kind, EndpointKind::Broadcast { room } if room == "broadcast"),
        "{:?}",
        plan.endpoints[1].kind
    );
}

#[test]
fn security_settings_are_checked() {
    assert_problem(
        "[security]\norigins = [\"app.example.com/path\"]\n",
        "security.origins",
        "",
    );
    assert_problem("[security]\norigins = []\n", "security.origins", "empty");
    assert_problem(
        "[security]\ntoken_sources = [\"header:x\"]\n",
        "security.token_sources[0]",
        "unknown token source",
    );
    assert_problem(
        "[security]\nguards = [\"authenticated\"]\n",
        "security.guards[0]",
        "needs authentication",
    );
    assert_problem(
        "[security]\nguards = [\"wizard\"]\n[[security.api_keys]]\nkey = \"0123456789abcdef\"\nuser = \"u\"\n",
        "security.guards[0]",
        "unknown guard",
    );
    assert_problem(
        "[security]\nrate_limit = { burst = 3 }\n",
        "security.rate_limit",
        "needs per_second or per_minute",
    );
    assert_problem(
        "[server]\nrate_limit = { per_second = -1.0 }\n",
        "server.rate_limit.per_second",
        "above 0",
    );
    assert_problem(
        "[server]\ntrusted_proxies = [\"10.0.0.0/33\"]\n",
        "server.trusted_proxies",
        "",
    );
    assert_problem(
        "[[security.api_keys]]\nkey = \"short\"\nuser = \"svc\"\n",
        "security.api_keys[0].key",
        "too short",
    );
    assert_problem(
        "[[security.api_keys]]\nkey_env = \"SWITCHBOARD_TEST_UNSET_VARIABLE\"\nuser = \"svc\"\n",
        "security.api_keys[0].key_env",
        "is not set",
    );
    assert_problem(
        "[[endpoints]]\npath = \"/e\"\nprotocol = \"echo\"\n[endpoints.security]\nguards = [\"admin\"]\n",
        "endpoints[0].security.guards[0]",
        "needs authentication",
    );
}

#[test]
fn jwt_settings_are_checked() {
    assert_problem(
        "[security.jwt]\nissuers = [\"x\"]\n",
        "security.jwt",
        "no keys",
    );
    assert_problem(
        "[[security.jwt.keys]]\nalgorithm = \"HS999\"\nsecret = \"x\"\n",
        "security.jwt.keys[0].algorithm",
        "unknown algorithm",
    );
    assert_problem(
        "[[security.jwt.keys]]\nalgorithm = \"HS256\"\nsecret = \"too short\"\n",
        "security.jwt.keys[0]",
        "",
    );
    assert_problem(
        "[[security.jwt.keys]]\nalgorithm = \"RS256\"\n",
        "security.jwt.keys[0].public_key_file",
        "required for RS256",
    );
    assert_problem(
        "[[security.jwt.keys]]\nalgorithm = \"RS256\"\npublic_key_file = \"/nonexistent/key.pem\"\n",
        "security.jwt.keys[0].public_key_file",
        "cannot read",
    );
    assert_problem(
        "[[security.jwt.keys]]\nalgorithm = \"HS256\"\nsecret = \"0123456789abcdef0123456789abcdef\"\nsecret_env = \"X\"\n",
        "security.jwt.keys[0]",
        "not both",
    );
    let ok = build(
        "[security]\nguards = [\"authenticated\", \"permission:chat\"]\n[[security.jwt.keys]]\nalgorithm = \"HS256\"\nsecret = \"0123456789abcdef0123456789abcdef\"\n",
    );
    assert!(ok.is_ok(), "{}", ok.unwrap_err());
}

#[test]
fn log_and_tls_are_checked() {
    assert_problem(
        "[log]\nlevel = \"info,=nonsense=\"\n",
        "log.level",
        "invalid filter",
    );
    assert_problem(
        "[tls]\ncert = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"\n",
        "tls.cert",
        "cannot read",
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = "[server]\nworkers = 0\n[limits]\nmax_fragments = 0\n[[endpoints]]\npath = \"x\"\nprotocol = \"echo\"\n";
    let problems = build(text).unwrap_err();
    assert_eq!(
        problems.keys(),
        [
            "server.workers",
            "limits.max_fragments",
            "endpoints[0].path"
        ]
    );
}

/// docs/configuration.md, read at test time.
fn configuration_doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

fn key_paths(value: &toml::Value, prefix: &str, out: &mut Vec<String>) {
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                key_paths(value, &path, out);
            }
        }
        toml::Value::Array(items)
            if !items.is_empty() && items.iter().all(toml::Value::is_table) =>
        {
            for item in items {
                key_paths(item, &format!("{prefix}[]"), out);
            }
        }
        _ => out.push(prefix.to_owned()),
    }
}

#[test]
fn every_key_of_the_example_is_in_the_configuration_doc() {
    let doc = configuration_doc();
    let example: toml::Value = toml::from_str(&maximal_example()).unwrap();
    let mut keys = Vec::new();
    key_paths(&example, "", &mut keys);
    keys.dedup();
    let missing: Vec<&String> = keys
        .iter()
        .filter(|key| {
            // An endpoint's security table has [security]'s keys.
            let general = key
                .strip_prefix("endpoints[].")
                .filter(|k| k.starts_with("security."));
            !doc.contains(&format!("`{key}`"))
                && !general.is_some_and(|k| doc.contains(&format!("`{k}`")))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "keys missing from docs/configuration.md: {missing:?}"
    );
    assert!(keys.len() > 60, "only {} keys found", keys.len());
}

#[test]
fn every_environment_variable_is_in_the_configuration_doc() {
    let doc = configuration_doc();
    for (name, _) in crate::config::ENV_VARS {
        assert!(
            doc.contains(&format!("`{name}`")),
            "{name} is not in docs/configuration.md"
        );
    }
}
