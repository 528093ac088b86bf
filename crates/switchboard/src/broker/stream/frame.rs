//! What a stream's subscribers receive: each publication with its offset,
//! encoded once per instance, and the gap event.

use serde_json::json;
use switchboard_protocol::payload::Event;
use switchboard_protocol::{GAP_EVENT, Message, Recover, StreamGap};

use super::types::{Epoch, StreamPosition};
use crate::broker::Payload;
use crate::delivery::Outgoing;
use crate::hub::Room;
use crate::stamp::stamp;

/// The frame of a publication: a JSON object gets `"offset": n` as its
/// first field (the structured protocol's envelope is one); any other
/// payload goes out as it is, without an offset.
pub(crate) fn publication(payload: &Payload, offset: u64) -> Outgoing {
    let Payload::Text(text) = payload else {
        return payload.to_outgoing();
    };
    let Some(rest) = text.as_str().strip_prefix('{') else {
        return payload.to_outgoing();
    };
    let separator = if rest.trim_start().starts_with('}') {
        ""
    } else {
        ","
    };
    Outgoing::text(format!("{{\"offset\":{offset}{separator}{rest}"))
}

/// Publications of `channel` that could not be delivered: `from..=to` of
/// `epoch` (`to` unknown when the epoch changed), delivery going on after
/// `resume`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Gap {
    pub(crate) channel: Room,
    pub(crate) epoch: Epoch,
    pub(crate) from: u64,
    pub(crate) to: Option<u64>,
    pub(crate) resume: StreamPosition,
}

impl Gap {
    /// The gap event: `EVENT` `switchboard.gap` on the channel.
    pub(crate) fn event(&self) -> Outgoing {
        let data = StreamGap {
            epoch: self.epoch.to_string(),
            from: self.from,
            to: self.to,
            resume: Recover {
                epoch: self.resume.epoch.to_string(),
                offset: self.resume.offset,
            },
        };
        let data = serde_json::to_value(&data).unwrap_or_else(|_| json!({}));
        let mut message = Message::from(Event::new(GAP_EVENT, data));
        message.set_channel(self.channel.as_str());
        match Outgoing::json(&stamp(message, None)) {
            Ok(out) => out,
            // An envelope of strings and numbers always serialises.
            Err(_) => Outgoing::text("{}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(out: &Outgoing) -> String {
        String::from_utf8(out.frame().payload.to_vec()).unwrap()
    }

    #[test]
    fn objects_get_their_offset_first_and_anything_else_is_left_alone() {
        let p = publication(&Payload::text(r#"{"type":"EVENT"}"#), 7);
        assert_eq!(text(&p), r#"{"offset":7,"type":"EVENT"}"#);
        assert_eq!(
            text(&publication(&Payload::text("{}"), 1)),
            r#"{"offset":1}"#
        );
        assert_eq!(
            text(&publication(&Payload::text("{ }"), 1)),
            r#"{"offset":1 }"#
        );
        assert_eq!(text(&publication(&Payload::text("plain"), 3)), "plain");
        let p = publication(&Payload::binary(vec![1, 2]), 3);
        assert_eq!(p.frame().payload.as_ref(), &[1, 2]);
        let v: serde_json::Value =
            serde_json::from_str(&text(&publication(&Payload::text(r#"{"a":[1,{}]}"#), 9)))
                .unwrap();
        assert_eq!(v["offset"], 9);
        assert_eq!(v["a"][0], 1);
    }

    #[test]
    fn the_gap_event_is_an_event_on_the_channel() {
        let gap = Gap {
            channel: Room::from("public:news"),
            epoch: Epoch::new("e1"),
            from: 5,
            to: None,
            resume: StreamPosition::new(Epoch::new("e2"), 0),
        };
        let v: serde_json::Value = serde_json::from_str(&text(&gap.event())).unwrap();
        assert_eq!(v["type"], "EVENT");
        assert_eq!(v["payload"]["event"], "switchboard.gap");
        assert_eq!(v["payload"]["channel"], "public:news");
        assert_eq!(v["payload"]["data"]["from"], 5);
        assert_eq!(v["payload"]["data"]["to"], serde_json::Value::Null);
        assert_eq!(v["payload"]["data"]["resume"]["epoch"], "e2");
        assert!(v["id"].is_string());
    }
}
