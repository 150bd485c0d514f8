//! The only place this crate reads the clock or the OS's randomness.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
#[allow(clippy::disallowed_methods)]
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// The monotonic clock's origin (its first reading).
#[allow(clippy::disallowed_methods)]
fn monotonic_start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

/// Milliseconds on a monotonic clock (since its first reading), for
/// deadlines.
#[allow(clippy::disallowed_methods)]
pub(crate) fn monotonic_ms() -> u64 {
    let start = monotonic_start();
    Instant::now().duration_since(start).as_millis() as u64
}

/// Microseconds on the same monotonic clock, for response times.
#[allow(clippy::disallowed_methods)]
pub(crate) fn monotonic_us() -> u64 {
    let start = monotonic_start();
    Instant::now().duration_since(start).as_micros() as u64
}

/// A cheap shared source of random draws (SplitMix64 over an atomic
/// counter), seeded once from the OS.
pub(crate) struct RandomDraws {
    state: AtomicU64,
}

impl RandomDraws {
    pub(crate) fn from_os_seed() -> RandomDraws {
        let mut seed = [0u8; 8];
        // The hasher of a new RandomState is seeded from the OS.
        use std::hash::{BuildHasher as _, Hasher as _};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(now_ms());
        seed.copy_from_slice(&hasher.finish().to_le_bytes());
        RandomDraws {
            state: AtomicU64::new(u64::from_le_bytes(seed)),
        }
    }

    pub(crate) fn next(&self) -> u64 {
        let mut z = self
            .state
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `Root=1-<8 hex epoch seconds>-<24 hex random>`, as ALB writes it.
    pub(crate) fn trace_id(&self, now_ms: u64) -> [u8; 40] {
        let mut id = *b"Root=1-00000000-000000000000000000000000";
        write_hex(&mut id[7..15], now_ms / 1000);
        write_hex(&mut id[16..24], self.next());
        write_hex(&mut id[24..40], self.next());
        id
    }
}

/// Fills `out` with the low hex digits of `value`, most significant first.
fn write_hex(out: &mut [u8], mut value: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in out.iter_mut().rev() {
        *byte = DIGITS[(value & 0xF) as usize];
        value >>= 4;
    }
}

#[cfg(test)]
mod tests {
    use super::RandomDraws;

    #[test]
    fn trace_ids_have_albs_shape() {
        let draws = RandomDraws::from_os_seed();
        let id = draws.trace_id(1_700_000_000_123);
        let id = std::str::from_utf8(&id).unwrap();
        assert!(id.starts_with("Root=1-6553f100-"), "{id}");
        assert_eq!(id.len(), "Root=1-".len() + 8 + 1 + 24);
        assert!(id["Root=1-".len()..]
            .chars()
            .all(|c| c == '-' || c.is_ascii_hexdigit()));
        assert_ne!(draws.trace_id(0), draws.trace_id(0));
    }
}
