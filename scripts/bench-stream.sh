#!/usr/bin/env bash
# The stream section of scripts/bench.sh (`bash scripts/bench.sh stream`):
# zcap --publish against a bare publisher (zcap-bench --mode publish, the
# same client, message size and window) into the same servers, first one
# node, then a 3-node cluster with an R=3 stream; then a time window
# extracted from the stream against the same capture's indexed files.
#
#   bash scripts/bench.sh stream
#   ROUNDS=2 SECONDS_PER_RUN=3 bash scripts/bench.sh stream
#
# Servers listen on 127.0.0.1 only, their stores in /var/tmp (the VM's
# disk), and are stopped at the end. zcap captures net_null frames of FRAME
# bytes: its poll loop keeps POLL_CORE busy, so the bare publisher runs with
# a busy loop on that core too (the same CPUs left for publishing).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DUR=${SECONDS_PER_RUN:-5}
POLL_CORE=${POLL_CORE:-1}
BIN=${BIN:-target/release}
MSG=${MSG:-768K}
WINDOW=${WINDOW:-32}
FRAME=${FRAME:-1514}
DIR=${STREAM_DIR:-/var/tmp/zcap-bench-stream}
EXTRACT_PACKETS=${EXTRACT_PACKETS:-400000}

PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT
rm -rf "$DIR"
mkdir -p "$DIR"

py() { python3 -c "$@"; }
free_port() { py "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"; }
ratio() { py "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.2f}' if b else 'n/a')" "$1" "$2"; }
wait_port() { for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; echo "no server on $1" >&2; exit 1; }

# single NAME: one JetStream server; its port in PORTS. (Not run in a
# $(...) subshell: PIDS must keep every server for the cleanup.)
single() {
    local port; port=$(free_port)
    nats-server -a 127.0.0.1 -p "$port" -js -sd "$DIR/$1" >"$DIR/$1.log" 2>&1 &
    PIDS+=($!)
    wait_port "$port"
    PORTS=$port
}

# cluster: three routed JetStream nodes; their client ports in PORTS (p1,p2,p3).
cluster() {
    local ports=() routes=() r
    for i in 0 1 2; do ports+=("$(free_port)"); routes+=("$(free_port)"); done
    r=$(printf 'nats://127.0.0.1:%s,' "${routes[@]}"); r=${r%,}
    for i in 0 1 2; do
        nats-server -a 127.0.0.1 -p "${ports[$i]}" -js -n "n$i" --cluster_name zb \
            --cluster "nats://127.0.0.1:${routes[$i]}" --routes "$r" -sd "$DIR/n$i" \
            >"$DIR/n$i.log" 2>&1 &
        PIDS+=($!)
    done
    for p in "${ports[@]}"; do wait_port "$p"; done
    sleep 3   # the meta group elects its leader
    local IFS=,; PORTS="${ports[*]}"
}

servers_url() { local IFS=,; local s=(); for p in $1; do s+=("127.0.0.1:$p"); done; echo "nats://${s[*]}/$2"; }
stop_servers() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; PIDS=(); }

zcap_mbs() {
    "$BIN/zcap" --no-huge -q -i "net_null0,size=$FRAME" --mbufs 8192 --duration "$DUR" \
        --publish "$1" --sensor bench --buffer-size "$MSG" --publish-window "$WINDOW" \
        --stats-json "$DIR/z.json" --stats-interval 0 >/dev/null
    tail -1 "$DIR/z.json" | py "import json,sys; d=json.load(sys.stdin); print(d['file_bytes']/d['duration_s']/1e6)"
}

bare_mbs() {
    timeout $((DUR + 3)) taskset -c "$POLL_CORE" sh -c 'while :; do :; done' &
    local spin=$!
    "$BIN/zcap-bench" --mode publish --publish "$1" --message-size "$MSG" --publish-window "$WINDOW" \
        --duration "$DUR" --json | py "import json,sys; d=json.load(sys.stdin); print(d['bytes']/d['seconds']/1e6)"
    kill "$spin" 2>/dev/null || true
}

publish_rounds() {
    local url=$1 what=$2 replicas=$3
    # The stream, made once: both publish into it.
    "$BIN/zcap-bench" --mode publish --publish "$url" --duration 0.2 --stream-replicas "$replicas" \
        --stream-max-bytes 4G >/dev/null
    for r in $(seq 1 "$ROUNDS"); do
        local z b
        z=$(zcap_mbs "$url"); b=$(bare_mbs "$url")
        printf '| %s | %s | %.1f | %.1f | %s |\n' "$what" "$r" "$z" "$b" "$(ratio "$z" "$b")"
    done
}

echo "## Publishing into JetStream: zcap --publish against a bare publisher, ${ROUNDS} rounds of ${DUR} s, ${MSG} messages, window ${WINDOW}, ${FRAME} B frames"
echo
echo "| servers | round | zcap MB/s acknowledged | bare publisher MB/s | zcap / bare |"
echo "|---|---|---|---|---|"
single one
publish_rounds "$(servers_url "$PORTS" BENCH)" "1 node" 1
stop_servers
cluster
publish_rounds "$(servers_url "$PORTS" BENCH)" "3 nodes, R=3" 3
stop_servers
echo

# Extraction: the same replay captured into the stream and into indexed
# files; a 10% window from the middle, from each, output compared.
python3 scripts/lib/mix.py "$DIR/mix.pcap" "$EXTRACT_PACKETS" 1
single extract
url=$(servers_url "$PORTS" EXTRACT)
"$BIN/zcap" --no-huge -q -i "net_pcap0,rx_pcap=$DIR/mix.pcap" --publish "$url" --sensor x
mkdir -p "$DIR/files"
"$BIN/zcap" --no-huge -q -i "net_pcap0,rx_pcap=$DIR/mix.pcap" -w "$DIR/files/cap.pcap" -C 20 --per-queue-files
read -r from to < <(py "
import struct
f=open('$DIR/mix.pcap','rb'); h=f.read(24); ts=[]
while True:
    r=f.read(16)
    if len(r)<16: break
    s,u,c,_=struct.unpack('<IIII',r); ts.append(s+u/1e6); f.seek(c,1)
a,b=ts[0],ts[-1]; print(f'{a+(b-a)*0.45:.6f} {a+(b-a)*0.55:.6f}')")
echo "## Extracting a 10% time window: the stream against the indexed files (${EXTRACT_PACKETS} packets)"
echo
echo "| round | from the stream s | from the files s | stream / files | records (stream, files) |"
echo "|---|---|---|---|---|"
for r in $(seq 1 "$ROUNDS"); do
    t0=$(date +%s.%N)
    "$BIN/zcap-extract" --stream "$url" --from "$from" --to "$to" -w "$DIR/s.pcap"
    t1=$(date +%s.%N)
    "$BIN/zcap-extract" -r "$DIR/files" --from "$from" --to "$to" -w "$DIR/f.pcap"
    t2=$(date +%s.%N)
    s=$(py "print($t1-$t0)"); f=$(py "print($t2-$t1)")
    cmp -s "$DIR/s.pcap" "$DIR/f.pcap" || { echo "the stream and the files differ" >&2; exit 1; }
    printf '| %s | %.3f | %.3f | %s | %s, %s |\n' "$r" "$s" "$f" "$(ratio "$s" "$f")" \
        "$(capinfos -c -M "$DIR/s.pcap" | awk '/Number of packets/ {print $NF}')" \
        "$(capinfos -c -M "$DIR/f.pcap" | awk '/Number of packets/ {print $NF}')"
done
echo
