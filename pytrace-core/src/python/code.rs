//! Code objects read from a traced process — qualified name, file, first
//! line, line table — and the three line-table formats that turn a frame's
//! position into a line number (pure functions, tested with tables produced
//! by the real interpreters).

use std::sync::Arc;

use super::layout::{Layout, LineTable};
use super::memory::ReadMemory;

/// Names are shared with every frame resolved from this code object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeInfo {
    pub qualname: Arc<str>,
    pub filename: Arc<str>,
    pub firstlineno: u32,
    pub line_table: Vec<u8>,
}

/// Longest string or byte table read from the process.
const MAX_READ: u64 = 64 * 1024;

/// The address of a field `offset` bytes into an object at `base`; a
/// pointer read from the process can be anything, so none past the end of
/// the address space.
fn at(base: u64, offset: u64) -> Option<u64> {
    base.checked_add(offset)
}

pub fn read_code(memory: &(impl ReadMemory + ?Sized), layout: &Layout, code: u64) -> Option<CodeInfo> {
    let c = &layout.code;
    let name_ptr = memory.u64(at(code, c.qualname.unwrap_or(c.name))?)?;
    Some(CodeInfo {
        qualname: read_str(memory, layout, name_ptr)?.into(),
        filename: read_str(memory, layout, memory.u64(at(code, c.filename)?)?)?.into(),
        firstlineno: memory.u32(at(code, c.firstlineno)?)?,
        line_table: read_bytes(memory, layout, memory.u64(at(code, c.linetable)?)?).unwrap_or_default(),
    })
}

/// A `str` object: compact ASCII or compact 1/2/4-byte kinds.
fn read_str(memory: &(impl ReadMemory + ?Sized), layout: &Layout, object: u64) -> Option<String> {
    let objects = &layout.objects;
    let length = memory.u64(at(object, objects.unicode_length)?)?.min(MAX_READ);
    let state = memory.u32(at(object, objects.unicode_state)?)?;
    let kind = (state >> 2) & 7;
    let compact = (state >> 5) & 1 == 1;
    let ascii = (state >> 6) & 1 == 1;
    if !compact {
        return None;
    }
    let data = if ascii { objects.unicode_ascii_data } else { objects.unicode_compact_data };
    let bytes = memory.read(at(object, data)?, (length * u64::from(kind.max(1))) as usize)?;
    Some(match kind {
        2 => String::from_utf16_lossy(
            &bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect::<Vec<_>>(),
        ),
        4 => {
            bytes.chunks_exact(4).filter_map(|c| char::from_u32(u32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect()
        }
        _ => bytes.iter().map(|b| *b as char).collect(),
    })
}

/// A `bytes` object's contents.
fn read_bytes(memory: &(impl ReadMemory + ?Sized), layout: &Layout, object: u64) -> Option<Vec<u8>> {
    let size = memory.u64(at(object, layout.objects.bytes_size)?)?.min(MAX_READ);
    memory.read(at(object, layout.objects.bytes_data)?, size as usize)
}

/// The line a frame is at, from its raw position (`f_lasti`, or an
/// instruction pointer for 3.11+).
pub fn line_of(layout: &Layout, info: &CodeInfo, code: u64, position: u64) -> Option<u32> {
    match layout.line_table {
        LineTable::Lnotab => Some(lnotab_line(&info.line_table, info.firstlineno, position)),
        LineTable::Linetable310 => linetable310_line(&info.line_table, info.firstlineno, position.saturating_mul(2)),
        LineTable::Locations => {
            let start = at(code, layout.code.code_adaptive?)?;
            let index = position.checked_sub(start)? / 2;
            locations_line(&info.line_table, info.firstlineno, index)
        }
    }
}

/// 3.8–3.9 `co_lnotab`: (address delta, signed line delta) byte pairs; `addr` in bytes.
pub fn lnotab_line(table: &[u8], firstlineno: u32, addr: u64) -> u32 {
    let mut line = i64::from(firstlineno);
    let mut at = 0u64;
    for pair in table.chunks_exact(2) {
        at += u64::from(pair[0]);
        if at > addr {
            break;
        }
        line += i64::from(pair[1] as i8);
    }
    line.max(0) as u32
}

/// 3.10 `co_linetable`: (byte length, signed line delta; -128 = no line) pairs.
pub fn linetable310_line(table: &[u8], firstlineno: u32, addr: u64) -> Option<u32> {
    let mut line = i64::from(firstlineno);
    let mut start = 0u64;
    for pair in table.chunks_exact(2) {
        let end = start + u64::from(pair[0]);
        let delta = pair[1] as i8;
        if delta != -128 {
            line += i64::from(delta);
        }
        if (start..end).contains(&addr) {
            return (delta != -128).then_some(line.max(0) as u32);
        }
        start = end;
    }
    None
}

/// 3.11+ location table (Objects/locations.md); `index` in code units.
pub fn locations_line(table: &[u8], firstlineno: u32, index: u64) -> Option<u32> {
    let mut line = i64::from(firstlineno);
    let mut at = 0u64;
    let mut bytes = table.iter().copied().peekable();
    while let Some(first) = bytes.next() {
        if first & 0x80 == 0 {
            return None;
        }
        let code = (first >> 3) & 15;
        let length = u64::from(first & 7) + 1;
        let (delta, has_line) = match code {
            15 => (0, false),
            14 => {
                let delta = read_svarint(&mut bytes)?;
                for _ in 0..3 {
                    read_varint(&mut bytes)?;
                }
                (delta, true)
            }
            13 => (read_svarint(&mut bytes)?, true),
            10..=12 => {
                bytes.next()?;
                bytes.next()?;
                (i64::from(code) - 10, true)
            }
            _ => {
                bytes.next()?;
                (0, true)
            }
        };
        line = line.saturating_add(delta);
        if (at..at + length).contains(&index) {
            return has_line.then_some(line.max(0) as u32);
        }
        at += length;
        // Continuation bytes never have the top bit set; skip to the next entry.
        while bytes.peek().is_some_and(|b| b & 0x80 == 0) {
            bytes.next();
        }
    }
    None
}

fn read_varint(bytes: &mut impl Iterator<Item = u8>) -> Option<u64> {
    let mut value = 0u64;
    let mut shift = 0;
    loop {
        let byte = bytes.next()?;
        value |= u64::from(byte & 63) << shift;
        shift += 6;
        if byte & 64 == 0 || shift > 60 {
            return Some(value);
        }
    }
}

fn read_svarint(bytes: &mut impl Iterator<Item = u8>) -> Option<i64> {
    let value = read_varint(bytes)?;
    Some(if value & 1 == 1 { -((value >> 1) as i64) } else { (value >> 1) as i64 })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing (`code_objects`): a name pointer near the end of the
    /// address space overflowed when a field offset was added to it.
    #[test]
    fn a_pointer_at_the_end_of_the_address_space_reads_nothing() {
        let layout = crate::python::layout::table(12).expect("3.12");
        let mut memory = crate::python::memory::synthetic::SyntheticMemory::default();
        let code = 0x1000;
        for offset in (0..512).step_by(8) {
            memory.put_u64(code + offset, u64::MAX - 8);
        }
        assert_eq!(read_code(&memory, &layout, code), None);
        assert_eq!(read_code(&memory, &layout, u64::MAX - 4), None);
    }

    /// Found by fuzzing too: a position near `u64::MAX` (3.10 doubles it),
    /// and line deltas that add up past `i64::MAX`.
    #[test]
    fn extreme_positions_and_line_deltas_give_an_answer_not_a_panic() {
        assert_eq!(linetable310_line(&[8, 1], 1, u64::MAX.saturating_mul(2)), None);
        // Entries of code 13 (one signed varint line delta) of about 2^59 each.
        let entry = [0x80 | (13 << 3), 0x7e, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x3f];
        let table: Vec<u8> = entry.iter().copied().cycle().take(entry.len() * 64).collect();
        assert!(locations_line(&table, 1, 63).is_some());
    }

    // Tables compiled by the real interpreters for:
    //   def f(a):            # 1
    //       x = a + 1        # 2
    //       y = [x,          # 3
    //            x * 2]      # 4
    //       return g(x,      # 5
    //                y)      # 6
    // and the lines their own co_lines() / dis.findlinestarts() report.

    #[test]
    fn lnotab_lines_match_python_3_8() {
        let table = [0, 1, 8, 1, 2, 1, 6, 255, 4, 2, 4, 1, 2, 255];
        let starts = [(0, 2), (8, 3), (10, 4), (16, 3), (20, 5), (24, 6), (26, 5)];
        for (addr, line) in starts {
            assert_eq!(lnotab_line(&table, 1, addr), line, "byte {addr}");
            assert_eq!(lnotab_line(&table, 1, addr + 1), line, "byte {}", addr + 1);
        }
    }

    #[test]
    fn linetable_lines_match_python_3_10() {
        let table = [8, 1, 2, 1, 6, 1, 4, 255, 4, 2, 2, 1, 4, 255];
        for (start, end, line) in
            [(0, 8, 2), (8, 10, 3), (10, 16, 4), (16, 20, 3), (20, 24, 5), (24, 26, 6), (26, 30, 5)]
        {
            for addr in start..end {
                assert_eq!(linetable310_line(&table, 1, addr), Some(line), "byte {addr}");
            }
        }
        assert_eq!(linetable310_line(&table, 1, 30), None);
        assert_eq!(linetable310_line(&[2, 0x80], 10, 0), None, "no line");
    }

    #[test]
    fn location_table_lines_match_python_3_12_and_3_13() {
        let table = [
            128, 0, 216, 8, 9, 136, 65, 137, 5, 128, 65, 216, 9, 10, 216, 9, 10, 136, 81, 137, 21, 240, 3, 1, 9, 16,
            128, 65, 228, 11, 12, 136, 81, 216, 13, 14, 243, 3, 1, 12, 16, 240, 0, 1, 5, 16,
        ];
        let starts = [(0, 1), (1, 2), (6, 3), (7, 4), (11, 3), (13, 5), (19, 6), (20, 5)];
        for window in starts.windows(2) {
            let ((from, line), (to, _)) = (window[0], window[1]);
            for index in from..to {
                assert_eq!(locations_line(&table, 1, index), Some(line), "unit {index}");
            }
        }
        assert_eq!(locations_line(&table, 1, 24), Some(5));
        assert_eq!(locations_line(&table, 1, 25), None, "past the end");
        assert_eq!(locations_line(&[0xf8], 10, 0), None, "no location");
    }
}
