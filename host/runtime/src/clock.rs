//! The clocks a plugin sees: coarse, so that a plugin cannot time what the
//! host or another request does.
//!
//! * **Monotonic**: 1 ms resolution, starting at zero when the instance is
//!   created (it reveals neither the host's uptime nor how long ago another
//!   request ran). A plugin can still measure its own work to the
//!   millisecond, which is all a feature needs.
//! * **Wall clock**: whole seconds of UTC. Enough for dates and "sent at"
//!   times, useless as a timer.
//!
//! Sleeping on either clock is allowed; the request's deadline bounds it.

use std::time::{Duration, Instant, SystemTime};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

/// Resolution of the monotonic clock plugins see, in nanoseconds (1 ms).
pub const MONOTONIC_RESOLUTION_NS: u64 = 1_000_000;

/// Resolution of the wall clock plugins see (1 s).
pub const WALL_RESOLUTION: Duration = Duration::from_secs(1);

/// Monotonic nanoseconds since the instance was created, rounded down to
/// [`MONOTONIC_RESOLUTION_NS`].
pub(crate) struct CoarseMonotonic {
    start: Instant,
}

impl CoarseMonotonic {
    pub(crate) fn new() -> Self {
        CoarseMonotonic {
            start: Instant::now(),
        }
    }
}

impl HostMonotonicClock for CoarseMonotonic {
    fn resolution(&self) -> u64 {
        MONOTONIC_RESOLUTION_NS
    }

    fn now(&self) -> u64 {
        let ns = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        ns - ns % MONOTONIC_RESOLUTION_NS
    }
}

/// UTC since the Unix epoch, in whole seconds.
pub(crate) struct CoarseWall;

impl HostWallClock for CoarseWall {
    fn resolution(&self) -> Duration {
        WALL_RESOLUTION
    }

    fn now(&self) -> Duration {
        let since = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        Duration::from_secs(since.as_secs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_are_coarse() {
        let m = CoarseMonotonic::new();
        assert_eq!(m.resolution(), 1_000_000);
        for _ in 0..1000 {
            assert_eq!(m.now() % MONOTONIC_RESOLUTION_NS, 0);
        }
        assert!(m.now() < 60 * 1_000_000_000, "starts at zero per instance");
        let w = CoarseWall;
        assert_eq!(w.now().subsec_nanos(), 0);
        assert!(w.now().as_secs() > 1_700_000_000);
    }
}
