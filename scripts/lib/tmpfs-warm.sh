# Sourced by the benchmark scripts. Needs TMPFS set.
#
# warm_tmpfs writes and deletes WARM_MB (default 6144) on the tmpfs just
# before a timed write. In a VM, memory the guest has not touched yet, or gave
# back to the host (free page reporting, a couple of seconds after a file is
# deleted), writes at a third of the speed: measured 2026-11-25 on the 2-CPU
# VM, 1.65 GB/s for a 1 GiB file, 0.69 GB/s for 8 GiB, 1.6 GB/s for 4 GiB right
# after an 8 GiB warm-up. Warming before each writer gives zcap and dd the
# same memory to write into. At most half of the tmpfs's free space, so the
# warm-up never fills it.
WARM_MB=${WARM_MB:-6144}
warm_tmpfs() {
    local free_mb
    free_mb=$(df -m --output=avail "$TMPFS" | tail -1 | tr -d ' ')
    dd if=/dev/zero of="$TMPFS/zcap-warm.bin" bs=1M \
        count="$(( WARM_MB < free_mb / 2 ? WARM_MB : free_mb / 2 ))" status=none
    rm -f "$TMPFS/zcap-warm.bin"
}
