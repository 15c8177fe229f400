//! Where `--trace-function`'s probes go in a CPython build.
//!
//! - 3.8–3.10: every Python call runs `_PyEval_EvalFrameDefault`: an entry
//!   and a return probe on it.
//! - 3.11+: calls between Python functions stay inside the interpreter loop,
//!   so the start of a call is the `RESUME` instruction its frame executes
//!   first. Its handlers' addresses are read from the loop's computed-goto
//!   dispatch table (`opcode_targets`, a static of `ceval.c`) in the live
//!   process, for `RESUME` and its specialised and instrumented forms, and
//!   checked to be code, and not the shared "unknown opcode" handler. The
//!   probe sits on the handler's first branch when only straight-line code
//!   precedes it: the kernel emulates branches, while the handler's first
//!   instruction would be stepped out of line at ten times the cost. The end of a call is
//!   when its frame is cleared: `_PyFrame_Clear` (3.11),
//!   `_PyFrame_ClearExceptCode` (3.12+).
//! - Builds without local symbols (Debian's stripped `python3.11`): the
//!   dispatch table is found by its shape in the process's data,
//!   and calls end at the return instructions' handlers instead (a call
//!   that raises is then noticed when its frame is reused).

use std::ops::{Range, RangeInclusive};

use pytrace_core::python::memory::ReadMemory;

use super::python_context::PythonContext;
pub use crate::probes::sites::{CallEnds, CallProbes};
use crate::targets::inspect::elf::Elf;
use crate::targets::inspect::x86;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CallProbeError {
    #[error("{0} has no symbol {1} (a stripped build?)")]
    MissingSymbol(String, &'static str),
    #[error("cannot read the interpreter's dispatch table from the process")]
    Unreadable,
    #[error("the interpreter's dispatch table has no handler for opcode {0}")]
    UnexpectedTable(usize),
    #[error("no dispatch table found in {0}'s data (an unusual build?)")]
    NoTable(String),
    #[error("CPython 3.{0} is not supported for --trace-function")]
    UnsupportedVersion(u32),
}

/// Opcodes whose handler starts a call's frame, per minor version:
/// `RESUME`, then its quickened (`RESUME_QUICK`, `RESUME_CHECK`) and
/// instrumented forms, as numbered by each version's `opcode` and
/// `_opcode_metadata` modules.
fn resume_opcodes(minor: u32) -> Option<&'static [usize]> {
    match minor {
        11 => Some(&[151, 150]),
        12 => Some(&[151, 240]),
        13 => Some(&[149, 207, 236]),
        14 => Some(&[128, 196, 245]),
        // `RESUME_CHECK_JIT` (201) too: the handler runs in builds without a JIT.
        15 => Some(&[128, 200, 201, 244]),
        _ => None,
    }
}

/// Opcodes that return from a frame: `RETURN_VALUE`, and since 3.12
/// `RETURN_CONST` and both instrumented forms.
fn return_opcodes(minor: u32) -> Option<&'static [usize]> {
    match minor {
        11 => Some(&[83]),
        12 => Some(&[83, 121, 242, 247]),
        13 => Some(&[36, 103, 239, 240]),
        // 3.14 dropped `RETURN_CONST` (a constant is loaded, then returned).
        14 => Some(&[35, 246]),
        15 => Some(&[33, 245]),
        _ => None,
    }
}

/// Runs of opcode numbers that have no handler of their own (they share the
/// "unknown opcode" one), per minor version, read from each version's
/// dispatch table: a table found by its shape must have exactly these edges,
/// which pins where it starts.
fn unassigned_opcodes(minor: u32) -> Option<&'static [RangeInclusive<usize>]> {
    match minor {
        11 => Some(&[181..=254]),
        12 => Some(&[169..=170, 177..=236, 255..=255]),
        13 => Some(&[119..=148, 223..=235, 255..=255]),
        14 => Some(&[121..=127, 212..=233]),
        15 => Some(&[120..=127, 219..=232]),
        _ => None,
    }
}

/// Entries in the dispatch table.
const TABLE_ENTRIES: usize = 256;

pub fn locate(context: &PythonContext) -> Result<CallProbes, CallProbeError> {
    let object = context.object_path.clone();
    let elf = Elf::open(&context.object_host_path).map_err(|_| CallProbeError::MissingSymbol(object.clone(), "ELF"))?;
    let symbol =
        |name: &'static str| elf.local_symbol(name).ok_or_else(|| CallProbeError::MissingSymbol(object.clone(), name));
    let eval = symbol("_PyEval_EvalFrameDefault")?;
    let minor = context.layout.minor;
    if minor <= 10 {
        let offset = eval
            .file_offset
            .ok_or_else(|| CallProbeError::MissingSymbol(object.clone(), "_PyEval_EvalFrameDefault"))?;
        return Ok(CallProbes::EvalFrame { offset, frame_is_first_argument: minor == 8 });
    }
    let (Some(resumes), Some(returns), Some(unassigned)) =
        (resume_opcodes(minor), return_opcodes(minor), unassigned_opcodes(minor))
    else {
        return Err(CallProbeError::UnsupportedVersion(minor));
    };
    let code = code_ranges(&elf);
    let table = match elf.local_symbol("opcode_targets") {
        Some(table) => read_table(context, table.address).ok_or(CallProbeError::Unreadable)?,
        None => {
            let shape = TableShape { assigned: [resumes, returns].concat(), unassigned };
            find_table(context, &elf, &code, &shape).ok_or(CallProbeError::NoTable(object.clone()))?
        }
    };
    let unknown = unknown_opcode_handler(&table);
    let handlers = |opcodes: &[usize], cheapest: bool| -> Result<Vec<u64>, CallProbeError> {
        let mut offsets = Vec::new();
        for &opcode in opcodes {
            let mut target = table[opcode];
            if Some(target) == unknown || !code.iter().any(|range| range.contains(&target)) {
                return Err(CallProbeError::UnexpectedTable(opcode));
            }
            if cheapest && let Some(offset) = elf.file_offset(target) {
                target = x86::first_relative_branch(elf.bytes_at(offset, 128), target).unwrap_or(target);
            }
            let offset = elf.file_offset(target).ok_or(CallProbeError::UnexpectedTable(opcode))?;
            if !offsets.contains(&offset) {
                offsets.push(offset);
            }
        }
        Ok(offsets)
    };
    let clear_name = if minor == 11 { "_PyFrame_Clear" } else { "_PyFrame_ClearExceptCode" };
    let end = match elf.local_symbol(clear_name).and_then(|clear| clear.file_offset) {
        // Past an `endbr64` (CET builds such as Debian's): its first
        // instruction would be stepped out of line on every call.
        Some(offset) => CallEnds::FrameClear(offset + x86::endbr64_len(elf.bytes_at(offset, 4))),
        // 3.11's return handler tests for a tracing function before it pops
        // the frame, and 3.14's for a tagged return value, so their first
        // branch still sees the returning frame as current; 3.12 and 3.13
        // pop it without a test first.
        None => CallEnds::ReturnHandlers(handlers(returns, minor == 11 || minor >= 14)?),
    };
    Ok(CallProbes::Resume { handlers: handlers(resumes, true)?, end })
}

/// The dispatch table at virtual address `table`, as addresses in the object.
fn read_table(context: &PythonContext, table: u64) -> Option<Vec<u64>> {
    let bias = context.load_bias;
    let bytes = context.memory.read(bias.wrapping_add(table), TABLE_ENTRIES * 8)?;
    Some(words(&bytes).map(|address| address.wrapping_sub(bias)).collect())
}

fn words(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    bytes.chunks_exact(8).map(|word| u64::from_le_bytes(word.try_into().unwrap_or_default()))
}

fn code_ranges(elf: &Elf) -> Vec<Range<u64>> {
    elf.load_segments().into_iter().filter(|s| s.executable).map(|s| s.range).collect()
}

/// What the dispatch table of one version must look like.
struct TableShape {
    /// Opcodes with a handler of their own (the ones probed).
    assigned: Vec<usize>,
    /// Runs of opcodes that share the "unknown opcode" handler.
    unassigned: &'static [RangeInclusive<usize>],
}

/// Finds the dispatch table by its shape in the object's data: 256
/// addresses of code, the shared "unknown opcode" handler exactly at the
/// version's unassigned opcodes, a handler of its own for every probed one
/// (a `switch` over 256 values compiles to a table of code addresses too;
/// so can two tables lie back to back). The most varied such table wins.
/// The interpreter loop's own code cannot tell where it is: GCC splits the
/// loop into hot and cold parts away from its symbol.
fn find_table(context: &PythonContext, elf: &Elf, code: &[Range<u64>], shape: &TableShape) -> Option<Vec<u64>> {
    let bias = context.load_bias;
    let mut best: Option<(usize, Vec<u64>)> = None;
    for segment in elf.load_segments().into_iter().filter(|s| !s.executable) {
        let mut data = Vec::new();
        let mut address = segment.range.start & !7;
        while address < segment.range.end {
            let len = (segment.range.end - address).min(1 << 20) as usize;
            data.extend(words(&context.memory.read(bias.wrapping_add(address), len)?));
            address += len as u64;
        }
        let addresses: Vec<u64> = data.iter().map(|word| word.wrapping_sub(bias)).collect();
        for run in code_address_runs(&addresses, code) {
            for start in run.start..=run.end - TABLE_ENTRIES {
                let table = &addresses[start..start + TABLE_ENTRIES];
                let Some(distinct) = dispatch_table_handlers(table, shape) else { continue };
                if best.as_ref().is_none_or(|(most, _)| distinct > *most) {
                    best = Some((distinct, table.to_vec()));
                }
            }
        }
    }
    best.map(|(_, table)| table)
}

/// Index ranges of `addresses` whose every word is an address of code, at
/// least a table long.
fn code_address_runs(addresses: &[u64], code: &[Range<u64>]) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut start = 0;
    for (index, address) in addresses.iter().chain([&0]).enumerate() {
        if code.iter().any(|range| range.contains(address)) {
            continue;
        }
        if index - start >= TABLE_ENTRIES {
            runs.push(start..index);
        }
        start = index + 1;
    }
    runs
}

/// The number of distinct handlers, when `table` has the dispatch table's
/// `shape`: the shared handler at both ends of every unassigned run and
/// nowhere right beside them, and a handler of its own for every assigned
/// opcode given.
fn dispatch_table_handlers(table: &[u64], shape: &TableShape) -> Option<usize> {
    let unknown = unknown_opcode_handler(table)?;
    let is_unknown = |opcode: usize| table.get(opcode).is_some_and(|handler| *handler == unknown);
    let edges_fit = shape.unassigned.iter().all(|run| {
        let (first, last) = (*run.start(), *run.end());
        is_unknown(first)
            && is_unknown(last)
            && (first == 0 || !is_unknown(first - 1))
            && (last + 1 >= TABLE_ENTRIES || !is_unknown(last + 1))
    });
    if !edges_fit || shape.assigned.iter().any(|&opcode| is_unknown(opcode)) {
        return None;
    }
    Some(table.iter().collect::<std::collections::HashSet<_>>().len())
}

/// The handler most opcodes share (unassigned opcode numbers), if any.
fn unknown_opcode_handler(table: &[u64]) -> Option<u64> {
    let mut counts: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    for handler in table {
        *counts.entry(*handler).or_default() += 1;
    }
    let (handler, count) = counts.into_iter().max_by_key(|(handler, count)| (*count, *handler))?;
    (count >= 8).then_some(handler)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table shaped like 3.14's: `unknown` for its unassigned opcodes, a
    /// handler of its own for the rest.
    fn dispatch_table_3_14(base: u64, unknown: u64) -> Vec<u64> {
        let unassigned = unassigned_opcodes(14).unwrap();
        (0..TABLE_ENTRIES)
            .map(|op| if unassigned.iter().any(|run| run.contains(&op)) { unknown } else { base + op as u64 * 16 })
            .collect()
    }

    fn shape_3_14() -> TableShape {
        TableShape {
            assigned: [resume_opcodes(14).unwrap(), return_opcodes(14).unwrap()].concat(),
            unassigned: unassigned_opcodes(14).unwrap(),
        }
    }

    #[test]
    fn finds_the_table_among_its_neighbours() {
        // Data: a pointer to code, a 256-entry `switch` table, then the
        // dispatch table, back to back; then a word that is not code.
        let code: &[Range<u64>] = &[Range { start: 0x1000, end: 0x9000 }];
        let mut words = vec![0x1008];
        words.extend((0..TABLE_ENTRIES as u64).map(|i| 0x2000 + (i % 40) * 8));
        let start = words.len();
        words.extend(dispatch_table_3_14(0x4000, 0x3ff0));
        words.push(7);
        let runs = code_address_runs(&words, code);
        assert_eq!(runs, vec![0..start + TABLE_ENTRIES]);
        let shape = shape_3_14();
        let found: Vec<usize> = (0..=runs[0].end - TABLE_ENTRIES)
            .filter(|&s| dispatch_table_handlers(&words[s..s + TABLE_ENTRIES], &shape).is_some())
            .collect();
        assert_eq!(found, [start], "only the aligned window has the shape");
    }

    #[test]
    fn a_table_whose_probed_opcode_is_unassigned_is_not_the_one() {
        let mut table = dispatch_table_3_14(0x4000, 0x3ff0);
        assert!(dispatch_table_handlers(&table, &shape_3_14()).is_some());
        table[128] = 0x3ff0;
        assert_eq!(dispatch_table_handlers(&table, &shape_3_14()), None, "RESUME shares the unknown handler");
    }
}
