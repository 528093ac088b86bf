//! permessage-deflate (RFC 7692): negotiation, inflating with the size limit
//! checked while inflating, and compressing once for many recipients.
//!
//! Memory: a connection holds no compressor and no decompressor while idle.
//! By default the server asks for `client_no_context_takeover`, so the
//! decompressor (about 46 KB with a 15-bit window) exists only while a
//! compressed message is being read; and it sends with
//! `server_no_context_takeover`, compressing with a per-thread compressor
//! that any connection can use, so a broadcast is compressed once and the
//! same bytes go to every recipient with matching parameters. With context
//! takeover allowed ([`DeflateConfig::server_context_takeover`] /
//! [`DeflateConfig::client_context_takeover`]) each connection keeps its own
//! compressor (about 300 KB at 15 bits) or decompressor (about 46 KB).

mod compress;
mod inflate;
mod negotiate;

pub use compress::{Compressor, compress_message};
pub use inflate::Inflater;
pub use negotiate::{DeflateConfig, DeflateParams, negotiate};

/// The four bytes a sync flush ends with; RFC 7692 strips them on the wire.
pub(crate) const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
