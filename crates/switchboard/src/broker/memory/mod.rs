//! The in-memory broker: one process, nothing on the network. Its streams
//! (`history`) live as long as the bus: a restarted process starts new
//! epochs.

mod history;
mod presence;

use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;

use crate::hub::Room;

use super::presence::{JoinLeave, Member, Presence, PresenceStats};
use super::stream::{Appended, History, HistoryQuery, IdempotencyKey, StreamLimits};
use super::{Body, BoxFuture, Broker, BrokerError, ConnectionAddr, Envelope, LocalNode, Target};
use history::Store;
use presence::PresenceTable;

/// The default cap on the bytes all streams of a bus hold: 64 MiB.
pub const DEFAULT_HISTORY_MEMORY: usize = 64 << 20;

/// How often expired publications and forgotten channels are freed.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Instances in one process that see each other's publishes: every
/// [`MemoryBroker`] made by [`MemoryBus::broker`] delivers to the others
/// synchronously, inside `publish`. For tests and for running several apps
/// in one process; use a network broker for several processes.
#[derive(Debug, Clone)]
pub struct MemoryBus(Arc<Bus>);

#[derive(Debug)]
struct Bus {
    nodes: Mutex<Vec<LocalNode>>,
    store: Arc<Store>,
    presence: PresenceTable,
    sweeping: std::sync::Once,
}

impl Default for MemoryBus {
    fn default() -> Self {
        Self::with_history_memory(DEFAULT_HISTORY_MEMORY)
    }
}

impl MemoryBus {
    /// An empty bus, whose streams hold at most
    /// [`DEFAULT_HISTORY_MEMORY`] bytes.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty bus whose streams hold at most `bytes` (payloads plus a
    /// small overhead per publication). Past it, the channels published to
    /// longest ago lose their history first.
    pub fn with_history_memory(bytes: usize) -> Self {
        Self(Arc::new(Bus {
            nodes: Mutex::new(Vec::new()),
            store: Arc::new(Store::new(bytes)),
            presence: PresenceTable::default(),
            sweeping: std::sync::Once::new(),
        }))
    }

    /// A broker on this bus.
    pub fn broker(&self) -> MemoryBroker {
        MemoryBroker {
            bus: self.clone(),
            state: Mutex::new(State::NotStarted),
        }
    }

    /// Bytes the streams hold now.
    pub fn history_bytes(&self) -> usize {
        self.0.store.bytes()
    }

    fn others(&self, me: &LocalNode) -> Vec<LocalNode> {
        self.0
            .nodes
            .lock()
            .iter()
            .filter(|n| n.instance() != me.instance())
            .cloned()
            .collect()
    }

    /// Frees expired history every few seconds, while the bus lives.
    fn start_sweeping(&self) {
        self.0.sweeping.call_once(|| {
            let store: Weak<Store> = Arc::downgrade(&self.0.store);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(SWEEP_EVERY);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let Some(store) = store.upgrade() else { return };
                    store.sweep();
                }
            });
        });
    }
}

/// The default broker: delivers within the process. Alone
/// ([`MemoryBroker::new`]) a publish reaches exactly the local hub; on a
/// shared [`MemoryBus`] it reaches every instance on the bus.
#[derive(Debug)]
pub struct MemoryBroker {
    bus: MemoryBus,
    state: Mutex<State>,
}

#[derive(Debug)]
enum State {
    NotStarted,
    Running(LocalNode),
    Stopped,
}

impl Default for MemoryBroker {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBroker {
    /// A broker for a single instance.
    pub fn new() -> Self {
        MemoryBus::new().broker()
    }

    /// A broker for a single instance whose streams hold at most `bytes`
    /// (see [`MemoryBus::with_history_memory`]).
    pub fn with_history_memory(bytes: usize) -> Self {
        MemoryBus::with_history_memory(bytes).broker()
    }

    fn store(&self) -> Result<&Store, BrokerError> {
        self.others()?;
        Ok(&self.bus.0.store)
    }

    fn presence_table(&self) -> Result<&PresenceTable, BrokerError> {
        self.others()?;
        Ok(&self.bus.0.presence)
    }

    fn others(&self) -> Result<Vec<LocalNode>, BrokerError> {
        match &*self.state.lock() {
            State::Running(me) => Ok(self.bus.others(me)),
            State::NotStarted => Err(BrokerError::NotStarted),
            State::Stopped => Err(BrokerError::Stopped),
        }
    }
}

impl Broker for MemoryBroker {
    fn start(&self, node: LocalNode) -> BoxFuture<'_, Result<(), BrokerError>> {
        let result = {
            let mut state = self.state.lock();
            match *state {
                State::NotStarted => {
                    *state = State::Running(node.clone());
                    self.bus.0.nodes.lock().push(node);
                    Ok(())
                }
                State::Running(_) => Err(BrokerError::AlreadyStarted),
                State::Stopped => Err(BrokerError::Stopped),
            }
        };
        Box::pin(async move {
            self.bus.start_sweeping();
            result
        })
    }

    fn publish<'a>(&'a self, envelope: &'a Envelope) -> BoxFuture<'a, Result<(), BrokerError>> {
        let result = self.others().map(|others| {
            for node in others {
                node.deliver(envelope);
            }
        });
        Box::pin(async move { result })
    }

    fn sync(&self) -> BoxFuture<'_, Result<(), BrokerError>> {
        // Delivery is synchronous: every instance on the bus always "listens".
        let result = self.others().map(drop);
        Box::pin(async move { result })
    }

    fn remote_connection_count(&self) -> BoxFuture<'_, Result<usize, BrokerError>> {
        let count = self
            .others()
            .map(|others| others.iter().map(|n| n.hub().connection_count()).sum());
        Box::pin(async move { count })
    }

    fn remote_room_size<'a>(&'a self, room: &'a Room) -> BoxFuture<'a, Result<usize, BrokerError>> {
        let size = self
            .others()
            .map(|others| others.iter().map(|n| n.hub().room_size(room.clone())).sum());
        Box::pin(async move { size })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        let previous = std::mem::replace(&mut *self.state.lock(), State::Stopped);
        if let State::Running(me) = previous {
            self.bus
                .0
                .nodes
                .lock()
                .retain(|n| n.instance() != me.instance());
        }
        Box::pin(async {})
    }

    fn publish_once<'a>(
        &'a self,
        envelope: &'a Envelope,
        key: &'a IdempotencyKey,
        window: Duration,
    ) -> BoxFuture<'a, Result<bool, BrokerError>> {
        let result = self.others().map(|others| {
            if !self.bus.0.store.first_time(key, window) {
                return false;
            }
            for node in others {
                node.deliver(envelope);
            }
            true
        });
        Box::pin(async move { result })
    }

    fn append<'a>(
        &'a self,
        envelope: &'a Envelope,
        limits: &'a StreamLimits,
        key: Option<&'a IdempotencyKey>,
    ) -> BoxFuture<'a, Result<Appended, BrokerError>> {
        let result = self.others().and_then(|others| {
            let (Target::Room(room), Body::Message(payload)) = (&envelope.target, &envelope.body)
            else {
                return Err(BrokerError::Unsupported("history for this target"));
            };
            let store = &self.bus.0.store;
            Ok(store.append(room, payload, limits, key, |appended| {
                let carried = envelope
                    .clone()
                    .with_stream(Some(appended.position.clone()));
                for node in others {
                    node.deliver(&carried);
                }
            }))
        });
        Box::pin(async move { result })
    }

    fn history<'a>(
        &'a self,
        channel: &'a Room,
        query: &'a HistoryQuery,
        limits: &'a StreamLimits,
    ) -> BoxFuture<'a, Result<History, BrokerError>> {
        let result = self.store().map(|store| store.read(channel, query, limits));
        Box::pin(async move { result })
    }

    fn presence_add<'a>(
        &'a self,
        channel: &'a Room,
        member: &'a Member,
        join_leave: JoinLeave,
    ) -> BoxFuture<'a, Result<bool, BrokerError>> {
        let result = self
            .presence_table()
            .map(|t| t.add(channel, member, join_leave));
        Box::pin(async move { result })
    }

    fn presence_remove<'a>(
        &'a self,
        channel: &'a Room,
        connection: &'a ConnectionAddr,
        join_leave: JoinLeave,
        grace: Duration,
    ) -> BoxFuture<'a, Result<Option<Member>, BrokerError>> {
        let result = self
            .presence_table()
            .map(|t| t.remove(channel, connection, join_leave, grace));
        Box::pin(async move { result })
    }

    fn presence_due(&self) -> BoxFuture<'_, Result<Vec<(Room, Member)>, BrokerError>> {
        let result = self.presence_table().map(PresenceTable::due);
        Box::pin(async move { result })
    }

    fn presence<'a>(
        &'a self,
        channel: &'a Room,
        max: usize,
    ) -> BoxFuture<'a, Result<Presence, BrokerError>> {
        let result = self.presence_table().map(|t| t.presence(channel, max));
        Box::pin(async move { result })
    }

    fn presence_stats<'a>(
        &'a self,
        channel: &'a Room,
    ) -> BoxFuture<'a, Result<PresenceStats, BrokerError>> {
        let result = self.presence_table().map(|t| t.stats(channel));
        Box::pin(async move { result })
    }
}
