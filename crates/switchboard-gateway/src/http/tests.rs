//! The route table, the router and the generated OpenAPI document describe
//! the same API.

use std::collections::BTreeSet;

use super::Route;
use super::error::ApiCode;
use super::openapi;

fn document() -> serde_json::Value {
    serde_json::from_str(openapi::json()).expect("the document is JSON")
}

fn documented() -> BTreeSet<(String, String)> {
    let doc = document();
    assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."));
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[test]
fn every_route_is_documented_and_every_documented_route_exists() {
    let routes: BTreeSet<(String, String)> = Route::ALL
        .iter()
        .map(|r| (r.verb().as_str().to_owned(), r.path().to_owned()))
        .collect();
    assert_eq!(
        routes.len(),
        Route::ALL.len(),
        "a route is in the table twice"
    );
    let documented = documented();
    let undocumented: Vec<_> = routes.difference(&documented).collect();
    let missing: Vec<_> = documented.difference(&routes).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the OpenAPI document: {undocumented:?}"
    );
    assert!(missing.is_empty(), "documented but not routed: {missing:?}");
}

#[test]
fn each_handlers_annotation_names_its_routes_method_and_path() {
    for route in Route::ALL {
        let (path, methods, _) = route.operation();
        assert_eq!(path, route.path(), "{route:?}");
        assert!(methods == vec![route.verb().openapi()], "{route:?}");
    }
}

#[test]
fn public_routes_need_no_key_and_the_api_does() {
    let doc = document();
    assert_eq!(
        doc["security"],
        serde_json::json!([{ "bearer": [] }, { "apiKey": [] }])
    );
    for route in Route::ALL {
        let operation = &doc["paths"][route.path()][route.verb().as_str().to_lowercase()];
        assert!(operation.is_object(), "{route:?}");
        if route.is_public() {
            assert_eq!(operation["security"], serde_json::json!([]), "{route:?}");
        } else {
            assert!(operation.get("security").is_none(), "{route:?}");
            assert!(operation["responses"]["401"].is_object(), "{route:?}");
        }
    }
}

#[test]
fn every_reference_in_the_document_resolves() {
    let doc = document();
    fn walk(value: &serde_json::Value, doc: &serde_json::Value, seen: &mut usize) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(target)) = map.get("$ref") {
                    let pointer = target.strip_prefix('#').expect("local reference");
                    assert!(doc.pointer(pointer).is_some(), "dangling $ref {target}");
                    *seen += 1;
                }
                map.values().for_each(|v| walk(v, doc, seen));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, doc, seen)),
            _ => {}
        }
    }
    let mut seen = 0;
    walk(&doc, &doc, &mut seen);
    assert!(seen > 20, "only {seen} references");
}

#[test]
fn the_request_schemas_refuse_unknown_fields_like_the_handlers() {
    let doc = document();
    for schema in [
        "PublishRequest",
        "DisconnectRequest",
        "ShutdownRequest",
        "Target",
    ] {
        assert_eq!(
            doc["components"]["schemas"][schema]["additionalProperties"],
            serde_json::json!(false),
            "{schema}"
        );
    }
}

#[test]
fn the_router_builds_from_the_table() {
    // Every route has a handler, and axum accepts the paths.
    for route in Route::ALL {
        let _ = route.handler();
    }
}

#[test]
fn the_error_table_in_the_docs_lists_every_code_with_its_status() {
    let docs = include_str!("../../../../docs/operations.md");
    let section = &docs[docs.find("## The HTTP API").expect("the API section")..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let table = &section[section
        .find("| status | code | when |")
        .expect("the error table")..];
    let rows: Vec<(u16, String)> = table
        .lines()
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let status = cells[1].parse().expect("a status");
            (status, cells[2].trim_matches('`').to_owned())
        })
        .collect();
    let codes: Vec<(u16, String)> = ApiCode::ALL
        .iter()
        .map(|c| (c.status().as_u16(), c.as_str().to_owned()))
        .collect();
    assert_eq!(rows, codes);
    for code in ApiCode::ALL {
        assert_eq!(
            serde_json::to_value(code).unwrap(),
            serde_json::json!(code.as_str())
        );
    }
}

#[test]
fn every_api_route_documents_the_refusals_it_shares() {
    let doc = document();
    for route in Route::ALL {
        if route.part() != super::Part::Api {
            continue;
        }
        let responses =
            &doc["paths"][route.path()][route.verb().as_str().to_lowercase()]["responses"];
        assert!(responses["405"].is_object(), "{route:?}");
        let with_body = route.verb() == super::routes::Verb::Post;
        assert_eq!(responses["413"].is_object(), with_body, "{route:?}");
        assert_eq!(responses["415"].is_object(), with_body, "{route:?}");
    }
    let codes = &doc["components"]["schemas"]["ApiCode"]["enum"];
    let listed: Vec<&str> = ApiCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(codes, &serde_json::json!(listed));
}
