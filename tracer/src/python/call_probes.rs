//! Where `--trace-function`'s probes go in a CPython build.
//!
//! - 3.8–3.10: every Python call runs `_PyEval_EvalFrameDefault`: an entry
//!   and a return probe on it.
//! - 3.11+: calls between Python functions stay inside the interpreter loop,
//!   so the start of a call is the `RESUME` instruction its frame executes
//!   first. Its handlers' addresses are read from the loop's computed-goto
//!   dispatch table (`opcode_targets`, a static of `ceval.c`) in the live
//!   process, for `RESUME` and its specialised and instrumented forms, and
//!   checked to lie inside `_PyEval_EvalFrameDefault`. The end of a call is
//!   when its frame is cleared: `_PyFrame_Clear` (3.11),
//!   `_PyFrame_ClearExceptCode` (3.12+).

use super::discover::PythonContext;
use crate::target::elf::Elf;

/// Probe sites as file offsets in the interpreter object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallProbes {
    /// 3.8–3.10: `_PyEval_EvalFrameDefault`, whose frame argument is the
    /// first on 3.8 and the second since 3.9.
    EvalFrame { offset: u64, frame_is_first_argument: bool },
    /// 3.11+: the `RESUME` handlers, and the frame-clearing function.
    Resume { handlers: Vec<u64>, frame_clear: u64 },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CallProbeError {
    #[error("{0} has no symbol {1} (a stripped build?)")]
    MissingSymbol(String, &'static str),
    #[error("cannot read the interpreter's dispatch table from the process")]
    Unreadable,
    #[error("the interpreter's dispatch table does not point into its loop for RESUME (opcode {0})")]
    UnexpectedTable(usize),
    #[error("CPython 3.{0} is not supported for --trace-function")]
    UnsupportedVersion(u32),
}

/// Opcodes whose handler starts a call's frame, per minor version:
/// `RESUME`, then its quickened (`RESUME_QUICK`, `RESUME_CHECK`) and
/// instrumented forms, as numbered by each version's `opcode` module.
fn resume_opcodes(minor: u32) -> Option<&'static [usize]> {
    match minor {
        11 => Some(&[151, 150]),
        12 => Some(&[151, 240]),
        13 => Some(&[149, 207, 236]),
        _ => None,
    }
}

pub fn locate(context: &PythonContext) -> Result<CallProbes, CallProbeError> {
    let object = context.object_path.clone();
    let elf = Elf::open(&context.object_host_path).map_err(|_| CallProbeError::MissingSymbol(object.clone(), "ELF"))?;
    let symbol = |name: &'static str| elf.local_symbol(name).ok_or_else(|| CallProbeError::MissingSymbol(object.clone(), name));
    let eval = symbol("_PyEval_EvalFrameDefault")?;
    let minor = context.layout.minor;
    if minor <= 10 {
        let offset = eval.file_offset.ok_or_else(|| CallProbeError::MissingSymbol(object.clone(), "_PyEval_EvalFrameDefault"))?;
        return Ok(CallProbes::EvalFrame { offset, frame_is_first_argument: minor == 8 });
    }
    let opcodes = resume_opcodes(minor).ok_or(CallProbeError::UnsupportedVersion(minor))?;
    let table = symbol("opcode_targets")?;
    let clear_name = if minor == 11 { "_PyFrame_Clear" } else { "_PyFrame_ClearExceptCode" };
    let frame_clear = symbol(clear_name)?.file_offset.ok_or_else(|| CallProbeError::MissingSymbol(object.clone(), clear_name))?;
    let bias = context.load_bias;
    let loop_range = eval.address..eval.address + eval.size.max(1);
    let mut handlers = Vec::new();
    for &opcode in opcodes {
        let slot = bias.wrapping_add(table.address) + 8 * opcode as u64;
        let target = context.memory.u64(slot).ok_or(CallProbeError::Unreadable)?.wrapping_sub(bias);
        if !loop_range.contains(&target) {
            return Err(CallProbeError::UnexpectedTable(opcode));
        }
        let offset = elf.file_offset(target).ok_or(CallProbeError::UnexpectedTable(opcode))?;
        if !handlers.contains(&offset) {
            handlers.push(offset);
        }
    }
    Ok(CallProbes::Resume { handlers, frame_clear })
}
