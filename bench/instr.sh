#!/usr/bin/env bash
# Instructions per request of a gateway build, counted by valgrind's callgrind while wrk
# loads it with 1 KiB keep-alive GETs over 64 connections (loopback only). Unlike CPU
# time, the count does not move with the machine's other load, so it shows the effect of
# a change to the request path on the work done in user space exactly; it does not show
# what that work costs in time (cache and TLB misses, the kernel), for which see
# bench/ab.sh.
#
#   bash bench/instr.sh                 # builds ./examples/gateway
#   bash bench/instr.sh /tmp/gw-before  # a gateway binary, as bench/ab.sh takes
#   GW_ARGS="-trace never" bash bench/instr.sh   # with more gateway flags
#   CG_OUT=/tmp/cg.out bash bench/instr.sh       # keep callgrind's output (callgrind_annotate --inclusive=yes)
#   GW_ARGS="-cache 64MiB" URLPATH=/cache/1k bash bench/instr.sh   # cache hits
#
# Prints the user-space instructions per request and the functions with the most. Under
# callgrind the gateway runs some 50 times slower, so work done per tick of a clock
# rather than per request (the hot clock, the pool's sweep, the garbage collector) weighs
# about ten times more here than under real load. valgrind is installed with apt-get when
# missing (root on Debian). About 20 seconds.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
DUR=${DUR:-8}   # seconds of load
URLPATH=${URLPATH:-/1k} # what wrk asks for (/cache/1k: a cacheable 1 KiB, for GW_ARGS="-cache 64MiB")
read -r -a GW_FLAGS <<<"${GW_ARGS:-}" # more gateway flags, split at spaces
TOP=${TOP:-25}  # functions listed
NAME=instr
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

if ! command -v valgrind >/dev/null || ! command -v wrk >/dev/null; then
	if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
		log "installing valgrind and wrk"
		apt-get update -qq && apt-get install -y -qq valgrind wrk curl >/dev/null
	fi
fi
for cmd in go valgrind callgrind_annotate callgrind_control wrk curl taskset; do
	command -v "$cmd" >/dev/null || die "$cmd is not on PATH (Debian: apt-get install valgrind wrk curl)"
done

GW=${1:-}
if [[ -z $GW ]]; then
	(cd "$REPO" && go build -o "$TMP/gateway" ./examples/gateway)
	GW=$TMP/gateway
fi
[[ -x $GW ]] || die "$GW is not an executable"
(cd "$REPO" && go build -o "$TMP/origin" ./bench/origin)

ORIGIN=127.0.0.1:$(free_port)
GOMAXPROCS=1 taskset -c 1 "$TMP/origin" -listen "$ORIGIN" -stats "127.0.0.1:$(free_port)" 2>"$TMP/origin.log" &
PIDS+=($!)
wait_http "http://$ORIGIN/1k"

# callgrind stops the program now and then on an instruction it cannot run (RDTSCP, in
# the runtime's cputicks) or a signal it mishandles: such a run is tried again.
for try in 1 2 3; do
	port=$(free_port)
	# asyncpreemptoff: callgrind mishandles the runtime's preemption signals.
	GOMAXPROCS=1 GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --dump-instr=no \
		--callgrind-out-file="$TMP/cg.out" "$GW" "${GW_FLAGS[@]}" -listen "127.0.0.1:$port" -upstream "$ORIGIN" 2>"$TMP/vg.log" &
	vg=$!
	if ! wait_http "http://127.0.0.1:$port/1k" 2>/dev/null; then
		kill -9 "$vg" 2>/dev/null || true
		wait "$vg" 2>/dev/null || true
		continue
	fi
	taskset -c 1 wrk -t1 -c64 -d"${DUR}s" "http://127.0.0.1:$port$URLPATH" >"$TMP/wrk.txt" 2>&1 || true
	n=$(awk '/requests in/ {print $1}' "$TMP/wrk.txt")
	callgrind_control -d "$vg" >/dev/null 2>&1 || true
	sleep 1
	kill -9 "$vg" 2>/dev/null || true
	wait "$vg" 2>/dev/null || true
	out=$(ls "$TMP"/cg.out.* 2>/dev/null | head -1 || true)
	# (wrk prints a "Socket errors" line only when there were some.)
	if [[ ${n:-0} -gt 1000 && -n $out ]] && ! grep -q "Socket errors" "$TMP/wrk.txt"; then
		break
	fi
	log "run $try did not complete (${n:-0} requests); trying again"
	rm -f "$TMP"/cg.out*
	out=""
done
[[ -n ${out:-} ]] || die "no complete run; see valgrind's log: $(tail -5 "$TMP/vg.log")"

log "$n requests in ${DUR}s under callgrind"
if [[ -n ${CG_OUT:-} ]]; then cp "$out" "$CG_OUT" && log "callgrind output kept in $CG_OUT"; fi
callgrind_annotate --auto=no "$out" 2>/dev/null | awk -v N="$n" -v TOP="$TOP" '
/PROGRAM TOTALS/ { t = $1; gsub(/,/, "", t); printf "instructions per request: %.0f\n\n", t / N; next }
/^ *[0-9,]+ \(/ && shown < TOP {
	c = $1; gsub(/,/, "", c)
	s = $0; sub(/^ *[0-9,]+ \( *[0-9.]+%\) +/, "", s); sub(/ \[.*\]$/, "", s)
	gsub(/github.com\/gotthard-proxy\/gotthard\//, "", s); sub(/^.*:/, "", s)
	printf "%8.0f  %s\n", c / N, s; shown++
}'
