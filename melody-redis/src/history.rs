//! History topics through Redis: one stream per topic holds the shared log, and one
//! script call appends to it and publishes, so that the stream's order and the order
//! every node receives are the same order.
//!
//! Keys, with the channel prefix `P`: `P:history:T` is topic `T`'s stream (entry id
//! `<sequence>-0`, fields `t` the Redis time in milliseconds and `e` the envelope),
//! `P:history-meta:T` a hash with the stream's `epoch` (hex) and last `seq`. The
//! epoch is created with the hash, and the stream is emptied when it is: a Redis that
//! lost its data (restarted without persistence, say) starts a new epoch, and a
//! client resuming from an older position is told of the gap.
//!
//! What a node receives on the topic's channel is a positioned envelope:
//!
//! ```text
//! byte 0   3 (a positioned message)
//! then     the position as text, `<hex epoch>.<sequence>`, and a line feed
//! then     the version-2 envelope, unchanged (see `envelope.rs`)
//! ```

use melody_core::history::{HistoryLimits, Position};
use melody_core::Publication;
use redis::Value;

use crate::envelope;

/// The first byte of a positioned message.
pub(crate) const POSITIONED: u8 = 3;
/// A rendered position is at most 16 hex digits, a dot and 20 digits.
const MAX_POSITION_TEXT: usize = 37;

/// Appends to the stream, trims it, and publishes the positioned envelope, atomically
/// (a script runs alone). KEYS: the meta hash, the stream. ARGV: the channel, a fresh
/// epoch for a log that has none, the envelope, the count bound (0: none), the age
/// bound in milliseconds (0: none), the publish command. Returns the sequence.
pub(crate) const APPEND_SCRIPT: &str = r"
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[2]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)
end
local seq = string.format('%d', redis.call('HINCRBY', KEYS[1], 'seq', 1))
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local id = seq .. '-0'
local max_len = tonumber(ARGV[4])
if max_len > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', max_len, id, 't', string.format('%d', now), 'e', ARGV[3])
else
  redis.call('XADD', KEYS[2], id, 't', string.format('%d', now), 'e', ARGV[3])
end
local max_age = tonumber(ARGV[5])
if max_age > 0 then
  -- Bounded work per append: look at the 16 oldest entries, trim those expired.
  local oldest = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 16)
  local keep = nil
  for _, entry in ipairs(oldest) do
    keep = entry[1]
    if tonumber(entry[2][2]) > now - max_age then break end
  end
  if keep then redis.call('XTRIM', KEYS[2], 'MINID', keep) end
end
redis.call(ARGV[6], ARGV[1], '\3' .. epoch .. '.' .. seq .. '\n' .. ARGV[3])
return tonumber(seq)
";

/// The stream and meta keys of `topic` under `prefix`.
pub(crate) fn keys(prefix: &str, topic: &str) -> (String, String) {
    (
        format!("{prefix}:history-meta:{topic}"),
        format!("{prefix}:history:{topic}"),
    )
}

/// The count and age bounds the stream is trimmed to: those of the topic's local
/// history (the byte bound is the local copy's only; the stream keeps at least as
/// much, approximately trimmed).
pub(crate) fn trim_bounds(limits: Option<HistoryLimits>) -> (usize, u128) {
    let limits = limits.unwrap_or_default();
    (
        limits.max_messages.unwrap_or(0),
        limits.max_age.map_or(0, |age| age.as_millis().max(1)),
    )
}

/// A positioned message split into its position and the envelope after it; `None`
/// if `bytes` is not one (the caller then reads it as a plain envelope).
pub(crate) fn split_positioned(bytes: &[u8]) -> Option<Result<(Position, &[u8]), ()>> {
    let (&first, rest) = bytes.split_first()?;
    if first != POSITIONED {
        return None;
    }
    let split = || {
        let end = rest
            .iter()
            .take(MAX_POSITION_TEXT + 1)
            .position(|&b| b == b'\n')
            .ok_or(())?;
        let text = std::str::from_utf8(&rest[..end]).map_err(|_| ())?;
        let position = text.parse::<Position>().map_err(|_| ())?;
        Ok((position, &rest[end + 1..]))
    };
    Some(split())
}

/// The most messages read back from a stream at once (a bound on one read, whatever
/// the topic's count bound; a topic without one is read back this far).
pub(crate) const READ_BACK_MAX: usize = 10_000;

/// The messages of an `XRANGE`/`XREVRANGE` reply in epoch `epoch` (hex, as the meta
/// hash holds it), and how many entries were not readable.
pub(crate) fn read_entries(epoch: &str, reply: &Value) -> (Vec<(Position, Publication)>, usize) {
    let Ok(epoch) = u64::from_str_radix(epoch, 16) else {
        return (Vec::new(), 0);
    };
    let Value::Array(items) = reply else {
        return (Vec::new(), 0);
    };
    let mut unreadable = 0;
    let mut entries = Vec::with_capacity(items.len());
    for item in items {
        match read_entry(epoch, item) {
            Some(entry) => entries.push(entry),
            None => unreadable += 1,
        }
    }
    (entries, unreadable)
}

fn read_entry(epoch: u64, item: &Value) -> Option<(Position, Publication)> {
    let Value::Array(pair) = item else {
        return None;
    };
    let (Some(Value::BulkString(id)), Some(Value::Array(fields))) = (pair.first(), pair.get(1))
    else {
        return None;
    };
    let id = std::str::from_utf8(id).ok()?;
    let sequence: u64 = id.split_once('-')?.0.parse().ok()?;
    let bytes = fields.chunks(2).find_map(|kv| match kv {
        [Value::BulkString(key), Value::BulkString(value)] if key.as_slice() == b"e" => Some(value),
        _ => None,
    })?;
    let message = envelope::decode(bytes).ok()?.publication()?;
    Some((Position::new(epoch, sequence), message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_positioned_message_splits() {
        let mut bytes = vec![POSITIONED];
        bytes.extend_from_slice(b"1f.42\nrest");
        let (position, rest) = split_positioned(&bytes)
            .expect("positioned")
            .expect("well formed");
        assert_eq!((position, rest), (Position::new(0x1f, 42), &b"rest"[..]));
    }

    #[test]
    fn plain_and_malformed_messages_are_told_apart() {
        assert_eq!(split_positioned(&[2, 0, 0]), None, "a version-2 envelope");
        assert_eq!(split_positioned(&[]), None);
        assert_eq!(split_positioned(&[POSITIONED]), Some(Err(())));
        assert_eq!(split_positioned(b"\x03x.1\nrest"), Some(Err(())));
        let mut long = vec![POSITIONED];
        long.extend(std::iter::repeat_n(b'1', 60));
        long.push(b'\n');
        assert_eq!(split_positioned(&long), Some(Err(())), "too long");
    }

    #[test]
    fn bounds_follow_the_local_limits() {
        use std::time::Duration;
        let limits = HistoryLimits::new()
            .max_messages(100)
            .max_age(Duration::from_secs(600));
        assert_eq!(trim_bounds(Some(limits)), (100, 600_000));
        assert_eq!(trim_bounds(None), (0, 0));
    }
}
