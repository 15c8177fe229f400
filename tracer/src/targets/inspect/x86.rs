//! Where in a block of x86-64 code a uprobe is cheap.
//!
//! The kernel emulates a few instructions at a uprobe — `push`, `nop`,
//! relative jumps, calls and conditional jumps — and executes any other one
//! out of line, which costs a second trap (≈10 µs here instead of ≈1 µs).
//! A probe meant to fire whenever a block starts can sit on the block's
//! first branch instead, provided no branch comes before it: every
//! execution of the block then passes it exactly once. A function that
//! only adjusts the stack and then calls another with its own arguments
//! (OpenSSL's `SSL_read_ex` → `ssl_read_internal`) can be probed, entry
//! and return, at that callee.

use iced_x86::{Code, Decoder, DecoderOptions, FlowControl};

/// Instructions looked at before giving up.
const MAX_INSTRUCTIONS: usize = 24;

/// The address of the first instruction of the block at `address` (whose
/// bytes are `code`) when it is a relative jump, call or conditional jump
/// reached by falling through from the start; `None` when another kind of
/// control flow comes first.
pub fn first_relative_branch(code: &[u8], address: u64) -> Option<u64> {
    let mut decoder = Decoder::with_ip(64, code, address, DecoderOptions::NONE);
    for _ in 0..MAX_INSTRUCTIONS {
        if !decoder.can_decode() {
            return None;
        }
        let instruction = decoder.decode();
        if instruction.code() == Code::INVALID {
            return None;
        }
        match instruction.flow_control() {
            FlowControl::Next => continue,
            FlowControl::ConditionalBranch | FlowControl::UnconditionalBranch | FlowControl::Call
                if instruction.is_jcc_short_or_near()
                    || instruction.is_jmp_short_or_near()
                    || instruction.is_call_near() =>
            {
                return Some(instruction.ip());
            }
            _ => return None,
        }
    }
    None
}

/// Bytes of the `endbr64` that `code` starts with (4), or 0. A probe
/// placed after it sees every call of the function all the same (the
/// instruction only marks a valid indirect-branch target), and lands on an
/// instruction the kernel can emulate (`push`) instead of one it must step
/// out of line (≈12 µs a hit).
pub fn endbr64_len(code: &[u8]) -> u64 {
    let mut decoder = Decoder::with_ip(64, code, 0, DecoderOptions::NONE);
    if decoder.can_decode() && decoder.decode().code() == Code::Endbr64 { 4 } else { 0 }
}

/// The function called by the function at `address` (whose bytes are
/// `code`) before anything else, with the caller's own arguments: only
/// `endbr64`, `nop`, `push` and `sub $imm, %rsp` may come before the direct
/// call — none of them touches an argument register.
pub fn leading_callee(code: &[u8], address: u64) -> Option<u64> {
    let mut decoder = Decoder::with_ip(64, code, address, DecoderOptions::NONE);
    for _ in 0..MAX_INSTRUCTIONS {
        if !decoder.can_decode() {
            return None;
        }
        let instruction = decoder.decode();
        match instruction.code() {
            Code::Call_rel32_64 => return Some(instruction.near_branch_target()),
            Code::Endbr64 | Code::Nopd | Code::Nop_rm16 | Code::Nop_rm32 | Code::Nop_rm64 | Code::Push_r64 => continue,
            Code::Sub_rm64_imm8 | Code::Sub_rm64_imm32 if instruction.op0_register() == iced_x86::Register::RSP => {
                continue;
            }
            _ => return None,
        }
    }
    None
}

/// Every direct call target among the first instructions of the function
/// at `address`, following the straight-line path (conditional jumps fall
/// through), up to its first return or indirect jump.
pub fn early_callees(code: &[u8], address: u64) -> Vec<u64> {
    let mut decoder = Decoder::with_ip(64, code, address, DecoderOptions::NONE);
    let mut callees = Vec::new();
    for _ in 0..MAX_INSTRUCTIONS {
        if !decoder.can_decode() {
            break;
        }
        let instruction = decoder.decode();
        match instruction.flow_control() {
            FlowControl::Call if instruction.is_call_near() => callees.push(instruction.near_branch_target()),
            FlowControl::Next | FlowControl::ConditionalBranch => {}
            _ => break,
        }
    }
    callees
}

/// Whether a uprobe on the instruction starting `code` is emulated by the
/// kernel (`push`, `nop`, a relative jump or call): the cheap path.
pub fn is_emulated(code: &[u8]) -> bool {
    let mut decoder = Decoder::with_ip(64, code, 0, DecoderOptions::NONE);
    if !decoder.can_decode() {
        return false;
    }
    let instruction = decoder.decode();
    matches!(
        instruction.code(),
        Code::Push_r64 | Code::Nopd | Code::Nop_rm16 | Code::Nop_rm32 | Code::Nop_rm64 | Code::Call_rel32_64
    ) || instruction.is_jcc_short_or_near()
        || instruction.is_jmp_short_or_near()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Debian's OpenSSL 3 `SSL_read_ex`: `sub $0x8,%rsp; call ssl_read_internal; …`.
    const SSL_READ_EX: [u8; 9] = [0x48, 0x83, 0xec, 0x08, 0xe8, 0xc7, 0xfd, 0xff, 0xff];

    #[test]
    fn steps_over_a_leading_endbr64() {
        // Debian sid's 3.15 `_PyFrame_ClearExceptCode`: endbr64; push %rbp.
        assert_eq!(endbr64_len(&[0xf3, 0x0f, 0x1e, 0xfa, 0x55]), 4);
        assert_eq!(endbr64_len(&[0x55, 0x48, 0x89, 0xe5]), 0);
        assert_eq!(endbr64_len(&[]), 0);
    }

    #[test]
    fn follows_a_function_that_starts_by_calling_another_with_its_arguments() {
        assert_eq!(leading_callee(&SSL_READ_EX, 0x354c0), Some(0x35290));
        // endbr64; push %rbx; call +0
        assert_eq!(leading_callee(&[0xf3, 0x0f, 0x1e, 0xfa, 0x53, 0xe8, 0, 0, 0, 0], 0x100), Some(0x10a));
    }

    #[test]
    fn does_not_follow_when_an_argument_register_may_change_first() {
        // sub $0x18,%rsp; movslq %edx,%rdx; call …  (SSL_read widens its int argument)
        let widening = [0x48, 0x83, 0xec, 0x18, 0x48, 0x63, 0xd2, 0xe8, 0, 0, 0, 0];
        assert_eq!(leading_callee(&widening, 0), None);
        // sub $0x8,%rbx is not a stack adjustment
        assert_eq!(leading_callee(&[0x48, 0x83, 0xeb, 0x08, 0xe8, 0, 0, 0, 0], 0), None);
        assert_eq!(leading_callee(&[0xc3], 0), None);
    }

    #[test]
    fn lists_the_calls_on_the_straight_line_path() {
        // test %edx,%edx; js +0x2f; mov %rsp,%rcx; movslq %edx,%rdx; call -0x1c3 (SSL_read); ret
        let ssl_read = [0x85, 0xd2, 0x78, 0x2f, 0x48, 0x89, 0xe1, 0x48, 0x63, 0xd2, 0xe8, 0x3d, 0xfe, 0xff, 0xff, 0xc3];
        assert_eq!(early_callees(&ssl_read, 0x35444), vec![0x35290]);
    }

    #[test]
    fn knows_which_first_instructions_the_kernel_emulates() {
        assert!(is_emulated(&[0x41, 0x55])); // push %r13
        assert!(is_emulated(&[0x53])); // push %rbx
        assert!(is_emulated(&[0x0f, 0x1f, 0x44, 0, 0])); // 5-byte nop
        assert!(!is_emulated(&SSL_READ_EX)); // sub $0x8,%rsp
        assert!(!is_emulated(&[0xf3, 0x0f, 0x1e, 0xfa])); // endbr64
    }

    #[test]
    fn finds_the_first_branch_after_straight_line_code() {
        // lea 0x2(%r10),%rax; mov (%rbx),%rdi; cmp %rax,0xa0(%rdi); je +0x10
        let code = [0x49, 0x8d, 0x42, 0x02, 0x48, 0x8b, 0x3b, 0x48, 0x39, 0x87, 0xa0, 0, 0, 0, 0x74, 0x10];
        assert_eq!(first_relative_branch(&code, 0x1000), Some(0x100e));
    }

    #[test]
    fn gives_up_at_indirect_jumps_returns_and_garbage() {
        // mov (%rbx),%rdi; jmp *%rax
        assert_eq!(first_relative_branch(&[0x48, 0x8b, 0x3b, 0xff, 0xe0], 0), None);
        // ret
        assert_eq!(first_relative_branch(&[0xc3], 0), None);
        // a truncated instruction
        assert_eq!(first_relative_branch(&[0x48], 0), None);
        // call rel32 is emulated too
        assert_eq!(first_relative_branch(&[0x90, 0xe8, 0, 0, 0, 0], 0x10), Some(0x11));
    }
}
