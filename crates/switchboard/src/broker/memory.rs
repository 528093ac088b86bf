//! The in-memory broker: one process, nothing on the network.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::hub::Room;

use super::{BoxFuture, Broker, BrokerError, Envelope, LocalNode};

/// Instances in one process that see each other's publishes: every
/// [`MemoryBroker`] made by [`MemoryBus::broker`] delivers to the others
/// synchronously, inside `publish`. For tests and for running several apps
/// in one process; use a network broker for several processes.
#[derive(Debug, Clone, Default)]
pub struct MemoryBus(Arc<Mutex<Vec<LocalNode>>>);

impl MemoryBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// A broker on this bus.
    pub fn broker(&self) -> MemoryBroker {
        MemoryBroker {
            bus: self.clone(),
            state: Mutex::new(State::NotStarted),
        }
    }

    fn others(&self, me: &LocalNode) -> Vec<LocalNode> {
        self.0
            .lock()
            .iter()
            .filter(|n| n.instance() != me.instance())
            .cloned()
            .collect()
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
                    self.bus.0.lock().push(node);
                    Ok(())
                }
                State::Running(_) => Err(BrokerError::AlreadyStarted),
                State::Stopped => Err(BrokerError::Stopped),
            }
        };
        Box::pin(async move { result })
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
            self.bus.0.lock().retain(|n| n.instance() != me.instance());
        }
        Box::pin(async {})
    }
}
