#!/usr/bin/env bash
# Packs the release binaries with the DPDK pieces they need (shared libraries,
# the net_null / vdev / mempool plugins, dpdk-testpmd and dpdk-dumpcap) into
# one folder, for benchmarking on a machine without Debian's DPDK, e.g.
#
#   bash scripts/device-bundle.sh                 # -> target/device-bundle
#   # on the other machine, as root, from the repository root:
#   source target/device-bundle/env.sh && bash scripts/bench-scaling.sh
#
# glibc itself is not packed: the other machine's (same or newer) is used.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-target/device-bundle}
PMDS=/usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0
LIBDIR=/usr/lib/x86_64-linux-gnu

cargo build --release --quiet --bins
rm -rf "$OUT"
mkdir -p "$OUT/bin" "$OUT/lib"

cp target/release/zcap target/release/zcap-bench "$(command -v dpdk-testpmd)" \
    "$(command -v dpdk-dumpcap)" "$OUT/bin/"
# Without their line tables: the bundle must stay small enough to carry.
strip "$OUT/bin/zcap" "$OUT/bin/zcap-bench"
plugins=(librte_bus_vdev.so.23 librte_net_null.so.23 librte_net_pcap.so.23 librte_mempool_ring.so.23
         librte_mempool_stack.so.23)
# Plugins live in lib/ too: a library loaded both as a plugin and as another
# library's dependency must be one file, or it registers itself twice.
for p in "${plugins[@]}"; do cp -L "$PMDS/$p" "$OUT/lib/"; done
printf '%s\n' "${plugins[@]}" >"$OUT/plugins.txt"
# dpdk-dumpcap captures nothing unless this is preloaded (see README).
cp -L "$LIBDIR/librte_mempool_dpaa.so.23" "$OUT/lib/"

{
    for f in "$OUT"/bin/* "$OUT"/lib/librte_*; do
        ldd "$f" | awk '/=> \//{print $3}'
    done
} | sort -u | grep -vE '/(libc|libm|libpthread|libdl|librt|ld-linux-x86-64)\.so' |
    while read -r lib; do cp -L "$lib" "$OUT/lib/"; done

cat >"$OUT/env.sh" <<'EOF'
# Sourced on the benchmark machine: binaries and libraries from this bundle,
# plugins where EAL looks for them by default.
bundle=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p /usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0
while read -r p; do
    # EAL loads only names ending in .so or .so.23.0 from its plugin folder.
    ln -sf "$bundle/lib/$p" "/usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0/${p%.23}"
done <"$bundle/plugins.txt"
export PATH="$bundle/bin:$PATH"
export LD_LIBRARY_PATH="$bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export ZCAP_BIN="$bundle/bin"
EOF
du -sh "$OUT"
