//! Rewrites of the eBPF programs DPDK 22.11's `rte_bpf_convert` makes from
//! classic BPF, around two DPDK bugs. Pure code over plain instructions, so
//! it is tested without EAL; `dpdk/bpf.rs` converts to and from DPDK's type.
//!
//! 1. Indirect byte and word loads (`ldb [x + k]`, as in `tcp[13] & 2 != 0`)
//!    come out indexed by A (r0) instead of X (r7).
//! 2. The x86 JIT encodes `jset dst, #imm` (`test r/m64, imm32`, opcode F7 /0)
//!    with a one-byte immediate whenever imm fits in an i8, so the CPU reads
//!    three bytes of the next instruction as the rest of the immediate: wrong
//!    verdicts, SIGSEGV or SIGILL (`not multicast`, `ether[0] & 1 = 0`).
//!    Every such test becomes `mov r8, #imm; jset dst, r8`, which the JIT
//!    encodes correctly; r8 is the converter's own scratch register, live only
//!    inside one classic instruction's expansion.

/// One eBPF instruction, unpacked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Insn {
    pub(crate) code: u8,
    pub(crate) dst: u8,
    pub(crate) src: u8,
    pub(crate) off: i16,
    pub(crate) imm: i32,
}

/// What [`rewrite`] changed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Rewritten {
    pub(crate) program: Vec<Insn>,
    /// Indirect loads re-indexed by X (bug 1).
    pub(crate) indirect_loads_fixed: usize,
    /// Bit tests against small constants moved to a register (bug 2).
    pub(crate) bit_tests_widened: usize,
}

const CLASS_MASK: u8 = 0x07;
const CLASS_LD: u8 = 0x00;
const CLASS_ALU64: u8 = 0x07;
const CLASS_JMP: u8 = 0x05;
const MODE_MASK: u8 = 0xe0;
const MODE_IND: u8 = 0x40;
const OP_MASK: u8 = 0xf0;
const OP_JSET: u8 = 0x40;
const OP_MOV: u8 = 0xb0;
const OP_CALL: u8 = 0x80;
const OP_EXIT: u8 = 0x90;
const SRC_X: u8 = 0x08;
/// The register `rte_bpf_convert` maps classic BPF's X to.
const REG_X: u8 = 7;
/// `rte_bpf_convert`'s scratch register (BPF_REG_TMP).
const REG_TMP: u8 = 8;

/// Applies both fixes. `None` when a jump would no longer fit its 16-bit
/// offset (or a jump's target is outside the program): the caller then keeps
/// DPDK's program and runs it in the interpreter.
pub(crate) fn rewrite(program: &[Insn]) -> Option<Rewritten> {
    let mut indirect_loads_fixed = 0;
    let mut fixed: Vec<Insn> = program.to_vec();
    for insn in &mut fixed {
        if is_indirect_load(insn) && insn.src != REG_X {
            insn.src = REG_X;
            indirect_loads_fixed += 1;
        }
    }
    let widened: Vec<bool> = fixed.iter().map(is_small_bit_test).collect();
    let bit_tests_widened = widened.iter().filter(|w| **w).count();
    // start[i]: where old instruction i's expansion begins in the new program.
    let mut start = Vec::with_capacity(fixed.len() + 1);
    let mut next = 0usize;
    for w in &widened {
        start.push(next);
        next += 1 + usize::from(*w);
    }
    start.push(next);
    let mut out = Vec::with_capacity(next);
    for (i, insn) in fixed.iter().enumerate() {
        let mut insn = *insn;
        if widened[i] {
            out.push(mov64_imm(REG_TMP, insn.imm));
            insn.code |= SRC_X;
            insn.src = REG_TMP;
            insn.imm = 0;
        }
        if has_jump_offset(&insn) {
            let target = i as i64 + 1 + i64::from(insn.off);
            let target = usize::try_from(target).ok().filter(|t| *t < fixed.len())?;
            let here = out.len() as i64;
            insn.off = i16::try_from(start[target] as i64 - here - 1).ok()?;
        }
        out.push(insn);
    }
    Some(Rewritten {
        program: out,
        indirect_loads_fixed,
        bit_tests_widened,
    })
}

fn is_indirect_load(insn: &Insn) -> bool {
    insn.code & CLASS_MASK == CLASS_LD && insn.code & MODE_MASK == MODE_IND
}

/// `jset dst, #imm` with an immediate the JIT would encode in one byte.
fn is_small_bit_test(insn: &Insn) -> bool {
    insn.code & CLASS_MASK == CLASS_JMP
        && insn.code & OP_MASK == OP_JSET
        && insn.code & SRC_X == 0
        && i8::try_from(insn.imm).is_ok()
}

/// Jumps of every kind but call and exit carry a pc-relative offset.
fn has_jump_offset(insn: &Insn) -> bool {
    insn.code & CLASS_MASK == CLASS_JMP && !matches!(insn.code & OP_MASK, OP_CALL | OP_EXIT)
}

/// `mov dst, #imm` in 64 bits: sign-extends imm as `jset #imm` does.
fn mov64_imm(dst: u8, imm: i32) -> Insn {
    Insn {
        code: CLASS_ALU64 | OP_MOV,
        dst,
        imm,
        ..Insn::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JEQ_K: u8 = 0x15;
    const JSET_K: u8 = 0x45;
    const JSET_X: u8 = 0x4d;
    const JA: u8 = 0x05;
    const EXIT: u8 = 0x95;
    const LDB_ABS: u8 = 0x30;

    fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            dst,
            src,
            off,
            imm,
        }
    }

    /// Runs a tiny subset of eBPF (ldb abs, jeq/jset #k and x, ja, mov,
    /// exit) on `packet`, so a rewritten program can be checked to decide as
    /// the original did.
    fn run(program: &[Insn], packet: &[u8]) -> i64 {
        let mut reg = [0i64; 11];
        let mut pc = 0usize;
        loop {
            let i = program[pc];
            pc += 1;
            let operand = |reg: &[i64; 11]| {
                if i.code & SRC_X != 0 {
                    reg[i.src as usize]
                } else {
                    i64::from(i.imm)
                }
            };
            match i.code {
                LDB_ABS => reg[0] = i64::from(packet[i.imm as usize]),
                0xb4 => reg[i.dst as usize] = i64::from(i.imm as u32),
                0xb7 => reg[i.dst as usize] = i64::from(i.imm),
                EXIT => return reg[0],
                JA => pc = (pc as i64 + i64::from(i.off)) as usize,
                JSET_K | JSET_X | JEQ_K => {
                    let taken = if i.code == JEQ_K {
                        reg[i.dst as usize] == operand(&reg)
                    } else {
                        reg[i.dst as usize] & operand(&reg) != 0
                    };
                    if taken {
                        pc = (pc as i64 + i64::from(i.off)) as usize;
                    }
                }
                other => panic!("opcode {other:#x} not in the test subset"),
            }
        }
    }

    /// `ether[0] & 1 != 0 or ether[1] = 7`, jumping over both tests' widenings.
    fn two_bit_tests() -> Vec<Insn> {
        vec![
            insn(LDB_ABS, 0, 0, 0, 0),
            insn(JSET_K, 0, 0, 4, 1), // -> accept
            insn(LDB_ABS, 0, 0, 0, 1),
            insn(JEQ_K, 0, 0, 2, 7), // -> accept
            insn(JSET_K, 0, 0, 1, 0x40),
            insn(JA, 0, 0, 2, 0), // -> reject
            insn(0xb4, 0, 0, 0, 1),
            insn(EXIT, 0, 0, 0, 0),
            insn(0xb4, 0, 0, 0, 0),
            insn(EXIT, 0, 0, 0, 0),
        ]
    }

    #[test]
    fn small_bit_tests_move_to_the_scratch_register() {
        let rewritten = rewrite(&two_bit_tests()).unwrap();
        assert_eq!(rewritten.bit_tests_widened, 2);
        assert_eq!(rewritten.program.len(), 12);
        assert!(rewritten.program.iter().all(|i| !is_small_bit_test(i)));
        assert_eq!(rewritten.program[1], mov64_imm(REG_TMP, 1));
        assert_eq!(rewritten.program[2], insn(JSET_X, 0, REG_TMP, 5, 0));
    }

    #[test]
    fn rewritten_programs_decide_as_the_originals() {
        let original = two_bit_tests();
        let rewritten = rewrite(&original).unwrap().program;
        for b0 in 0..=255u8 {
            for b1 in [0u8, 7, 0x40, 0x41, 0xff] {
                let packet = [b0, b1];
                assert_eq!(
                    run(&original, &packet),
                    run(&rewritten, &packet),
                    "packet {packet:?}"
                );
            }
        }
    }

    #[test]
    fn large_and_register_bit_tests_are_left_alone() {
        let program = vec![
            insn(JSET_K, 0, 0, 0, 0x80),
            insn(JSET_K, 0, 0, 0, 0x1fff),
            insn(JSET_X, 0, REG_X, 0, 0),
            insn(EXIT, 0, 0, 0, 0),
        ];
        let rewritten = rewrite(&program).unwrap();
        assert_eq!(rewritten.bit_tests_widened, 0);
        assert_eq!(rewritten.program, program);
    }

    #[test]
    fn backward_jumps_and_negative_small_constants_are_handled() {
        // A backward ja over a widened test: the offset grows by one.
        let program = vec![
            insn(JSET_K, 0, 0, 0, -1),
            insn(JA, 0, 0, -2, 0),
            insn(EXIT, 0, 0, 0, 0),
        ];
        let out = rewrite(&program).unwrap().program;
        assert_eq!(out[0], mov64_imm(REG_TMP, -1));
        assert_eq!(out[2], insn(JA, 0, 0, -3, 0), "lands on the mov");
    }

    #[test]
    fn indirect_loads_are_indexed_by_x() {
        // ldb [r0 + k] (0x50), ldw [r0 + k] (0x40), ldh [r7 + k] (0x48), ldb [k], add
        let program = vec![
            insn(0x50, 0, 0, 0, 0),
            insn(0x40, 0, 0, 0, 0),
            insn(0x48, 0, 7, 0, 0),
            insn(LDB_ABS, 0, 0, 0, 0),
            insn(0x07, 0, 3, 0, 0),
        ];
        let rewritten = rewrite(&program).unwrap();
        assert_eq!(rewritten.indirect_loads_fixed, 2);
        let srcs: Vec<u8> = rewritten.program.iter().map(|i| i.src).collect();
        assert_eq!(srcs, vec![7, 7, 7, 0, 3]);
    }

    #[test]
    fn a_jump_out_of_the_program_is_refused() {
        let program = vec![insn(JA, 0, 0, 5, 0), insn(EXIT, 0, 0, 0, 0)];
        assert_eq!(rewrite(&program), None);
    }
}
