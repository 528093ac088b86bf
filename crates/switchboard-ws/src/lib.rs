//! The RFC 6455 WebSocket codec and handshake that Switchboard runs on.
//!
//! Nothing here does IO: the [`Decoder`] takes bytes and gives messages, the
//! [`frame`] module encodes headers into stack buffers, and [`handshake`]
//! reads and writes HTTP/1.1 heads. That keeps every limit testable byte by
//! byte, and the parser fuzzable (see `fuzz/` at the repository root).
//!
//! # Layout
//! - [`frame`]: frame headers, parsed with every header-level check, and
//!   encoded frames ([`OutFrame`]) whose payload can be shared.
//! - [`decoder`]: reassembly, unmasking, incremental UTF-8 and the size limits.
//! - [`close`]: [`CloseCode`] and [`CloseFrame`].
//! - [`handshake`]: the opening handshake, server and client side.
//! - [`mask`]: word-wide masking.
//! - [`deflate`]: permessage-deflate (RFC 7692).
//! - [`error`]: the crate's one error type.

// No `unwrap` outside tests: a failure says what went wrong (`expect`)
// or is handled.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod close;
pub mod decoder;
pub mod deflate;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod mask;
pub mod message;
pub mod opcode;

pub use close::{CloseCode, CloseFrame};
pub use decoder::{Decoder, Limits, Role};
pub use error::{Error, HandshakeError, ProtocolError};
pub use frame::{FrameHeader, HeaderBuf, OutFrame};
pub use message::{Message, Utf8Bytes};
pub use opcode::OpCode;
