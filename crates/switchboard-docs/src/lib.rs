//! The documentation's code, checked.
//!
//! - Every ```` ```rust ```` block of `README.md` and `docs/*.md` is a
//!   doctest of this crate: the build script gives each document a module
//!   whose docs are the document (`#[doc = include_str!(..)]`), so `cargo
//!   test` compiles each block as a program of its own against exactly the
//!   dependencies `README.md` tells a new project to add (this crate's
//!   `[dependencies]`), and runs it unless it says `no_run`.
//! - A block tagged on its fence (```` ```rust,no_run readme-chat ````) is
//!   also written to `OUT_DIR/snippets/<tag>.rs`, and this crate's tests
//!   include it (`snippet!`) to connect to what it builds: the README's
//!   chat server, the guide's routes, the Redis cluster of docs/scaling.md.
//! - [`markdown`] finds the blocks; `tests/inventory.rs` checks that every
//!   block of every document has a language and a check, and the gateway's
//!   `tests/docs_*.rs` run the shell, TOML and text blocks against the real
//!   binary. `docs/README.md` lists which check runs which block.

pub mod markdown;

include!(concat!(env!("OUT_DIR"), "/doctests.rs"));
