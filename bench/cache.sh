#!/usr/bin/env bash
# Cache benchmark: CPU time per request of a 1 KiB cacheable response (Cache-Control:
# max-age=3600) served as a cache hit by Gotthard's cache (examples/gateway -cache),
# nginx's proxy_cache and Varnish, against the same response proxied by Gotthard with no
# cache (a miss: the figure a hit is compared to). Measured like bench/run.sh (the same
# code, bench/load.sh): each server pinned alone to one core, interleaved runs, the
# median run and paired ratios. Every measured hit run is checked to be all hits: the
# origin answered no request during it (and Varnish counted no miss or pass). See
# docs/cache-bench.md.
#
#   bash bench/cache.sh             # one run each, ~1 min plus build
#   REPEAT=5 bash bench/cache.sh    # for figures that go in a doc
#
# Logs go to stderr; the Markdown report goes to stdout. Exits 1 if a hit run was not
# all hits.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)

DURATION=${DURATION:-10}      # seconds per measured run
WARMUP=${WARMUP:-2}           # seconds of load before each measured run (after the cache is filled)
CONNS=${CONNS:-64}            # wrk connections
THREADS=${THREADS:-1}         # wrk threads
REPEAT=${REPEAT:-1}           # measured runs per server, interleaved
PROXIES=${PROXIES:-"gotthard-hit nginx-hit varnish-hit gotthard-miss"}
BASE=${BASE:-gotthard-miss}   # the server the ratio columns compare to
CACHE_SIZE=${CACHE_SIZE:-67108864} # bytes of memory for each cache (gateway -cache, nginx max_size, Varnish malloc)
GATEWAY_BIN=${GATEWAY_BIN:-}  # a gateway binary to use instead of building ./examples/gateway
PROXY_CPU=${PROXY_CPU:-0}     # core the server under test runs on, alone
LOAD_CPU=${LOAD_CPU:-1}       # core wrk runs on (and the origin, by default)
ORIGIN_CPU=${ORIGIN_CPU:-$LOAD_CPU}
DURATION=${DURATION%s}
WARMUP=${WARMUP%s}

case ${1:-} in
"") ;;
-h | --help | help)
	sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
	exit 0
	;;
*)
	echo "usage: $0   (knobs are environment variables: see docs/cache-bench.md)" >&2
	exit 2
	;;
esac

LOG_PREFIX=cache-bench
# shellcheck source=bench/proc.sh
source "$BENCH_DIR/proc.sh"
# shellcheck source=bench/load.sh
source "$BENCH_DIR/load.sh"

for v in DURATION WARMUP CONNS THREADS REPEAT CACHE_SIZE PROXY_CPU LOAD_CPU ORIGIN_CPU; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
((DURATION > 0 && CONNS > 0 && THREADS > 0 && REPEAT > 0 && CACHE_SIZE > 0)) || die "DURATION, CONNS, THREADS, REPEAT and CACHE_SIZE must be > 0"
[[ -z $GATEWAY_BIN || -x $GATEWAY_BIN ]] || die "GATEWAY_BIN=$GATEWAY_BIN is not an executable"

setup_tmp cache-bench
# nginx's cache directory lives in memory (tmpfs), like the other two caches.
SHM_ROOT=/dev/shm
[[ -d $SHM_ROOT && -w $SHM_ROOT ]] || SHM_ROOT=$TMP
SHM=$(mktemp -d "$SHM_ROOT/gotthard-cache-bench.XXXXXX")
REMOVE_ON_EXIT+=("$SHM")

export PATH="$PATH:/usr/sbin:/sbin"
command -v go >/dev/null || die "go is not on PATH"
command -v taskset >/dev/null || die "taskset (util-linux) is not on PATH"
ensure curl curl || die "curl is missing and could not be installed"
ensure wrk wrk || die "wrk is missing and could not be installed"
NCPU=$(nproc)
((PROXY_CPU < NCPU && LOAD_CPU < NCPU && ORIGIN_CPU < NCPU)) || die "need CPUs $PROXY_CPU, $LOAD_CPU and $ORIGIN_CPU, this machine has $NCPU (set PROXY_CPU/LOAD_CPU/ORIGIN_CPU)"
[[ $PROXY_CPU != "$LOAD_CPU" && $PROXY_CPU != "$ORIGIN_CPU" ]] || log "warning: the server shares its core with the load or the origin"

# ---------------------------------------------------------------- build and select

mkdir -p "$TMP/bin"
build() { # NAME PKG
	(cd "$REPO" && go build -o "$TMP/bin/$1" "./$2") >"$TMP/build-$1.log" 2>&1
}
log "building origin and the gateway into $TMP/bin"
build origin bench/origin || { cat "$TMP/build-origin.log" >&2; die "building bench/origin failed"; }

GATEWAY=unbuilt
gateway_built() { # NAME: builds examples/gateway once (or takes GATEWAY_BIN); says why NAME is skipped if it does not build
	if [[ $GATEWAY == unbuilt && -n $GATEWAY_BIN ]]; then
		GATEWAY=ok
		cp "$GATEWAY_BIN" "$TMP/bin/gateway"
	elif [[ $GATEWAY == unbuilt ]]; then
		if build gateway examples/gateway; then GATEWAY=ok; else GATEWAY=failed; fi
	fi
	[[ $GATEWAY == ok ]] && return 0
	log "skipping $1: go build ./examples/gateway failed:"
	sed 's/^/    /' "$TMP/build-gateway.log" | head -20 >&2
	return 1
}

SELECTED=()
for p in $PROXIES; do
	case $p in
	gotthard-miss)
		gateway_built "$p" && SELECTED+=("$p")
		;;
	gotthard-hit)
		gateway_built "$p" || continue
		# The gateway parses its flags before anything else: an unknown flag fails at once.
		probe=$("$TMP/bin/gateway" -cache "$CACHE_SIZE" -h 2>&1 || true)
		if grep -q 'flag provided but not defined: -cache' <<<"$probe"; then
			log "skipping gotthard-hit: this examples/gateway has no -cache flag yet (it said: flag provided but not defined: -cache)"
		elif grep -q 'invalid value' <<<"$probe"; then
			log "skipping gotthard-hit: examples/gateway refused -cache $CACHE_SIZE (set CACHE_SIZE to a size it takes): $(grep -m1 'invalid value' <<<"$probe")"
		else
			SELECTED+=("$p")
		fi
		;;
	nginx-hit)
		if ensure nginx nginx-light; then SELECTED+=("$p"); else log "skipping $p: nginx is missing and could not be installed (apt-get install nginx-light)"; fi
		;;
	varnish-hit)
		if ensure varnishd varnish && command -v varnishstat >/dev/null; then
			SELECTED+=("$p")
		else
			log "skipping $p: varnishd is missing and could not be installed (apt-get install varnish)"
		fi
		;;
	*) die "unknown server '$p' in PROXIES (known: gotthard-hit nginx-hit varnish-hit gotthard-miss)" ;;
	esac
done
((${#SELECTED[@]} > 0)) || die "no server to benchmark"

# ---------------------------------------------------------------- origin

pick_port
ORIGIN_PORT=$PORT
pick_port
STATS_PORT=$PORT
GOMAXPROCS=1 taskset -c "$ORIGIN_CPU" "$TMP/bin/origin" \
	-listen "127.0.0.1:$ORIGIN_PORT" -stats "127.0.0.1:$STATS_PORT" 2>"$TMP/origin.log" &
ORIGIN_PID=$!
LIVE[$ORIGIN_PID]=1
wait_http "http://127.0.0.1:$ORIGIN_PORT/cache/1k" "$ORIGIN_PID" || { cat "$TMP/origin.log" >&2; die "origin did not start"; }
log "origin on 127.0.0.1:$ORIGIN_PORT (pid $ORIGIN_PID, CPU $ORIGIN_CPU)"

# origin_requests prints how many requests the origin has answered.
origin_requests() {
	curl -fsS --max-time 2 "http://127.0.0.1:$STATS_PORT/stats/requests"
}

# ---------------------------------------------------------------- servers

# start_server NAME TAG: starts NAME pinned to PROXY_CPU on a fresh port; sets
# SERVER_PID, SERVER_PORT and SERVER_LOG, and for Varnish VARNISH_DIR.
start_server() {
	local name=$1 tag=$2 dir
	pick_port
	SERVER_PORT=$PORT
	SERVER_LOG="$TMP/$tag.log"
	case $name in
	gotthard-miss)
		GOMAXPROCS=1 taskset -c "$PROXY_CPU" "$TMP/bin/gateway" \
			-listen "127.0.0.1:$SERVER_PORT" -upstream "127.0.0.1:$ORIGIN_PORT" 2>"$SERVER_LOG" &
		;;
	gotthard-hit)
		GOMAXPROCS=1 taskset -c "$PROXY_CPU" "$TMP/bin/gateway" \
			-listen "127.0.0.1:$SERVER_PORT" -upstream "127.0.0.1:$ORIGIN_PORT" -cache "$CACHE_SIZE" 2>"$SERVER_LOG" &
		;;
	nginx-hit)
		dir="$TMP/$tag"
		mkdir -p "$dir"
		# nginx makes the cache directory at start, owned by its worker's user
		# (nobody when started as root), who must be able to reach it.
		chmod 755 "$SHM"
		# The cache: a zone whose files are on tmpfs, written in place (no temp file
		# elsewhere), freshness from the origin's headers (no proxy_cache_valid), and
		# open_file_cache so that a hit does not open the file again.
		nginx_conf "$dir" "$SERVER_PORT" 4096 \
			"proxy_cache_path $SHM/$tag levels=1:2 keys_zone=bench:10m max_size=$CACHE_SIZE inactive=60m use_temp_path=off;
    open_file_cache max=1000 inactive=60s;" \
			"proxy_cache bench;
            add_header X-Cache-Status \$upstream_cache_status;"
		SERVER_LOG="$dir/error.log"
		taskset -c "$PROXY_CPU" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" \
			2>"$TMP/$tag.stderr" &
		;;
	varnish-hit)
		VARNISH_DIR="$TMP/$tag"
		mkdir -p "$VARNISH_DIR"
		# Everything else is Varnish's built-in VCL: it caches a GET without
		# Authorization or Cookie for the response's max-age.
		cat >"$VARNISH_DIR/bench.vcl" <<EOF
vcl 4.1;
backend origin { .host = "127.0.0.1"; .port = "$ORIGIN_PORT"; }
EOF
		# -F: the manager stays in the foreground, our child; its child serves.
		# One thread pool for one core; idle client connections kept 120 s as
		# by nginx and the gateway.
		taskset -c "$PROXY_CPU" varnishd -F -j none -n "$VARNISH_DIR/n" -T none \
			-a "127.0.0.1:$SERVER_PORT" -f "$VARNISH_DIR/bench.vcl" -s "malloc,$CACHE_SIZE" \
			-p thread_pools=1 -p timeout_idle=120 >"$SERVER_LOG" 2>&1 &
		;;
	esac
	SERVER_PID=$!
	LIVE[$SERVER_PID]=1
	if ! wait_http "http://127.0.0.1:$SERVER_PORT/cache/1k" "$SERVER_PID"; then
		tail -20 "$SERVER_LOG" >&2 2>/dev/null || true
		[[ $name != nginx-hit ]] || tail -20 "$TMP/$tag.stderr" >&2 || true
		return 1
	fi
	# nginx workers and Varnish's child are children of the process we started.
	live_children "$SERVER_PID"
}

# varnish_misses prints the Varnish counters of requests not answered from its cache:
# misses, passes, pipes, hit-for-pass and hit-for-miss.
varnish_misses() {
	varnishstat -n "$VARNISH_DIR/n" -1 -f MAIN.cache_miss -f MAIN.s_pass -f MAIN.s_pipe \
		-f MAIN.cache_hitpass -f MAIN.cache_hitmiss 2>/dev/null | awk '{ n += $2 } END { print n + 0 }'
}

# warm_cache NAME URL: fills the cache with one request and checks that a later one is
# a hit: the origin is not asked again (and nginx says HIT, Varnish names two
# transactions in X-Varnish). A cache may store the response only once it has been
# delivered, so the check is tried for up to 2 s.
warm_cache() {
	local name=$1 url=$2 o0 o1 head i
	curl -fsS -o /dev/null --max-time 5 "$url" || return 1
	for i in $(seq 1 20); do
		o0=$(origin_requests)
		head=$(curl -fsS -D - -o /dev/null --max-time 5 "$url") || return 1
		o1=$(origin_requests)
		((o1 != o0)) || break
		sleep 0.1
	done
	if ((o1 != o0)); then
		log "$name: every request reached the origin: the response was not cached"
		return 1
	fi
	case $name in
	nginx-hit) grep -qi '^X-Cache-Status: HIT' <<<"$head" || { log "$name: no X-Cache-Status: HIT on a request the origin did not see"; return 1; } ;;
	varnish-hit) grep -Eqi '^X-Varnish: [0-9]+ [0-9]+' <<<"$head" || { log "$name: X-Varnish names no stored transaction on a request the origin did not see"; return 1; } ;;
	esac
}

stop_server() { stop_tree "$SERVER_PID"; }

# ---------------------------------------------------------------- runs

RESULTS="$TMP/results.tsv"
HITS="$TMP/hits.tsv" # name, run, requests, origin requests, Varnish misses, errors
: >"$RESULTS"
: >"$HITS"

run_one() { # NAME RUN
	local name=$1 rep=$2 tag="$1-$2" url v0 v1 errs
	log "$name: starting (run $rep of $REPEAT)"
	if ! start_server "$name" "$tag"; then
		log "$name: did not start, skipped"
		return 0
	fi
	url="http://127.0.0.1:$SERVER_PORT/cache/1k"
	if [[ $name != gotthard-miss ]] && ! warm_cache "$name" "$url"; then
		log "$name: the cache does not answer hits, skipped"
		printf '%s\t%s\t0\tnot cached\t-\t-\n' "$name" "$rep" >>"$HITS"
		stop_server
		return 0
	fi
	if ((WARMUP > 0)); then
		run_wrk "$TMP/wrk-$tag-warmup.txt" "$WARMUP" "$url" || log "$name: warm-up wrk exited non-zero"
	fi
	v0=-
	[[ $name != varnish-hit ]] || v0=$(varnish_misses)
	if measure "$name" 1k "$rep" "$url" "$SERVER_PID" origin_requests && [[ $name != gotthard-miss ]]; then
		v1=-
		[[ $name != varnish-hit ]] || v1=$(($(varnish_misses) - v0))
		errs=$(tail -1 "$RESULTS" | cut -f9)
		printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$rep" "$MEASURED_REQS" "$MEASURED_UPSTREAM" "$v1" "$errs" >>"$HITS"
	fi
	stop_server
}

log "CPU $PROXY_CPU/$LOAD_CPU: measuring how busy they are with other work"
background_busy
log "CPU $PROXY_CPU/$LOAD_CPU busy with other work before the run: $BG_BUSY"
START=$(date +%s)
for ((rep = 1; rep <= REPEAT; rep++)); do
	proxy_order "$rep" "${SELECTED[@]}"
	for p in "${ORDER[@]}"; do run_one "$p" "$rep"; done
done
log "done in $(($(date +%s) - START)) s"

# ---------------------------------------------------------------- report


cpu_model=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
versions="$(uname -sr); $(go version | awk '{print $3}')"
if [[ " ${SELECTED[*]} " == *" gotthard-"* ]]; then
	if [[ -n $GATEWAY_BIN ]]; then versions+="; the gateway $GATEWAY_BIN"; else versions+="; examples/gateway at $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"; fi
fi
[[ " ${SELECTED[*]} " != *" nginx-hit "* ]] || versions+="; $(nginx -v 2>&1 | sed 's/^nginx version: //')"
[[ " ${SELECTED[*]} " != *" varnish-hit "* ]] || versions+="; $( (varnishd -V 2>&1 || true) | awk 'NR==1{gsub(/[()]/, ""); print $2}')"
versions+="; $( (wrk -v 2>&1 || true) | awk 'NR==1{print "wrk " $2}')" # wrk -v exits 1
echo "### Cache hits ($(date -u '+%Y-%m-%d %H:%M UTC'), ${cpu_model:-unknown CPU}, $NCPU CPUs)"
echo
echo "GET /cache/1k: 1024 bytes with \`Cache-Control: max-age=3600\`. Server alone on CPU $PROXY_CPU; wrk ($THREADS thread(s), $CONNS connections) on CPU $LOAD_CPU, the origin on CPU $ORIGIN_CPU."
echo "Before the run, CPU $PROXY_CPU/$LOAD_CPU were $BG_BUSY busy with other work (0%/0% on a quiet machine)."
if ((BG0 > 10 || BG1 > 10)); then
	echo "**The machine was busy with other work: req/s and p99 below are not representative; CPU µs/req and the paired ratios hold up better.**"
fi
echo "Measured run ${DURATION}s after the cache was filled and a ${WARMUP}s warm-up; $versions."
echo "Command: \`DURATION=$DURATION CONNS=$CONNS REPEAT=$REPEAT PROXIES=\"$PROXIES\" BASE=$BASE bash bench/cache.sh\`"
echo
report_load "origin requests during the run"

echo "Hit check: a hit run passes when the origin answered no request during it, wrk saw no error, and (Varnish) no request was a miss or a pass."
echo
echo "| server | run | requests | origin requests | Varnish misses + passes | errors | all hits |"
echo "|---|---:|---:|---:|---:|---:|---|"
NOT_HITS=0
while IFS=$'\t' read -r name rep reqs up vm errs; do
	ok=yes
	[[ $up == 0 && $errs == 0 && ($vm == - || $vm == 0) ]] || { ok=no; NOT_HITS=1; }
	echo "| $name | $rep | $reqs | $up | $vm | $errs | $ok |"
done <"$HITS"
echo

echo "| target | paired ratio: median (min–max) | runs | met |"
echo "|---|---:|---:|---|"
target() { # A B LIMIT TEXT: LIMIT - for a figure with no target
	local r med range n met=-
	r=$(paired_cpu "$1" "$2")
	if [[ $r == - ]]; then
		echo "| $4 | not measured | 0 | - |"
		return
	fi
	IFS=$'\t' read -r med range n <<<"$r"
	[[ $3 == - ]] || met=$(awk -v m="$med" -v l="$3" 'BEGIN { print (m <= l) ? "yes" : "no" }')
	echo "| $4 | ${med}× ($range) | $n | $met |"
}
target gotthard-hit gotthard-miss 0.5 "gotthard hit ≤ 0.5× gotthard miss, CPU µs/req"
target gotthard-hit nginx-hit 1.0 "gotthard hit ≤ 1.0× nginx hit"
target gotthard-hit varnish-hit 1.0 "gotthard hit ≤ 1.0× Varnish hit"
target nginx-hit gotthard-miss - "nginx hit vs gotthard miss (no target)"
target varnish-hit gotthard-miss - "Varnish hit vs gotthard miss (no target)"
target varnish-hit nginx-hit - "Varnish hit vs nginx hit (no target)"
echo
if ((NOT_HITS)); then
	log "error: a hit run was not all hits (see the hit check)"
	exit 1
fi
