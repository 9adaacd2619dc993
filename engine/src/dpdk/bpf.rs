//! Packet filters: tcpdump expressions compiled by libpcap to classic BPF,
//! converted to eBPF by DPDK (`rte_bpf_convert`), loaded with `rte_bpf_load`
//! and run through the JIT where there is one (the interpreter otherwise).

use super::error::{DpdkError, Result};
use super::libpcap::{libpcap, Libpcap, IMAGE_BUFFER};
use super::mbuf::Mbuf;
use crate::filter_rewrite::{rewrite, Insn};
use std::ffi::{c_void, CStr, CString};
use std::path::Path;
use std::ptr::NonNull;

/// A filter compiled by libpcap: classic BPF, no DPDK needed yet.
pub struct ClassicFilter {
    program: dpdk_sys::bpf_program,
    expression: String,
    libpcap: &'static Libpcap,
}

// SAFETY: the program is a plain heap array owned by this value, and the
// libpcap it holds is a table of function pointers, shared read-only.
unsafe impl Send for ClassicFilter {}

impl ClassicFilter {
    /// Compiles a pcap-filter expression for Ethernet frames of `snaplen`
    /// bytes. The error is libpcap's own message.
    pub fn compile(expression: &str, snaplen: u32) -> std::result::Result<Self, String> {
        Self::compile_for(expression, snaplen, dpdk_sys::DLT_EN10MB as i32)
    }

    /// Compiles for packets of libpcap link type `dlt` (a `DLT_*`, as
    /// [`capture_file_dlt`] reads it).
    pub fn compile_for(
        expression: &str,
        snaplen: u32,
        dlt: i32,
    ) -> std::result::Result<Self, String> {
        let c_expr =
            CString::new(expression).map_err(|_| "filter contains a NUL byte".to_owned())?;
        let lib = libpcap()?;
        // SAFETY: pcap_open_dead makes a capture-less handle for compiling only;
        // every pointer passed is valid for the call; the handle is closed here.
        unsafe {
            let pcap = (lib.open_dead)(dlt, snaplen.min(i32::MAX as u32) as i32);
            if pcap.is_null() {
                return Err("libpcap cannot create a handle to compile with".into());
            }
            let mut program = dpdk_sys::bpf_program::default();
            let ret = (lib.compile)(
                pcap,
                &mut program,
                c_expr.as_ptr(),
                1,
                dpdk_sys::PCAP_NETMASK_UNKNOWN,
            );
            let result = if ret < 0 {
                Err(CStr::from_ptr((lib.geterr)(pcap))
                    .to_string_lossy()
                    .into_owned())
            } else {
                Ok(ClassicFilter {
                    program,
                    expression: expression.to_owned(),
                    libpcap: lib,
                })
            };
            (lib.close)(pcap);
            result
        }
    }

    /// The program as `tcpdump -d` prints it, one instruction a line.
    pub fn dump(&self) -> Vec<String> {
        let _only_reader = IMAGE_BUFFER.lock().unwrap_or_else(|e| e.into_inner());
        (0..self.program.bf_len as usize)
            .map(|i| {
                // SAFETY: i < bf_len indexes the compiled program; bpf_image returns
                // its static buffer, copied out at once under IMAGE_BUFFER's lock.
                unsafe {
                    let insn = self.program.bf_insns.add(i);
                    CStr::from_ptr((self.libpcap.image)(insn, i as i32))
                        .to_string_lossy()
                        .into_owned()
                }
            })
            .collect()
    }

    /// libpcap's own verdict on one packet (`pcap_offline_filter`): the
    /// reference every loaded [`Filter`] must agree with. `data` is what was
    /// captured, `wire_len` the packet's length on the wire.
    pub fn matches(&self, data: &[u8], wire_len: u32) -> bool {
        let header = dpdk_sys::pcap_pkthdr {
            caplen: data.len() as u32,
            len: wire_len,
            ..Default::default()
        };
        // SAFETY: the program is valid; header and data live for the call and
        // caplen is data's length.
        unsafe { (self.libpcap.offline_filter)(&self.program, &header, data.as_ptr()) != 0 }
    }

    /// Converts and loads the program into DPDK (EAL must be up), to run in
    /// the JIT where that is safe (see `filter_rewrite`).
    pub fn load(&self) -> Result<Filter> {
        self.load_with(Engine::Jit)
    }

    /// As [`ClassicFilter::load`], choosing the engine; the interpreter is
    /// DPDK's bounds-checked reference, used where the JIT is not safe.
    pub fn load_with(&self, engine: Engine) -> Result<Filter> {
        let failed = |what: &str| {
            DpdkError::from_rte_errno(format!("cannot {what} the filter {:?}", self.expression))
        };
        // SAFETY: the program is valid; rte_bpf_convert returns an rte_malloc'ed
        // parameter block with nb_ins instructions after it, freed below.
        let prm = unsafe { dpdk_sys::rte_bpf_convert(&self.program) };
        if prm.is_null() {
            return Err(failed("convert for DPDK"));
        }
        // SAFETY: prm is the valid block just returned; its instructions are
        // copied out before it is freed, and never read again after.
        let (converted, mut prm_copy) = unsafe {
            let ins = std::slice::from_raw_parts((*prm).ins, (*prm).nb_ins as usize);
            let converted: Vec<Insn> = ins.iter().map(unpack).collect();
            let prm_copy = *prm;
            dpdk_sys::rte_free(prm.cast::<c_void>());
            (converted, prm_copy)
        };
        let (program, jit_safe) = match rewrite(&converted) {
            Some(r) => (r.program, r.indirect_loads_fixed == 0),
            // Not seen with libpcap's programs: DPDK's own, interpreted.
            None => (converted, false),
        };
        let packed: Vec<dpdk_sys::ebpf_insn> = program.iter().map(pack).collect();
        prm_copy.ins = packed.as_ptr();
        prm_copy.nb_ins = packed.len() as u32;
        // SAFETY: prm_copy points at `packed`, alive for the call; rte_bpf_load
        // copies the instructions into the program it returns.
        let bpf = NonNull::new(unsafe { dpdk_sys::rte_bpf_load(&prm_copy) })
            .ok_or_else(|| failed("load"))?;
        let mut jit = dpdk_sys::rte_bpf_jit::default();
        // SAFETY: bpf is a loaded program; jit is written by the call.
        unsafe { dpdk_sys::rte_bpf_get_jit(bpf.as_ptr(), &mut jit) };
        // DPDK 22.11's x86 JIT also crashes on some of the byte/word indirect
        // loads that rewrite() re-indexes (e.g. `tcp[13] & 3 != 0`): those
        // programs run in the interpreter, which handles them correctly.
        let jit = match engine {
            Engine::Jit if jit_safe => jit.func,
            _ => None,
        };
        Ok(Filter { bpf, jit })
    }
}

/// Which of DPDK's engines runs a loaded filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// Native code where the program is known safe there, else the interpreter.
    Jit,
    /// DPDK's interpreter, always.
    Interpreter,
}

fn unpack(insn: &dpdk_sys::ebpf_insn) -> Insn {
    Insn {
        code: insn.code,
        dst: insn.dst_reg(),
        src: insn.src_reg(),
        off: insn.off,
        imm: insn.imm,
    }
}

fn pack(insn: &Insn) -> dpdk_sys::ebpf_insn {
    let mut packed = dpdk_sys::ebpf_insn {
        code: insn.code,
        off: insn.off,
        imm: insn.imm,
        ..Default::default()
    };
    packed.set_dst_reg(insn.dst);
    packed.set_src_reg(insn.src);
    packed
}

/// The libpcap link type (`DLT_*`) of a pcap or pcapng file, as libpcap
/// maps the file's `LINKTYPE_*`: what `tcpdump -r` compiles its filter for.
pub fn capture_file_dlt(path: &Path) -> std::result::Result<i32, String> {
    let c_path = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| "a file name with a NUL byte".to_owned())?;
    let lib = libpcap()?;
    let mut errbuf = [0 as std::ffi::c_char; dpdk_sys::PCAP_ERRBUF_SIZE as usize];
    // SAFETY: both buffers live for the call; a non-NULL handle is closed here.
    unsafe {
        let pcap = (lib.open_offline)(c_path.as_ptr(), errbuf.as_mut_ptr());
        if pcap.is_null() {
            return Err(CStr::from_ptr(errbuf.as_ptr())
                .to_string_lossy()
                .into_owned());
        }
        let dlt = (lib.datalink)(pcap);
        (lib.close)(pcap);
        Ok(dlt)
    }
}

impl Drop for ClassicFilter {
    fn drop(&mut self) {
        // SAFETY: the program came from pcap_compile and is freed once.
        unsafe { (self.libpcap.freecode)(&mut self.program) }
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
    /// True when the program runs as native code (else DPDK's interpreter).
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
