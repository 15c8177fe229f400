//! The agent's source of trace and span identifiers: the kernel's random
//! generator (`getrandom`), drawn 4 KiB at a time — one system call per
//! span would cost more than building the span.

use std::cell::RefCell;

use pytrace_core::model::IdSource;

/// Random bytes from the kernel, through a per-thread pool.
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelRandom;

const POOL: usize = 4096;

thread_local! {
    /// Unused random bytes, and how many are left at the end of the pool.
    static POOL_BYTES: RefCell<([u8; POOL], usize)> = const { RefCell::new(([0; POOL], 0)) };
}

impl IdSource for KernelRandom {
    fn fill(&mut self, out: &mut [u8]) {
        POOL_BYTES.with_borrow_mut(|(pool, left)| {
            if *left < out.len() {
                // Should the kernel's generator fail (never seen), the pool's
                // old bytes serve again: the ids repeat rather than stop.
                let _ = getrandom::fill(pool);
                *left = POOL;
            }
            out.copy_from_slice(&pool[*left - out.len()..*left]);
            *left -= out.len();
        });
    }
}
