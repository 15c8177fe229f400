//! Kernel timestamps (`CLOCK_MONOTONIC`, what `bpf_ktime_get_ns` returns)
//! to Unix-epoch nanoseconds for spans: the offset between the two clocks,
//! measured by the agent once at start, makes the conversion pure.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    /// `CLOCK_REALTIME - CLOCK_MONOTONIC`, in nanoseconds.
    offset_ns: i128,
}

impl Clock {
    pub const fn with_offset(offset_ns: i128) -> Self {
        Self { offset_ns }
    }

    pub fn to_unix(self, monotonic_ns: u64) -> u64 {
        u64::try_from(i128::from(monotonic_ns) + self.offset_ns).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_monotonic_to_unix_time() {
        assert_eq!(Clock::with_offset(1_000).to_unix(5), 1_005);
        assert_eq!(Clock::with_offset(-10).to_unix(5), 0, "never before the epoch");
    }
}
