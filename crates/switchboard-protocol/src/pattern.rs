//! Channel patterns: which channels a rule (authorization, history)
//! applies to. The syntax is documented in `docs/protocol.md`, Channels.

use std::fmt;
use std::str::FromStr;

/// An invalid channel pattern or access name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PatternError(String);

impl PatternError {
    /// An error with `message`, which says what is wrong and where.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// A pattern of channel names.
///
/// Segments are separated by `:`. A segment is literal text, `{user_id}`
/// (any one segment, which must equal the subscriber's user id), or text
/// with `*` wildcards matching within the segment. A final segment `*`
/// matches the whole rest of the name, colons included: `public:*` matches
/// `public:news` and `public:news:eu`, not `public`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelPattern {
    source: String,
    segments: Vec<Segment>,
    rest: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Glob(String),
    UserId,
}

/// What a match captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Matched<'a> {
    /// The segment `{user_id}` matched, if the pattern has one.
    pub user_id: Option<&'a str>,
}

impl ChannelPattern {
    /// Parses a pattern.
    pub fn new(pattern: &str) -> Result<Self, PatternError> {
        let invalid =
            |why: &str| PatternError(format!("invalid channel pattern {pattern:?}: {why}"));
        if pattern.is_empty() {
            return Err(invalid("empty"));
        }
        let mut parts: Vec<&str> = pattern.split(':').collect();
        let rest = parts.len() > 1 && parts.last() == Some(&"*");
        if rest {
            parts.pop();
        }
        let mut segments = Vec::with_capacity(parts.len());
        let mut users = 0;
        for part in parts {
            if part == "{user_id}" {
                users += 1;
                segments.push(Segment::UserId);
            } else if part.contains(['{', '}']) {
                return Err(invalid("the only placeholder is a whole segment {user_id}"));
            } else if let Some(c) = part
                .chars()
                .find(|&c| c != '*' && !crate::channel::is_channel_char(c))
            {
                return Err(invalid(&format!("{c:?} cannot appear in a channel name")));
            } else if part.contains('*') {
                segments.push(Segment::Glob(part.to_owned()));
            } else {
                segments.push(Segment::Literal(part.to_owned()));
            }
        }
        if users > 1 {
            return Err(invalid("{user_id} may appear once"));
        }
        Ok(Self {
            source: pattern.to_owned(),
            segments,
            rest,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `channel` matches (ignoring who asks).
    pub fn is_match(&self, channel: &str) -> bool {
        self.matches(channel).is_some()
    }

    /// Whether `channel` matches, and what `{user_id}` captured.
    pub fn matches<'a>(&self, channel: &'a str) -> Option<Matched<'a>> {
        let mut parts = channel.split(':');
        let mut matched = Matched { user_id: None };
        for segment in &self.segments {
            let part = parts.next()?;
            match segment {
                Segment::Literal(text) if text == part => {}
                Segment::Glob(glob) if glob_match(glob.as_bytes(), part.as_bytes()) => {}
                Segment::UserId if !part.is_empty() => matched.user_id = Some(part),
                _ => return None,
            }
        }
        let more = parts.next().is_some();
        (more == self.rest).then_some(matched)
    }
}

impl fmt::Display for ChannelPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl FromStr for ChannelPattern {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// Whether `text` matches the glob `pattern`: `*` matches any run of bytes
/// (empty included); everything else matches itself. Linear backtracking to
/// the last star: O(pattern × text) at worst. Channel patterns and action
/// patterns (`orders.*`) both match with it.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, channel: &str) -> Option<Option<String>> {
        ChannelPattern::new(pattern)
            .unwrap()
            .matches(channel)
            .map(|m| m.user_id.map(str::to_owned))
    }

    #[test]
    fn patterns_match_by_segment() {
        assert_eq!(m("public:*", "public:news"), Some(None));
        assert_eq!(m("public:*", "public:news:eu"), Some(None));
        assert_eq!(m("public:*", "public:"), Some(None));
        assert_eq!(m("public:*", "public"), None);
        assert_eq!(m("public:*", "publicity:x"), None);
        assert_eq!(
            m("user:{user_id}:*", "user:alice:inbox"),
            Some(Some("alice".into()))
        );
        assert_eq!(m("user:{user_id}:*", "user::inbox"), None);
        assert_eq!(m("user:{user_id}:*", "user:alice"), None);
        assert_eq!(m("chat-*:lobby", "chat-eu:lobby"), Some(None));
        assert_eq!(m("chat-*:lobby", "chat-eu:lobby:x"), None);
        assert_eq!(m("exact", "exact"), Some(None));
        assert_eq!(m("exact", "exact:x"), None);
        assert_eq!(m("*", "anything"), Some(None));
        assert_eq!(m("*", "a:b"), None);
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in ["", "a:{user}", "{user_id}:{user_id}", "a b", "x:{user_id}x"] {
            assert!(ChannelPattern::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn globs_match() {
        assert!(glob_match(b"a*b*c", b"aXXbYYc"));
        assert!(glob_match(b"*", b""));
        assert!(!glob_match(b"a*b", b"aXXc"));
        assert!(glob_match(b"**a", b"a"));
        // No blow-up on a hostile name.
        let text = "a".repeat(255);
        assert!(!glob_match(b"*a*a*a*a*a*a*b", text.as_bytes()));
    }
}
