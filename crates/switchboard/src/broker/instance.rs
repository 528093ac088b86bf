//! Names across instances: an instance's id, and a connection's address in
//! the whole cluster.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::hub::ConnectionId;

use super::BrokerError;

/// The longest instance id accepted.
pub const MAX_INSTANCE_ID_LEN: usize = 64;

/// One running instance (process) of the app in a cluster.
///
/// 1 to 64 characters from `A-Z a-z 0-9 - _ .`, so that it can appear in a
/// channel or key name without escaping. [`InstanceId::random`] is the
/// default; give instances stable names (the pod name) when you want to
/// read logs and counts by instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId(Arc<str>);

impl InstanceId {
    /// Checks `id` and wraps it.
    pub fn new(id: impl AsRef<str>) -> Result<Self, BrokerError> {
        let id = id.as_ref();
        let valid = !id.is_empty()
            && id.len() <= MAX_INSTANCE_ID_LEN
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if valid {
            Ok(Self(Arc::from(id)))
        } else {
            Err(BrokerError::InvalidInstanceId(
                id.chars().take(80).collect(),
            ))
        }
    }

    /// A random id (32 hex digits, from a v4 UUID).
    pub fn random() -> Self {
        Self(Arc::from(uuid::Uuid::new_v4().simple().to_string()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for InstanceId {
    type Err = BrokerError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl serde::Serialize for InstanceId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for InstanceId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::new(s).map_err(serde::de::Error::custom)
    }
}

/// A connection anywhere in the cluster: the instance that holds it and its
/// id there. Hand it to other services (store it next to a session) to
/// reach that one connection later with [`super::Target::Connection`].
///
/// Displayed and parsed as `instance/id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ConnectionAddr {
    /// The instance holding the connection.
    pub instance: InstanceId,
    /// The connection's id on that instance.
    pub id: ConnectionId,
}

impl ConnectionAddr {
    /// The address of connection `id` on `instance`.
    pub fn new(instance: InstanceId, id: ConnectionId) -> Self {
        Self { instance, id }
    }
}

impl fmt::Display for ConnectionAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.instance, self.id)
    }
}

impl FromStr for ConnectionAddr {
    type Err = BrokerError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || BrokerError::InvalidAddress(s.chars().take(80).collect());
        let (instance, id) = s.rsplit_once('/').ok_or_else(invalid)?;
        let id = id.parse::<u64>().map_err(|_| invalid())?;
        let instance = InstanceId::new(instance).map_err(|_| invalid())?;
        Ok(Self::new(instance, ConnectionId(id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_are_checked() {
        assert!(InstanceId::new("pod-7_a.b").is_ok());
        assert!(InstanceId::new("").is_err());
        assert!(InstanceId::new("a:b").is_err());
        assert!(InstanceId::new("a b").is_err());
        assert!(InstanceId::new("x".repeat(65)).is_err());
        assert!(InstanceId::new(InstanceId::random().as_str()).is_ok());
    }

    #[test]
    fn connection_addresses_round_trip_through_text() {
        let addr = ConnectionAddr::new(InstanceId::new("node-1").unwrap(), ConnectionId(42));
        assert_eq!(addr.to_string(), "node-1/42");
        assert_eq!("node-1/42".parse::<ConnectionAddr>().unwrap(), addr);
        assert!("node-1".parse::<ConnectionAddr>().is_err());
        assert!("node:1/4".parse::<ConnectionAddr>().is_err());
        assert!("node-1/x".parse::<ConnectionAddr>().is_err());
    }
}
