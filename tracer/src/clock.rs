//! The agent's readings of the system clocks: the offset between realtime
//! and monotonic time (the engine's [`Clock`] converts with it) and the
//! monotonic time now, which the engine is handed rather than reading.

use pytrace_core::model::Clock;

use crate::sys::{ClockId, clock_ns};

/// Measures the current offset between the realtime and monotonic clocks.
pub fn measure() -> Clock {
    let mono_before = clock_ns(ClockId::Monotonic);
    let real = clock_ns(ClockId::Realtime);
    let mono_after = clock_ns(ClockId::Monotonic);
    Clock::with_offset(real - (mono_before + mono_after) / 2)
}

/// Current `CLOCK_MONOTONIC` in nanoseconds.
pub fn monotonic_now() -> u64 {
    u64::try_from(clock_ns(ClockId::Monotonic)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_the_offset_to_unix_time() {
        let clock = measure();
        let now_unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
        let converted = clock.to_unix(monotonic_now());
        assert!(converted.abs_diff(now_unix) < 50_000_000, "{converted} vs {now_unix}");
    }
}
