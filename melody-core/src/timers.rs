//! Deadline scheduling: a hashed timing wheel with one slot per `timer_granularity`.
//!
//! Each session keeps, per timer kind, its true deadline and the tick of the one wheel
//! entry that stands for it. Moving a deadline later (a pong, write progress) touches
//! only the session: when the old entry comes due it is re-inserted at the new
//! deadline. So a session never has more than one live entry per kind, however often
//! its deadlines move, and insertion is O(1) in any order. (A FIFO per kind, tried
//! first, cannot re-insert a moved deadline in order without losing exactness.)

use std::cell::Cell;
use std::time::{Duration, Instant};

/// The kinds of deadline a session can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum TimerKind {
    /// The handshake must complete.
    Handshake = 0,
    /// Time to send the next ping.
    Ping = 1,
    /// A pong must have arrived.
    Pong = 2,
    /// Pending bytes must make progress.
    Write = 3,
    /// The peer must answer our close frame. It shares the ping's slot (see
    /// [`TimerKind::slot`]): keepalive stops once a session is closing.
    Close = 4,
    /// A message in progress must be complete. It shares the handshake's slot (see
    /// [`TimerKind::slot`]): the two never run at once.
    Message = 5,
}

impl TimerKind {
    /// The slot in [`SessionTimers`] this kind's deadline lives in. The message
    /// deadline only runs once the handshake is over, so it reuses the handshake's
    /// slot; the close deadline only runs once keepalive has stopped (the session is
    /// closing), so it reuses the ping's. Each saves 16 bytes in every session. A wheel
    /// entry stands for its slot: one armed as `Handshake` may fire for a message
    /// deadline armed later in the same slot (and one armed as `Ping` for a close
    /// deadline), so the session tells the two apart by its phase, not by the kind.
    fn slot(self) -> usize {
        match self {
            TimerKind::Message => TimerKind::Handshake as usize,
            TimerKind::Close => TimerKind::Ping as usize,
            other => other as usize,
        }
    }
}

/// Deadline slots per session (the message deadline shares the handshake's, the
/// close deadline the ping's).
pub(crate) const TIMER_KINDS: usize = 4;

/// A tick number: the wheel's time unit, counted from the hub's creation.
pub(crate) type Tick = u64;

/// Marks "no deadline" and "no entry".
pub(crate) const NEVER: Tick = Tick::MAX;

/// A session's deadlines, as ticks.
#[derive(Debug, Clone)]
pub(crate) struct SessionTimers {
    /// The true deadline of each kind, or `NEVER`.
    deadline: [Tick; TIMER_KINDS],
    /// The tick of the wheel entry standing for each kind, or `NEVER`.
    scheduled: [Tick; TIMER_KINDS],
}

impl Default for SessionTimers {
    fn default() -> Self {
        SessionTimers {
            deadline: [NEVER; TIMER_KINDS],
            scheduled: [NEVER; TIMER_KINDS],
        }
    }
}

impl SessionTimers {
    pub(crate) fn deadline(&self, kind: TimerKind) -> Tick {
        self.deadline[kind.slot()]
    }

    pub(crate) fn disarm(&mut self, kind: TimerKind) {
        self.deadline[kind.slot()] = NEVER;
    }

    pub(crate) fn disarm_all(&mut self) {
        self.deadline = [NEVER; TIMER_KINDS];
    }

    /// Whether the wheel entry of `kind` at `tick` is the one standing for this
    /// session (any other is stale, as `settle` would find).
    pub(crate) fn is_scheduled(&self, kind: TimerKind, tick: Tick) -> bool {
        self.scheduled[kind.slot()] == tick
    }
}

/// The latest tick a deadline can have: a tick shares its entry's word with the kind
/// (3 bits). At the finest granularity (1 ns) that is 73 years after the hub started.
const LAST_TICK: Tick = (1 << 61) - 1;

/// A wheel entry in 16 bytes (two per session at most of the time, so they count in
/// an idle session's memory): the tick and the kind packed in one word.
#[derive(Debug, Clone, Copy)]
struct Entry {
    tick_and_kind: u64,
    index: u32,
    serial: u32,
}

impl Entry {
    fn new(tick: Tick, index: u32, serial: u32, kind: TimerKind) -> Self {
        Entry {
            tick_and_kind: (tick.min(LAST_TICK) << 3) | kind as u64,
            index,
            serial,
        }
    }

    fn tick(&self) -> Tick {
        self.tick_and_kind >> 3
    }

    fn kind(&self) -> TimerKind {
        match self.tick_and_kind & 0b111 {
            0 => TimerKind::Handshake,
            1 => TimerKind::Ping,
            2 => TimerKind::Pong,
            3 => TimerKind::Write,
            4 => TimerKind::Close,
            // `new` stores nothing else.
            _ => TimerKind::Message,
        }
    }
}

/// A due timer: the session (slab index and serial) and the kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Due {
    pub(crate) index: u32,
    pub(crate) serial: u32,
    pub(crate) kind: TimerKind,
    pub(crate) tick: Tick,
}

const SLOTS: usize = 4096;
/// Entries a drained slot may keep room for (256 bytes); larger slots are freed.
const SLOT_KEEP: usize = 16;
const MASK: u64 = SLOTS as u64 - 1;
const WORDS: usize = SLOTS / 64;

/// The wheel. Entries for deadlines beyond one revolution wait in their slot until
/// their round comes.
pub(crate) struct TimerWheel {
    origin: Instant,
    /// In 64 bits: a 128-bit division took about a hundred instructions per tick
    /// computed, and a queued write computes one. 2^64 ns is 584 years.
    granularity_nanos: u64,
    granularity: Duration,
    slots: Vec<Vec<Entry>>,
    /// One bit per non-empty slot, to find the next deadline without scanning slots.
    occupied: [u64; WORDS],
    /// Every tick before this one has been processed.
    cursor: Tick,
    len: usize,
    /// What `next_tick` found, kept until entries go (an insert only lowers it): a
    /// driver asks after every operation, and the scan was most of a turn's timer
    /// work.
    next: Cell<Option<Option<Tick>>>,
}

impl TimerWheel {
    pub(crate) fn new(origin: Instant, granularity: Duration) -> Self {
        TimerWheel {
            origin,
            granularity_nanos: u64::try_from(granularity.as_nanos())
                .unwrap_or(u64::MAX)
                .max(1),
            granularity,
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            occupied: [0; WORDS],
            cursor: 0,
            len: 0,
            next: Cell::new(None),
        }
    }

    /// The first tick at or after `at` (deadlines are rounded up, never early).
    pub(crate) fn tick_at_or_after(&self, at: Instant) -> Tick {
        let nanos = self.nanos_since_origin(at);
        nanos.div_ceil(self.granularity_nanos).min(LAST_TICK)
    }

    /// The last tick at or before `now`.
    pub(crate) fn tick_at_or_before(&self, now: Instant) -> Tick {
        (self.nanos_since_origin(now) / self.granularity_nanos).min(LAST_TICK)
    }

    /// Nanoseconds from the wheel's origin to `at` (0 before it), saturating at
    /// `u64::MAX`, which is past every tick.
    fn nanos_since_origin(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.origin);
        since
            .as_secs()
            .checked_mul(1_000_000_000)
            .and_then(|n| n.checked_add(u64::from(since.subsec_nanos())))
            .unwrap_or(u64::MAX)
    }

    /// The instant a tick stands for.
    pub(crate) fn instant_of(&self, tick: Tick) -> Instant {
        let offset = self
            .granularity
            .saturating_mul(u32::try_from(tick).unwrap_or(u32::MAX));
        self.origin.checked_add(offset).unwrap_or(self.origin)
    }

    /// Sets a session's deadline of `kind` to `at`, inserting an entry only when no
    /// entry already stands for an earlier or equal tick.
    pub(crate) fn arm(
        &mut self,
        timers: &mut SessionTimers,
        index: u32,
        serial: u32,
        kind: TimerKind,
        at: Instant,
    ) {
        let tick = self.tick_at_or_after(at);
        self.arm_tick(timers, index, serial, kind, tick);
    }

    /// [`TimerWheel::arm`] with the tick already computed (a fan-out computes the write
    /// deadline's tick once for all its recipients).
    pub(crate) fn arm_tick(
        &mut self,
        timers: &mut SessionTimers,
        index: u32,
        serial: u32,
        kind: TimerKind,
        tick: Tick,
    ) {
        timers.deadline[kind.slot()] = tick;
        // A deadline already past gets its entry at the cursor (see `insert`); the
        // session must record that tick, or `settle` takes the entry for a stale one.
        let entry_tick = tick.max(self.cursor);
        if timers.scheduled[kind.slot()] > entry_tick {
            timers.scheduled[kind.slot()] = entry_tick;
            self.insert(Entry::new(entry_tick, index, serial, kind));
        }
    }

    fn insert(&mut self, entry: Entry) {
        // A deadline already past is handled at the next expiry, not lost behind the cursor.
        let entry = if entry.tick() < self.cursor {
            Entry::new(self.cursor, entry.index, entry.serial, entry.kind())
        } else {
            entry
        };
        let slot = (entry.tick() & MASK) as usize;
        self.slots[slot].push(entry);
        self.occupied[slot / 64] |= 1 << (slot % 64);
        self.len += 1;
        if let Some(next) = self.next.get() {
            // As the scan finds it: the slot's place from the cursor, so an entry for a
            // later round counts where its slot is.
            let tick = self.cursor + (entry.tick() - self.cursor) % SLOTS as u64;
            self.next
                .set(Some(Some(next.map_or(tick, |next| next.min(tick)))));
        }
    }

    /// Moves the cursor up to `now`, appending every entry whose tick has come to `out`.
    /// The caller then calls [`TimerWheel::settle`] for each.
    pub(crate) fn expire(&mut self, now: Instant, out: &mut Vec<Due>) {
        let now_tick = self.tick_at_or_before(now);
        if now_tick < self.cursor {
            return;
        }
        // One revolution covers every slot; more would only revisit them.
        let span = (now_tick - self.cursor + 1).min(SLOTS as u64);
        self.next.set(None);
        for step in 0..span {
            let slot = ((self.cursor + step) & MASK) as usize;
            if self.occupied[slot / 64] & (1 << (slot % 64)) == 0 {
                continue;
            }
            let entries = &mut self.slots[slot];
            let before = entries.len();
            entries.retain(|e| {
                if e.tick() <= now_tick {
                    out.push(Due {
                        index: e.index,
                        serial: e.serial,
                        kind: e.kind(),
                        tick: e.tick(),
                    });
                    false
                } else {
                    true
                }
            });
            self.len -= before - entries.len();
            self.release_if_drained(slot);
        }
        self.cursor = now_tick + 1;
    }

    /// Decides what a due entry means for its session: the deadline's tick when it has
    /// really passed (fire it), `None` when the entry was stale or the deadline moved
    /// later (then it is re-inserted at the new deadline).
    pub(crate) fn settle(&mut self, timers: &mut SessionTimers, due: Due) -> Option<Tick> {
        let k = due.kind.slot();
        if timers.scheduled[k] != due.tick {
            return None;
        }
        timers.scheduled[k] = NEVER;
        let deadline = timers.deadline[k];
        if deadline == NEVER {
            return None;
        }
        if deadline < self.cursor {
            timers.deadline[k] = NEVER;
            return Some(deadline);
        }
        timers.scheduled[k] = deadline;
        self.insert(Entry::new(deadline, due.index, due.serial, due.kind));
        None
    }

    /// A lower bound for the next entry's tick: the first non-empty slot from the
    /// cursor. An entry there for a later round only costs an early, empty wakeup.
    pub(crate) fn next_tick(&self) -> Option<Tick> {
        if let Some(next) = self.next.get() {
            return next;
        }
        let next = self.scan_next_tick();
        self.next.set(Some(next));
        next
    }

    fn scan_next_tick(&self) -> Option<Tick> {
        if self.len == 0 {
            return None;
        }
        let start = (self.cursor & MASK) as usize;
        for offset_word in 0..=WORDS {
            let word_index = (start / 64 + offset_word) % WORDS;
            let mut word = self.occupied[word_index];
            if offset_word == 0 {
                word &= !0u64 << (start % 64);
            } else if offset_word == WORDS {
                word &= !(!0u64 << (start % 64));
            }
            if word != 0 {
                let slot = word_index * 64 + word.trailing_zeros() as usize;
                let offset = (slot + SLOTS - start) % SLOTS;
                return Some(self.cursor + offset as u64);
            }
        }
        None
    }

    /// Drops every entry `live(index, serial, kind, tick)` rejects, in one pass over
    /// the slots. Stale entries are otherwise dropped only when they come due.
    pub(crate) fn sweep(&mut self, mut live: impl FnMut(u32, u32, TimerKind, Tick) -> bool) {
        self.next.set(None);
        for slot in 0..SLOTS {
            let entries = &mut self.slots[slot];
            if entries.is_empty() {
                continue;
            }
            let before = entries.len();
            entries.retain(|e| live(e.index, e.serial, e.kind(), e.tick()));
            self.len -= before - entries.len();
            self.release_if_drained(slot);
        }
    }

    /// Marks an emptied slot free. A burst (connection churn, a mass reconnect) grows
    /// slots far past their usual size, and stale entries of released sessions add to
    /// it: a drained slot gives its memory back rather than keep every peak.
    fn release_if_drained(&mut self, slot: usize) {
        let entries = &mut self.slots[slot];
        if entries.is_empty() {
            self.occupied[slot / 64] &= !(1 << (slot % 64));
            if entries.capacity() > SLOT_KEEP {
                *entries = Vec::new();
            }
        }
    }

    /// Entries in the wheel, stale ones included.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wheel() -> (TimerWheel, Instant) {
        let t0 = Instant::now();
        (TimerWheel::new(t0, Duration::from_millis(100)), t0)
    }

    #[test]
    fn the_kept_next_tick_always_matches_a_fresh_scan() {
        let (mut w, t0) = wheel();
        let mut timers: Vec<SessionTimers> = vec![SessionTimers::default(); 8];
        let mut due = Vec::new();
        // A fixed pseudo-random walk of arms, expiries and sweeps.
        let mut seed = 0x9e37_79b9_u64;
        for step in 0..2_000u64 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let r = seed >> 33;
            let i = (r % 8) as usize;
            match r % 5 {
                0..=2 => {
                    let tick = w.cursor + (r >> 8) % 5_000;
                    w.arm_tick(&mut timers[i], i as u32, 0, TimerKind::Write, tick);
                }
                3 => {
                    let at = t0 + Duration::from_millis(100 * (w.cursor + (r >> 8) % 300));
                    due.clear();
                    w.expire(at, &mut due);
                    for d in due.drain(..) {
                        let _ = w.settle(&mut timers[d.index as usize], d);
                    }
                }
                _ => w.sweep(|index, _, _, _| (index as u64 + step) % 3 != 0),
            }
            assert_eq!(w.next_tick(), w.scan_next_tick(), "step {step}");
        }
    }

    #[test]
    fn an_entry_packs_tick_and_kind_in_sixteen_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 16);
        let kinds = [
            TimerKind::Handshake,
            TimerKind::Ping,
            TimerKind::Pong,
            TimerKind::Write,
            TimerKind::Close,
            TimerKind::Message,
        ];
        for (n, kind) in kinds.into_iter().enumerate() {
            let tick = LAST_TICK - n as u64;
            let entry = Entry::new(tick, 7, 9, kind);
            assert_eq!((entry.tick(), entry.kind()), (tick, kind));
            assert_eq!((entry.index, entry.serial), (7, 9));
        }
        assert_eq!(
            Entry::new(NEVER - 1, 0, 0, TimerKind::Pong).tick(),
            LAST_TICK
        );
    }

    #[test]
    fn a_deadline_past_the_last_tick_is_held_at_it_and_still_fires() {
        // 1 ns ticks: 2^61 of them are 73 years; a deadline 100 years out is clamped.
        let t0 = Instant::now();
        let mut w = TimerWheel::new(t0, Duration::from_nanos(1));
        let far = Duration::from_secs(100 * 365 * 24 * 3600);
        let Some(at) = t0.checked_add(far) else {
            return; // this platform's clock cannot represent it
        };
        assert_eq!(w.tick_at_or_after(at), LAST_TICK);
        let mut t = SessionTimers::default();
        w.arm(&mut t, 0, 0, TimerKind::Ping, at);
        assert_eq!(t.deadline(TimerKind::Ping), LAST_TICK);
        assert_eq!(
            w.next_tick().map(|tick| tick & MASK),
            Some(LAST_TICK & MASK)
        );
    }

    fn fire(w: &mut TimerWheel, t: &mut SessionTimers, now: Instant) -> Vec<TimerKind> {
        let mut due = Vec::new();
        w.expire(now, &mut due);
        due.into_iter()
            .filter(|d| w.settle(t, *d).is_some())
            .map(|d| d.kind)
            .collect()
    }

    #[test]
    fn fires_at_the_rounded_up_tick_and_not_before() {
        let (mut w, t0) = wheel();
        let mut t = SessionTimers::default();
        w.arm(
            &mut t,
            0,
            0,
            TimerKind::Pong,
            t0 + Duration::from_millis(250),
        );
        assert_eq!(w.next_tick(), Some(3));
        assert!(fire(&mut w, &mut t, t0 + Duration::from_millis(299)).is_empty());
        assert_eq!(
            fire(&mut w, &mut t, t0 + Duration::from_millis(300)),
            vec![TimerKind::Pong]
        );
        assert_eq!(w.next_tick(), None);
    }

    #[test]
    fn a_moved_deadline_keeps_one_entry_and_fires_at_the_new_time() {
        let (mut w, t0) = wheel();
        let mut t = SessionTimers::default();
        for ms in (1000..=60_000).step_by(100) {
            w.arm(
                &mut t,
                0,
                0,
                TimerKind::Pong,
                t0 + Duration::from_millis(ms),
            );
        }
        assert_eq!(w.len(), 1, "moving a deadline later inserts nothing");
        assert!(fire(&mut w, &mut t, t0 + Duration::from_millis(59_900)).is_empty());
        assert_eq!(
            w.len(),
            1,
            "the stale entry was re-inserted at the true deadline"
        );
        assert_eq!(
            fire(&mut w, &mut t, t0 + Duration::from_secs(60)),
            vec![TimerKind::Pong]
        );
    }

    #[test]
    fn deadlines_beyond_one_revolution_wait_for_their_round() {
        let (mut w, t0) = wheel();
        let mut t = SessionTimers::default();
        let far = t0 + Duration::from_secs(3600);
        w.arm(&mut t, 0, 0, TimerKind::Ping, far);
        let mut now = t0;
        while now < far - Duration::from_secs(1) {
            now += Duration::from_secs(7);
            assert!(fire(&mut w, &mut t, now.min(far - Duration::from_millis(100))).is_empty());
        }
        assert_eq!(fire(&mut w, &mut t, far), vec![TimerKind::Ping]);
    }

    #[test]
    fn disarmed_and_stale_entries_do_not_fire() {
        let (mut w, t0) = wheel();
        let mut t = SessionTimers::default();
        w.arm(&mut t, 0, 0, TimerKind::Write, t0 + Duration::from_secs(1));
        t.disarm(TimerKind::Write);
        assert!(fire(&mut w, &mut t, t0 + Duration::from_secs(2)).is_empty());
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn a_drained_slot_gives_back_the_room_of_a_burst() {
        let (mut w, t0) = wheel();
        let burst_at = t0 + Duration::from_secs(1);
        let usual_at = t0 + Duration::from_secs(2);
        let mut timers: Vec<SessionTimers> = vec![SessionTimers::default(); 1001];
        for (i, t) in timers.iter_mut().enumerate() {
            let at = if i < 1000 { burst_at } else { usual_at };
            w.arm(t, i as u32, 0, TimerKind::Ping, at);
        }
        let burst_slot = (w.tick_at_or_after(burst_at) & MASK) as usize;
        let usual_slot = (w.tick_at_or_after(usual_at) & MASK) as usize;
        assert!(w.slots[burst_slot].capacity() >= 1000);

        let mut due = Vec::new();
        w.expire(usual_at, &mut due);
        assert_eq!(due.len(), 1001);
        assert_eq!(w.slots[burst_slot].capacity(), 0, "a burst's room is freed");
        assert!(
            (1..=SLOT_KEEP).contains(&w.slots[usual_slot].capacity()),
            "a small slot keeps its room, so steady use does not reallocate"
        );
    }

    #[test]
    fn an_earlier_deadline_gets_its_own_entry() {
        let (mut w, t0) = wheel();
        let mut t = SessionTimers::default();
        w.arm(&mut t, 0, 0, TimerKind::Close, t0 + Duration::from_secs(10));
        w.arm(&mut t, 0, 0, TimerKind::Close, t0 + Duration::from_secs(1));
        assert_eq!(
            fire(&mut w, &mut t, t0 + Duration::from_secs(1)),
            vec![TimerKind::Close]
        );
        assert!(fire(&mut w, &mut t, t0 + Duration::from_secs(10)).is_empty());
    }
}
