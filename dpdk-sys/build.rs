//! Generates bindings to the installed DPDK and compiles the wrappers for its
//! static inline functions. Everything comes from `pkg-config libdpdk`.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const INSTALL_HINT: &str = "install DPDK's development files, libpcap and libclang: \
     `sudo bash scripts/setup.sh` (or `apt-get install libdpdk-dev libpcap-dev libclang-dev pkg-config`)";

/// Runs `pkg-config ARGS libdpdk` and returns its whitespace-separated words.
/// The raw words are needed: the pkg-config crate drops `-include rte_config.h`
/// and `-march=...`, without which DPDK's headers do not compile.
fn pkg_config(args: &[&str]) -> Vec<String> {
    let output = Command::new("pkg-config")
        .args(args)
        .arg("libdpdk")
        .output()
        .unwrap_or_else(|e| panic!("dpdk-sys: cannot run pkg-config ({e}); {INSTALL_HINT}"));
    if !output.status.success() {
        panic!(
            "dpdk-sys: DPDK not found by `pkg-config libdpdk` ({}); {INSTALL_HINT}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Pairs `-include FILE` into one word so each entry is one compiler argument.
fn compiler_args(words: Vec<String>) -> Vec<String> {
    let mut args = Vec::new();
    let mut iter = words.into_iter();
    while let Some(word) = iter.next() {
        if word == "-include" {
            if let Some(file) = iter.next() {
                args.push(format!("-include{file}"));
            }
        } else {
            args.push(word);
        }
    }
    args.push("-DALLOW_EXPERIMENTAL_API".to_owned());
    args
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    for file in ["wrapper.h", "helpers.h", "helpers.c", "build.rs"] {
        println!("cargo:rerun-if-changed={}", manifest.join(file).display());
    }
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let cflags = compiler_args(pkg_config(&["--cflags"]));
    let wrappers_c = out.join("static_wrappers");

    let bindings = bindgen::Builder::default()
        .header(manifest.join("wrapper.h").to_string_lossy())
        .clang_args(&cflags)
        .clang_arg(format!("-I{}", manifest.display()))
        .allowlist_function("rte_.*|zcap_.*")
        // libpcap's types only: zcap loads libpcap itself (engine/src/dpdk/libpcap.rs).
        .allowlist_type("rte_.*|pcap_t|pcap_pkthdr|bpf_program|bpf_insn|bpf_u_int32")
        .allowlist_var("RTE_.*|RING_F_.*|SOCKET_ID_ANY|LCORE_ID_ANY|rte_eth_fp_ops|DLT_EN10MB|PCAP_NETMASK_UNKNOWN|PCAP_ERRBUF_SIZE")
        // Packed structs with unaligned fields that bindgen cannot lay out.
        .opaque_type("rte_arp_hdr")
        .opaque_type("rte_arp_ipv4")
        .opaque_type("rte_gtp_psc_generic_hdr")
        .opaque_type("rte_l2tpv2_combined_msg_hdr")
        // RTE_BIT64-style constants (the mbuf offload flags) are macro calls.
        .clang_macro_fallback()
        .wrap_static_fns(true)
        .wrap_static_fns_path(&wrappers_c)
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .prepend_enum_name(false)
        .generate()
        .unwrap_or_else(|e| panic!("dpdk-sys: bindgen failed ({e}); {INSTALL_HINT}"));
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("dpdk-sys: cannot write bindings.rs");

    let mut build = cc::Build::new();
    build
        .file(wrappers_c.with_extension("c"))
        .file(manifest.join("helpers.c"))
        .include(&manifest)
        .opt_level(3)
        .warnings(false);
    for flag in &cflags {
        build.flag(flag);
    }
    build.compile("zcap_dpdk_wrappers");

    // Shared linking: the PMDs are plugins EAL loads from DPDK's plugin directory.
    for word in pkg_config(&["--libs"]) {
        if let Some(lib) = word.strip_prefix("-l") {
            println!("cargo:rustc-link-lib=dylib={lib}");
        } else if let Some(dir) = word.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
        } else if word.starts_with("-Wl,") {
            println!("cargo:rustc-link-arg={word}");
        }
    }
}
