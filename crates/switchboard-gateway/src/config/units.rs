//! Values with units in the config file: durations (`"10s"`), sizes
//! (`"64KiB"`), and secrets that never show in logs or `Debug` output.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A duration: `"500ms"`, `"10s"`, `"2m"`, `"1h"`, or a number of seconds
/// (parsed and printed by `humantime`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span(pub(crate) Duration);

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Span {
    pub(crate) const fn secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }
}

impl FromStr for Span {
    type Err = String;

    /// `humantime`'s syntax (`"500ms"`, `"10s"`, `"2m"`, `"1h30m"`,
    /// `"1.5s"`), plus a bare whole number of seconds, which humantime does
    /// not take (it wants a unit) and the config always has.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s
                .parse()
                .map(Self::secs)
                .map_err(|_| format!("invalid duration {s:?}: too large"));
        }
        humantime::parse_duration(s).map(Self).map_err(|e| {
            format!(
                "invalid duration {s:?}: {e}: use a number with a unit such as ms, s, m or h (\"500ms\", \"10s\", \"2m\")"
            )
        })
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Span;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"10s\", \"500ms\" or \"2m\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Span, E> {
                u64::try_from(v)
                    .map(Span::secs)
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Span, E> {
                Ok(Span::secs(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Span, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A size in bytes: a number, or `"512B"`, `"64KiB"`, `"1MiB"`, `"1GiB"`.
///
/// Parsed here rather than with `bytesize`, for two things it lacks: it
/// takes SI units as well (`"64KB"` = 64,000, `"1m"` = 1,000,000) where a
/// buffer size is easily meant as KiB, and it saturates a size that
/// overflows instead of refusing it. Here only whole numbers with binary
/// units are taken, and an overflow is an error.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Size(pub(crate) usize);

impl fmt::Debug for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        if n >= 1 << 30 && n.is_multiple_of(1 << 30) {
            write!(f, "{}GiB", n >> 30)
        } else if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
            write!(f, "{}MiB", n >> 20)
        } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
            write!(f, "{}KiB", n >> 10)
        } else {
            write!(f, "{n}B")
        }
    }
}

impl FromStr for Size {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (number, unit) = s.split_at(split);
        let bad = || {
            format!(
                "invalid size {s:?}: use a number of bytes, or a whole number with B, KiB, MiB or GiB (\"64KiB\")"
            )
        };
        let n: usize = number.parse().map_err(|_| bad())?;
        let shift = match unit.trim() {
            "" | "B" => 0,
            "KiB" => 10,
            "MiB" => 20,
            "GiB" => 30,
            _ => return Err(bad()),
        };
        n.checked_mul(1 << shift).map(Size).ok_or_else(bad)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as 65536, \"64KiB\" or \"1MiB\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                usize::try_from(v)
                    .map(Size)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                usize::try_from(v)
                    .map(Size)
                    .map_err(|_| E::custom("size too large"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A credential (an API key, a JWT secret, a URL with a password). Its
/// `Debug` and `Serialize` forms are `"[redacted]"`, so logging a config never
/// leaks one.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself: only to hand to what checks it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"[redacted]\"")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_as_seconds() {
        assert_eq!(
            "500ms".parse::<Span>().unwrap().0,
            Duration::from_millis(500)
        );
        assert_eq!("10s".parse::<Span>().unwrap().0, Duration::from_secs(10));
        assert_eq!("2m".parse::<Span>().unwrap().0, Duration::from_secs(120));
        assert_eq!("1h".parse::<Span>().unwrap().0, Duration::from_secs(3600));
        assert_eq!("7".parse::<Span>().unwrap().0, Duration::from_secs(7));
        // humantime's combinations and fractions.
        assert_eq!(
            "1h30m".parse::<Span>().unwrap().0,
            Duration::from_secs(5400)
        );
        assert_eq!(
            "1.5s".parse::<Span>().unwrap().0,
            Duration::from_millis(1500)
        );
        for bad in [
            "",
            "soon",
            "10 parsecs",
            "-1s",
            "99999999999999999999",
            "5x",
        ] {
            let e = bad.parse::<Span>().unwrap_err();
            assert!(e.starts_with("invalid duration"), "{bad}: {e}");
        }
        // What is printed parses back to the same value.
        for ms in [0, 1, 999, 1500, 60_000, 5_400_000, 90_061_001] {
            let span = Span(Duration::from_millis(ms));
            assert_eq!(span.to_string().parse::<Span>().unwrap(), span, "{span}");
        }
        assert_eq!(Span::secs(120).to_string(), "2m");
    }

    /// The grammar of the hand-written duration parser this replaced:
    /// whole numbers with ms, s, m, h or no unit.
    fn legacy_span(s: &str) -> Option<Duration> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (number, unit) = s.split_at(split);
        let n: u64 = number.parse().ok()?;
        Some(match unit.trim() {
            "ms" => Duration::from_millis(n),
            "" | "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60)?),
            "h" => Duration::from_secs(n.checked_mul(3600)?),
            _ => return None,
        })
    }

    /// Every quoted duration or size in docs/configuration.md and in the
    /// example config (`config example`) reads as it always did.
    #[test]
    fn the_documented_literals_parse_as_they_always_did() {
        let docs = include_str!("../../../../docs/configuration.md");
        let example = include_str!("example.toml");
        let mut checked = 0;
        for text in [docs, example] {
            let quotes: Vec<usize> = text.match_indices('"').map(|(i, _)| i).collect();
            for pair in quotes.windows(2) {
                let literal = &text[pair[0] + 1..pair[1]];
                let digits = literal
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(literal.len());
                if digits == 0 || !literal[digits..].chars().all(|c| c.is_ascii_alphabetic()) {
                    continue;
                }
                match &literal[digits..] {
                    "" => {
                        assert_eq!(
                            literal.parse::<Span>().ok().map(|s| s.0),
                            legacy_span(literal)
                        );
                        assert_eq!(
                            literal.parse::<Size>().unwrap().0,
                            literal.parse::<usize>().unwrap()
                        );
                    }
                    "ms" | "s" | "m" | "h" => {
                        let new = literal.parse::<Span>().map(|s| s.0).ok();
                        assert_eq!(new, legacy_span(literal), "{literal}");
                    }
                    "B" | "KiB" | "MiB" | "GiB" => {
                        assert!(literal.parse::<Size>().is_ok(), "{literal}");
                    }
                    _ => continue,
                }
                checked += 1;
            }
        }
        assert!(checked >= 20, "only {checked} literals found");
    }

    #[test]
    fn sizes_parse_binary_units() {
        assert_eq!("65536".parse::<Size>().unwrap().0, 65536);
        assert_eq!("64KiB".parse::<Size>().unwrap().0, 65536);
        assert_eq!("1MiB".parse::<Size>().unwrap().0, 1 << 20);
        assert_eq!("2GiB".parse::<Size>().unwrap().0, 2 << 30);
        assert!("1MB".parse::<Size>().is_err());
        assert!("-1".parse::<Size>().is_err());
        assert_eq!(Size(1 << 20).to_string(), "1MiB");
        assert_eq!(Size(100).to_string(), "100B");
    }

    #[test]
    fn secrets_never_show() {
        let secret = Secret::new("hunter2-hunter2-hunter2");
        assert_eq!(format!("{secret:?}"), "\"[redacted]\"");
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"[redacted]\"");
        assert_eq!(secret.expose(), "hunter2-hunter2-hunter2");
    }
}
