//! Self-describing payloads for the fan-out scenarios, and the verifiable payloads of `echo`.
//!
//! # Fan-out message format
//!
//! Every message carries the publisher id, a per-publisher sequence number starting at 0 and
//! the publisher's wall clock (Unix time in nanoseconds) at the moment of sending, so that a
//! receiver can compute the one-way latency (publisher and receivers share the machine's clock)
//! and account for missing, duplicated and out-of-order messages.
//!
//! * **Text** (default; also what the HTTP publisher puts into its JSON body):
//!   `"<publisher_id>:<seq>:<unix_nanos>:<padding>"`, all numbers in decimal ASCII, padding is
//!   `x` repeated until the message is `size` bytes long (no padding if the header alone is
//!   already `size` bytes or longer). Example: `0:41:1763765432123456789:xxxxxxx`.
//! * **Binary** (for 20-byte all-to-all, where the text header does not fit): 18 bytes of
//!   header, then zero bytes up to `size`: `b"sb"`, publisher id (u32, big-endian), seq (u32,
//!   big-endian), Unix nanos (u64, big-endian).
//! * **JSON** (`--format json`, for compression runs: as compressible as real chat traffic, not
//!   as a run of `x`): `{"pub":<publisher_id>,"seq":<seq>,"ts":<unix_nanos>,"items":[...]}` in
//!   a text frame, `items` being chat-like records (`{"id":..,"user":"..","room":"..","text":"..",
//!   "likes":..}`) that vary with `seq`, padded with spaces before the closing `]}` to exactly
//!   `size` bytes (when `size` leaves room for the header).
//!
//! A text frame is decoded as text (or JSON, when that is the run's format), a binary frame as
//! binary.

use std::time::{SystemTime, UNIX_EPOCH};

/// Length of the binary header.
pub const BINARY_HEADER_LEN: usize = 18;
const BINARY_MAGIC: &[u8; 2] = b"sb";

/// Payload encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `"<publisher_id>:<seq>:<unix_nanos>:<padding>"` in a text frame.
    Text,
    /// 18-byte binary header in a binary frame.
    Binary,
    /// `{"pub":..,"seq":..,"ts":..,"items":[chat-like records]}` in a text frame.
    Json,
}

impl Format {
    /// Whether it travels in text frames.
    pub fn is_text(self) -> bool {
        !matches!(self, Format::Binary)
    }
}

const JSON_USERS: [&str; 12] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "oscar",
];
const JSON_ROOMS: [&str; 5] = ["lobby", "general", "random", "support", "release-planning"];
const JSON_WORDS: [&str; 32] = [
    "the",
    "deploy",
    "is",
    "green",
    "again",
    "can",
    "someone",
    "review",
    "my",
    "pull",
    "request",
    "before",
    "lunch",
    "thanks",
    "latency",
    "looks",
    "fine",
    "on",
    "staging",
    "but",
    "the",
    "gateway",
    "restarted",
    "twice",
    "tonight",
    "ship",
    "it",
    "please",
    "check",
    "dashboard",
    "metrics",
    "ok",
];

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x
}

/// Appends one chat-like JSON record.
fn json_record(out: &mut Vec<u8>, seq: u64, i: u64) {
    use std::io::Write as _;
    let h = mix(seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i);
    let _ = write!(
        out,
        "{{\"id\":{},\"user\":\"{}\",\"room\":\"{}\",\"text\":\"",
        seq * 16 + i,
        JSON_USERS[(h % JSON_USERS.len() as u64) as usize],
        JSON_ROOMS[((h >> 8) % JSON_ROOMS.len() as u64) as usize],
    );
    let words = 4 + (h >> 16) % 6;
    for w in 0..words {
        if w > 0 {
            out.push(b' ');
        }
        let k = (mix(h ^ w) % JSON_WORDS.len() as u64) as usize;
        out.extend_from_slice(JSON_WORDS[k].as_bytes());
    }
    let _ = write!(out, "\",\"likes\":{}}}", (h >> 24) % 1000);
}

/// The decoded header of a fan-out message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Who sent it.
    pub publisher: u32,
    /// Per-publisher sequence number, from 0.
    pub seq: u64,
    /// Sender's clock, Unix nanoseconds.
    pub unix_nanos: u64,
}

/// Current wall clock in Unix nanoseconds.
pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Encodes a message into `out` (cleared first).
pub fn encode(out: &mut Vec<u8>, format: Format, stamp: Stamp, size: usize) {
    out.clear();
    match format {
        Format::Text => {
            use std::io::Write as _;
            let _ = write!(
                out,
                "{}:{}:{}:",
                stamp.publisher, stamp.seq, stamp.unix_nanos
            );
            if out.len() < size {
                out.resize(size, b'x');
            }
        }
        Format::Binary => {
            out.extend_from_slice(BINARY_MAGIC);
            out.extend_from_slice(&stamp.publisher.to_be_bytes());
            out.extend_from_slice(&(stamp.seq as u32).to_be_bytes());
            out.extend_from_slice(&stamp.unix_nanos.to_be_bytes());
            if out.len() < size {
                out.resize(size, 0);
            }
        }
        Format::Json => {
            use std::io::Write as _;
            let _ = write!(
                out,
                "{{\"pub\":{},\"seq\":{},\"ts\":{},\"items\":[",
                stamp.publisher, stamp.seq, stamp.unix_nanos
            );
            for i in 0.. {
                let before = out.len();
                if i > 0 {
                    out.push(b',');
                }
                json_record(out, stamp.seq, i);
                if out.len() + 2 > size {
                    out.truncate(before);
                    break;
                }
            }
            if out.len() + 2 < size {
                out.resize(size - 2, b' ');
            }
            out.extend_from_slice(b"]}");
        }
    }
}

/// Decodes a message. Returns `None` if the bytes are not in the given format.
pub fn decode(bytes: &[u8], format: Format) -> Option<Stamp> {
    decode_with_offset(bytes, format).map(|(stamp, _)| stamp)
}

/// Decodes a message that may carry a stream offset. A channel with history (Switchboard's
/// streams) delivers a JSON object with `"offset":N` inserted as its first field:
/// `{"offset":17,"pub":0,"seq":..}`. In the JSON format that field is accepted, stripped and
/// returned; the rest must still be exactly what was published.
pub fn decode_with_offset(bytes: &[u8], format: Format) -> Option<(Stamp, Option<u64>)> {
    if format == Format::Json
        && let Some(rest) = bytes.strip_prefix(b"{\"offset\":")
    {
        let (offset, rest) = split_number(rest, b",")?;
        // `rest` is the published object without its opening brace.
        let stamp = decode_json(rest, rest.len() + 1)?;
        return Some((stamp, Some(offset)));
    }
    decode_plain(bytes, format).map(|stamp| (stamp, None))
}

/// Decodes a JSON payload given without its opening `{` (`rest`), whose published length was
/// `len` bytes (the `{` included).
fn decode_json(rest: &[u8], len: usize) -> Option<Stamp> {
    let rest_all = rest;
    let rest = rest.strip_prefix(b"\"pub\":")?;
    let (publisher, rest) = split_number(rest, b",\"seq\":")?;
    let (seq, rest) = split_number(rest, b",\"ts\":")?;
    let (unix_nanos, rest) = split_number(rest, b",\"items\":[")?;
    if !rest.ends_with(b"]}") {
        return None;
    }
    let stamp = Stamp {
        publisher: u32::try_from(publisher).ok()?,
        seq,
        unix_nanos,
    };
    // The body is a function of the stamp and the length: check every byte (this is what
    // catches a wrong inflate).
    let same = JSON_SCRATCH.with(|scratch| {
        let mut expected = scratch.borrow_mut();
        encode(&mut expected, Format::Json, stamp, len);
        expected.first() == Some(&b'{') && expected[1..] == rest_all[..]
    });
    same.then_some(stamp)
}

fn decode_plain(bytes: &[u8], format: Format) -> Option<Stamp> {
    match format {
        Format::Text => {
            let mut parts = bytes.splitn(4, |b| *b == b':');
            let publisher = parse_u64(parts.next()?)?;
            let seq = parse_u64(parts.next()?)?;
            let unix_nanos = parse_u64(parts.next()?)?;
            let padding = parts.next()?;
            if !padding.iter().all(|b| *b == b'x') {
                return None;
            }
            Some(Stamp {
                publisher: u32::try_from(publisher).ok()?,
                seq,
                unix_nanos,
            })
        }
        Format::Json => decode_json(bytes.strip_prefix(b"{")?, bytes.len()),
        Format::Binary => {
            if bytes.len() < BINARY_HEADER_LEN || &bytes[..2] != BINARY_MAGIC {
                return None;
            }
            let publisher = u32::from_be_bytes(bytes[2..6].try_into().ok()?);
            let seq = u32::from_be_bytes(bytes[6..10].try_into().ok()?);
            let unix_nanos = u64::from_be_bytes(bytes[10..18].try_into().ok()?);
            Some(Stamp {
                publisher,
                seq: u64::from(seq),
                unix_nanos,
            })
        }
    }
}

thread_local! {
    static JSON_SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Splits `<digits><sep>rest` into the number and `rest`.
fn split_number<'a>(s: &'a [u8], sep: &[u8]) -> Option<(u64, &'a [u8])> {
    let end = s.iter().position(|b| !b.is_ascii_digit())?;
    let rest = s[end..].strip_prefix(sep)?;
    Some((parse_u64(&s[..end])?, rest))
}

fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

/// The echo payload template for one connection: printable ASCII (valid UTF-8 for text mode),
/// different per connection.
pub fn echo_template(size: usize, conn: usize) -> Vec<u8> {
    (0..size)
        .map(|i| b'a' + ((i + conn * 7) % 26) as u8)
        .collect()
}

/// How many leading bytes of an echo payload carry the sequence number.
pub fn echo_stamp_len(size: usize) -> usize {
    size.min(16)
}

/// Writes the sequence number as lowercase hex into the first `echo_stamp_len` bytes (the least
/// significant digits if the payload is shorter than 16 bytes).
pub fn echo_stamp(seq: u64, out: &mut [u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n = out.len();
    for (i, b) in out.iter_mut().enumerate() {
        let shift = 4 * (n - 1 - i);
        *b = if shift >= 64 {
            b'0'
        } else {
            HEX[((seq >> shift) & 0xF) as usize]
        };
    }
}

/// Checks an echoed payload byte-for-byte against what was sent for `seq`.
pub fn echo_matches(received: &[u8], template: &[u8], seq: u64) -> bool {
    if received.len() != template.len() {
        return false;
    }
    let k = echo_stamp_len(template.len());
    let mut stamp = [0u8; 16];
    echo_stamp(seq, &mut stamp[..k]);
    received[..k] == stamp[..k] && received[k..] == template[k..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_roundtrip_and_size() {
        let s = Stamp {
            publisher: 3,
            seq: 41,
            unix_nanos: 1_763_765_432_123_456_789,
        };
        let mut out = Vec::new();
        encode(&mut out, Format::Text, s, 64);
        assert_eq!(out.len(), 64);
        assert!(out.starts_with(b"3:41:1763765432123456789:xxx"));
        assert_eq!(decode(&out, Format::Text), Some(s));
        // Smaller than the header: no padding, still decodable.
        encode(&mut out, Format::Text, s, 4);
        assert_eq!(&out[..], b"3:41:1763765432123456789:");
        assert_eq!(decode(&out, Format::Text), Some(s));
    }

    #[test]
    fn binary_roundtrip_and_size() {
        let s = Stamp {
            publisher: 99,
            seq: 7,
            unix_nanos: 42,
        };
        let mut out = Vec::new();
        encode(&mut out, Format::Binary, s, 20);
        assert_eq!(out.len(), 20);
        assert_eq!(decode(&out, Format::Binary), Some(s));
        encode(&mut out, Format::Binary, s, 0);
        assert_eq!(out.len(), BINARY_HEADER_LEN);
        assert_eq!(decode(&out, Format::Binary), Some(s));
    }

    #[test]
    fn json_roundtrip_size_and_validity() {
        let s = Stamp {
            publisher: 0,
            seq: 41,
            unix_nanos: 1_763_765_432_123_456_789,
        };
        let mut out = Vec::new();
        for size in [1024usize, 100, 777, 4096] {
            encode(&mut out, Format::Json, s, size);
            assert_eq!(out.len(), size, "size {size}");
            assert_eq!(decode(&out, Format::Json), Some(s));
            let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
            assert_eq!(v["seq"], 41);
            assert!(!v["items"].as_array().unwrap().is_empty() || size < 150);
        }
        // Too small for the header: the header and an empty list, still valid and decodable.
        encode(&mut out, Format::Json, s, 10);
        assert!(out.ends_with(b"\"items\":[]}"));
        assert_eq!(decode(&out, Format::Json), Some(s));
        // Messages differ from one seq to the next beyond the header.
        let mut other = Vec::new();
        encode(&mut out, Format::Json, s, 1024);
        encode(&mut other, Format::Json, Stamp { seq: 42, ..s }, 1024);
        assert_ne!(out[60..], other[60..]);
        // Not confused with the other formats.
        assert_eq!(decode(&out, Format::Text), None);
        assert_eq!(decode(b"0:1:2:xx", Format::Json), None);
        // One byte changed anywhere in the body: refused.
        let mut corrupt = out.clone();
        corrupt[500] ^= 0x01;
        assert_eq!(decode(&corrupt, Format::Json), None);
        assert_eq!(decode(&out[..1000], Format::Json), None);
        assert_eq!(
            decode(b"{\"pub\":1,\"seq\":2,\"ts\":3,\"items\":[", Format::Json),
            None
        );
    }

    #[test]
    fn json_with_a_stream_offset() {
        let s = Stamp {
            publisher: 0,
            seq: 9,
            unix_nanos: 1_763_765_432_123_456_789,
        };
        let mut out = Vec::new();
        encode(&mut out, Format::Json, s, 64);
        let mut with = b"{\"offset\":1234,".to_vec();
        with.extend_from_slice(&out[1..]);
        assert_eq!(
            decode_with_offset(&with, Format::Json),
            Some((s, Some(1234)))
        );
        assert_eq!(decode(&with, Format::Json), Some(s));
        assert_eq!(decode_with_offset(&out, Format::Json), Some((s, None)));
        // The rest must still be exactly what was published.
        let mut corrupt = with.clone();
        let n = corrupt.len();
        corrupt[n - 5] ^= 1;
        assert_eq!(decode_with_offset(&corrupt, Format::Json), None);
        assert_eq!(decode_with_offset(b"{\"offset\":x,", Format::Json), None);
        // Only the JSON format takes an offset.
        assert_eq!(
            decode_with_offset(b"{\"offset\":1,0:1:2:xx", Format::Text),
            None
        );
    }

    #[test]
    fn decode_rejects_garbage() {
        assert_eq!(decode(b"hello", Format::Text), None);
        assert_eq!(decode(b"1:2:3", Format::Text), None);
        assert_eq!(decode(b"1:2:3:yy", Format::Text), None);
        assert_eq!(decode(b"a:2:3:", Format::Text), None);
        assert_eq!(decode(b"99999999999:2:3:", Format::Text), None);
        assert_eq!(decode(b"{\"type\":\"subscribed\"}", Format::Text), None);
        assert_eq!(decode(&[0u8; 20], Format::Binary), None);
        assert_eq!(decode(b"sb", Format::Binary), None);
    }

    #[test]
    fn echo_payload_verification() {
        let t = echo_template(20, 3);
        let mut sent = t.clone();
        echo_stamp(0x1234, &mut sent[..echo_stamp_len(20)]);
        assert_eq!(&sent[..16], b"0000000000001234");
        assert!(echo_matches(&sent, &t, 0x1234));
        assert!(!echo_matches(&sent, &t, 0x1235));
        let mut corrupt = sent.clone();
        corrupt[19] ^= 1;
        assert!(!echo_matches(&corrupt, &t, 0x1234));
        assert!(!echo_matches(&sent[..19], &t, 0x1234));
        // Short payloads carry the low digits.
        let t = echo_template(4, 0);
        let mut sent = t.clone();
        echo_stamp(0xabcdef, &mut sent[..echo_stamp_len(4)]);
        assert_eq!(&sent[..], b"cdef");
        assert!(echo_matches(&sent, &t, 0xabcdef));
        // Empty payloads trivially match.
        assert!(echo_matches(b"", b"", 5));
        assert!(std::str::from_utf8(&echo_template(1000, 9)).is_ok());
    }
}
