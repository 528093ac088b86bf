//! Every code block of README.md and docs/*.md has a language and a check,
//! and the checks that live here: the README's setup lines are this
//! crate's dependencies, its layout lists every crate and document, and
//! every JSON block is a message of the protocol.

#[macro_use]
mod support;

use std::collections::BTreeSet;

use switchboard_docs::markdown::{Block, all_blocks, repo_root, tagged};

/// The languages and tags a block may have, and what checks it. The same
/// table is in docs/README.md.
const CHECKS: &[(&str, Option<&str>, &str)] = &[
    (
        "rust",
        None,
        "compiled (and run unless no_run) as a doctest of switchboard-docs",
    ),
    (
        "toml",
        None,
        "a gateway config: `switchboard config check` (gateway tests/docs_config.rs)",
    ),
    (
        "toml",
        Some("cargo"),
        "the README's setup: switchboard-docs's dependencies (tests/inventory.rs)",
    ),
    (
        "json",
        None,
        "a protocol message: parsed by switchboard-protocol (tests/inventory.rs)",
    ),
    (
        "json",
        Some("quickstart"),
        "what the quick start's client sends (gateway tests/docs_quickstart.rs)",
    ),
    (
        "json",
        Some("proxy-call"),
        "a proxy call's body: its fields are what the gateway sends (gateway tests/docs_proxy.rs)",
    ),
    (
        "json",
        Some("proxy-answer"),
        "a backend's answer: a JSON object with one of `result` and `error` (tests/inventory.rs)",
    ),
    (
        "http",
        Some("proxy-call"),
        "a proxy call's headers: those the gateway sends (gateway tests/docs_proxy.rs)",
    ),
    (
        "text",
        Some("shape"),
        "not run: the shape of a JSON body, `...` standing for any value",
    ),
    (
        "python",
        Some("proxy-backend"),
        "run as the backend of a gateway's rpc proxy (gateway tests/docs_proxy.rs)",
    ),
    (
        "js",
        Some("proxy-backend"),
        "run with Node as the backend of a gateway's rpc proxy (gateway tests/docs_proxy.rs)",
    ),
    (
        "sh",
        Some("readme"),
        "run against the real gateway (gateway tests/docs_quickstart.rs)",
    ),
    (
        "sh",
        Some("quickstart"),
        "run line by line against the real gateway (gateway tests/docs_quickstart.rs)",
    ),
    (
        "sh",
        Some("config-cli"),
        "run with the real binary (gateway tests/docs_config.rs)",
    ),
    (
        "sh",
        Some("api"),
        "run against the real gateway (gateway tests/docs_api.rs)",
    ),
    (
        "sh",
        Some("redis-cli"),
        "run against real redis-server and gateway (gateway tests/docs_redis.rs)",
    ),
    (
        "sh",
        Some("python-worker"),
        "run against real redis-server and gateway (gateway tests/docs_redis.rs)",
    ),
    (
        "python",
        Some("python-worker"),
        "run against real redis-server and gateway (gateway tests/docs_redis.rs)",
    ),
    ("sh", Some("ci"), "run by .ci/run"),
    (
        "sh",
        Some("deploy"),
        "not run: needs a deployment's files and hosts (its config is checked)",
    ),
    (
        "sh",
        Some("example"),
        "not run: starts an example that cargo test compiles",
    ),
    ("sh", Some("bench"), "not run: a benchmark"),
    (
        "sh",
        Some("record"),
        "not run: what bench/run ran, written by bench/report.py",
    ),
    (
        "text",
        Some("layout"),
        "lists every crate and document (tests/inventory.rs)",
    ),
    (
        "text",
        Some("config-errors"),
        "the output of `config check` (gateway tests/docs_config.rs)",
    ),
    (
        "text",
        Some("exposure"),
        "the output of `config check` (gateway tests/docs_config.rs)",
    ),
    (
        "text",
        Some("quickstart"),
        "what the quick start's client prints (gateway tests/docs_quickstart.rs)",
    ),
    (
        "nginx",
        Some("nginx"),
        "run as a proxy in front of the gateway, or `nginx -t` (gateway tests/docs_nginx.rs)",
    ),
    ("js", Some("browser"), "`node --check` (tests/inventory.rs)"),
];

const RUSTDOC_ATTRIBUTES: &[&str] = &["no_run", "ignore", "should_panic", "compile_fail"];

fn allowed(block: &Block) -> bool {
    if block.lang == "rust" {
        return block
            .attrs
            .iter()
            .all(|a| RUSTDOC_ATTRIBUTES.contains(&a.as_str()));
    }
    block.attrs.is_empty()
        && CHECKS
            .iter()
            .any(|(lang, tag, _)| *lang == block.lang && *tag == block.tag.as_deref())
}

#[test]
fn every_block_has_a_language_and_a_check() {
    let wrong: Vec<String> = all_blocks()
        .iter()
        .filter(|b| !allowed(b))
        .map(|b| {
            format!(
                "{}: ```{} {}",
                b.location(),
                b.lang,
                b.tag.as_deref().unwrap_or("")
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "blocks without a known language and tag (see CHECKS in this file and docs/README.md):\n{}",
        wrong.join("\n")
    );
}

/// A tagged Rust block is there to be connected to: some test includes it.
#[test]
fn every_tagged_rust_block_is_included_by_a_test() {
    let tests = repo_root().join("crates/switchboard-docs/tests");
    let mut sources = String::new();
    for entry in std::fs::read_dir(&tests).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            sources.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
    let orphans: Vec<String> = all_blocks()
        .iter()
        .filter(|b| b.lang == "rust")
        .filter_map(|b| b.tag.as_ref().map(|tag| (b, tag)))
        .filter(|(_, tag)| !sources.contains(&format!("snippet!(\"{tag}\")")))
        .map(|(b, tag)| format!("{}: {tag}", b.location()))
        .collect();
    assert!(orphans.is_empty(), "no test includes: {orphans:?}");
}

/// docs/README.md explains every tag this file knows.
#[test]
fn the_docs_index_lists_every_check() {
    let index = std::fs::read_to_string(repo_root().join("docs/README.md")).unwrap();
    for (lang, tag, _) in CHECKS {
        let name = match tag {
            Some(tag) => format!("`{lang} {tag}`"),
            None => format!("`{lang}`"),
        };
        assert!(
            index.contains(&name),
            "docs/README.md does not explain {name}"
        );
    }
}

/// The README's layout names every crate, client and document, and nothing
/// that is not there.
#[test]
fn the_readme_layout_lists_every_crate_and_document() {
    let layout = &tagged("layout")[0].text;
    let root = repo_root();
    let names = |dir: &str, keep: &dyn Fn(&str) -> bool| -> BTreeSet<String> {
        std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| keep(n))
            .collect()
    };
    let crates = names("crates", &|n| {
        root.join("crates").join(n).join("Cargo.toml").exists()
    });
    let clients = names("clients", &|_| true);
    let docs = names("docs", &|n| n.ends_with(".md"));
    let listed: BTreeSet<String> = layout
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| name.ends_with('/') || name.ends_with(".md"))
        .map(|name| name.trim_end_matches('/').to_owned())
        .collect();
    for name in crates.iter().chain(&clients).chain(&docs) {
        assert!(
            listed.contains(name),
            "README.md's layout does not list {name}"
        );
    }
    for name in &listed {
        let exists = ["crates", "clients", "docs", "."]
            .iter()
            .any(|dir| root.join(dir).join(name).exists());
        assert!(
            exists,
            "README.md's layout lists {name}, which does not exist"
        );
    }
}

/// The README's setup is exactly what this crate depends on (the paths
/// aside): the doctests build with what a new project adds, and nothing else.
#[test]
fn the_readme_setup_is_this_crates_dependencies() {
    let readme: toml::Table = tagged("cargo")[0].text.parse().unwrap();
    let manifest: toml::Table =
        std::fs::read_to_string(repo_root().join("crates/switchboard-docs/Cargo.toml"))
            .unwrap()
            .parse()
            .unwrap();
    // `path = "../switchboard/crates/switchboard"` and `path = "../switchboard"`
    // name the same crate: compare the last part only.
    fn normalise(deps: &toml::Value) -> toml::Table {
        let mut deps = deps.as_table().expect("a table").clone();
        for (_, spec) in deps.iter_mut() {
            if let Some(path) = spec.get_mut("path") {
                let last = path
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_owned();
                *path = toml::Value::String(last);
            }
        }
        deps
    }
    assert_eq!(
        normalise(&readme["dependencies"]),
        normalise(&manifest["dependencies"]),
        "README.md's [dependencies] and crates/switchboard-docs/Cargo.toml's differ"
    );
    let ours = normalise(&manifest["dev-dependencies"]);
    for (name, spec) in normalise(&readme["dev-dependencies"]) {
        assert_eq!(ours.get(&name), Some(&spec), "[dev-dependencies] {name}");
    }
    // The paths in the README are where a checkout next to the project has them.
    for (name, spec) in readme["dependencies"].as_table().unwrap() {
        if let Some(path) = spec.get("path").and_then(|p| p.as_str()) {
            assert_eq!(path, format!("../switchboard/crates/{name}"));
            assert!(
                repo_root()
                    .join("crates")
                    .join(name)
                    .join("Cargo.toml")
                    .exists()
            );
        }
    }
}

/// Every JSON block is a message of the structured protocol, whole or one
/// per line.
#[test]
fn every_json_block_is_a_protocol_message() {
    use switchboard::protocol::wire::envelope::parse;
    let blocks: Vec<Block> = all_blocks()
        .into_iter()
        .filter(|b| b.lang == "json" && (b.tag.is_none() || b.is("quickstart")))
        .collect();
    assert!(!blocks.is_empty());
    let mut checked = 0;
    for block in blocks {
        let messages: Vec<&str> = if serde_json::from_str::<serde_json::Value>(&block.text).is_ok()
        {
            vec![block.text.as_str()]
        } else {
            block
                .text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .collect()
        };
        for message in messages {
            if let Err(e) = parse(message) {
                panic!(
                    "{}: not a protocol message ({e:?}):\n{message}",
                    block.location()
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} messages");
}

/// The browser snippets are JavaScript Node accepts (they need a page, a
/// token and a server to run).
#[test]
fn browser_snippets_are_javascript() {
    let ci = std::env::var_os("CI").is_some();
    let node = std::process::Command::new("node").arg("--version").output();
    if node.is_err() {
        assert!(!ci, "node is required under CI");
        support::loud("SKIPPED browser_snippets_are_javascript: node is not on PATH");
        return;
    }
    for block in tagged("browser") {
        let dir = std::env::temp_dir().join(format!("switchboard-docs-js-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!("line{}.mjs", block.line));
        std::fs::write(&file, &block.text).unwrap();
        let out = std::process::Command::new("node")
            .arg("--check")
            .arg(&file)
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            out.status.success(),
            "{}: {}",
            block.location(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A backend's documented answers are JSON objects with exactly one of
/// `result` and `error`, as docs/proxy.md requires of them.
#[test]
fn every_documented_backend_answer_has_result_or_error() {
    for block in tagged("proxy-answer") {
        let answer: serde_json::Value = serde_json::from_str(&block.text)
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", block.location()));
        let keys: Vec<&String> = answer.as_object().expect("an object").keys().collect();
        assert!(
            keys == ["result"] || keys == ["error"],
            "{}: {keys:?}",
            block.location()
        );
    }
}
