//! libpcap, loaded (`dlopen`) the first time it is needed rather than
//! when the program starts. Debian's libpcap brings D-Bus, systemd, gcrypt
//! and five more libraries, about 4 MB that every cold `zcap-extract` read
//! from disk before `main`; a search without an expression now never reads
//! them. (`zcap` and `zcap-bench` load libpcap at start all the same:
//! DPDK's librte_bpf needs it.)

use dpdk_sys::{bpf_insn, bpf_program, bpf_u_int32, pcap_pkthdr, pcap_t};
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::{Mutex, OnceLock};

/// The names it is tried under: Debian's and Ubuntu's, then other
/// distributions', then the development link.
const NAMES: [&CStr; 3] = [c"libpcap.so.0.8", c"libpcap.so.1", c"libpcap.so"];

/// The libpcap functions zcap calls, with their C signatures.
pub(super) struct Libpcap {
    pub(super) open_dead: unsafe extern "C" fn(c_int, c_int) -> *mut pcap_t,
    pub(super) compile: unsafe extern "C" fn(
        *mut pcap_t,
        *mut bpf_program,
        *const c_char,
        c_int,
        bpf_u_int32,
    ) -> c_int,
    pub(super) geterr: unsafe extern "C" fn(*mut pcap_t) -> *mut c_char,
    pub(super) close: unsafe extern "C" fn(*mut pcap_t),
    pub(super) freecode: unsafe extern "C" fn(*mut bpf_program),
    pub(super) offline_filter:
        unsafe extern "C" fn(*const bpf_program, *const pcap_pkthdr, *const u8) -> c_int,
    pub(super) open_offline: unsafe extern "C" fn(*const c_char, *mut c_char) -> *mut pcap_t,
    pub(super) datalink: unsafe extern "C" fn(*mut pcap_t) -> c_int,
    pub(super) image: unsafe extern "C" fn(*const bpf_insn, c_int) -> *mut c_char,
}

static LIBPCAP: OnceLock<Result<Libpcap, String>> = OnceLock::new();

/// Held while `bpf_image`'s answer is read: it is one static buffer in
/// libpcap, which a call on another thread would overwrite.
pub(super) static IMAGE_BUFFER: Mutex<()> = Mutex::new(());

/// libpcap, loaded by the first caller (others wait for it); the error
/// says what could not be loaded.
pub(super) fn libpcap() -> Result<&'static Libpcap, String> {
    LIBPCAP.get_or_init(load).as_ref().map_err(Clone::clone)
}

/// Loads libpcap now if it is not yet: one line saying why not.
pub(crate) fn load_libpcap() -> Result<(), String> {
    libpcap().map(|_| ())
}

fn load() -> Result<Libpcap, String> {
    let mut why = Vec::new();
    let handle = NAMES.iter().find_map(|name| {
        // SAFETY: name is NUL-terminated; the handle is kept for the life of
        // the process (never dlclose'd), so the symbols below stay valid.
        let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            why.push(dl_error());
        }
        (!handle.is_null()).then_some(handle)
    });
    let Some(handle) = handle else {
        return Err(format!(
            "cannot load libpcap ({}); install it (Debian: apt-get install libpcap0.8)",
            why.join("; ")
        ));
    };
    // SAFETY: each type is the C signature of the function it names, as
    // pcap/pcap.h and pcap/bpf.h declare it.
    unsafe {
        Ok(Libpcap {
            open_dead: symbol(handle, c"pcap_open_dead")?,
            compile: symbol(handle, c"pcap_compile")?,
            geterr: symbol(handle, c"pcap_geterr")?,
            close: symbol(handle, c"pcap_close")?,
            freecode: symbol(handle, c"pcap_freecode")?,
            offline_filter: symbol(handle, c"pcap_offline_filter")?,
            open_offline: symbol(handle, c"pcap_open_offline")?,
            datalink: symbol(handle, c"pcap_datalink")?,
            image: symbol(handle, c"bpf_image")?,
        })
    }
}

/// The function `name` in the library `handle`, as an `F`.
///
/// # Safety
/// `F` must be the function pointer type of `name`'s C signature.
unsafe fn symbol<F: Copy>(handle: *mut c_void, name: &CStr) -> Result<F, String> {
    const { assert!(size_of::<F>() == size_of::<*mut c_void>()) };
    // SAFETY: handle is a live dlopen handle and name is NUL-terminated.
    let address = unsafe { libc::dlsym(handle, name.as_ptr()) };
    if address.is_null() {
        return Err(format!(
            "libpcap has no {} ({})",
            name.to_string_lossy(),
            dl_error()
        ));
    }
    // SAFETY: a non-null code address of the size of F, which the caller
    // says is the function's pointer type.
    Ok(unsafe { std::mem::transmute_copy::<*mut c_void, F>(&address) })
}

/// `dlerror`'s message, or a stand-in when it has none.
fn dl_error() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated string that stays valid
    // until the next dl call on this thread; it is copied at once.
    unsafe {
        let message = libc::dlerror();
        if message.is_null() {
            return "not found".to_owned();
        }
        CStr::from_ptr(message).to_string_lossy().into_owned()
    }
}
