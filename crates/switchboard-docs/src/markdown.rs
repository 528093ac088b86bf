//! The fenced code blocks of a Markdown file, with what their fence line
//! says about them.
//!
//! A fence line is three backticks, then the block's *info string*:
//!
//! ````text
//! ```rust,no_run readme-chat
//! ```sh quickstart
//! ```toml
//! ````
//!
//! The first word (up to a space) is the language, with rustdoc's
//! attributes after commas (`rust,no_run`); the next word, if any, is the
//! block's **tag**: the name its check knows it by (a Rust snippet that a
//! test includes, or the walkthrough a test runs). GitHub reads only the
//! first word, so tags do not show on the rendered page. Used by this
//! crate's build script and tests, and by the gateway's docs tests.

use std::path::{Path, PathBuf};

/// One fenced code block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The file, relative to the repository root (`docs/guide.md`).
    pub file: String,
    /// The line of the opening fence (1-based).
    pub line: usize,
    /// The language (`rust`, `sh`, `toml`, ...); empty when the fence has none.
    pub lang: String,
    /// rustdoc attributes after the language (`no_run`, `ignore`).
    pub attrs: Vec<String>,
    /// The tag: the second word of the info string.
    pub tag: Option<String>,
    /// The block's text, every line ending in `\n`.
    pub text: String,
}

impl Block {
    /// Where the block is, for messages: `docs/guide.md:96`.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }

    /// Whether the fence carries this tag.
    pub fn is(&self, tag: &str) -> bool {
        self.tag.as_deref() == Some(tag)
    }

    /// The block's lines that are not blank and not `#` comments.
    pub fn commands(&self) -> Vec<&str> {
        self.text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect()
    }
}

/// The fenced blocks of `markdown`, in order. `file` names it in each block.
///
/// Panics on a fence that is never closed: a half-open block would swallow
/// the rest of the page.
pub fn blocks(file: &str, markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<(Block, usize)> = None;
    for (index, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match &mut open {
            Some((block, fence_indent)) => {
                if trimmed.trim_end() == "```" {
                    out.push(open.take().expect("open").0);
                } else {
                    // Lines of an indented block (in a list) lose the fence's indent.
                    let strip = indent.min(*fence_indent);
                    block.text.push_str(&line[strip..]);
                    block.text.push('\n');
                }
            }
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    let mut words = info.split_whitespace();
                    let first = words.next().unwrap_or("");
                    let mut parts = first.split(',');
                    let lang = parts.next().unwrap_or("").to_owned();
                    let attrs = parts.map(str::to_owned).collect();
                    let tag = words.next().map(str::to_owned);
                    let block = Block {
                        file: file.to_owned(),
                        line: index + 1,
                        lang,
                        attrs,
                        tag,
                        text: String::new(),
                    };
                    open = Some((block, indent));
                }
            }
        }
    }
    if let Some((block, _)) = open {
        panic!("{}: a code block that is never closed", block.location());
    }
    out
}

/// The repository's root (this crate is `crates/switchboard-docs`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

/// The documentation every check covers: `README.md` and `docs/*.md`, as
/// paths relative to the repository root, sorted.
pub fn doc_files() -> Vec<String> {
    let root = repo_root();
    let mut files = vec!["README.md".to_owned()];
    let mut docs: Vec<String> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|entry| entry.expect("a docs/ entry").file_name())
        .filter_map(|name| name.to_str().map(str::to_owned))
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// Every block of every file [`doc_files`] lists.
pub fn all_blocks() -> Vec<Block> {
    let root = repo_root();
    doc_files()
        .iter()
        .flat_map(|file| {
            let text =
                std::fs::read_to_string(root.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            blocks(file, &text)
        })
        .collect()
}

/// The blocks tagged `tag`, in document order; panics when there is none
/// (a check whose blocks were renamed away would otherwise pass on nothing).
pub fn tagged(tag: &str) -> Vec<Block> {
    let found: Vec<Block> = all_blocks().into_iter().filter(|b| b.is(tag)).collect();
    assert!(
        !found.is_empty(),
        "no code block is tagged `{tag}` in README.md or docs/*.md"
    );
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fences_give_language_attributes_tag_and_text() {
        let md = "intro\n```rust,no_run readme-chat\nfn main() {}\n```\n\n```sh\necho hi\n# a comment\n\n```\n  ```toml\n  [a]\n  b = 1\n  ```\n";
        let found = blocks("x.md", md);
        assert_eq!(found.len(), 3);
        assert_eq!(found[0].lang, "rust");
        assert_eq!(found[0].attrs, ["no_run"]);
        assert_eq!(found[0].tag.as_deref(), Some("readme-chat"));
        assert_eq!(found[0].text, "fn main() {}\n");
        assert_eq!(found[0].line, 2);
        assert_eq!(found[1].lang, "sh");
        assert_eq!(found[1].tag, None);
        assert_eq!(found[1].commands(), ["echo hi"]);
        assert_eq!(found[2].text, "[a]\nb = 1\n");
    }

    #[test]
    #[should_panic(expected = "never closed")]
    fn an_unclosed_fence_is_an_error() {
        blocks("x.md", "```sh\necho\n");
    }
}
