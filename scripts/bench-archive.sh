#!/usr/bin/env bash
# The archive section of scripts/bench.sh (`bash scripts/bench.sh archive`):
# index size, the cost of indexing, and zcap-extract against tcpdump -r over
# the same files from a cold page cache.
#
#   bash scripts/bench.sh archive
#   ARCHIVE_GB=1 ROUNDS=2 bash scripts/bench.sh archive     # smaller, quicker
#
# The traffic is scripts/lib/mix.py (about 2,000 flows, frames averaging
# about 500 B, one host pair with 2% of the packets) replayed by net_pcap with
# infinite_rx. The capture goes to the VM's disk (a directory in /var/tmp);
# the cost of indexing is measured on tmpfs, where the writer, not the disk,
# sets the pace. Cold cache: sync and drop_caches before every timed read.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
# The cost of indexing is a ratio of two noisy rates: more rounds.
COST_ROUNDS=${COST_ROUNDS:-$((ROUNDS * 3))}
CORES=${CORES:-0,1}
POLL_CORE=${CORES#*,}
BIN=${BIN:-target/release}
ARCHIVE_GB=${ARCHIVE_GB:-2}
DIR=${ARCHIVE_DIR:-/var/tmp/zcap-bench-archive}
SHM=/dev/shm/zcap-bench-archive
PAIR="host 10.1.1.1 and host 10.2.2.2"
MIX_PACKETS=100000

cleanup() { rm -rf "$DIR" "$SHM"; }
trap cleanup EXIT
cleanup
mkdir -p "$DIR" "$SHM"

py() { python3 -c "$@"; }
cold() { sync; echo 3 > /proc/sys/vm/drop_caches; }
# Before each timed zcap-extract: its output must not exist yet, or the
# time includes freeing the last query's output (40 MB of tmpfs pages after
# the whole capture: 5 to 10 ms of a 40 ms query). tcpdump's go to a fresh directory.
fresh() { rm -f "$SHM/z.pcap"; cold; }
# timed CMD...: "seconds MB-read-from-disk" of CMD and its children (the
# time to the millisecond: /usr/bin/time's own is in hundredths).
timed() {
    local out start end; out=$(mktemp)
    start=$(date +%s.%N)
    /usr/bin/time -o "$out" -f "%I" "$@" >/dev/null 2>&1 || true
    end=$(date +%s.%N)
    awk -v s="$start" -v e="$end" '{printf "%.3f %.0f\n", e - s, $1 * 512 / 1e6}' "$out"
    rm -f "$out"
}
sum_bytes() { find "$1" -name "$2" -printf '%s\n' | awk '{s+=$1} END{print s+0}'; }

replay() { echo "net_pcap0,rx_pcap=$1,infinite_rx=1"; }
# capture MIX OUT_DIR PACKETS -C [ARGS...]: zcap stops after PACKETS written.
capture() {
    local mix=$1 out=$2 packets=$3 size=$4; shift 4
    "$BIN/zcap" -q -i "$(replay "$mix")" -l "$POLL_CORE" --mbufs 131071 -w "$out/c.pcap" \
        -C "$size" -c "$packets" "$@" >/dev/null
}

python3 scripts/lib/mix.py "$SHM/mix.pcap" "$MIX_PACKETS" 1
MIX_SIZE=64 python3 scripts/lib/mix.py "$SHM/mix64.pcap" "$MIX_PACKETS" 2
avg=$(capinfos -z "$SHM/mix.pcap" | awk -F: '/Average packet size/{print $2+0}')

echo "### Index size"
echo
echo "| traffic | pcap bytes | index bytes | index / pcap |"
echo "|---|---|---|---|"
for mix in mix mix64; do
    mkdir -p "$DIR/size-$mix"
    capture "$SHM/$mix.pcap" "$DIR/size-$mix" 2000000 100
    data=$(sum_bytes "$DIR/size-$mix" '*.pcap')
    index=$(sum_bytes "$DIR/size-$mix" '*.zidx')
    label=$([ "$mix" = mix ] && echo "mix, ${avg} B average" || echo "mix, 64 B frames")
    echo "| $label | $data | $index | $(py "print(f'{$index/$data*100:.2f}%')") |"
    rm -rf "$DIR/size-$mix"
done
echo

echo "### The cost of indexing (-C 100 -W 3, 3 M packets written, alternating, $COST_ROUNDS rounds)"
echo
echo "| round | where | written Mpps, no index | written Mpps, index | index / no index |"
echo "|---|---|---|---|---|"
# written_mpps DIR [ARGS]: zcap's written rate into DIR.
written_mpps() {
    local out=$1 json="$SHM/s.json"; shift
    mkdir -p "$out/out"
    capture "$SHM/mix.pcap" "$out/out" 3000000 100 -W 3 --stats-json "$json" "$@"
    tail -1 "$json" | py "import json,sys; d=json.load(sys.stdin); print(f\"{d['packets_written']/d['duration_s']/1e6:.3f}\")"
    rm -rf "$out/out" "$json"
}
declare -A ratios=([tmpfs]="" [disk]="")
for r in $(seq 1 "$COST_ROUNDS"); do
    for where in tmpfs disk; do
        d=$([ "$where" = tmpfs ] && echo "$SHM" || echo "$DIR")
        plain=$(written_mpps "$d" --no-index)
        indexed=$(written_mpps "$d")
        ratio=$(py "print(f'{$indexed/$plain:.3f}')")
        ratios[$where]+="$ratio,"
        echo "| $r | $where | $plain | $indexed | $ratio |"
    done
done
# Rates on a shared VM swing by a third between identical runs: the
# median of the rounds is the measure.
for where in tmpfs disk; do
    echo "| median | $where | | | $(py "import statistics; print(f'{statistics.median([${ratios[$where]}]):.3f}')") |"
done
echo

echo "### Compression (--compress, -C 100 -W 3, 3 M packets written, alternating)"
echo
echo "| round | where | written Mpps, none | zstd:1 | zstd:3 | zstd:1 / none | zstd:3 / none |"
echo "|---|---|---|---|---|---|---|"
for r in $(seq 1 "$ROUNDS"); do
    for where in tmpfs disk; do
        d=$([ "$where" = tmpfs ] && echo "$SHM" || echo "$DIR")
        none=$(written_mpps "$d")
        z1=$(written_mpps "$d" --compress zstd:1)
        z3=$(written_mpps "$d" --compress zstd:3)
        echo "| $r | $where | $none | $z1 | $z3 | $(py "print(f'{$z1/$none:.2f}')") | $(py "print(f'{$z3/$none:.2f}')") |"
    done
done
echo
echo "| level | pcap bytes | .zst bytes | ratio |"
echo "|---|---|---|---|"
for level in 1 3; do
    mkdir -p "$SHM/z"
    capture "$SHM/mix.pcap" "$SHM/z" 1000000 1000 --compress "zstd:$level" --no-index
    zsize=$(sum_bytes "$SHM/z" '*.zst')
    raw=$(for f in "$SHM"/z/*.zst; do zstd -q -dc "$f"; done | wc -c)
    echo "| zstd:$level | $raw | $zsize | $(py "print(f'{$raw/$zsize:.2f}')") |"
    rm -rf "$SHM/z"
done
echo

packets=$(py "print(int($ARCHIVE_GB * 1e9 / $avg))")
count() { capinfos -c -M "$@" 2>/dev/null | awk -F: '/Number of packets/{gsub(/ /,"",$2); s+=$2} END{print s+0}'; }
# Each file's selection to its own file under $SHM/t (tcpdump writes one
# pcap per run).
tcpdump_all() { local i=0; for f in "${files[@]}"; do tcpdump -r "$f" -w "$SHM/t/$((i++)).pcap" "$PAIR" 2>/dev/null; done; }
tcpdump_window_files() { local i=0; for f in "${window_files[@]}"; do tcpdump -r "$f" -w "$SHM/t/$((i++)).pcap" "$PAIR" 2>/dev/null; done; }

# extraction NEEDLE: the extraction table on a capture of the mix whose pair
# comes as NEEDLE (uniform or burst).
extraction() {
    NEEDLE=$1 python3 scripts/lib/mix.py "$SHM/needle.pcap" "$MIX_PACKETS" 3
    rm -rf "$DIR/a"; mkdir -p "$DIR/a"
    capture "$SHM/needle.pcap" "$DIR/a" "$packets" 100
    files=("$DIR"/a/*.pcap)
    local stored first last from to
    stored=$(sum_bytes "$DIR/a" '*.pcap')
    first=$(capinfos -T -r -S -a "${files[0]}" | cut -f2)
    last=$(capinfos -T -r -S -e "${files[-1]}" | cut -f2)
    # The middle tenth of the capture's time.
    from=$(py "a,b=$first,$last; print(f'{a+(b-a)*0.45:.6f}')")
    to=$(py "a,b=$first,$last; print(f'{a+(b-a)*0.55:.6f}')")
    # What a tcpdump user who knows each file's time range does: read only
    # the files that meet the window (chosen here, untimed; not cut).
    window_files=()
    for f in "${files[@]}"; do
        read -r a b < <(capinfos -T -r -S -a -e "$f" | cut -f2,3)
        if py "import sys; sys.exit(0 if $b >= $from and $a < $to else 1)"; then window_files+=("$f"); fi
    done
    echo "### Extraction, the pair's packets $1: ${#files[@]} files, $(py "print(f'{$stored/1e9:.2f}')") GB, cold cache"
    echo
    echo "| round | query | zcap-extract s (MB read) | tcpdump -r s (MB read) | tcpdump / zcap-extract | packets |"
    echo "|---|---|---|---|---|---|"
    local r z t w n
    for r in $(seq 1 "$ROUNDS"); do
        fresh; z=$(timed "$BIN/zcap-extract" -r "$DIR/a" -w "$SHM/z.pcap" $PAIR)
        rm -rf "$SHM/t"; mkdir -p "$SHM/t"
        cold; t=$(timed bash -c "$(declare -p files PAIR SHM); $(declare -f tcpdump_all); tcpdump_all")
        n=$(count "$SHM/z.pcap"); [ "$n" = "$(count "$SHM"/t/*.pcap)" ] || echo "MISMATCH: $n vs $(count "$SHM"/t/*.pcap)"
        echo "| $r | pair, whole capture | ${z% *} (${z#* }) | ${t% *} (${t#* }) | $(py "print(f'{${t% *}/max(${z% *},0.001):.1f}x')") | $n |"
        fresh; z=$(timed "$BIN/zcap-extract" -r "$DIR/a" --from "$from" --to "$to" -w "$SHM/z.pcap" $PAIR)
        n=$(count "$SHM/z.pcap")
        echo "| $r | pair, 10% window | ${z% *} (${z#* }) | ${t% *} (${t#* }) | $(py "print(f'{${t% *}/max(${z% *},0.001):.1f}x')") | $n |"
        rm -rf "$SHM/t"; mkdir -p "$SHM/t"
        cold; w=$(timed bash -c "$(declare -p window_files PAIR SHM); $(declare -f tcpdump_window_files); tcpdump_window_files")
        echo "| $r | pair, 10% window, tcpdump on the ${#window_files[@]} files that meet it | ${z% *} (${z#* }) | ${w% *} (${w#* }) | $(py "print(f'{${w% *}/max(${z% *},0.001):.1f}x')") | $n |"
    done
    echo
    rm -rf "$DIR/a"
}
extraction uniform
extraction burst

echo "### Scaling with the file count: the pair in 1% of the time, cold cache"
echo
echo "| archive | files | zcap-extract s (MB read) | vs 1x |"
echo "|---|---|---|---|"
base=""
for scale in 1 10 100; do
    d="$DIR/s$scale"; mkdir -p "$d"
    capture "$SHM/mix.pcap" "$d" "$packets" "$(py "print(1000/$scale)")"
    first_s=$(capinfos -T -r -S -a "$(ls "$d"/*.pcap | head -1)" | cut -f2)
    last_s=$(capinfos -T -r -S -e "$(ls "$d"/*.pcap | tail -1)" | cut -f2)
    f=$(py "a,b=$first_s,$last_s; print(f'{a+(b-a)*0.495:.6f}')")
    t=$(py "a,b=$first_s,$last_s; print(f'{a+(b-a)*0.505:.6f}')")
    best=""
    for r in $(seq 1 "$ROUNDS"); do
        fresh; z=$(timed "$BIN/zcap-extract" -r "$d" --from "$f" --to "$t" -w "$SHM/z.pcap" $PAIR)
        best=$(py "import sys; a='$best'; b='$z'; print(b if not a or float(b.split()[0]) < float(a.split()[0]) else a)")
    done
    base=${base:-${best% *}}
    echo "| ${scale}x | $(ls "$d"/*.pcap | wc -l) | ${best% *} (${best#* }) | $(py "print(f'{${best% *}/$base:.2f}')") |"
    rm -rf "$d"
done
