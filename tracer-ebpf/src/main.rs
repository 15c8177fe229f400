//! pytrace's kernel programs.
//!
//! Two capture paths feed one ring buffer with the same event layout:
//! - `tls`: uprobes on OpenSSL's `SSL_read`/`SSL_write` family copy the
//!   plaintext of TLS connections, keyed by `SSL*`;
//! - `sockets`: syscall tracepoints track the traced processes' TCP sockets
//!   and copy the bytes of plaintext ones, keyed by a socket id.
//!
//! `python` adds the Python stack at each request's first write, and
//! `functions` the calls of the Python functions chosen with
//! `--trace-function`; `processes` follows `pytrace run`'s command into its
//! children.
//!
//! Every program first checks that the caller is a traced process, so other
//! processes pay only the probe itself. Nothing is logged from here:
//! failures are counted in the per-CPU `STATS` array, which user space reports.
#![no_std]
#![no_main]

mod emit;
mod floor;
mod functions;
mod map_changes;
mod maps;
mod processes;
mod python;
mod sockets;
mod tls;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
