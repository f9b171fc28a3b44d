#!/usr/bin/env bash
# Profile for profile-guided optimization (PGO) of examples/gateway: runs the gateway,
# pinned alone to one core as bench/run.sh does, under the benchmark's keep-alive load
# (1 KiB responses, then 100 KiB ones) with -cpuprofile, and writes the profile to
# examples/gateway/default.pgo, which `go build ./examples/gateway` then uses.
# See docs/performance.md. Loopback only; about 90 seconds.
#
# By default it profiles the gateway's three modes in turn, plain, observed (Prometheus
# metrics and the JSON access log) and traced (OpenTelemetry that never samples), and
# merges the three profiles, so that each mode's hot paths are optimized.
#
#   bash bench/pgo.sh            # writes examples/gateway/default.pgo
#   OUT=/tmp/x.pgo GW_ARGS="-access-log json -access-log-file /dev/null" bash bench/pgo.sh
#
# GW_ARGS, if set, profiles one mode only: the gateway's flags (split on spaces).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
OUT=${OUT:-$REPO/examples/gateway/default.pgo}
DURATION=${DURATION:-20} # seconds of 1 KiB load per mode; 100 KiB gets a quarter of it
CONNS=${CONNS:-64}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}

NAME=pgo
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
for cmd in go wrk curl taskset; do
	command -v "$cmd" >/dev/null || die "$cmd is not on PATH (bench/run.sh installs wrk and curl)"
done
((DURATION >= 4)) || die "DURATION must be at least 4"

log "building"
(cd "$REPO" && go build -o "$TMP/origin" ./bench/origin && go build -o "$TMP/gateway" ./examples/gateway)

ORIGIN_PORT=$(free_port)
STATS_PORT=$(free_port)
GOMAXPROCS=1 taskset -c "$LOAD_CPU" "$TMP/origin" -listen "127.0.0.1:$ORIGIN_PORT" -stats "127.0.0.1:$STATS_PORT" 2>"$TMP/origin.log" &
PIDS+=($!)
wait_http "http://127.0.0.1:$ORIGIN_PORT/1k"

# profile FILE ARGS...: the gateway with ARGS under the load, its CPU profile in FILE.
profile() {
	local file=$1 gw port
	shift
	port=$(free_port)
	GOMAXPROCS=1 taskset -c "$PROXY_CPU" "$TMP/gateway" -listen "127.0.0.1:$port" \
		-upstream "127.0.0.1:$ORIGIN_PORT" -cpuprofile "$file" "$@" 2>"$TMP/gateway.log" &
	gw=$!
	PIDS+=($gw)
	wait_http "http://127.0.0.1:$port/1k"
	log "load ($*): ${DURATION}s of 1 KiB, $((DURATION / 4))s of 100 KiB, $CONNS connections"
	taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$port/1k" >"$TMP/wrk-1k.txt"
	taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"$((DURATION / 4))s" "http://127.0.0.1:$port/100k" >"$TMP/wrk-100k.txt"
	grep -h "Requests/sec" "$TMP/wrk-1k.txt" "$TMP/wrk-100k.txt" | sed 's/^/pgo:   /' >&2
	kill -TERM "$gw"
	for _ in $(seq 1 100); do
		kill -0 "$gw" 2>/dev/null || break
		sleep 0.1
	done
	wait "$gw" 2>/dev/null || true
	[[ -s $file ]] || die "the gateway wrote no profile; its log: $(cat "$TMP/gateway.log")"
}

if [[ -n ${GW_ARGS:-} ]]; then
	# shellcheck disable=SC2086 # GW_ARGS is split on purpose
	profile "$TMP/cpu.pprof" $GW_ARGS
	cp "$TMP/cpu.pprof" "$OUT"
else
	profile "$TMP/plain.pprof"
	profile "$TMP/observed.pprof" -admin 127.0.0.1:0 -admin-stats=false -access-log json -access-log-file "$TMP/access.log"
	profile "$TMP/traced.pprof" -trace never
	(cd "$REPO" && go tool pprof -proto "$TMP/plain.pprof" "$TMP/observed.pprof" "$TMP/traced.pprof") >"$TMP/merged.pprof" 2>"$TMP/pprof.log" ||
		die "merging the profiles failed: $(cat "$TMP/pprof.log")"
	cp "$TMP/merged.pprof" "$OUT"
fi
log "wrote $OUT ($(wc -c <"$OUT") bytes)"
