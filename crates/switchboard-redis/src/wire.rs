//! The wire format, version 1: channel names and the JSON envelope.
//!
//! Any process can publish to a Switchboard cluster by writing to Redis
//! directly (`docs/scaling.md` has the full description and a Python worker).
//!
//! # Channels
//!
//! | channel | who gets it |
//! |---|---|
//! | `<prefix>:v1:room:<room>` | every member of the room, on every instance |
//! | `<prefix>:v1:user:<user>` | every connection of the user, on every instance |
//! | `<prefix>:v1:all` | every connection on every instance |
//! | `<prefix>:v1:instance:<instance id>` | one connection (`conn`) of that instance |
//!
//! The prefix defaults to `sb`. Room and user names are used as they are
//! (any bytes but must be UTF-8; `:` is fine, as the name is everything after
//! `room:`).
//!
//! # Envelope
//!
//! One JSON object per message:
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `v` | integer, required | `1`. Other versions are dropped (and counted) |
//! | `kind` | `"text"`, `"binary"` or `"close"`, required | what to do |
//! | `data` | string | `text`: the message; `binary`: the bytes in standard base64 (padded). Absent means empty |
//! | `code`, `reason` | integer, string | `close`: the close code (1000, 1001, 3000-4999...) and reason (at most 123 bytes) |
//! | `conn` | integer | on an instance channel: the connection id (required there) |
//! | `except` | string `"<instance>/<conn>"` | leave this connection out |
//! | `origin` | string | the publishing instance; that instance ignores the message. Omit it when publishing from outside |
//! | `offset`, `epoch` | integer, string | on a room with history: the publication's place in the room's stream, added by the append script ([`crate`]'s `streams` module). Publish to such a room with the script, not with `PUBLISH`: a message without them is delivered at most once |
//!
//! Unknown fields are ignored, so fields can be added within version 1. An
//! incompatible change gets version 2 and new channel names (`sb:v2:...`).

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use switchboard::broker::stream::{Epoch, IdempotencyKey, StreamPosition};
use switchboard::broker::{Body, ConnectionAddr, Envelope, InstanceId, Payload, Target, Topic};
use switchboard::protocol::StructuredChannels;
use switchboard::{CloseCode, CloseFrame, ConnectionId, Room, UserId, Utf8Bytes};

use crate::Error;

/// The envelope version this build writes and reads.
pub const WIRE_VERSION: u64 = 1;

/// A channel of the wire format, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Channel {
    /// `<prefix>:v1:room:<room>`.
    Room(Room),
    /// `<prefix>:v1:user:<user>`.
    User(UserId),
    /// `<prefix>:v1:all`.
    All,
    /// `<prefix>:v1:instance:<id>`.
    Instance(InstanceId),
}

/// Channel and key names for one prefix.
#[derive(Debug, Clone)]
pub struct Names {
    /// `<prefix>:v1:`.
    base: String,
}

impl Names {
    /// Names under `prefix` (1-32 characters from `A-Z a-z 0-9 - _ .`).
    pub fn new(prefix: &str) -> Result<Self, Error> {
        crate::config::validate_prefix(prefix)?;
        Ok(Self {
            base: format!("{prefix}:v1:"),
        })
    }

    /// The channel of a room.
    pub fn room(&self, room: &Room) -> String {
        format!("{}room:{room}", self.base)
    }

    /// The channel of a user.
    pub fn user(&self, user: &UserId) -> String {
        format!("{}user:{user}", self.base)
    }

    /// The channel for every connection.
    pub fn all(&self) -> String {
        format!("{}all", self.base)
    }

    /// The channel of one instance (its connections, and commands for them).
    pub fn instance(&self, id: &InstanceId) -> String {
        format!("{}instance:{id}", self.base)
    }

    /// The channel a message for `target` is published on.
    pub fn for_target(&self, target: &Target) -> Result<String, Error> {
        Ok(match target {
            Target::Room(room) => self.room(room),
            Target::User(user) => self.user(user),
            Target::Connection(addr) => self.instance(&addr.instance),
            Target::All => self.all(),
            other => return Err(Error::InvalidChannel(format!("no channel for {other:?}"))),
        })
    }

    /// The channel an instance subscribes to for a topic.
    pub fn for_topic(&self, topic: &Topic) -> String {
        match topic {
            Topic::Room(room) => self.room(room),
            Topic::User(user) => self.user(user),
        }
    }

    /// Parses a channel name of this prefix.
    pub fn parse(&self, channel: &[u8]) -> Result<Channel, Error> {
        let invalid = || Error::InvalidChannel(String::from_utf8_lossy(channel).into_owned());
        let name = std::str::from_utf8(channel).map_err(|_| invalid())?;
        let rest = name.strip_prefix(&self.base).ok_or_else(invalid)?;
        if rest == "all" {
            return Ok(Channel::All);
        }
        let (kind, value) = rest.split_once(':').ok_or_else(invalid)?;
        match kind {
            "room" => Ok(Channel::Room(Room::from(value))),
            "user" => Ok(Channel::User(UserId::from(value))),
            "instance" => InstanceId::new(value)
                .map(Channel::Instance)
                .map_err(|_| invalid()),
            _ => Err(invalid()),
        }
    }

    /// A channel's presence: a hash of connection address → member JSON.
    pub(crate) fn presence_members_key(&self, room: &Room) -> String {
        format!("{}presence:{{{room}}}:members", self.base)
    }

    /// A channel's presence users: a hash of user id → connections.
    pub(crate) fn presence_users_key(&self, room: &Room) -> String {
        format!("{}presence:{{{room}}}:users", self.base)
    }

    /// Held leaves: a zset of `<channel>\n<user>` scored by when the grace ends.
    pub(crate) fn presence_pending_key(&self) -> String {
        format!("{}presence:pending", self.base)
    }

    /// The members of the held leaves: a hash of `<channel>\n<user>` → member JSON.
    pub(crate) fn presence_pending_data_key(&self) -> String {
        format!("{}presence:pending:data", self.base)
    }

    /// An instance's presence entries: a hash of `<channel>\n<address>` → ''.
    pub(crate) fn presence_index_key(&self, id: &InstanceId) -> String {
        self.presence_index_key_of(id.as_str())
    }

    /// [`Names::presence_index_key`] of an id read back from Redis.
    pub(crate) fn presence_index_key_of(&self, id: &str) -> String {
        format!("{}presence:instance:{id}", self.base)
    }

    /// A dead instance's entries, while they are removed.
    pub(crate) fn presence_reaping_key(&self, id: &str) -> String {
        format!("{}presence:reaping:{id}", self.base)
    }

    /// An instance's connection records: a hash of connection id → JSON.
    pub(crate) fn records_key(&self, id: &str) -> String {
        format!("{}records:{id}", self.base)
    }

    /// A dead instance's connection records, while they are handed out.
    pub(crate) fn records_reaping_key(&self, id: &str) -> String {
        format!("{}records:reaping:{id}", self.base)
    }

    /// The instances whose entries are being removed.
    pub(crate) fn reaping_key(&self) -> String {
        format!("{}reaping", self.base)
    }

    /// Leases: a zset of instance id → when its lease ends (Redis time, ms).
    pub(crate) fn leases_key(&self) -> String {
        format!("{}leases", self.base)
    }

    /// Set while an instance is declared dead.
    pub(crate) fn dead_key(&self, id: &str) -> String {
        format!("{}dead:{id}", self.base)
    }

    /// The set of instances that report counts.
    pub(crate) fn instances_key(&self) -> String {
        format!("{}instances", self.base)
    }

    /// One instance's counts: a hash with `conns` and `room:<name>` fields.
    pub(crate) fn counts_key(&self, id: &InstanceId) -> String {
        self.counts_key_of(id.as_str())
    }

    /// [`Names::counts_key`] of an id read back from Redis.
    pub(crate) fn counts_key_of(&self, id: &str) -> String {
        format!("{}counts:{id}", self.base)
    }

    /// A channel's stream metadata: a hash with `e` (epoch) and `o` (offset).
    pub fn meta_key(&self, room: &Room) -> String {
        format!("{}meta:{{{room}}}", self.base)
    }

    /// A channel's stream (a Redis Stream, one entry per publication).
    pub fn stream_key(&self, room: &Room) -> String {
        format!("{}stream:{{{room}}}", self.base)
    }

    /// An idempotency key of a publish to a channel with history.
    pub fn idempotency_key(&self, room: &Room, key: &IdempotencyKey) -> String {
        format!("{}idem:{{{room}}}:{key}", self.base)
    }

    /// An idempotency key of a publish without history.
    pub fn once_key(&self, key: &IdempotencyKey) -> String {
        format!("{}once:{key}", self.base)
    }
}

/// One message on the wire: the fields every kind has, and the kind with
/// its own fields. The same type is written and read; the field order is
/// the order on the wire (`v`, `origin`, `kind` and the kind's fields,
/// `conn`, `except`), which the golden test below pins byte for byte.
#[derive(Debug, Serialize, Deserialize)]
struct Wire<'a> {
    v: u64,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    origin: Option<Cow<'a, str>>,
    #[serde(flatten, borrow)]
    body: WireBody<'a>,
    /// On an instance channel: the connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    conn: Option<u64>,
    /// `"<instance>/<conn>"`: the connection to leave out.
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    except: Option<Cow<'a, str>>,
    /// On a publication to a channel with history: its offset and epoch,
    /// added by the append script (never written here).
    #[serde(default, skip_serializing)]
    offset: Option<u64>,
    #[serde(default, skip_serializing, borrow)]
    epoch: Option<Cow<'a, str>>,
}

/// What to do, tagged by `kind`. Fields of the other kinds are ignored.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum WireBody<'a> {
    /// A text message; no `data` means empty.
    Text {
        #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
        data: Option<Cow<'a, str>>,
    },
    /// A binary message, its bytes in standard padded base64; no `data`
    /// means empty.
    Binary {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<String>,
    },
    /// Close the target's connections.
    Close {
        code: u16,
        #[serde(default, borrow)]
        reason: Cow<'a, str>,
    },
}

/// Just the version: read when a message does not parse as version 1, so
/// that another version is reported as such whatever its fields.
#[derive(Deserialize)]
struct VersionOnly {
    v: u64,
}

/// Encodes an envelope (once per publish, whatever the number of recipients).
pub fn encode(envelope: &Envelope) -> Result<Vec<u8>, Error> {
    let body = match &envelope.body {
        Body::Message(Payload::Text(text)) => WireBody::Text {
            data: (!text.is_empty()).then(|| Cow::Borrowed(text.as_str())),
        },
        Body::Message(Payload::Binary(data)) => WireBody::Binary {
            data: (!data.is_empty()).then(|| BASE64.encode(data)),
        },
        Body::Close(frame) => WireBody::Close {
            code: frame.code.as_u16(),
            reason: Cow::Borrowed(&frame.reason),
        },
        other => return Err(Error::InvalidEnvelope(format!("cannot encode {other:?}"))),
    };
    let wire = Wire {
        v: WIRE_VERSION,
        origin: envelope.origin.as_ref().map(|o| Cow::Borrowed(o.as_str())),
        body,
        conn: match &envelope.target {
            Target::Connection(addr) => Some(addr.id.0),
            _ => None,
        },
        except: envelope.except.as_ref().map(|e| Cow::Owned(e.to_string())),
        offset: None,
        epoch: None,
    };
    serde_json::to_vec(&wire).map_err(|e| Error::InvalidEnvelope(e.to_string()))
}

/// Decodes a message that arrived on `channel`.
pub fn decode(channel: Channel, payload: &[u8]) -> Result<Envelope, Error> {
    let wire: Wire<'_> = match serde_json::from_slice(payload) {
        Ok(wire) => wire,
        Err(e) => {
            return Err(match serde_json::from_slice::<VersionOnly>(payload) {
                Ok(VersionOnly { v }) if v != WIRE_VERSION => Error::UnsupportedVersion(v),
                _ => Error::InvalidEnvelope(e.to_string()),
            });
        }
    };
    if wire.v != WIRE_VERSION {
        return Err(Error::UnsupportedVersion(wire.v));
    }
    let bad = |why: &str| Error::InvalidEnvelope(why.to_owned());
    let body = match wire.body {
        WireBody::Text { data } => Body::Message(Payload::Text(Utf8Bytes::from(
            data.map(Cow::into_owned).unwrap_or_default(),
        ))),
        WireBody::Binary { data } => {
            let data = match data {
                Some(b64) => BASE64
                    .decode(b64.as_bytes())
                    .map_err(|e| Error::InvalidEnvelope(format!("binary data: {e}")))?,
                None => Vec::new(),
            };
            Body::Message(Payload::Binary(data.into()))
        }
        WireBody::Close { code, reason } => {
            let code = CloseCode::from(code);
            if !code.is_sendable() {
                return Err(bad("close code cannot be sent"));
            }
            Body::Close(CloseFrame::new(code, reason.into_owned()))
        }
    };
    let target = match channel {
        Channel::Room(room) => Target::Room(room),
        Channel::User(user) => Target::User(user),
        Channel::All => Target::All,
        Channel::Instance(instance) => {
            let id = wire
                .conn
                .ok_or_else(|| bad("instance channel without conn"))?;
            Target::Connection(ConnectionAddr::new(instance, ConnectionId(id)))
        }
    };
    let origin = match wire.origin {
        Some(origin) => Some(InstanceId::new(origin).map_err(|_| bad("invalid origin"))?),
        None => None,
    };
    let except = match wire.except {
        Some(except) => Some(
            except
                .parse::<ConnectionAddr>()
                .map_err(|_| bad("except must be \"<instance>/<conn>\""))?,
        ),
        None => None,
    };
    let stream = match (wire.offset, wire.epoch) {
        (Some(offset), Some(epoch)) if !epoch.is_empty() => {
            Some(StreamPosition::new(Epoch::new(epoch.as_ref()), offset))
        }
        (None, None) => None,
        _ => return Err(bad("offset and epoch go together")),
    };
    let mut envelope = Envelope::new(target, body)
        .with_except(except)
        .with_stream(stream);
    envelope.origin = origin;
    Ok(envelope)
}

/// A text message to a channel of the structured protocol that is not
/// already one of the protocol's messages becomes the `EVENT`
/// `switchboard.text` (see [`crate::RedisConfig::structured_channels`]);
/// anything else is left as it is.
pub fn to_channel_text(channels: &StructuredChannels, envelope: &mut Envelope) {
    if let (Target::Room(room), Body::Message(Payload::Text(text))) =
        (&envelope.target, &envelope.body)
        && let Some((_, wrapped)) = channels.wrap_text(room.as_str(), text.as_str())
    {
        envelope.body = Body::Message(Payload::text(wrapped));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        Names::new("sb").unwrap()
    }

    #[test]
    fn channel_names_follow_the_documented_format() {
        let n = names();
        assert_eq!(n.room(&"lobby".into()), "sb:v1:room:lobby");
        assert_eq!(n.user(&"alice".into()), "sb:v1:user:alice");
        assert_eq!(n.all(), "sb:v1:all");
        let id = InstanceId::new("node-1").unwrap();
        assert_eq!(n.instance(&id), "sb:v1:instance:node-1");
        assert_eq!(
            n.parse(b"sb:v1:room:a:b").unwrap(),
            Channel::Room("a:b".into())
        );
        assert_eq!(n.parse(b"sb:v1:all").unwrap(), Channel::All);
        assert_eq!(
            n.parse(b"sb:v1:instance:node-1").unwrap(),
            Channel::Instance(id)
        );
        for bad in [
            &b"other:v1:all"[..],
            b"sb:v2:all",
            b"sb:v1:nope:x",
            b"sb:v1:instance:a b",
        ] {
            assert!(n.parse(bad).is_err(), "{bad:?}");
        }
        assert!(Names::new("a:b").is_err());
    }

    #[test]
    fn envelopes_round_trip() {
        let origin = InstanceId::new("node-1").unwrap();
        let except = ConnectionAddr::new(InstanceId::new("node-2").unwrap(), ConnectionId(9));
        let cases = [
            (
                Channel::Room("r".into()),
                Target::room("r"),
                Body::Message(Payload::text("hé \"x\"")),
            ),
            (
                Channel::User("u".into()),
                Target::user("u"),
                Body::Message(Payload::binary(vec![0u8, 255, 7])),
            ),
            (Channel::All, Target::All, Body::Message(Payload::text(""))),
            (
                Channel::Instance(origin.clone()),
                Target::Connection(ConnectionAddr::new(origin.clone(), ConnectionId(5))),
                Body::close(CloseCode::Application(4000), "bye"),
            ),
        ];
        for (channel, target, body) in cases {
            let envelope = Envelope::new(target, body)
                .with_origin(origin.clone())
                .with_except(Some(except.clone()));
            let bytes = encode(&envelope).unwrap();
            assert_eq!(decode(channel, &bytes).unwrap(), envelope);
        }
    }

    /// The bytes version 1 puts on the wire, one case per kind and field:
    /// written by the first implementation (a `kind` string with optional
    /// fields) and kept byte for byte since. Other instances of older
    /// builds, and processes publishing by hand, read exactly these.
    #[test]
    fn every_kind_encodes_to_the_same_bytes_as_version_1_always_did() {
        let node1 = || InstanceId::new("node-1").unwrap();
        let except = ConnectionAddr::new(InstanceId::new("node-2").unwrap(), ConnectionId(9));
        let to_conn = || Target::Connection(ConnectionAddr::new(node1(), ConnectionId(5)));
        let cases: Vec<(Envelope, &str)> = vec![
            (
                Envelope::new(Target::room("lobby"), Body::Message(Payload::text("hi"))),
                r#"{"v":1,"kind":"text","data":"hi"}"#,
            ),
            (
                Envelope::new(Target::user("u"), Body::Message(Payload::text("hé \"x\"")))
                    .with_origin(node1())
                    .with_except(Some(except.clone())),
                r#"{"v":1,"origin":"node-1","kind":"text","data":"hé \"x\"","except":"node-2/9"}"#,
            ),
            (
                Envelope::new(Target::All, Body::Message(Payload::text(""))),
                r#"{"v":1,"kind":"text"}"#,
            ),
            (
                Envelope::new(
                    Target::room("r"),
                    Body::Message(Payload::binary(vec![0u8, 255, 7])),
                )
                .with_origin(node1()),
                r#"{"v":1,"origin":"node-1","kind":"binary","data":"AP8H"}"#,
            ),
            (
                Envelope::new(Target::All, Body::Message(Payload::binary(Vec::new()))),
                r#"{"v":1,"kind":"binary"}"#,
            ),
            (
                Envelope::new(to_conn(), Body::close(CloseCode::Application(4000), "bye"))
                    .with_origin(node1()),
                r#"{"v":1,"origin":"node-1","kind":"close","code":4000,"reason":"bye","conn":5}"#,
            ),
            (
                Envelope::new(Target::All, Body::close(CloseCode::Away, "")),
                r#"{"v":1,"kind":"close","code":1001,"reason":""}"#,
            ),
            (
                Envelope::new(to_conn(), Body::Message(Payload::text("x")))
                    .with_except(Some(except)),
                r#"{"v":1,"kind":"text","data":"x","conn":5,"except":"node-2/9"}"#,
            ),
        ];
        for (envelope, golden) in cases {
            let bytes = encode(&envelope).unwrap();
            assert_eq!(String::from_utf8(bytes).unwrap(), golden);
        }
    }

    #[test]
    fn a_hand_written_envelope_decodes() {
        let e = decode(
            Channel::Room("lobby".into()),
            br#"{"v":1,"kind":"text","data":"hi"}"#,
        )
        .unwrap();
        assert_eq!(e.origin, None);
        assert_eq!(e.body, Body::Message(Payload::text("hi")));
        let e = decode(
            Channel::All,
            br#"{"v":1,"kind":"binary","data":"AAEC","future":true}"#,
        )
        .unwrap();
        assert_eq!(e.body, Body::Message(Payload::binary(vec![0u8, 1, 2])));
        // Any field order; the kind's fields and the others' are ignored
        // where they do not belong; escapes are read.
        let e = decode(
            Channel::Instance(InstanceId::new("n").unwrap()),
            br#"{"reason":"bye \"now\"","conn":3,"data":"x","code":4000,"kind":"close","v":1}"#,
        )
        .unwrap();
        assert_eq!(
            e.body,
            Body::close(CloseCode::Application(4000), "bye \"now\"")
        );
        let e = decode(Channel::All, br#"{"kind":"text","code":1000,"v":1}"#).unwrap();
        assert_eq!(e.body, Body::Message(Payload::text("")));
    }

    #[test]
    fn bad_envelopes_are_refused_with_a_reason() {
        let room = || Channel::Room("r".into());
        assert!(matches!(
            decode(room(), br#"{"v":2,"kind":"text"}"#),
            Err(Error::UnsupportedVersion(2))
        ));
        // Another version is reported as such even with a kind version 1
        // does not know.
        assert!(matches!(
            decode(room(), br#"{"kind":"stream","v":2}"#),
            Err(Error::UnsupportedVersion(2))
        ));
        for bad in [
            &br#"not json"#[..],
            br#"{"kind":"text"}"#,
            br#"{"v":1,"kind":"shout"}"#,
            br#"{"v":1,"kind":"binary","data":"!!"}"#,
            br#"{"v":1,"kind":"close"}"#,
            br#"{"v":1,"kind":"close","code":1006}"#,
            br#"{"v":1,"kind":"text","except":"nope"}"#,
            br#"{"v":1,"kind":"text","origin":"a b"}"#,
        ] {
            assert!(
                decode(room(), bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let instance = Channel::Instance(InstanceId::new("n").unwrap());
        assert!(decode(instance, br#"{"v":1,"kind":"text"}"#).is_err());
    }
}
