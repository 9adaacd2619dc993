//! Packet filters: tcpdump expressions compiled by libpcap to classic BPF,
//! converted to eBPF by DPDK (`rte_bpf_convert`), loaded with `rte_bpf_load`
//! and run through the JIT where there is one (the interpreter otherwise).

use super::error::{DpdkError, Result};
use super::mbuf::Mbuf;
use std::ffi::{c_void, CStr, CString};
use std::ptr::NonNull;

/// A filter compiled by libpcap: classic BPF, no DPDK needed yet.
pub struct ClassicFilter {
    program: dpdk_sys::bpf_program,
    expression: String,
}

// SAFETY: the program is a plain heap array owned by this value.
unsafe impl Send for ClassicFilter {}

impl ClassicFilter {
    /// Compiles a pcap-filter expression for Ethernet frames of `snaplen`
    /// bytes. The error is libpcap's own message.
    pub fn compile(expression: &str, snaplen: u32) -> std::result::Result<Self, String> {
        let c_expr =
            CString::new(expression).map_err(|_| "filter contains a NUL byte".to_owned())?;
        // SAFETY: pcap_open_dead makes a capture-less handle for compiling only;
        // every pointer passed is valid for the call; the handle is closed here.
        unsafe {
            let pcap = dpdk_sys::pcap_open_dead(
                dpdk_sys::DLT_EN10MB as i32,
                snaplen.min(i32::MAX as u32) as i32,
            );
            if pcap.is_null() {
                return Err("libpcap cannot create a handle to compile with".into());
            }
            let mut program = dpdk_sys::bpf_program::default();
            let ret = dpdk_sys::pcap_compile(
                pcap,
                &mut program,
                c_expr.as_ptr(),
                1,
                dpdk_sys::PCAP_NETMASK_UNKNOWN,
            );
            let result = if ret < 0 {
                Err(CStr::from_ptr(dpdk_sys::pcap_geterr(pcap))
                    .to_string_lossy()
                    .into_owned())
            } else {
                Ok(ClassicFilter {
                    program,
                    expression: expression.to_owned(),
                })
            };
            dpdk_sys::pcap_close(pcap);
            result
        }
    }

    /// The expression this was compiled from.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The program as `tcpdump -d` prints it, one instruction a line.
    pub fn dump(&self) -> Vec<String> {
        (0..self.program.bf_len as usize)
            .map(|i| {
                // SAFETY: i < bf_len indexes the compiled program; bpf_image returns
                // a static buffer that is copied out at once.
                unsafe {
                    let insn = self.program.bf_insns.add(i);
                    CStr::from_ptr(dpdk_sys::bpf_image(insn, i as i32))
                        .to_string_lossy()
                        .into_owned()
                }
            })
            .collect()
    }

    /// Converts and loads the program into DPDK (EAL must be up).
    pub fn load(&self) -> Result<Filter> {
        // SAFETY: the program is valid; rte_bpf_convert returns an rte_malloc'ed
        // parameter block (freed below) and rte_bpf_load copies what it needs.
        unsafe {
            let prm = dpdk_sys::rte_bpf_convert(&self.program);
            if prm.is_null() {
                return Err(DpdkError::from_rte_errno(format!(
                    "cannot convert the filter {:?} for DPDK",
                    self.expression
                )));
            }
            let program = std::slice::from_raw_parts_mut(
                (*prm).ins as *mut dpdk_sys::ebpf_insn,
                (*prm).nb_ins as usize,
            );
            let rewritten = fix_indirect_loads(program);
            let bpf = dpdk_sys::rte_bpf_load(prm);
            dpdk_sys::rte_free(prm.cast::<c_void>());
            let bpf = NonNull::new(bpf).ok_or_else(|| {
                DpdkError::from_rte_errno(format!("cannot load the filter {:?}", self.expression))
            })?;
            let mut jit = dpdk_sys::rte_bpf_jit::default();
            dpdk_sys::rte_bpf_get_jit(bpf.as_ptr(), &mut jit);
            // DPDK 22.11's x86 JIT crashes on some of the byte/word indirect loads
            // we had to rewrite (e.g. `tcp[13] & 3 != 0`): those programs run in
            // DPDK's interpreter, which handles them correctly. Programs DPDK
            // converted right (port, host, net filters) keep the JIT.
            let jit = if rewritten { None } else { jit.func };
            Ok(Filter { bpf, jit })
        }
    }
}

/// eBPF register that `rte_bpf_convert` maps classic BPF's X register to.
const EBPF_REG_X: u8 = 7;
const BPF_CLASS_MASK: u8 = 0x07;
const BPF_CLASS_LD: u8 = 0x00;
const BPF_MODE_MASK: u8 = 0xe0;
const BPF_MODE_IND: u8 = 0x40;

/// Works around a DPDK 22.11 `rte_bpf_convert` bug: indirect byte and word
/// loads (`ldb [x + k]`, `ldw [x + k]`, as in `tcp[13] & 2 != 0`) come out
/// indexed by A (r0) instead of X (r7); only halfword ones are right. Classic
/// BPF indexes every indirect load by X, so every converted one must use r7.
/// Returns whether any instruction had to be changed.
fn fix_indirect_loads(program: &mut [dpdk_sys::ebpf_insn]) -> bool {
    let mut rewritten = false;
    for insn in program {
        let indirect_load =
            insn.code & BPF_CLASS_MASK == BPF_CLASS_LD && insn.code & BPF_MODE_MASK == BPF_MODE_IND;
        if indirect_load && insn.src_reg() != EBPF_REG_X {
            insn.set_src_reg(EBPF_REG_X);
            rewritten = true;
        }
    }
    rewritten
}

impl Drop for ClassicFilter {
    fn drop(&mut self) {
        // SAFETY: the program came from pcap_compile and is freed once.
        unsafe { dpdk_sys::pcap_freecode(&mut self.program) }
    }
}

/// A loaded eBPF filter, shared read-only by every poll loop.
pub struct Filter {
    bpf: NonNull<dpdk_sys::rte_bpf>,
    jit: Option<unsafe extern "C" fn(*mut c_void) -> u64>,
}

// SAFETY: running a loaded rte_bpf program does not modify it; DPDK allows
// concurrent execution from many lcores.
unsafe impl Send for Filter {}
// SAFETY: as above.
unsafe impl Sync for Filter {}

impl Filter {
    /// True when the program runs as native code.
    pub fn is_jit(&self) -> bool {
        self.jit.is_some()
    }

    /// True when the packet passes (cBPF returns its snap length; 0 rejects).
    #[inline(always)]
    pub fn accepts(&self, m: &Mbuf) -> bool {
        let ctx = m.as_ptr().cast::<c_void>();
        // SAFETY: the program was loaded for an rte_mbuf argument and only reads
        // the packet through DPDK's bounds-checked mbuf loads.
        unsafe {
            match self.jit {
                Some(func) => func(ctx) != 0,
                None => dpdk_sys::rte_bpf_exec(self.bpf.as_ptr(), ctx) != 0,
            }
        }
    }
}

impl Drop for Filter {
    fn drop(&mut self) {
        // SAFETY: loaded by `load`, destroyed once; no poll loop runs it any more
        // (they hold an Arc to it).
        unsafe { dpdk_sys::rte_bpf_destroy(self.bpf.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insn(code: u8, src: u8) -> dpdk_sys::ebpf_insn {
        let mut i = dpdk_sys::ebpf_insn {
            code,
            ..Default::default()
        };
        i.set_src_reg(src);
        i
    }

    #[test]
    fn indirect_loads_are_indexed_by_x() {
        // ldb [r0 + k] (0x50), ldw [r0 + k] (0x40), ldh [r7 + k] (0x48), ldb [k] (0x30), add (0x07)
        let mut program = [
            insn(0x50, 0),
            insn(0x40, 0),
            insn(0x48, 7),
            insn(0x30, 0),
            insn(0x07, 3),
        ];
        assert!(fix_indirect_loads(&mut program));
        let srcs: Vec<u8> = program.iter().map(|i| i.src_reg()).collect();
        assert_eq!(srcs, vec![7, 7, 7, 0, 3]);
        let mut already_right = [insn(0x48, 7), insn(0x30, 0), insn(0x07, 3)];
        assert!(!fix_indirect_loads(&mut already_right));
    }
}
