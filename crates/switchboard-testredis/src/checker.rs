//! A checker for streams under faults, in the style of Jepsen: what the
//! publisher was told succeeded against what each subscriber saw.

use std::collections::HashMap;

/// What a subscriber saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// A publication: its offset, and the publisher's sequence number.
    Publication {
        /// The offset the subscriber got.
        offset: u64,
        /// The publisher's number for it.
        n: u64,
    },
    /// A gap event.
    Gap {
        /// The epoch of the lost publications.
        epoch: String,
        /// The first lost offset.
        from: u64,
        /// The last lost offset, if known.
        to: Option<u64>,
        /// The position delivery went on from.
        resume: (String, u64),
    },
}

/// A publish the publisher was told succeeded: its number, epoch, offset.
pub type Acked = (u64, String, u64);

/// What a check found, for the test's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Publishes acknowledged.
    pub acknowledged: usize,
    /// Publications delivered.
    pub delivered: usize,
    /// Acknowledged publications announced lost by a gap.
    pub announced_lost: usize,
    /// Gap events.
    pub gaps: usize,
}

/// Checks one subscriber's record, from the position it joined at:
/// offsets go up by one except across a gap (which must start where
/// delivery stopped, and is allowed only with `gaps_allowed`); nothing
/// arrives twice; every acknowledged publish arrived at its position or
/// lies in an announced gap.
///
/// # Panics
/// On the first violation, naming `who` and what was seen.
pub fn check(
    who: &str,
    joined: (String, u64),
    seen: &[Seen],
    acked: &[Acked],
    gaps_allowed: bool,
) -> Tally {
    let (mut epoch, mut last) = joined;
    let mut delivered: HashMap<u64, (String, u64)> = HashMap::new();
    let mut gaps: Vec<(String, u64, Option<u64>)> = Vec::new();
    for (i, item) in seen.iter().enumerate() {
        match item {
            Seen::Publication { offset, n } => {
                assert_eq!(
                    *offset,
                    last + 1,
                    "{who}: item {i}: offset {offset} after {last} in epoch {epoch} without a gap"
                );
                let previous = delivered.insert(*n, (epoch.clone(), *offset));
                assert!(previous.is_none(), "{who}: publication {n} arrived twice");
                last = *offset;
            }
            Seen::Gap {
                epoch: gap_epoch,
                from,
                to,
                resume,
            } => {
                assert!(
                    gaps_allowed,
                    "{who}: a gap while Redis lost nothing: {item:?}"
                );
                assert_eq!(gap_epoch, &epoch, "{who}: a gap of another epoch: {item:?}");
                assert_eq!(
                    *from,
                    last + 1,
                    "{who}: a gap not where delivery stopped: {item:?}"
                );
                gaps.push((gap_epoch.clone(), *from, *to));
                (epoch, last) = resume.clone();
            }
        }
    }
    let mut announced_lost = 0;
    for (n, e, o) in acked {
        match delivered.get(n) {
            Some((got_epoch, got_offset)) => assert_eq!(
                (got_epoch.as_str(), *got_offset),
                (e.as_str(), *o),
                "{who}: publication {n} arrived at another position than acknowledged"
            ),
            None => {
                let covered = gaps
                    .iter()
                    .any(|(ge, from, to)| ge == e && *o >= *from && to.is_none_or(|to| *o <= to));
                assert!(
                    covered,
                    "{who}: acknowledged publication {n} at ({e}, {o}) never arrived and no gap \
                     covers it; {} acknowledged, {} delivered, last seen {:?}",
                    acked.len(),
                    delivered.len(),
                    seen.iter().rev().take(3).collect::<Vec<_>>()
                );
                announced_lost += 1;
            }
        }
    }
    Tally {
        acknowledged: acked.len(),
        delivered: delivered.len(),
        announced_lost,
        gaps: gaps.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(offset: u64, n: u64) -> Seen {
        Seen::Publication { offset, n }
    }

    #[test]
    fn it_accepts_exact_delivery_and_catches_a_gap_a_duplicate_and_a_loss() {
        let acked: Vec<Acked> = (1..=3).map(|n| (n, "e".to_owned(), n)).collect();
        let ok = check(
            "ok",
            ("e".into(), 0),
            &[p(1, 1), p(2, 2), p(3, 3)],
            &acked,
            false,
        );
        assert_eq!(ok.delivered, 3);
        let silent_gap = std::panic::catch_unwind(|| {
            check("gap", ("e".into(), 0), &[p(1, 1), p(3, 3)], &acked, false)
        });
        assert!(silent_gap.is_err());
        let twice = std::panic::catch_unwind(|| {
            check(
                "dup",
                ("e".into(), 0),
                &[p(1, 1), p(2, 1)],
                &acked[..1],
                false,
            )
        });
        assert!(twice.is_err());
        let lost = std::panic::catch_unwind(|| {
            check("lost", ("e".into(), 0), &[p(1, 1), p(2, 2)], &acked, false)
        });
        assert!(lost.is_err());
        let announced = Seen::Gap {
            epoch: "e".into(),
            from: 3,
            to: None,
            resume: ("f".into(), 0),
        };
        let tally = check(
            "announced",
            ("e".into(), 0),
            &[p(1, 1), p(2, 2), announced],
            &acked,
            true,
        );
        assert_eq!(tally.announced_lost, 1);
    }
}
