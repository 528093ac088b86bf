//! Reads README.md and docs/*.md and writes, into `OUT_DIR`:
//!
//! - `doctests.rs`: one module per document, its docs the document itself
//!   (`#[doc = include_str!(..)]`), so that `cargo test` compiles (and runs,
//!   unless `no_run`) every ```` ```rust ```` block as a doctest;
//! - `snippets/<tag>.rs`: every tagged Rust block, which the tests include
//!   (`snippet!("readme-chat")`) to connect to what the block builds.

use std::fmt::Write as _;
use std::path::Path;

#[allow(dead_code, unreachable_pub)]
#[path = "src/markdown.rs"]
mod markdown;

fn main() {
    let root = markdown::repo_root();
    let out = std::env::var("OUT_DIR").expect("OUT_DIR");
    let out = Path::new(&out);
    println!(
        "cargo:rerun-if-changed={}",
        root.join("README.md").display()
    );
    println!("cargo:rerun-if-changed={}", root.join("docs").display());

    let mut doctests = String::new();
    let snippets = out.join("snippets");
    // A tag removed from the docs must not linger as a stale file.
    let _ = std::fs::remove_dir_all(&snippets);
    std::fs::create_dir_all(&snippets).expect("OUT_DIR/snippets");
    let mut seen = std::collections::BTreeMap::new();
    for file in markdown::doc_files() {
        let path = root.join(&file);
        println!("cargo:rerun-if-changed={}", path.display());
        let module = match file.as_str() {
            "README.md" => "readme".to_owned(),
            "docs/README.md" => "docs_readme".to_owned(),
            other => other
                .trim_start_matches("docs/")
                .trim_end_matches(".md")
                .replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
        };
        writeln!(
            doctests,
            "#[doc = include_str!({:?})]\npub mod {module} {{}}",
            path.display().to_string()
        )
        .expect("write");

        let text = std::fs::read_to_string(&path).expect("a document");
        for block in markdown::blocks(&file, &text) {
            let Some(tag) = block.tag.clone().filter(|_| block.lang == "rust") else {
                continue;
            };
            if let Some(earlier) = seen.insert(tag.clone(), block.location()) {
                panic!(
                    "{}: the snippet tag `{tag}` is taken ({earlier})",
                    block.location()
                );
            }
            std::fs::write(snippets.join(format!("{tag}.rs")), &block.text).expect("a snippet");
        }
    }
    std::fs::write(out.join("doctests.rs"), doctests).expect("doctests.rs");
}
