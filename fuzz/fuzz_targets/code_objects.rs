//! The CPython code-object reader and the three line-table formats over
//! synthetic memory: whatever a (changing, hostile or half-initialised)
//! process holds, reading a code object and finding a frame's line return
//! something or nothing — never a panic, never an unbounded read.
#![no_main]

use pytrace_core::python::memory::ReadMemory;

/// The fuzz input laid out in memory at [`BASE`]; every other address is unreadable.
struct Input<'a>(&'a [u8]);

const BASE: u64 = 0x1000;

impl ReadMemory for Input<'_> {
    fn read(&self, address: u64, len: usize) -> Option<Vec<u8>> {
        assert!(len <= 1 << 20, "a read of {len} bytes is not bounded");
        let start = usize::try_from(address.checked_sub(BASE)?).ok()?;
        self.0.get(start..start.checked_add(len)?).map(<[u8]>::to_vec)
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&choice, memory)) = data.split_first() else { return };
    let Some(layout) = pytrace_core::python::layout::table(8 + u32::from(choice % 6)) else { return };
    let memory = Input(memory);
    let code = BASE + u64::from(choice >> 3) * 8;
    if let Some(info) = pytrace_core::python::code::read_code(&memory, &layout, code) {
        for position in [0, 1, 2, 7, 64, 4096, u64::from(choice) * 3, u64::MAX / 2, u64::MAX] {
            let _ = pytrace_core::python::code::line_of(&layout, &info, code, position);
        }
    }
});
