//! What each kernel program asks of the verifier, against pytrace's budgets:
//! its combined stack — the deepest chain of a program and the functions
//! and `bpf_loop` callbacks it calls, each frame rounded up to 32 bytes as
//! the verifier adds them (limit 512) — and the instructions the kernel's
//! verifier processed (limit 1,000,000), which the kernel reports after a
//! load. The stack is read from the linked program's instructions (every
//! access relative to the frame pointer), the verifier's own rule on the
//! same code: an upper bound of what any kernel counts, so a change that
//! creeps toward the limit fails on every machine, not only on the kernel
//! that rejects it first.
//!
//! [`stack_use`] is pure; [`object_stack_use`] links the embedded object's
//! programs with `aya-obj` first.

use std::collections::{BTreeSet, HashMap};

/// Most stack a program may use with its callees: 384 of the verifier's 512 bytes.
pub const STACK_BUDGET: u32 = 384;
/// The verifier's limit on a program's combined stack.
pub const STACK_LIMIT: u32 = 512;
/// Most instructions the verifier may process for one program: a fifth of its limit.
pub const INSTRUCTION_BUDGET: u32 = 200_000;
/// The verifier's limit on processed instructions (privileged programs).
pub const INSTRUCTION_LIMIT: u32 = 1_000_000;

/// One loaded program: what this kernel's verifier processed, and its stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramBudget {
    pub program: String,
    /// Instructions the verifier processed (None where the kernel does not say: before 5.16).
    pub instructions: Option<u32>,
    pub stack: StackUse,
}

impl ProgramBudget {
    /// Whether the program keeps within [`STACK_BUDGET`] and [`INSTRUCTION_BUDGET`].
    pub fn within_budget(&self) -> bool {
        self.stack.combined <= STACK_BUDGET && self.instructions.is_none_or(|n| n <= INSTRUCTION_BUDGET)
    }

    /// One row of the budget table: program, instructions, stack, verdict, chain.
    pub fn row(&self) -> String {
        let instructions = self.instructions.map_or_else(|| "?".to_owned(), |n| n.to_string());
        let verdict = if self.within_budget() { "ok" } else { "OVER" };
        format!(
            "{:<24} {:>9} {:>6}  {:<4}  {}",
            self.program,
            instructions,
            self.stack.combined,
            verdict,
            self.stack.describe()
        )
    }
}

/// The budget table's heading, aligned with [`ProgramBudget::row`].
pub fn heading() -> String {
    let chain = format!(
        "deepest chain (bytes per frame); budgets: {INSTRUCTION_BUDGET} insns, {STACK_BUDGET} of {STACK_LIMIT} bytes"
    );
    format!("{:<24} {:>9} {:>6}  {:<4}  {chain}", "program", "insns", "stack", "")
}

/// One BPF instruction, as far as the stack analysis reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

const FRAME_POINTER: u8 = 10;
const CLASS_LDX: u8 = 0x01;
const CLASS_ST: u8 = 0x02;
const CLASS_STX: u8 = 0x03;
/// `call` (BPF_JMP | BPF_CALL), with `src` = 1 for a call of a function of the program.
const CALL: u8 = 0x85;
const PSEUDO_CALL: u8 = 1;
/// `ld_imm64` (two slots), with `src` = 4 for a function's address (a callback).
const LOAD_IMM64: u8 = 0x18;
const PSEUDO_FUNC: u8 = 4;
/// `dst = src` and `dst += imm`, 64-bit.
const MOV64_REG: u8 = 0xbf;
const ADD64_IMM: u8 = 0x07;

/// One function of a program on its deepest stack chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub function: String,
    /// Bytes of stack the function itself uses.
    pub depth: u32,
}

/// A program's deepest chain of frames and what the verifier adds up for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackUse {
    pub combined: u32,
    pub chain: Vec<Frame>,
}

impl StackUse {
    /// The chain, each function with its own depth (`ssl_write_ex 40 → python::walk 88`).
    pub fn describe(&self) -> String {
        let frames: Vec<String> = self.chain.iter().map(|f| format!("{} {}", f.function, f.depth)).collect();
        frames.join(" → ")
    }
}

/// The combined stack of the program whose linked instructions are `insns`
/// (the program first, then every function it calls), naming functions with
/// `name_at` (instruction index → name).
pub fn stack_use(insns: &[Insn], name_at: impl Fn(usize) -> Option<String>) -> StackUse {
    let starts = function_starts(insns);
    let index_of = |insn: usize| starts.partition_point(|&start| start <= insn) - 1;
    let mut depths = vec![0u32; starts.len()];
    let mut callees: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); starts.len()];
    for (function, &start) in starts.iter().enumerate() {
        let end = starts.get(function + 1).copied().unwrap_or(insns.len());
        depths[function] = frame_depth(&insns[start..end]);
        for (at, insn) in insns.iter().enumerate().take(end).skip(start) {
            if let Some(target) = reference(at, insn).filter(|&target| target < insns.len()) {
                callees[function].insert(index_of(target));
            }
        }
    }
    let (combined, path) = deepest(0, &depths, &callees, &mut Vec::new());
    let chain = path
        .into_iter()
        .map(|function| Frame {
            function: name_at(starts[function]).unwrap_or_else(|| format!("function at {}", starts[function])),
            depth: depths[function],
        })
        .collect();
    StackUse { combined, chain }
}

/// Where each function of a linked program starts: the program itself, and
/// every target of a call or of a callback's address.
fn function_starts(insns: &[Insn]) -> Vec<usize> {
    let mut starts = BTreeSet::from([0]);
    for (at, insn) in insns.iter().enumerate() {
        if let Some(target) = reference(at, insn).filter(|&target| target < insns.len()) {
            starts.insert(target);
        }
    }
    starts.into_iter().collect()
}

/// The function `insn` at `at` calls, or whose address it loads.
fn reference(at: usize, insn: &Insn) -> Option<usize> {
    let calls = insn.code == CALL && insn.src == PSEUDO_CALL;
    let loads_function = insn.code == LOAD_IMM64 && insn.src == PSEUDO_FUNC;
    (calls || loads_function).then(|| (at as i64 + i64::from(insn.imm) + 1).max(0) as usize)
}

/// Bytes of stack one function uses: the deepest byte any instruction
/// reaches below the frame pointer, directly or through a register that
/// holds the frame pointer plus a constant (how pointers to the stack are
/// passed to helpers and callees).
fn frame_depth(insns: &[Insn]) -> u32 {
    let mut from_frame: [Option<i64>; 11] = [None; 11];
    from_frame[FRAME_POINTER as usize] = Some(0);
    let mut deepest = 0i64;
    let mut skip_next = false;
    for insn in insns {
        if std::mem::take(&mut skip_next) {
            continue;
        }
        let (dst, src) = (usize::from(insn.dst).min(10), usize::from(insn.src).min(10));
        let class = insn.code & 0x07;
        let base = match class {
            CLASS_LDX => Some(src),
            CLASS_ST | CLASS_STX => Some(dst),
            _ => None,
        };
        if let Some(offset) = base.and_then(|base| from_frame[base]) {
            deepest = deepest.max(-(offset + i64::from(insn.off)));
        }
        if dst == usize::from(FRAME_POINTER) {
            continue;
        }
        match insn.code {
            MOV64_REG => from_frame[dst] = from_frame[src],
            ADD64_IMM => {
                if let Some(offset) = from_frame[dst].as_mut() {
                    *offset += i64::from(insn.imm);
                    deepest = deepest.max(-*offset);
                }
            }
            LOAD_IMM64 => {
                from_frame[dst] = None;
                skip_next = true;
            }
            CALL => from_frame[..6].fill(None),
            _ if class != CLASS_ST && class != CLASS_STX && is_register_write(insn.code) => from_frame[dst] = None,
            _ => {}
        }
    }
    deepest.clamp(0, i64::from(u32::MAX)) as u32
}

/// Whether an instruction of class LD, LDX, ALU or ALU64 writes `dst` (jumps do not).
fn is_register_write(code: u8) -> bool {
    matches!(code & 0x07, 0x00 | CLASS_LDX | 0x04 | 0x07)
}

/// The deepest chain from `function`: the verifier's sum of frames, each
/// rounded up to 32 bytes (and at least 32).
fn deepest(
    function: usize,
    depths: &[u32],
    callees: &[BTreeSet<usize>],
    on_path: &mut Vec<usize>,
) -> (u32, Vec<usize>) {
    let own = depths[function].max(1).div_ceil(32) * 32;
    on_path.push(function);
    let mut best = (0, Vec::new());
    for &callee in &callees[function] {
        if on_path.contains(&callee) {
            continue; // the verifier refuses recursion; not a chain to add up
        }
        let below = deepest(callee, depths, callees, on_path);
        if below.0 > best.0 {
            best = below;
        }
    }
    on_path.pop();
    let mut chain = vec![function];
    chain.extend(best.1);
    (own + best.0, chain)
}

/// Why the kernel object's stack use could not be worked out.
#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    #[error("reading the kernel object: {0}")]
    Parse(#[from] aya_obj::ParseError),
    #[error("linking the kernel object: {0}")]
    Link(#[from] aya_obj::relocation::EbpfRelocationError),
}

/// The combined stack of every program in the kernel object `object`, by
/// program name.
pub fn object_stack_use(object: &[u8]) -> Result<HashMap<String, StackUse>, BudgetError> {
    let mut parsed = aya_obj::Object::parse(object)?;
    let originals: Vec<(String, Vec<Insn>)> =
        parsed.functions.values().map(|f| (f.name.clone(), f.instructions.iter().map(insn).collect())).collect();
    let text_sections = parsed.functions.keys().map(|(section, _)| *section).collect();
    parsed.relocate_calls(&text_sections)?;
    let mut uses = HashMap::new();
    for (name, program) in &parsed.programs {
        let Some(linked) = parsed.functions.get(&program.function_key()) else { continue };
        let insns: Vec<Insn> = linked.instructions.iter().map(insn).collect();
        let name_at = |start: usize| match start {
            0 => Some(name.clone()),
            _ => function_named_at(&insns, start, &originals),
        };
        uses.insert(name.clone(), stack_use(&insns, name_at));
    }
    Ok(uses)
}

fn insn(raw: &aya_obj::generated::bpf_insn) -> Insn {
    Insn { code: raw.code, dst: raw.dst_reg(), src: raw.src_reg(), off: raw.off, imm: raw.imm }
}

/// The name of the function whose code starts at `start` of a linked
/// program: the one whose instructions are there, immediates aside (linking
/// rewrites the calls' immediates, nothing else).
fn function_named_at(linked: &[Insn], start: usize, originals: &[(String, Vec<Insn>)]) -> Option<String> {
    // Linking marks a callback's address (`src` becomes 4) and rewrites calls' immediates.
    let same_shape = |a: &Insn, b: &Insn| {
        (a.code, a.dst, a.off) == (b.code, b.dst, b.off) && (a.src == b.src || a.code == LOAD_IMM64)
    };
    originals
        .iter()
        .find(|(_, code)| {
            linked
                .get(start..start + code.len())
                .is_some_and(|here| here.iter().zip(code).all(|(a, b)| same_shape(a, b)))
        })
        .map(|(name, _)| readable(name))
}

/// A Rust symbol as a path within the kernel crate (`python::walk`).
fn readable(symbol: &str) -> String {
    let path = format!("{:#}", rustc_demangle::demangle(symbol));
    path.strip_prefix("tracer::").map(str::to_owned).unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn { code, dst, src, off, imm }
    }
    /// `*(u64 *)(r10 + off) = r1`
    fn store(off: i16) -> Insn {
        op(0x7b, 10, 1, off, 0)
    }
    fn call(relative: i32) -> Insn {
        op(CALL, 0, PSEUDO_CALL, 0, relative)
    }
    fn exit() -> Insn {
        op(0x95, 0, 0, 0, 0)
    }
    fn names(start: usize) -> Option<String> {
        Some(format!("f{start}"))
    }

    #[test]
    fn adds_up_the_deepest_chain_as_the_verifier_does() {
        // f0 (40 bytes) calls f3 (8 bytes), which calls f6 (136 bytes).
        let insns = vec![store(-40), call(1), exit(), store(-8), call(1), exit(), store(-136), exit()];
        let used = stack_use(&insns, names);
        assert_eq!(used.chain.iter().map(|f| f.depth).collect::<Vec<_>>(), vec![40, 8, 136]);
        assert_eq!(used.combined, 64 + 32 + 160, "each frame rounded up to 32");
        assert_eq!(used.describe(), "f0 40 → f3 8 → f6 136");
    }

    #[test]
    fn a_pointer_to_the_stack_passed_on_counts_and_callbacks_are_followed() {
        // r2 = r10; r2 += -200; then the address of f5 loaded as a callback.
        let insns = vec![
            op(MOV64_REG, 2, 10, 0, 0),
            op(ADD64_IMM, 2, 0, 0, -200),
            op(LOAD_IMM64, 3, PSEUDO_FUNC, 0, 2),
            op(0, 0, 0, 0, 0),
            exit(),
            store(-100),
            exit(),
        ];
        let used = stack_use(&insns, names);
        assert_eq!(used.chain.iter().map(|f| f.depth).collect::<Vec<_>>(), vec![200, 100]);
        assert_eq!(used.combined, 224 + 128);
    }

    #[test]
    fn a_register_overwritten_no_longer_points_into_the_stack() {
        let insns = vec![op(MOV64_REG, 2, 10, 0, 0), op(0xb7, 2, 0, 0, 5), op(0x7b, 2, 1, -300, 0), exit()];
        assert_eq!(stack_use(&insns, names).combined, 32);
    }

    #[test]
    fn a_chain_over_the_budget_is_told_apart() {
        // The shape that stopped every command on 6.18: 0+176+16+144+112.
        let insns = vec![
            call(1),
            exit(),
            store(-176),
            call(1),
            exit(),
            store(-16),
            call(1),
            exit(),
            store(-144),
            call(1),
            exit(),
            store(-112),
            exit(),
        ];
        let used = stack_use(&insns, names);
        assert_eq!(used.combined, 32 + 192 + 32 + 160 + 128);
        assert!(used.combined > STACK_LIMIT, "what 6.18's verifier refused: {}", used.combined);
    }

    #[test]
    fn every_program_of_pytrace_fits_the_stack_budget() {
        let uses = object_stack_use(super::super::KERNEL_OBJECT).expect("the embedded object links");
        assert!(uses.len() > 30, "{} programs", uses.len());
        let mut over = Vec::new();
        for (program, used) in &uses {
            assert_eq!(used.chain[0].function, *program, "a chain starts at its program");
            if used.combined > STACK_BUDGET {
                over.push(format!("{program}: {} bytes ({})", used.combined, used.describe()));
            }
        }
        assert!(over.is_empty(), "over the stack budget of {STACK_BUDGET} bytes:\n{}", over.join("\n"));
    }
}
