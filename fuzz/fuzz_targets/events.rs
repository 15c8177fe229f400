//! Any bytes as a ring-buffer record: decoded or refused, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|record: &[u8]| {
    let _ = pytrace_core::events::decode(record);
});
