//! One channel's delivery on this instance: publications reach the
//! channel's local subscribers in offset order, each once; what is missing
//! is read back from the stream, or announced as a gap; and a connection
//! that subscribes with a position gets what it missed before anything
//! live.
//!
//! Everything here runs under the cursor's lock (never across an
//! `.await`): live deliveries, a repair's replay, and a joining
//! connection's switch to live are serialised, which is what keeps them in
//! order without a gap or a duplicate between them.

use std::collections::{BTreeMap, HashMap};

use switchboard_protocol::NotRecovered;
use tokio::time::Instant;

use super::frame::{self, Gap};
use super::types::{Epoch, History, Publication, StreamPosition};
use crate::delivery::Outgoing;
use crate::hub::{ConnectionId, Hub, Room};

/// Most publications held past a gap before the cursor stops waiting for
/// the missing ones and reads the stream at once.
pub(crate) const MAX_PENDING: usize = 4096;

/// A publication ready to go out: its frame (offset included) and the
/// local connection to leave out.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    pub(crate) frame: Outgoing,
    pub(crate) except: Option<ConnectionId>,
}

impl Held {
    pub(crate) fn new(frame: Outgoing, except: Option<ConnectionId>) -> Self {
        Self { frame, except }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The stream's position is being read; publications wait.
    Starting,
    Live,
    /// Removed from the registry: a joiner that finds it retries.
    Closed,
}

/// What became of an offered publication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offered {
    /// Delivered now, with whatever it unblocked: to this many connections.
    Delivered(usize),
    /// Held until what comes before it arrives, or is read back.
    Held,
    /// Delivered before.
    Duplicate,
    /// The cursor is gone.
    Dropped,
}

/// What a subscriber asks for when it joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// Live publications only.
    Live,
    /// What was published after this position (all or nothing), then live.
    Recover(StreamPosition),
    /// The latest `n` publications still kept, then live.
    Last(usize),
}

/// How a join goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Nothing to replay: join now.
    Now(Joined),
    /// Read `from..=to` of `at.epoch` from the stream first; live
    /// publications are held for the connection meanwhile.
    Replay {
        at: StreamPosition,
        from: u64,
        all_or_nothing: bool,
    },
}

/// The outcome of a join, as `SUBSCRIBE_SUCCESS` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Joined {
    /// The position live delivery goes on from (a replay ends at it).
    pub position: StreamPosition,
    /// For [`Want::Recover`]: whether everything missed is replayed, or why not.
    pub recovered: Option<Result<(), NotRecovered>>,
}

/// One channel's delivery state on this instance.
#[derive(Debug)]
pub(crate) struct Cursor {
    room: Room,
    phase: Phase,
    epoch: Option<Epoch>,
    /// The offset of the last publication delivered (in `epoch`).
    delivered: u64,
    /// Publications past a gap, in the current epoch.
    pending: BTreeMap<u64, Held>,
    /// Publications of another epoch, seen before a repair switched to it.
    next: Option<(Epoch, BTreeMap<u64, Held>)>,
    /// Publications that arrived while starting.
    early: Vec<(StreamPosition, Held)>,
    /// Connections catching up, and what live delivery held for them.
    joining: HashMap<ConnectionId, Vec<Outgoing>>,
    /// Since when something is missing.
    gap_since: Option<Instant>,
}

impl Cursor {
    pub(crate) fn new(room: Room) -> Self {
        Self {
            room,
            phase: Phase::Starting,
            epoch: None,
            delivered: 0,
            pending: BTreeMap::new(),
            next: None,
            early: Vec::new(),
            joining: HashMap::new(),
            gap_since: None,
        }
    }

    pub(crate) fn is_live(&self) -> bool {
        self.phase == Phase::Live
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// The position delivered up to, once live.
    pub(crate) fn position(&self) -> Option<StreamPosition> {
        self.epoch
            .as_ref()
            .filter(|_| self.is_live())
            .map(|epoch| StreamPosition::new(epoch.clone(), self.delivered))
    }

    /// Since when a gap is open, if one is.
    pub(crate) fn gap_since(&self) -> Option<Instant> {
        self.gap_since
    }

    /// Whether a connection is catching up here.
    pub(crate) fn has_joiners(&self) -> bool {
        !self.joining.is_empty()
    }

    /// Removes the cursor from service (the registry dropped it).
    pub(crate) fn close(&mut self) {
        self.phase = Phase::Closed;
        self.pending.clear();
        self.next = None;
        self.early.clear();
    }

    /// Starts delivering after `position` (the stream's latest when the
    /// cursor started); what arrived meanwhile is offered again.
    pub(crate) fn go_live(&mut self, hub: &Hub, position: StreamPosition) {
        if self.phase != Phase::Starting {
            return;
        }
        self.phase = Phase::Live;
        self.epoch = Some(position.epoch);
        self.delivered = position.offset;
        for (at, held) in std::mem::take(&mut self.early) {
            self.offer(hub, &at, held);
        }
    }

    /// Takes a publication at `at`.
    pub(crate) fn offer(&mut self, hub: &Hub, at: &StreamPosition, held: Held) -> Offered {
        match self.phase {
            Phase::Closed => return Offered::Dropped,
            Phase::Starting => {
                self.early.push((at.clone(), held));
                return Offered::Held;
            }
            Phase::Live => {}
        }
        if self.epoch.as_ref() != Some(&at.epoch) {
            // Another epoch: the stream's history was lost. A repair reads
            // where the stream stands and switches over.
            match &mut self.next {
                Some((epoch, held_next)) if *epoch == at.epoch => {
                    held_next.insert(at.offset, held);
                }
                _ => self.next = Some((at.epoch.clone(), BTreeMap::from([(at.offset, held)]))),
            }
            self.gap_since.get_or_insert_with(Instant::now);
            return Offered::Held;
        }
        if at.offset <= self.delivered {
            return Offered::Duplicate;
        }
        if at.offset > self.delivered + 1 {
            self.pending.insert(at.offset, held);
            self.gap_since.get_or_insert_with(Instant::now);
            return Offered::Held;
        }
        let mut reached = self.deliver(hub, &held);
        self.delivered = at.offset;
        reached += self.drain(hub);
        Offered::Delivered(reached)
    }

    /// Whether the cursor holds so much past a gap that it should read the
    /// stream now rather than wait.
    pub(crate) fn overflowing(&self) -> bool {
        self.pending.len() + self.next.as_ref().map_or(0, |(_, n)| n.len()) >= MAX_PENDING
    }

    /// Sends a publication to the channel's subscribers, and holds it for
    /// connections catching up.
    fn deliver(&mut self, hub: &Hub, held: &Held) -> usize {
        for (id, frames) in &mut self.joining {
            if Some(*id) != held.except {
                frames.push(held.frame.clone());
            }
        }
        hub.send_to_room(self.room.clone(), &held.frame, held.except)
    }

    /// Delivers what the last delivery unblocked.
    fn drain(&mut self, hub: &Hub) -> usize {
        let mut reached = 0;
        while let Some(entry) = self.pending.first_entry() {
            let offset = *entry.key();
            if offset <= self.delivered {
                entry.remove();
                continue;
            }
            if offset != self.delivered + 1 {
                break;
            }
            let held = entry.remove();
            reached += self.deliver(hub, &held);
            self.delivered = offset;
        }
        if self.pending.is_empty() && self.next.is_none() {
            self.gap_since = None;
        }
        reached
    }

    /// Announces a gap to the channel's subscribers.
    fn announce(&mut self, hub: &Hub, gap: &Gap) {
        let event = Held::new(gap.event(), None);
        self.deliver(hub, &event);
    }

    /// Applies a read of the stream made after the cursor's position (with
    /// `limit`): delivers what was missing, announces what the stream no
    /// longer has, and switches epochs. Returns whether to read again.
    pub(crate) fn repair(&mut self, hub: &Hub, history: History, limit: usize) -> bool {
        if !self.is_live() {
            return false;
        }
        let now = history.position;
        if self.epoch.as_ref() != Some(&now.epoch) {
            if let Some(old) = self.epoch.take() {
                let gap = Gap {
                    channel: self.room.clone(),
                    epoch: old,
                    from: self.delivered + 1,
                    to: None,
                    resume: StreamPosition::new(now.epoch.clone(), 0),
                };
                self.announce(hub, &gap);
            }
            self.epoch = Some(now.epoch.clone());
            self.delivered = 0;
            self.pending = match self.next.take() {
                Some((epoch, held)) if epoch == now.epoch => held,
                _ => BTreeMap::new(),
            };
        }
        let read = history.publications.len();
        for publication in &history.publications {
            self.replay_one(hub, &now.epoch, publication);
        }
        self.drain(hub);
        if read >= limit && limit > 0 && self.delivered < now.offset {
            return true;
        }
        // The stream had nothing more after `delivered` up to its latest
        // when it was read: what is missing up to there is gone. (Past it,
        // a publication may still be on its way.)
        let lost_to = match self.pending.keys().next() {
            Some(first) => (first - 1).min(now.offset),
            None => now.offset,
        };
        if lost_to > self.delivered {
            self.skip_to(hub, now.epoch, lost_to);
            self.drain(hub);
        }
        false
    }

    /// Delivers one publication read back from the stream (after a gap it
    /// announces).
    fn replay_one(&mut self, hub: &Hub, epoch: &Epoch, publication: &Publication) {
        if publication.offset <= self.delivered {
            return;
        }
        if publication.offset > self.delivered + 1 {
            self.skip_to(hub, epoch.clone(), publication.offset - 1);
        }
        self.pending.remove(&publication.offset);
        let held = Held::new(
            frame::publication(&publication.payload, publication.offset),
            None,
        );
        self.deliver(hub, &held);
        self.delivered = publication.offset;
    }

    /// Announces `delivered + 1..=to` as lost and goes on after `to`.
    fn skip_to(&mut self, hub: &Hub, epoch: Epoch, to: u64) {
        let gap = Gap {
            channel: self.room.clone(),
            epoch: epoch.clone(),
            from: self.delivered + 1,
            to: Some(to),
            resume: StreamPosition::new(epoch, to),
        };
        self.announce(hub, &gap);
        self.delivered = to;
    }

    /// Decides how a connection joins: at once, or after a replay (then it
    /// is registered as joining, and live publications are held for it).
    pub(crate) fn plan(&mut self, id: ConnectionId, want: &Want, limit: usize) -> Option<Plan> {
        let at = self.position()?;
        let now = |recovered| {
            Plan::Now(Joined {
                position: at.clone(),
                recovered,
            })
        };
        let replay = |from: u64, all_or_nothing| Plan::Replay {
            at: at.clone(),
            from,
            all_or_nothing,
        };
        let plan = match want {
            Want::Live => now(None),
            Want::Recover(seen) if seen.epoch != at.epoch => {
                now(Some(Err(NotRecovered::EpochChanged)))
            }
            Want::Recover(seen) if seen.offset > at.offset => {
                now(Some(Err(NotRecovered::UnknownOffset)))
            }
            Want::Recover(seen) if seen.offset == at.offset => now(Some(Ok(()))),
            Want::Recover(seen) if at.offset - seen.offset > limit as u64 => {
                now(Some(Err(NotRecovered::LimitExceeded)))
            }
            Want::Recover(seen) => replay(seen.offset + 1, true),
            Want::Last(0) => now(None),
            Want::Last(_) if at.offset == 0 => now(None),
            Want::Last(n) => replay(at.offset.saturating_sub(*n as u64) + 1, false),
        };
        if matches!(plan, Plan::Replay { .. }) {
            self.joining.insert(id, Vec::new());
        }
        Some(plan)
    }

    /// Finishes a replay planned at `at` from `from`: decides what the
    /// connection gets from `read` (the publications read back, or `None`
    /// when the stream could not be read), and takes what was held for it.
    pub(crate) fn finish(
        &mut self,
        id: ConnectionId,
        at: &StreamPosition,
        from: u64,
        all_or_nothing: bool,
        read: Option<History>,
    ) -> (Joined, Vec<Outgoing>) {
        let held = self.joining.remove(&id).unwrap_or_default();
        let wanted = from..=at.offset;
        let (replay, reason) = match read {
            None => (None, NotRecovered::Unavailable),
            Some(history) if history.position.epoch != at.epoch => {
                (None, NotRecovered::EpochChanged)
            }
            Some(history) => {
                let frames: Vec<(u64, Outgoing)> = history
                    .publications
                    .iter()
                    .filter(|p| wanted.contains(&p.offset))
                    .map(|p| (p.offset, frame::publication(&p.payload, p.offset)))
                    .collect();
                let complete = frames.len() as u64 == at.offset - from + 1
                    && frames.first().is_some_and(|(o, _)| *o == from);
                let frames: Vec<Outgoing> = frames.into_iter().map(|(_, f)| f).collect();
                (
                    (complete || !all_or_nothing).then_some(frames),
                    NotRecovered::HistoryGone,
                )
            }
        };
        let recovered = all_or_nothing.then_some(match &replay {
            Some(_) => Ok(()),
            None => Err(reason),
        });
        let mut frames = replay.unwrap_or_default();
        frames.extend(held);
        (
            Joined {
                position: at.clone(),
                recovered,
            },
            frames,
        )
    }

    /// Forgets a joining connection (its join was abandoned).
    pub(crate) fn abandon(&mut self, id: ConnectionId) {
        self.joining.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use serde_json::Value;

    use super::*;
    use crate::broker::Payload;
    use crate::delivery::Sender;
    use crate::hub::ConnectionInfo;

    const ROOM: &str = "public:news";

    /// A hub with one member of ROOM (connection 1) and one connection not in it (2).
    fn hub() -> (Hub, Sender, Sender) {
        let hub = Hub::new();
        let member = register(&hub, 1);
        let other = register(&hub, 2);
        hub.join(ConnectionId(1), ROOM);
        (hub, member, other)
    }

    fn register(hub: &Hub, id: u64) -> Sender {
        let sender = Sender::detached(id);
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        hub.register(
            sender.clone(),
            ConnectionInfo {
                id: ConnectionId(id),
                user: None,
                client_addr: addr,
                path: "/ws".into(),
                connected_at: std::time::SystemTime::now(),
            },
        );
        sender
    }

    fn epoch(name: &str) -> Epoch {
        Epoch::new(name)
    }

    fn at(e: &str, offset: u64) -> StreamPosition {
        StreamPosition::new(epoch(e), offset)
    }

    fn held(n: u64) -> Held {
        let payload = Payload::text(format!(r#"{{"n":{n}}}"#));
        Held::new(frame::publication(&payload, n), None)
    }

    fn publication(n: u64) -> Publication {
        Publication {
            offset: n,
            payload: Payload::text(format!(r#"{{"n":{n}}}"#)),
        }
    }

    /// What a connection received: `n` for publications, `gap a..b` for gap events.
    fn received(sender: &Sender) -> Vec<String> {
        sender
            .take_queued()
            .iter()
            .map(|f| {
                let v: Value = serde_json::from_slice(&f.payload).unwrap();
                if v["payload"]["event"] == "switchboard.gap" {
                    let d = &v["payload"]["data"];
                    format!("gap {}..{}", d["from"], d["to"])
                } else {
                    assert_eq!(v["offset"], v["n"], "{v}");
                    v["n"].to_string()
                }
            })
            .collect()
    }

    fn live(hub: &Hub, e: &str, offset: u64) -> Cursor {
        let mut cursor = Cursor::new(Room::from(ROOM));
        cursor.go_live(hub, at(e, offset));
        cursor
    }

    #[test]
    fn publications_go_out_in_offset_order_each_once() {
        let (hub, member, other) = hub();
        let mut cursor = live(&hub, "e", 0);
        assert_eq!(
            cursor.offer(&hub, &at("e", 1), held(1)),
            Offered::Delivered(1)
        );
        assert_eq!(cursor.offer(&hub, &at("e", 3), held(3)), Offered::Held);
        assert!(cursor.gap_since().is_some());
        assert_eq!(
            cursor.offer(&hub, &at("e", 2), held(2)),
            Offered::Delivered(2)
        );
        assert!(cursor.gap_since().is_none());
        assert_eq!(cursor.offer(&hub, &at("e", 2), held(2)), Offered::Duplicate);
        assert_eq!(received(&member), ["1", "2", "3"]);
        assert!(received(&other).is_empty());
    }

    #[test]
    fn publications_that_arrive_while_starting_wait_for_the_position() {
        let (hub, member, _) = hub();
        let mut cursor = Cursor::new(Room::from(ROOM));
        cursor.offer(&hub, &at("e", 5), held(5));
        cursor.offer(&hub, &at("e", 6), held(6));
        assert!(received(&member).is_empty());
        // The stream stood at 5 when read: 5 was already there, 6 is new.
        cursor.go_live(&hub, at("e", 5));
        assert_eq!(received(&member), ["6"]);
    }

    #[test]
    fn a_repair_delivers_what_was_missing_before_what_was_held() {
        let (hub, member, _) = hub();
        let mut cursor = live(&hub, "e", 0);
        cursor.offer(&hub, &at("e", 1), held(1));
        cursor.offer(&hub, &at("e", 4), held(4));
        let read = History::new(
            at("e", 4),
            vec![publication(2), publication(3), publication(4)],
        );
        assert!(!cursor.repair(&hub, read, 100));
        assert_eq!(received(&member), ["1", "2", "3", "4"]);
        assert!(cursor.gap_since().is_none());
    }

    #[test]
    fn what_the_stream_no_longer_has_is_announced_as_a_gap() {
        let (hub, member, _) = hub();
        let mut cursor = live(&hub, "e", 0);
        cursor.offer(&hub, &at("e", 1), held(1));
        cursor.offer(&hub, &at("e", 5), held(5));
        // Trimmed: the stream keeps 4 and 5 only.
        let read = History::new(at("e", 5), vec![publication(4), publication(5)]);
        cursor.repair(&hub, read, 100);
        assert_eq!(received(&member), ["1", "gap 2..3", "4", "5"]);
        // Nothing held, but the stream is ahead (a tail that never came).
        let read = History::new(at("e", 7), vec![publication(7)]);
        cursor.repair(&hub, read, 100);
        assert_eq!(received(&member), ["gap 6..6", "7"]);
    }

    #[test]
    fn a_new_epoch_announces_the_old_tail_and_starts_from_one() {
        let (hub, member, _) = hub();
        let mut cursor = live(&hub, "old", 3);
        cursor.offer(&hub, &at("new", 2), held(2));
        assert!(received(&member).is_empty());
        let read = History::new(at("new", 2), vec![publication(1), publication(2)]);
        cursor.repair(&hub, read, 100);
        assert_eq!(received(&member), ["gap 4..null", "1", "2"]);
        assert_eq!(cursor.position(), Some(at("new", 2)));
    }

    #[test]
    fn a_limited_read_asks_for_more() {
        let (hub, member, _) = hub();
        let mut cursor = live(&hub, "e", 0);
        let read = History::new(at("e", 4), vec![publication(1), publication(2)]);
        assert!(cursor.repair(&hub, read, 2));
        assert_eq!(received(&member), ["1", "2"]);
    }

    #[test]
    fn a_recovery_is_all_or_nothing_and_live_publications_wait_for_it() {
        let (hub, member, other) = hub();
        let mut cursor = live(&hub, "e", 10);
        let joiner = ConnectionId(2);
        let Some(Plan::Replay {
            at: pos,
            from,
            all_or_nothing,
        }) = cursor.plan(joiner, &Want::Recover(at("e", 7)), 300)
        else {
            panic!("a replay");
        };
        assert_eq!((pos.offset, from, all_or_nothing), (10, 8, true));
        // Live publications meanwhile: the member gets them, the joiner later.
        cursor.offer(&hub, &at("e", 11), held(11));
        assert_eq!(received(&member), ["11"]);
        let read = History::new(at("e", 11), (8..=11).map(publication).collect());
        let (joined, frames) = cursor.finish(joiner, &pos, from, true, Some(read));
        assert_eq!(joined.recovered, Some(Ok(())));
        for f in &frames {
            hub.send_to(joiner, f);
        }
        assert_eq!(received(&other), ["8", "9", "10", "11"]);

        // One publication of the range is gone: nothing is replayed.
        let Some(Plan::Replay { at: pos, from, .. }) =
            cursor.plan(joiner, &Want::Recover(at("e", 7)), 300)
        else {
            panic!("a replay");
        };
        let read = History::new(at("e", 11), (9..=11).map(publication).collect());
        let (joined, frames) = cursor.finish(joiner, &pos, from, true, Some(read));
        assert_eq!(joined.recovered, Some(Err(NotRecovered::HistoryGone)));
        assert!(frames.is_empty());
    }

    #[test]
    fn recovery_refusals_are_decided_up_front() {
        let (hub, _, _) = hub();
        let mut cursor = live(&hub, "e", 10);
        let id = ConnectionId(2);
        let refused = |cursor: &mut Cursor, want| match cursor.plan(id, &want, 5) {
            Some(Plan::Now(joined)) => joined.recovered,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            refused(&mut cursor, Want::Recover(at("x", 1))),
            Some(Err(NotRecovered::EpochChanged))
        );
        assert_eq!(
            refused(&mut cursor, Want::Recover(at("e", 11))),
            Some(Err(NotRecovered::UnknownOffset))
        );
        assert_eq!(
            refused(&mut cursor, Want::Recover(at("e", 4))),
            Some(Err(NotRecovered::LimitExceeded))
        );
        assert_eq!(
            refused(&mut cursor, Want::Recover(at("e", 10))),
            Some(Ok(()))
        );
        assert!(!cursor.has_joiners());
        // The latest three: 8, 9, 10, whatever the stream still has.
        let Some(Plan::Replay {
            from,
            all_or_nothing,
            ..
        }) = cursor.plan(id, &Want::Last(3), 5)
        else {
            panic!("a replay");
        };
        assert_eq!((from, all_or_nothing), (8, false));
    }
}
