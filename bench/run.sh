#!/usr/bin/env bash
# Load benchmark: Gotthard vs nginx vs a plain httputil.ReverseProxy on the
# same machine, with gofloor, the smallest keep-alive proxy in Go, as the floor
# of Go's runtime. See bench/README.md for what it measures and how to read it.
#
#   bash bench/run.sh          # load scenarios (add IDLE=1 for the idle one too)
#   bash bench/run.sh idle     # idle-connection memory only
#   bash bench/run.sh all      # both
#
# Logs go to stderr; the Markdown report goes to stdout.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)

MODE=${1:-load}
DURATION=${DURATION:-10}      # seconds per measured run
WARMUP=${WARMUP:-2}           # seconds of warm-up before each measured run
CONNS=${CONNS:-64}            # wrk connections
THREADS=${THREADS:-1}         # wrk threads
PROXIES=${PROXIES:-"gotthard nginx httputil gofloor"}
BASE=${BASE:-nginx}           # the proxy the CPU and req/s ratios compare to
SCENARIOS=${SCENARIOS:-"1k 100k"}
IDLE=${IDLE:-0}
IDLE_CONNS=${IDLE_CONNS:-5000}
REPEAT=${REPEAT:-1}           # measured runs per proxy × scenario (median reported)
IDLE_HOLD=${IDLE_HOLD:-30}    # seconds the idle tool holds its connections at most
PROXY_CPU=${PROXY_CPU:-0}     # core the proxy under test runs on, alone
LOAD_CPU=${LOAD_CPU:-1}       # core wrk runs on (and the origin, by default)
ORIGIN_CPU=${ORIGIN_CPU:-$LOAD_CPU} # core the origin runs on; by default wrk's

DURATION=${DURATION%s}
WARMUP=${WARMUP%s}
IDLE_HOLD=${IDLE_HOLD%s}

case $MODE in
load) RUN_LOAD=1; RUN_IDLE=$IDLE ;;
idle) RUN_LOAD=0; RUN_IDLE=1 ;;
all) RUN_LOAD=1; RUN_IDLE=1 ;;
-h | --help | help)
	sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
	exit 0
	;;
*)
	echo "usage: $0 [load|idle|all]" >&2
	exit 2
	;;
esac
[[ $RUN_IDLE == 1 ]] || RUN_IDLE=0

LOG_PREFIX=bench
# shellcheck source=bench/proc.sh
source "$BENCH_DIR/proc.sh"
# shellcheck source=bench/load.sh
source "$BENCH_DIR/load.sh"

for v in DURATION WARMUP CONNS THREADS REPEAT IDLE_CONNS IDLE_HOLD PROXY_CPU LOAD_CPU ORIGIN_CPU; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
((DURATION > 0 && CONNS > 0 && THREADS > 0 && REPEAT > 0 && IDLE_CONNS > 0)) || die "DURATION, CONNS, THREADS, REPEAT and IDLE_CONNS must be > 0"

# ---------------------------------------------------------------- cleanup

setup_tmp bench

# ---------------------------------------------------------------- tools

export PATH="$PATH:/usr/sbin:/sbin"
command -v go >/dev/null || die "go is not on PATH"
command -v taskset >/dev/null || die "taskset (util-linux) is not on PATH"
ensure curl curl || die "curl is missing and could not be installed"
ensure wrk wrk || die "wrk is missing and could not be installed"
if [[ " $PROXIES " == *" nginx "* ]]; then
	ensure nginx nginx-light || die "nginx is missing and could not be installed (run as root, or drop it from PROXIES)"
fi

NCPU=$(nproc)
((PROXY_CPU < NCPU && LOAD_CPU < NCPU && ORIGIN_CPU < NCPU)) || die "need CPUs $PROXY_CPU, $LOAD_CPU and $ORIGIN_CPU, this machine has $NCPU (set PROXY_CPU/LOAD_CPU/ORIGIN_CPU)"
[[ $PROXY_CPU != "$LOAD_CPU" && $PROXY_CPU != "$ORIGIN_CPU" ]] || log "warning: the proxy shares its core with the load or the origin"

# Room for the idle scenario's connections (and the proxy's own).
hard=$(ulimit -Hn)
[[ $hard == unlimited ]] && hard=1048576
ulimit -n "$hard" 2>/dev/null || true
if [[ $RUN_IDLE == 1 ]] && (($(ulimit -n) < IDLE_CONNS + 1024)); then
	die "ulimit -n is $(ulimit -n); IDLE_CONNS=$IDLE_CONNS needs at least $((IDLE_CONNS + 1024))"
fi

# ---------------------------------------------------------------- helpers

origin_conns() {
	curl -fsS --max-time 2 "http://127.0.0.1:$STATS_PORT/stats/conns"
}

# ---------------------------------------------------------------- build

mkdir -p "$TMP/bin"
build() { # NAME PKG
	(cd "$REPO" && go build -o "$TMP/bin/$1" "./$2") >"$TMP/build-$1.log" 2>&1
}

log "building origin, idleconns and the selected Go proxies into $TMP/bin"
build origin bench/origin || { cat "$TMP/build-origin.log" >&2; die "building bench/origin failed"; }
build idleconns bench/idleconns || { cat "$TMP/build-idleconns.log" >&2; die "building bench/idleconns failed"; }

SELECTED=()
# select NAME BIN PKG: builds PKG as BIN and selects proxy NAME, or says why it is skipped.
select_built() {
	if build "$2" "$3"; then
		SELECTED+=("$1")
	else
		log "skipping $1: go build ./$3 failed:"
		sed 's/^/    /' "$TMP/build-$2.log" | head -20 >&2
	fi
}
for p in $PROXIES; do
	case $p in
	gotthard | gotthard-observed | gotthard-traced)
		if [[ ! -d $REPO/examples/gateway ]]; then
			log "skipping $p: $REPO/examples/gateway does not exist yet"
		elif [[ -x $TMP/bin/gateway ]]; then
			SELECTED+=("$p") # the same build, with other flags
		else
			select_built "$p" gateway examples/gateway
		fi
		;;
	httputil) select_built httputil httputilproxy bench/httputilproxy ;;
	gofloor) select_built gofloor floorproxy bench/floorproxy ;;
	nginx) SELECTED+=(nginx) ;;
	*) die "unknown proxy '$p' in PROXIES (known: gotthard gotthard-observed gotthard-traced nginx httputil gofloor)" ;;
	esac
done
((${#SELECTED[@]} > 0)) || die "no proxy to benchmark"

for s in $SCENARIOS; do
	[[ $s == 1k || $s == 100k ]] || die "unknown scenario '$s' in SCENARIOS (known: 1k 100k)"
done

# ---------------------------------------------------------------- origin

pick_port
ORIGIN_PORT=$PORT
pick_port
STATS_PORT=$PORT
GOMAXPROCS=1 taskset -c "$ORIGIN_CPU" "$TMP/bin/origin" \
	-listen "127.0.0.1:$ORIGIN_PORT" -stats "127.0.0.1:$STATS_PORT" 2>"$TMP/origin.log" &
ORIGIN_PID=$!
LIVE[$ORIGIN_PID]=1
wait_http "http://127.0.0.1:$ORIGIN_PORT/1k" "$ORIGIN_PID" || { cat "$TMP/origin.log" >&2; die "origin did not start"; }
log "origin on 127.0.0.1:$ORIGIN_PORT (pid $ORIGIN_PID, CPU $ORIGIN_CPU)"

# ---------------------------------------------------------------- proxies

# start_proxy NAME TAG: starts NAME pinned to PROXY_CPU on a fresh port; sets
# PROXY_PID, PROXY_PORT and PROXY_LOG.
start_proxy() {
	local name=$1 tag=$2
	pick_port
	PROXY_PORT=$PORT
	PROXY_LOG="$TMP/$tag.log"
	case $name in
	gotthard)
		GOMAXPROCS=1 taskset -c "$PROXY_CPU" "$TMP/bin/gateway" \
			-listen "127.0.0.1:$PROXY_PORT" -upstream "127.0.0.1:$ORIGIN_PORT" 2>"$PROXY_LOG" &
		;;
	gotthard-observed) # the same build with Prometheus metrics (on the admin service, without its own counters) and a JSON access log
		GOMAXPROCS=1 taskset -c "$PROXY_CPU" "$TMP/bin/gateway" \
			-listen "127.0.0.1:$PROXY_PORT" -upstream "127.0.0.1:$ORIGIN_PORT" \
			-admin 127.0.0.1:0 -admin-stats=false -access-log json -access-log-file "$TMP/$tag.access.log" 2>"$PROXY_LOG" &
		;;
	gotthard-traced) # the same build with OpenTelemetry tracing that never samples
		GOMAXPROCS=1 taskset -c "$PROXY_CPU" "$TMP/bin/gateway" \
			-listen "127.0.0.1:$PROXY_PORT" -upstream "127.0.0.1:$ORIGIN_PORT" -trace never 2>"$PROXY_LOG" &
		;;
	httputil)
		GOMAXPROCS=1 taskset -c "$PROXY_CPU" "$TMP/bin/httputilproxy" \
			-listen "127.0.0.1:$PROXY_PORT" -upstream "127.0.0.1:$ORIGIN_PORT" 2>"$PROXY_LOG" &
		;;
	gofloor)
		GOMAXPROCS=1 taskset -c "$PROXY_CPU" "$TMP/bin/floorproxy" \
			-listen "127.0.0.1:$PROXY_PORT" -upstream "127.0.0.1:$ORIGIN_PORT" 2>"$PROXY_LOG" &
		;;
	nginx)
		local dir="$TMP/$tag"
		mkdir -p "$dir"
		nginx_conf "$dir" "$PROXY_PORT" $((IDLE_CONNS + 4096))
		PROXY_LOG="$dir/error.log"
		taskset -c "$PROXY_CPU" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" \
			2>"$TMP/$tag.stderr" &
		;;
	esac
	PROXY_PID=$!
	LIVE[$PROXY_PID]=1
	if ! wait_http "http://127.0.0.1:$PROXY_PORT/1k" "$PROXY_PID"; then
		tail -20 "$PROXY_LOG" >&2 2>/dev/null || true
		[[ $name != nginx ]] || tail -20 "$TMP/$tag.stderr" >&2 || true
		return 1
	fi
	# nginx workers are children of the master; track them for cleanup too.
	live_children "$PROXY_PID"
}

stop_proxy() { stop_tree "$PROXY_PID"; }

# ---------------------------------------------------------------- load

RESULTS="$TMP/results.tsv"
IDLE_RESULTS="$TMP/idle.tsv"
: >"$RESULTS"
: >"$IDLE_RESULTS"

run_load() { # NAME SCENARIO RUN
	local name=$1 scen=$2 rep=$3 tag="$1-$2-$3"
	log "$name / $scen: starting (run $rep of $REPEAT)"
	if ! start_proxy "$name" "$tag"; then
		log "$name / $scen: proxy did not start, skipped"
		return 0
	fi
	local url="http://127.0.0.1:$PROXY_PORT/$scen"
	if ((WARMUP > 0)); then
		run_wrk "$TMP/wrk-$tag-warmup.txt" "$WARMUP" "$url" || log "$name / $scen: warm-up wrk exited non-zero"
	fi

	measure "$name" "$scen" "$rep" "$url" "$PROXY_PID" origin_conns || true
	stop_proxy
}

# ---------------------------------------------------------------- idle

run_idle() { # NAME
	local name=$1 tag="$1-idle"
	log "$name / idle: starting"
	if ! start_proxy "$name" "$tag"; then
		log "$name / idle: proxy did not start, skipped"
		return 0
	fi
	local pids before after
	mapfile -t pids < <(pids_of "$PROXY_PID")
	sleep 1
	before=$(rss_kib "${pids[@]}")

	local out="$TMP/idle-$tag.out"
	taskset -c "$LOAD_CPU" "$TMP/bin/idleconns" -addr "127.0.0.1:$PROXY_PORT" -n "$IDLE_CONNS" \
		-hold "${IDLE_HOLD}s" -timeout 60s >"$out" 2>"$TMP/idle-$tag.err" &
	local tool=$!
	LIVE[$tool]=1
	local i ready=""
	for i in $(seq 1 700); do # up to 70 s, the tool's own setup limit plus margin
		ready=$(awk '$1 == "ready" {print $2}' "$out")
		[[ -z $ready ]] || break
		alive "$tool" || break
		sleep 0.1
	done
	if [[ -z $ready ]]; then
		log "$name / idle: tool did not get ready"
		tail -5 "$TMP/idle-$tag.err" >&2 || true
		stop_pid "$tool"
		stop_proxy
		return 0
	fi
	sleep 2
	after=$(rss_kib "${pids[@]}")
	stop_pid "$tool"
	local open
	open=$(awk '$1 == "open" {print $2}' "$out")
	stop_proxy
	if ((ready < IDLE_CONNS)); then
		log "$name / idle: only $ready of $IDLE_CONNS connections were set up"
		tail -3 "$TMP/idle-$tag.err" >&2 || true
	fi
	local per
	per=$(awk -v a="$after" -v b="$before" -v n="$ready" 'BEGIN{printf "%.1f", (a - b) / n}')
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$ready" "$before" "$after" "$per" "${open:-?}" >>"$IDLE_RESULTS"
	log "$name / idle: $ready conns, RSS $before -> $after KiB, $per KiB/conn, still open at the end: ${open:-?}"
}

# ---------------------------------------------------------------- run

# How busy the machine is with other work before we start (both CPUs, 1 s).
background_busy
log "CPU $PROXY_CPU/$LOAD_CPU busy with other work before the run: $BG_BUSY"

START=$(date +%s)
if [[ $RUN_LOAD == 1 ]]; then
	for ((rep = 1; rep <= REPEAT; rep++)); do
		proxy_order "$rep" "${SELECTED[@]}"
		for s in $SCENARIOS; do
			for p in "${ORDER[@]}"; do run_load "$p" "$s" "$rep"; done
		done
	done
fi
if [[ $RUN_IDLE == 1 ]]; then
	for p in "${SELECTED[@]}"; do run_idle "$p"; done
fi
log "done in $(($(date +%s) - START)) s"

# ---------------------------------------------------------------- report

cpu_model=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
echo "### Results ($(date -u '+%Y-%m-%d %H:%M UTC'), ${cpu_model:-unknown CPU}, $NCPU CPUs)"
echo
echo "Proxy alone on CPU $PROXY_CPU; wrk ($THREADS thread(s), $CONNS connections) on CPU $LOAD_CPU, the origin on CPU $ORIGIN_CPU."
echo "Before the run, CPU $PROXY_CPU/$LOAD_CPU were $BG_BUSY busy with other work (0%/0% on a quiet machine)."
if ((BG0 > 10 || BG1 > 10)); then
	echo "**The machine was busy with other work: req/s and p99 below are not representative; CPU µs/req and the ratios within this run hold up better.**"
fi
NGINX_VERSION=""
[[ " ${SELECTED[*]} " != *" nginx "* ]] || NGINX_VERSION="$(nginx -v 2>&1 | sed 's/^nginx version: //'); "
echo "Measured run ${DURATION}s after a ${WARMUP}s warm-up; $(uname -sr); $(go version | awk '{print $3}'); ${NGINX_VERSION}$(wrk -v 2>&1 | awk 'NR==1{print "wrk " $2}')."
echo "Command: \`DURATION=$DURATION CONNS=$CONNS REPEAT=$REPEAT PROXIES=\"${PROXIES}\" BASE=$BASE SCENARIOS=\"${SCENARIOS}\" bash bench/run.sh $MODE\`"
echo

report_load "upstream conns opened"

if [[ -s $IDLE_RESULTS ]]; then
	echo "| proxy | idle conns | RSS before (MiB) | RSS after (MiB) | KiB per idle conn | vs nginx | still open at end |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	awk -F'\t' '
		{ row[NR] = $0; if ($1 == "nginx") n = $5 }
		END {
			for (i = 1; i <= NR; i++) {
				split(row[i], f, "\t")
				r = (n > 0) ? sprintf("%.2f×", f[5] / n) : "n/a"
				printf "| %s | %d | %.1f | %.1f | %.1f | %s | %s |\n",
					f[1], f[2], f[3] / 1024, f[4] / 1024, f[5], r, f[6]
			}
		}' "$IDLE_RESULTS"
	echo
fi
