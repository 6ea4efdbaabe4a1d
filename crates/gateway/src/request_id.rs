//! Request ids: UUID v7 (time-ordered), made per thread without a lock or a system call.
//!
//! The `uuid` crate's own v7 generator takes a process-wide lock and asks the kernel for fresh
//! random bytes on every call; at proxy rates that is a measurable share of a request. Here
//! each thread seeds a SplitMix64 sequence once from the standard library's randomly keyed
//! hasher (OS randomness) and draws the 74 random bits of each id from it: ids are unique
//! (the sequence does not repeat within 2^64 draws, and threads start from independent random
//! points) and ordered by millisecond, which is all a request id promises. They are not
//! secrets. The millisecond comes from the monotonic instant the caller already read,
//! anchored to the wall clock once a second per thread.

use std::cell::Cell;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

thread_local! {
    static SEQUENCE: Cell<u64> = Cell::new(random_seed());
    /// An instant and the Unix time in milliseconds at that instant.
    static ANCHOR: Cell<Option<(Instant, u64)>> = const { Cell::new(None) };
}

/// How long a thread's anchor to the wall clock serves before it is read again.
const ANCHOR_LIFE: Duration = Duration::from_secs(1);

/// Unix time in milliseconds at `now`, from the thread's anchor: a wall-clock reading and
/// the instant it was taken, renewed once it is [`ANCHOR_LIFE`] old.
fn unix_millis(now: Instant) -> u64 {
    let at_offset =
        |(at, millis): (Instant, u64), now: Instant| match now.checked_duration_since(at) {
            Some(after) => (after, millis.saturating_add(duration_millis(after))),
            None => (
                Duration::ZERO,
                millis.saturating_sub(duration_millis(at.duration_since(now))),
            ),
        };
    ANCHOR.with(|anchor| {
        if let Some(current) = anchor.get() {
            let (since, millis) = at_offset(current, now);
            if since < ANCHOR_LIFE {
                return millis;
            }
        }
        let fresh = (Instant::now(), wall_clock_millis());
        anchor.set(Some(fresh));
        at_offset(fresh, now).1
    })
}

fn wall_clock_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, duration_millis)
}

fn duration_millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn random_seed() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(0x5241_4d50_4152_5421);
    hasher.finish()
}

/// SplitMix64's output function over its state.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn next_random() -> (u64, u64) {
    SEQUENCE.with(|state| {
        let first = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        let second = first.wrapping_add(0x9e37_79b9_7f4a_7c15);
        state.set(second);
        (mix(first), mix(second))
    })
}

/// A request id: a lowercase hyphenated UUID v7, kept inline (no allocation per request).
#[derive(Clone, Copy)]
pub(crate) struct RequestId([u8; uuid::fmt::Hyphenated::LENGTH]);

impl RequestId {
    pub(crate) fn as_str(&self) -> &str {
        // Hex digits and hyphens only: always UTF-8 (the fallback is never taken).
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A new request id for a request that started at `now`.
pub(crate) fn new_request_id(now: Instant) -> RequestId {
    let millis = unix_millis(now);
    let (high, low) = next_random();
    let mut random = [0u8; 10];
    random[..8].copy_from_slice(&high.to_le_bytes());
    random[8..].copy_from_slice(&low.to_le_bytes()[..2]);
    let id = uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid();
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    id.hyphenated().encode_lower(&mut text);
    RequestId(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_version_7_uuids_unique_and_time_ordered() {
        let ids: Vec<String> = (0..10_000)
            .map(|_| new_request_id(Instant::now()).to_string())
            .collect();
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "duplicate request ids");
        let mut previous_millis = 0;
        for id in &ids {
            let parsed = uuid::Uuid::parse_str(id).unwrap();
            assert_eq!(parsed.get_version_num(), 7, "{id}");
            assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122, "{id}");
            assert_eq!(
                id,
                &parsed.hyphenated().to_string(),
                "not lowercase hyphenated"
            );
            let (seconds, nanos) = parsed.get_timestamp().unwrap().to_unix();
            let millis = seconds * 1000 + u64::from(nanos / 1_000_000);
            assert!(millis >= previous_millis, "ids went back in time");
            previous_millis = millis;
        }
    }

    #[test]
    fn ids_carry_the_wall_clock_millisecond_of_their_instant() {
        let millis_of = |id: &str| {
            let (seconds, nanos) = uuid::Uuid::parse_str(id)
                .unwrap()
                .get_timestamp()
                .unwrap()
                .to_unix();
            i128::from(seconds * 1000 + u64::from(nanos / 1_000_000))
        };
        let signed_millis =
            |later: Instant, earlier: Instant| match later.checked_duration_since(earlier) {
                Some(after) => after.as_millis() as i128,
                None => -(earlier.duration_since(later).as_millis() as i128),
            };
        let origin = Instant::now();
        // Within an anchor's life, past it (renewed), and before the anchor.
        for offset in [0i64, 300, 3_000, -200] {
            let now = if offset >= 0 {
                origin + Duration::from_millis(offset as u64)
            } else {
                origin - Duration::from_millis(offset.unsigned_abs())
            };
            let (instant_before, wall_before) = (Instant::now(), i128::from(wall_clock_millis()));
            let id = new_request_id(now).to_string();
            let (wall_after, instant_after) = (i128::from(wall_clock_millis()), Instant::now());
            let lowest = wall_before + signed_millis(now, instant_after) - 5;
            let highest = wall_after + signed_millis(now, instant_before) + 5;
            let millis = millis_of(&id);
            assert!(
                (lowest..=highest).contains(&millis),
                "offset {offset} ms: {millis} not within {lowest}..={highest}"
            );
        }
    }

    #[test]
    fn threads_draw_different_ids() {
        let other: Vec<RequestId> =
            std::thread::spawn(|| (0..1000).map(|_| new_request_id(Instant::now())).collect())
                .join()
                .unwrap();
        let here: HashSet<String> = (0..1000)
            .map(|_| new_request_id(Instant::now()).to_string())
            .collect();
        assert!(other.iter().all(|id| !here.contains(id.as_str())));
    }
}
