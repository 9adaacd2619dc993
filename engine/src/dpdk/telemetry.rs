//! zcap's counters as DPDK telemetry commands (`/zcap/stats`, ...), so
//! `dpdk-telemetry.py` reads them live as it reads testpmd's.
//!
//! DPDK calls a C callback on its telemetry thread; the callback looks the
//! command up in a registry of Rust providers. DPDK 22.11 cannot unregister a
//! command, so [`clear`] empties the providers instead (the commands then
//! answer with an empty object).

use super::error::{DpdkError, Result};
use std::collections::HashMap;
use std::ffi::{c_char, c_int, CStr, CString};
use std::sync::{Mutex, OnceLock};

/// Produces a command's answer: (key, value) pairs.
pub type Provider = Box<dyn Fn() -> Vec<(String, u64)> + Send + Sync>;

fn providers() -> &'static Mutex<HashMap<String, Provider>> {
    static PROVIDERS: OnceLock<Mutex<HashMap<String, Provider>>> = OnceLock::new();
    PROVIDERS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Registers `command` (e.g. `/zcap/stats`) answering with `provider`'s pairs.
pub fn register(command: &str, help: &str, provider: Provider) -> Result<()> {
    let known = {
        let mut map = providers().lock().unwrap_or_else(|e| e.into_inner());
        map.insert(command.to_owned(), provider).is_some()
    };
    if known {
        return Ok(()); // already registered with DPDK in this process
    }
    let c_command = CString::new(command).expect("command without NUL");
    let c_help = CString::new(help).expect("help without NUL");
    // SAFETY: both strings are valid for the call (DPDK copies them); the
    // callback is a plain extern "C" fn that lives for the whole program.
    let ret = unsafe {
        dpdk_sys::rte_telemetry_register_cmd(c_command.as_ptr(), Some(answer), c_help.as_ptr())
    };
    if ret < 0 {
        return Err(DpdkError::new(
            format!("cannot register telemetry command {command}"),
            -ret,
        ));
    }
    Ok(())
}

/// Removes every provider (the commands stay, answering with nothing).
pub fn clear() {
    providers()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
}

extern "C" fn answer(
    command: *const c_char,
    _params: *const c_char,
    data: *mut dpdk_sys::rte_tel_data,
) -> c_int {
    // SAFETY: DPDK passes the NUL-terminated command it matched.
    let command = unsafe { CStr::from_ptr(command) }
        .to_string_lossy()
        .into_owned();
    // A panic must not unwind into DPDK's telemetry thread.
    let pairs = std::panic::catch_unwind(|| {
        let map = providers().lock().unwrap_or_else(|e| e.into_inner());
        map.get(&command).map(|p| p()).unwrap_or_default()
    })
    .unwrap_or_default();
    // SAFETY: `data` is the reply object DPDK handed us for this call.
    unsafe {
        dpdk_sys::rte_tel_data_start_dict(data);
        for (key, value) in pairs {
            if let Ok(key) = CString::new(key) {
                dpdk_sys::rte_tel_data_add_dict_u64(data, key.as_ptr(), value);
            }
        }
    }
    0
}
