//! Where a message sits in its topic's history: an epoch and a sequence number,
//! rendered as one opaque string.

use std::fmt;
use std::str::FromStr;

/// A message's place in its topic's history.
///
/// The sequence grows by one per message published to the topic; the epoch names one
/// unbroken run of that sequence and changes whenever the history is lost (a restart,
/// the topic's history dropped). Two positions compare only within one epoch.
///
/// The string form (`Display`, and what event streams send as `id:`) is opaque to
/// clients: they hand it back as they got it (`Last-Event-ID`, a query parameter).
///
/// ```
/// use melody_core::history::Position;
///
/// let position = Position::new(0x2a, 7);
/// let text = position.to_string();
/// assert_eq!(text.parse::<Position>()?, position);
/// assert!("not a position".parse::<Position>().is_err());
/// # Ok::<(), melody_core::history::PositionError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Position {
    epoch: u64,
    sequence: u64,
}

impl Position {
    /// The position `sequence` in `epoch`.
    ///
    /// ```
    /// use melody_core::history::Position;
    ///
    /// let p = Position::new(1, 10);
    /// assert_eq!((p.epoch(), p.sequence()), (1, 10));
    /// ```
    pub fn new(epoch: u64, sequence: u64) -> Self {
        Position { epoch, sequence }
    }

    /// The run of history this position belongs to.
    ///
    /// ```
    /// use melody_core::history::Position;
    ///
    /// assert_eq!(Position::new(3, 1).epoch(), 3);
    /// ```
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The message's number within its epoch, from 1.
    ///
    /// ```
    /// use melody_core::history::Position;
    ///
    /// assert_eq!(Position::new(3, 1).sequence(), 1);
    /// ```
    pub fn sequence(&self) -> u64 {
        self.sequence
    }
}

/// Hex epoch, a dot, decimal sequence: short, and free of the characters an
/// event-stream `id:` line or a query string would need escaped.
impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}.{}", self.epoch, self.sequence)
    }
}

/// A string that is not a position this crate rendered.
///
/// ```
/// use melody_core::history::{Position, PositionError};
///
/// let err = "17".parse::<Position>().unwrap_err();
/// assert_eq!(err, PositionError::Malformed);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PositionError {
    /// Not of the form a position is rendered in.
    #[error("history position: not of the form `<hex epoch>.<sequence>`")]
    Malformed,
}

impl FromStr for Position {
    type Err = PositionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (epoch, sequence) = text.split_once('.').ok_or(PositionError::Malformed)?;
        // `from_str_radix` accepts a leading sign; a rendered position never has one.
        let digits = |s: &str, hex: bool| {
            !s.is_empty()
                && s.len() <= 20
                && s.bytes().all(|b| {
                    if hex {
                        b.is_ascii_hexdigit()
                    } else {
                        b.is_ascii_digit()
                    }
                })
        };
        if !digits(epoch, true) || !digits(sequence, false) {
            return Err(PositionError::Malformed);
        }
        let epoch = u64::from_str_radix(epoch, 16).map_err(|_| PositionError::Malformed)?;
        let sequence = sequence.parse().map_err(|_| PositionError::Malformed)?;
        Ok(Position { epoch, sequence })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_extremes() {
        for p in [Position::new(0, 0), Position::new(u64::MAX, u64::MAX)] {
            assert_eq!(p.to_string().parse::<Position>(), Ok(p));
        }
    }

    #[test]
    fn refuses_garbage() {
        for bad in [
            "",
            ".",
            "1.",
            ".1",
            "+1.1",
            "1.-1",
            "g.1",
            "1.1.1",
            "1.99999999999999999999999",
            "1 .1",
        ] {
            assert_eq!(
                bad.parse::<Position>(),
                Err(PositionError::Malformed),
                "{bad:?}"
            );
        }
    }
}
