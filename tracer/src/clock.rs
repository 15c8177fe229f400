//! The agent's readings of the system clocks: the offset between realtime
//! and monotonic time (the engine's [`Clock`] converts with it) and the
//! monotonic time now, which the engine is handed rather than reading.

use pytrace_core::model::Clock;

/// Measures the current offset between the realtime and monotonic clocks.
pub fn measure() -> Clock {
    let mono_before = read(libc::CLOCK_MONOTONIC);
    let real = read(libc::CLOCK_REALTIME);
    let mono_after = read(libc::CLOCK_MONOTONIC);
    Clock::with_offset(real - (mono_before + mono_after) / 2)
}

/// Current `CLOCK_MONOTONIC` in nanoseconds.
pub fn monotonic_now() -> u64 {
    u64::try_from(read(libc::CLOCK_MONOTONIC)).unwrap_or(0)
}

fn read(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; these clocks always exist on Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
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
