//! Channel names: 1–255 characters of `A–Z a–z 0–9 : _ - . @ / =`.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The longest channel name, in characters (all allowed characters are ASCII).
pub const MAX_CHANNEL_LEN: usize = 255;

/// Why a channel name is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// The name is empty.
    #[error("channel name is empty")]
    Empty,
    /// The name is longer than [`MAX_CHANNEL_LEN`].
    #[error("channel name is longer than 255 characters")]
    TooLong,
    /// The name holds a character outside `A–Z a–z 0–9 : _ - . @ / =`.
    #[error("channel name contains {0:?}; allowed: A-Z a-z 0-9 : _ - . @ / =")]
    InvalidCharacter(char),
}

/// Whether `c` may appear in a channel name.
pub const fn is_channel_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-' | '.' | '@' | '/' | '=')
}

/// A valid channel name. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Channel(Arc<str>);

impl Channel {
    /// Checks `name` and wraps it.
    pub fn new(name: impl AsRef<str>) -> Result<Self, ChannelError> {
        let name = name.as_ref();
        Self::validate(name)?;
        Ok(Self(Arc::from(name)))
    }

    /// Checks a name without allocating.
    pub fn validate(name: &str) -> Result<(), ChannelError> {
        if name.is_empty() {
            return Err(ChannelError::Empty);
        }
        if let Some(c) = name.chars().find(|&c| !is_channel_char(c)) {
            return Err(ChannelError::InvalidCharacter(c));
        }
        // Only ASCII is left, so bytes are characters.
        if name.len() > MAX_CHANNEL_LEN {
            return Err(ChannelError::TooLong);
        }
        Ok(())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Channel {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for Channel {
    type Err = ChannelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<&str> for Channel {
    type Error = ChannelError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl TryFrom<String> for Channel {
    type Error = ChannelError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl From<Channel> for String {
    fn from(channel: Channel) -> Self {
        channel.0.to_string()
    }
}

impl Serialize for Channel {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Channel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::new(name).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for ok in ["public:news", "user:alice:inbox", "a", "x@y.z/w=1_2-3"] {
            assert!(Channel::new(ok).is_ok(), "{ok}");
        }
        assert_eq!(Channel::new(""), Err(ChannelError::Empty));
        assert_eq!(
            Channel::new("a b"),
            Err(ChannelError::InvalidCharacter(' '))
        );
        assert_eq!(Channel::new("é"), Err(ChannelError::InvalidCharacter('é')));
        assert!(Channel::new("a".repeat(255)).is_ok());
        assert_eq!(Channel::new("a".repeat(256)), Err(ChannelError::TooLong));
        assert!(serde_json::from_str::<Channel>("\"a*b\"").is_err());
    }
}
