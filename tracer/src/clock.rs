//! Conversion of kernel timestamps (`CLOCK_MONOTONIC`, what `bpf_ktime_get_ns`
//! returns) to Unix-epoch nanoseconds for spans. The offset between the two
//! clocks is measured once at start; `to_unix` itself is pure.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    /// `CLOCK_REALTIME - CLOCK_MONOTONIC`, in nanoseconds.
    offset_ns: i128,
}

impl Clock {
    pub const fn with_offset(offset_ns: i128) -> Self {
        Self { offset_ns }
    }

    /// Measures the current offset between the realtime and monotonic clocks.
    pub fn measure() -> Self {
        let mono_before = read(libc::CLOCK_MONOTONIC);
        let real = read(libc::CLOCK_REALTIME);
        let mono_after = read(libc::CLOCK_MONOTONIC);
        Self::with_offset(real - (mono_before + mono_after) / 2)
    }

    pub fn to_unix(self, monotonic_ns: u64) -> u64 {
        u64::try_from(i128::from(monotonic_ns) + self.offset_ns).unwrap_or(0)
    }

    /// Current `CLOCK_MONOTONIC` in nanoseconds.
    pub fn monotonic_now() -> u64 {
        u64::try_from(read(libc::CLOCK_MONOTONIC)).unwrap_or(0)
    }
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
    fn converts_monotonic_to_unix_time() {
        let clock = Clock::measure();
        let now_unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
        let converted = clock.to_unix(Clock::monotonic_now());
        assert!(converted.abs_diff(now_unix) < 50_000_000, "{converted} vs {now_unix}");
        assert_eq!(Clock::with_offset(-10).to_unix(5), 0);
    }
}
