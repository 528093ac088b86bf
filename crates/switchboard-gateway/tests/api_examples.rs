//! docs/operations.md's "The HTTP API" against the real binary: every
//! route's documented answer has the fields the gateway sends, every
//! `curl` example is sent as written and answers as its `# →` line says,
//! and `/readyz`'s documented body has the fields it sends.

mod support;

use std::collections::BTreeSet;

use serde_json::{Value, json};
use support::{Gateway, Options};

const KEY: &str = "test-key-0123456789abcdef";
const DOCS: &str = include_str!("../../../docs/operations.md");

/// The section under `## {title}`.
fn section(title: &str) -> &'static str {
    let heading = format!("## {title}\n");
    let start = DOCS.find(&heading).expect("the section") + heading.len();
    let rest = &DOCS[start..];
    &rest[..rest.find("\n## ").unwrap_or(rest.len())]
}

/// The top-level names of a documented answer's shape:
/// `{"instance", "total", "connections": [{"room", "size"}, ...]}` gives
/// instance, total and connections.
fn names(shape: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut depth = 0;
    let mut chars = shape.chars();
    while let Some(c) = chars.next() {
        match c {
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            '"' => {
                let text: String = chars.by_ref().take_while(|c| *c != '"').collect();
                let next = chars.clone().find(|c| !c.is_whitespace());
                if depth == 1 && matches!(next, Some(',' | ':' | '}')) {
                    out.insert(text);
                }
            }
            _ => {}
        }
    }
    out
}

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect()
}

/// Each row of the route table: ("METHOD path", the answers cell).
fn route_rows() -> Vec<(String, String)> {
    let table = section("The HTTP API");
    let table = &table[table
        .find("| method and path | what it does | answers")
        .expect("the route table")..];
    table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|line| {
            // Cells split on bars that are not escaped (`asc\|desc`).
            let line = line.replace("\\|", "\u{1}");
            let cells: Vec<String> = line
                .split('|')
                .map(|c| c.trim().replace('\u{1}', "|"))
                .collect();
            (cells[1].trim_matches('`').to_owned(), cells[3].clone())
        })
        .collect()
}

/// The first `{...}` code span of a cell.
fn first_shape(cell: &str) -> String {
    let start = cell.find("`{").expect("a shape") + 1;
    let end = start + cell[start..].find('`').expect("its end");
    cell[start..end].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_routes_documented_answer_has_the_fields_sent() {
    let gw = Gateway::start_with(&Options {
        env: vec![("SWITCHBOARD_API_KEY", KEY.to_owned())],
        args: vec!["--instance-id".into(), "gw-1".into()],
        ..Options::default()
    });
    let auth = [("authorization", format!("Bearer {KEY}"))];
    let headers: Vec<(&str, &str)> = auth.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut ws = gw.ws_client().connect("/ws/broadcast").await.unwrap();
    gw.wait_for_room_with("broadcast", 1, &headers).await;
    let listed = gw
        .send("GET", "/api/v1/connections", &headers, None)
        .await
        .json();
    let id = listed["connections"][0]["id"].as_u64().unwrap();
    let publish = r#"{"target": {"room": "public:news"}, "text": "x"}"#;
    gw.send("POST", "/api/v1/publish", &headers, Some(publish))
        .await;

    let rows = route_rows();
    assert_eq!(rows.len(), 14, "{rows:?}");
    let connection_shape = names(&first_shape(
        &rows
            .iter()
            .find(|(route, _)| route == "GET /api/v1/connections/{id}")
            .unwrap()
            .1,
    ));
    let mut shutdown = None;
    let mut delete = None;
    for (route, cell) in &rows {
        let (method, path) = route.split_once(' ').unwrap();
        let (path, body) = match route.as_str() {
            "POST /api/v1/publish" => (
                path.to_owned(),
                Some(r#"{"target": {"room": "broadcast"}, "text": "hi"}"#),
            ),
            "POST /api/v1/disconnect" => {
                (path.to_owned(), Some(r#"{"target": {"user": "nobody"}}"#))
            }
            "POST /api/v1/admin/shutdown" => {
                shutdown = Some(cell.clone());
                continue; // last: it stops the gateway
            }
            "DELETE /api/v1/connections/{id}" => {
                delete = Some(cell.clone());
                continue; // after the others: it closes the connection
            }
            _ => (
                path.replace("{id}", &id.to_string())
                    .replace("{user}", "nobody")
                    .replace("{room}", "broadcast")
                    .replace("{channel}", "public:news"),
                None,
            ),
        };
        let response = gw.send(method, &path, &headers, body).await;
        assert_eq!(response.status, 200, "{route}: {}", response.body);
        let answer = response.json();
        let documented = names(&first_shape(cell));
        assert_eq!(keys(&answer), documented, "{route}: {answer}");
        for list in ["connections"] {
            if let Some(items) = answer.get(list).and_then(Value::as_array) {
                for item in items {
                    assert_eq!(keys(item), connection_shape, "{route}: {item}");
                }
            }
        }
        if route == "GET /api/v1/connections/{id}" {
            assert_eq!(answer["address"], format!("gw-1/{id}"));
            assert!(answer["connected_at"].is_f64(), "seconds: {answer}");
            assert_eq!(answer["user"], Value::Null);
        }
        if route == "GET /api/v1/rooms" {
            assert_eq!(answer["rooms"], json!([{"room": "broadcast", "size": 1}]));
        }
        if route == "GET /api/v1/channels/{channel}/history" {
            // Bare text to a channel is kept as the EVENT switchboard.text
            // its subscribers got (docs/protocol.md, "Bare text").
            let kept = &answer["publications"][0];
            assert_eq!(
                keys(kept),
                BTreeSet::from(["offset".into(), "message".into()])
            );
            assert_eq!(kept["message"]["payload"]["event"], "switchboard.text");
        }
    }

    let cell = delete.expect("the DELETE row");
    let path = format!("/api/v1/connections/{id}");
    let response = gw.send("DELETE", &path, &headers, None).await;
    let documented: Value = serde_json::from_str(&first_shape(&cell)).unwrap();
    assert_eq!(response.json(), documented);
    // What the publish row sent it, then the close.
    assert_eq!(ws.recv_text().await.unwrap(), "hi");
    assert!(ws.recv_text().await.is_err(), "closed");

    let cell = shutdown.expect("the shutdown row");
    let response = gw
        .send("POST", "/api/v1/admin/shutdown", &headers, Some("{}"))
        .await;
    assert_eq!(response.status, 202, "{}", response.body);
    let documented: Value = serde_json::from_str(&first_shape(&cell)).unwrap();
    assert_eq!(response.json(), documented);
}

/// The `curl` examples: method, path and body, and the `# →` line after each.
fn curl_examples() -> Vec<(String, String, String, Option<String>)> {
    let text = section("The HTTP API");
    // The fence may carry a tag (```` ```sh api ````, docs/README.md).
    let block = &text[text.find("```sh").expect("the examples")..];
    let block = &block[block.find('\n').expect("the fence line") + 1..];
    let block = &block[..block.find("```").unwrap()];
    let mut out = Vec::new();
    let mut rest = block;
    while let Some(at) = rest.find("curl -X ") {
        rest = &rest[at + "curl -X ".len()..];
        let method = rest.split_whitespace().next().unwrap().to_owned();
        let url = rest.split_whitespace().nth(1).unwrap();
        let path = url["localhost:8080".len()..].to_owned();
        let body_at = rest.find("-d '").unwrap() + 4;
        let body_len = rest[body_at..].find('\'').unwrap();
        let body = rest[body_at..body_at + body_len].to_owned();
        rest = &rest[body_at + body_len..];
        let answer = rest
            .lines()
            .nth(1)
            .and_then(|l| l.strip_prefix("# → "))
            .map(str::to_owned);
        out.push((method, path, body, answer));
    }
    out
}

/// A documented answer as JSON: the part from its first `{`.
fn documented_answer(line: &str) -> Value {
    serde_json::from_str(&line[line.find("{\"").unwrap()..]).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_curl_example_answers_as_documented() {
    let gw = Gateway::start(&[]);
    let examples = curl_examples();
    assert_eq!(examples.len(), 5, "{examples:?}");
    let first_answer = documented_answer(examples[0].3.as_deref().expect("an answer"));
    for (n, (method, path, body, answer)) in examples.iter().enumerate() {
        let response = gw.send(method, path, &[], Some(body)).await;
        assert_eq!(response.status, 200, "example {n}: {}", response.body);
        let got = response.json();
        let Some(answer) = answer else { continue };
        let documented = documented_answer(answer);
        if n == 0 {
            assert_eq!(keys(&got), keys(&documented), "example {n}: {got}");
            assert_eq!(got["forwarded"], true);
            assert!(got["offset"].is_u64() && got["local"].is_u64(), "{got}");
            assert!(
                uuid::Uuid::parse_str(got["id"].as_str().unwrap()).is_ok(),
                "{got}"
            );
            let epoch = got["epoch"].as_str().unwrap();
            assert!(
                epoch.len() == 16 && epoch.bytes().all(|b| b.is_ascii_hexdigit()),
                "{epoch}"
            );
        }
        if n == 1 {
            // "The first time as above"; the retry as documented.
            assert!(answer.starts_with("the first time as above; a retry: "));
            assert_eq!(keys(&got), keys(&first_answer), "{got}");
            let retry = gw.send(method, path, &[], Some(body)).await.json();
            assert_eq!(keys(&retry), keys(&documented), "{retry}");
            assert_eq!(retry["local"], documented["local"]);
            assert_eq!(retry["forwarded"], documented["forwarded"]);
            assert_eq!(retry["duplicate"], true);
            assert_eq!(retry["offset"], got["offset"]);
            assert_eq!(retry["epoch"], got["epoch"]);
        }
        assert!(n < 2, "example {n} has an answer this test does not check");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_answers_the_documented_body() {
    let gw = Gateway::start(&[]);
    let text = section("Health and readiness");
    let documented = documented_answer(
        text.lines()
            .find(|l| l.contains("`GET /readyz`"))
            .unwrap()
            .trim_end_matches(" |")
            .trim_end_matches('`'),
    );
    let response = gw.wait_for_status("/readyz", 200).await;
    let got = response.json();
    assert_eq!(keys(&got), keys(&documented), "{got}");
    assert_eq!(keys(&got["broker"]), keys(&documented["broker"]), "{got}");
    assert_eq!(got["broker"]["type"], "memory");
    assert_eq!(got["ready"], true);
}
