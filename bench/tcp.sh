#!/usr/bin/env bash
# TCP load benchmark: Gotthard's TCP service (examples/tcp-proxy) against HAProxy in
# `mode tcp`, each alone on one core (GOMAXPROCS=1; nbthread 1), the load generator
# (bench/tcpload) and the upstream (bench/tcpsink) on the other. Three scenarios:
#
#   bulk  BULK_BYTES (1 GiB) through the proxy to a counting sink: CPU time per GiB of
#         the proxy process and throughput
#   rate  short connections (connect, 64-byte request, 64-byte reply, close) from CONNS
#         workers for DURATION seconds: connections per second and CPU per connection
#   idle  IDLE_CONNS (10,000) idle connections held through the proxy: its RSS growth
#         per connection (VmRSS, and smaps_rollup's Rss/Pss/Private)
#
# Every run is checked: the sink counted every byte, every reply was complete, every
# idle connection was set up and still open when measured. Runs interleave over REPEAT
# rounds; the report gives the median run and the paired ratio to HAProxy. See
# docs/l4-bench.md.
#
#   bash bench/tcp.sh                          # one round, ~35 s plus build
#   REPEAT=3 DURATION=5 bash bench/tcp.sh      # for figures that go in a doc
#
# Logs go to stderr; the Markdown report goes to stdout. Exits 1 if a run failed its
# checks.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)

DURATION=${DURATION:-10}          # seconds of the measured rate run
WARMUP=${WARMUP:-1}               # seconds of rate load before it (0 = none)
CONNS=${CONNS:-64}                # rate scenario: concurrent connections
BULK_BYTES=${BULK_BYTES:-1073741824} # bulk scenario: bytes through the proxy
BULK_CONNS=${BULK_CONNS:-1}       # bulk scenario: connections they are split over
IDLE_CONNS=${IDLE_CONNS:-10000}   # idle scenario: connections held
IDLE_SETTLE=${IDLE_SETTLE:-2}     # idle scenario: seconds between ready and the RSS reading
REPEAT=${REPEAT:-1}               # measured runs per proxy × scenario, interleaved
PROXIES=${PROXIES:-"gotthard haproxy haproxy-splice"}
BASE=${BASE:-haproxy}             # the proxy the ratio columns compare to
SCENARIOS=${SCENARIOS:-"bulk rate idle"}
PROXY_CPU=${PROXY_CPU:-0}         # core the proxy under test runs on, alone
LOAD_CPU=${LOAD_CPU:-1}           # core tcpload and tcpsink run on
DURATION=${DURATION%s}
WARMUP=${WARMUP%s}

case ${1:-} in
"") ;;
-h | --help | help)
	sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
	exit 0
	;;
*)
	echo "usage: $0   (knobs are environment variables: see docs/l4-bench.md)" >&2
	exit 2
	;;
esac

LOG_PREFIX=tcp-bench
# shellcheck source=bench/proc.sh
source "$BENCH_DIR/proc.sh"
# shellcheck source=bench/load.sh
source "$BENCH_DIR/load.sh"

for v in DURATION WARMUP CONNS BULK_BYTES BULK_CONNS IDLE_CONNS IDLE_SETTLE REPEAT PROXY_CPU LOAD_CPU; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
((DURATION > 0 && CONNS > 0 && BULK_BYTES > 0 && BULK_CONNS > 0 && IDLE_CONNS > 0 && REPEAT > 0)) ||
	die "DURATION, CONNS, BULK_BYTES, BULK_CONNS, IDLE_CONNS and REPEAT must be > 0"
for s in $SCENARIOS; do
	[[ $s == bulk || $s == rate || $s == idle ]] || die "unknown scenario '$s' in SCENARIOS (known: bulk rate idle)"
done

setup_tmp tcp-bench
export PATH="$PATH:/usr/sbin:/sbin"
command -v go >/dev/null || die "go is not on PATH"
command -v taskset >/dev/null || die "taskset (util-linux) is not on PATH"
NCPU=$(nproc)
((PROXY_CPU < NCPU && LOAD_CPU < NCPU)) || die "need CPUs $PROXY_CPU and $LOAD_CPU, this machine has $NCPU (set PROXY_CPU/LOAD_CPU)"
[[ $PROXY_CPU != "$LOAD_CPU" ]] || log "warning: the proxy shares its core with the load"

# Room for the idle scenario: the proxy holds two descriptors per connection (client and
# upstream) plus a few of its own; the load tool and the sink one each. The script raises
# the soft limit to the hard one, and the hard one too when it may (root with
# CAP_SYS_RESOURCE). If that is still short, the scenario holds as many connections as
# fit, and the report says so.
need=$((2 * IDLE_CONNS + 64))
if (($(ulimit -Hn) < need)); then ulimit -Hn "$need" 2>/dev/null || true; fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
IDLE_NOTE=""
# The proxies' connection limits follow IDLE_CONNS, and HAProxy refuses to start when
# the file limit is short of them, so the cap applies whichever scenarios run.
if (($(ulimit -n) < need)); then
	capped=$((($(ulimit -n) - 64) / 2))
	((capped > 0)) || die "ulimit -n is $(ulimit -n): too low"
	IDLE_NOTE="IDLE_CONNS=$IDLE_CONNS capped to $capped: ulimit -n is $(ulimit -n) and the hard limit could not be raised"
	[[ " $SCENARIOS " != *" idle "* ]] || log "warning: $IDLE_NOTE"
	IDLE_CONNS=$capped
fi
[[ " $SCENARIOS " == *" idle "* ]] || IDLE_NOTE=""

# ---------------------------------------------------------------- build and select

mkdir -p "$TMP/bin"
build() { # NAME PKG
	(cd "$REPO" && go build -o "$TMP/bin/$1" "./$2") >"$TMP/build-$1.log" 2>&1 || {
		cat "$TMP/build-$1.log" >&2
		return 1
	}
}
log "building tcpload, tcpsink and examples/tcp-proxy into $TMP/bin"
build tcpload bench/tcpload || die "building bench/tcpload failed"
build tcpsink bench/tcpsink || die "building bench/tcpsink failed"

SELECTED=()
for p in $PROXIES; do
	case $p in
	gotthard)
		if build tcp-proxy examples/tcp-proxy; then SELECTED+=("$p"); else log "skipping gotthard: go build ./examples/tcp-proxy failed"; fi
		;;
	haproxy | haproxy-splice)
		if ensure haproxy haproxy; then SELECTED+=("$p"); else log "skipping $p: haproxy is missing and could not be installed (apt-get install haproxy)"; fi
		;;
	*) die "unknown proxy '$p' in PROXIES (known: gotthard haproxy haproxy-splice)" ;;
	esac
done
((${#SELECTED[@]} > 0)) || die "no proxy to benchmark"

# ---------------------------------------------------------------- upstream

pick_port
COUNT_PORT=$PORT
pick_port
RR_PORT=$PORT
pick_port
ECHO_PORT=$PORT
GOMAXPROCS=1 taskset -c "$LOAD_CPU" "$TMP/bin/tcpsink" -count "127.0.0.1:$COUNT_PORT" \
	-rr "127.0.0.1:$RR_PORT" -echo "127.0.0.1:$ECHO_PORT" 2>"$TMP/tcpsink.log" &
SINK_PID=$!
LIVE[$SINK_PID]=1
for p in $COUNT_PORT $RR_PORT $ECHO_PORT; do
	wait_port "$p" "$SINK_PID" || { cat "$TMP/tcpsink.log" >&2; die "tcpsink did not start"; }
done
log "tcpsink on 127.0.0.1: count $COUNT_PORT, rr $RR_PORT, echo $ECHO_PORT (pid $SINK_PID, CPU $LOAD_CPU)"

# ---------------------------------------------------------------- proxies

# scenario_port SCENARIO: the sink port a scenario's proxy forwards to.
scenario_port() {
	case $1 in
	bulk) echo "$COUNT_PORT" ;;
	rate) echo "$RR_PORT" ;;
	idle) echo "$ECHO_PORT" ;;
	esac
}

# start_proxy NAME SCENARIO TAG: starts NAME pinned to PROXY_CPU on a fresh port,
# forwarding to the scenario's sink port; sets PROXY_PID and PROXY_PORT.
start_proxy() {
	local name=$1 up log="$TMP/$3.log" splice="" maxconn=$((IDLE_CONNS + 16))
	up=$(scenario_port "$2")
	pick_port
	PROXY_PORT=$PORT
	case $name in
	gotthard)
		GOMAXPROCS=1 taskset -c "$PROXY_CPU" "$TMP/bin/tcp-proxy" -listen "127.0.0.1:$PROXY_PORT" \
			-upstream "127.0.0.1:$up" -max-conns $((IDLE_CONNS + 16)) -idle 5m 2>"$log" &
		;;
	haproxy | haproxy-splice)
		# With splicing HAProxy reserves descriptors for maxconn/4 pipes at start, and
		# refuses to start when the file limit is short of them: haproxy-splice runs
		# the bulk and rate scenarios only, with room for 1024 connections.
		[[ $name == haproxy ]] || { splice="option splice-auto"; maxconn=1024; }
		# One thread, no master process (-db: foreground, the PID is the proxy),
		# the same idle timeout as the Gotthard example.
		cat >"$TMP/$3.cfg" <<EOF
# Generated by bench/tcp.sh.
global
    nbthread 1
    maxconn $maxconn
defaults
    mode tcp
    timeout connect 5s
    timeout client 5m
    timeout server 5m
    $splice
frontend bench
    bind 127.0.0.1:$PROXY_PORT
    default_backend sink
backend sink
    server sink 127.0.0.1:$up
EOF
		taskset -c "$PROXY_CPU" haproxy -db -f "$TMP/$3.cfg" >"$log" 2>&1 &
		;;
	esac
	PROXY_PID=$!
	LIVE[$PROXY_PID]=1
	if ! wait_port "$PROXY_PORT" "$PROXY_PID"; then
		tail -20 "$log" >&2 || true
		return 1
	fi
}

# ---------------------------------------------------------------- runs

# A row of RESULTS: name, scenario, run, figure (MiB/s, conn/s or connections held),
# CPU (ms per GiB, µs per connection, or - for idle), proxy CPU %, KiB per idle
# connection (VmRSS), smaps Rss/Pss/Private KiB per connection (or -), RSS after KiB,
# errors, other load on the proxy core %, load core busy %, checked (ok or what failed).
RESULTS="$TMP/results.tsv"
: >"$RESULTS"
FAILED=0

# load_run OUT ARGS...: runs tcpload on LOAD_CPU, bounded by timeout, its stdout in OUT.
load_run() {
	local out=$1
	shift
	timeout --kill-after=5 $((DURATION + 120)) taskset -c "$LOAD_CPU" "$TMP/bin/tcpload" "$@" >"$out" 2>"$out.err"
}

# kv FILE KEY: the value of KEY=... on the tool's result line.
kv() { tr ' ' '\n' <"$1" | awk -F= -v k="$2" '$1 == k { print $2; exit }'; }

# smaps_kib PID FIELD: a field of /proc/PID/smaps_rollup in KiB (empty if unreadable).
smaps_kib() { awk -v f="$2:" '$1 == f { print $2; exit }' "/proc/$1/smaps_rollup" 2>/dev/null || true; }

# record NAME SCENARIO RUN FIGURE CPU UTIL PERCONN SMAPS RSS ERRS OTHER LBUSY CHECK
record() {
	local IFS=$'\t'
	echo "$*" >>"$RESULTS"
	[[ ${13} == ok ]] || { FAILED=1; log "$1 / $2 run $3: check failed: ${13}"; }
}

# measure_cpu: starts a CPU window on the proxy and both cores.
measure_cpu() {
	C0=$(cpu_ticks "$PROXY_PID")
	PC0=$(cpu_stat "$PROXY_CPU")
	LC0=$(cpu_stat "$LOAD_CPU")
	T0=$(date +%s.%N)
}

# end_cpu: ends the window: TICKS, SECS, UTIL (% of a core), OTHER (other work on the
# proxy core, %), LBUSY (load core busy, %).
end_cpu() {
	local c1 pc1 lc1 t1
	c1=$(cpu_ticks "$PROXY_PID")
	pc1=$(cpu_stat "$PROXY_CPU")
	lc1=$(cpu_stat "$LOAD_CPU")
	t1=$(date +%s.%N)
	TICKS=$((c1 - C0))
	SECS=$(awk -v a="$T0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	UTIL=$(awk -v t="$TICKS" -v hz="$CLK_TCK" -v s="$SECS" 'BEGIN { printf "%.0f", t / hz / s * 100 }')
	OTHER=$(($(busy_pct "$PC0" "$pc1") - UTIL))
	((OTHER >= 0)) || OTHER=0
	LBUSY=$(busy_pct "$LC0" "$lc1")
}

run_bulk() { # NAME RUN
	local name=$1 rep=$2 tag="$1-bulk-$2" out check=ok moved mibps errs cpu
	start_proxy "$name" bulk "$tag" || { record "$name" bulk "$rep" 0 - - - - 0 1 - - "did not start"; return 0; }
	out="$TMP/$tag.out"
	# Warm-up: 64 MiB, so the connection machinery and buffers are in place.
	load_run "$out.warm" -mode bulk -addr "127.0.0.1:$PROXY_PORT" -bytes 67108864 -c "$BULK_CONNS" || log "$name / bulk: warm-up failed: $(cat "$out.warm.err")"
	measure_cpu
	load_run "$out" -mode bulk -addr "127.0.0.1:$PROXY_PORT" -bytes "$BULK_BYTES" -c "$BULK_CONNS" || check="tcpload: $(tail -1 "$out.err")"
	end_cpu
	moved=$(kv "$out" moved)
	mibps=$(kv "$out" mib_per_s)
	errs=$(kv "$out" errors)
	[[ ${moved:-0} == "$BULK_BYTES" ]] || [[ $check != ok ]] || check="moved ${moved:-0} of $BULK_BYTES bytes"
	# ms of proxy CPU per GiB moved.
	cpu=$(awk -v t="$TICKS" -v hz="$CLK_TCK" -v b="$BULK_BYTES" 'BEGIN { printf "%.1f", t / hz * 1000 / (b / 1073741824) }')
	record "$name" bulk "$rep" "${mibps:-0}" "$cpu" "$UTIL" - - "$(rss_kib "$PROXY_PID")" "${errs:-1}" "$OTHER" "$LBUSY" "$check"
	log "$name / bulk: ${mibps:-0} MiB/s, ${cpu} ms CPU/GiB, CPU ${UTIL}%, moved ${moved:-0} bytes, other load on proxy core ${OTHER}%, load core ${LBUSY}%: $check"
	stop_pid "$PROXY_PID"
}

run_rate() { # NAME RUN
	local name=$1 rep=$2 tag="$1-rate-$2" out check=ok conns rate errs cpu p99
	start_proxy "$name" rate "$tag" || { record "$name" rate "$rep" 0 - - - - 0 1 - - "did not start"; return 0; }
	out="$TMP/$tag.out"
	if ((WARMUP > 0)); then
		load_run "$out.warm" -mode rr -addr "127.0.0.1:$PROXY_PORT" -c "$CONNS" -d "${WARMUP}s" || log "$name / rate: warm-up failed: $(tail -1 "$out.warm.err")"
	fi
	measure_cpu
	load_run "$out" -mode rr -addr "127.0.0.1:$PROXY_PORT" -c "$CONNS" -d "${DURATION}s" || check="tcpload: $(tail -1 "$out.err")"
	end_cpu
	conns=$(kv "$out" conns)
	rate=$(kv "$out" rate)
	errs=$(kv "$out" errors)
	p99=$(kv "$out" p99_ms)
	((${conns:-0} > 0)) || [[ $check != ok ]] || check="no connection completed"
	# µs of proxy CPU per connection completed.
	cpu=$(awk -v t="$TICKS" -v hz="$CLK_TCK" -v n="${conns:-0}" 'BEGIN { if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "-" }')
	record "$name" rate "$rep" "${rate:-0}" "$cpu" "$UTIL" - "${p99:--}" "$(rss_kib "$PROXY_PID")" "${errs:-1}" "$OTHER" "$LBUSY" "$check"
	log "$name / rate: ${rate:-0} conn/s, ${cpu} µs CPU/conn, p99 ${p99:--} ms, CPU ${UTIL}%, errors ${errs:-?}, other load on proxy core ${OTHER}%, load core ${LBUSY}%: $check"
	stop_pid "$PROXY_PID"
}

run_idle() { # NAME RUN
	local name=$1 rep=$2 tag="$1-idle-$2" out check=ok r0 r1 s0 s1 p0 p1 v0 v1 ready open i load_pid per smaps
	start_proxy "$name" idle "$tag" || { record "$name" idle "$rep" 0 - - - - 0 1 - - "did not start"; return 0; }
	out="$TMP/$tag.out"
	# One connection through first, so the baseline is a proxy that has served.
	load_run "$out.warm" -mode idle -addr "127.0.0.1:$PROXY_PORT" -n 1 -c 1 -hold 0s || log "$name / idle: first connection failed: $(tail -1 "$out.warm.err")"
	r0=$(rss_kib "$PROXY_PID")
	s0=$(smaps_kib "$PROXY_PID" Rss)
	p0=$(smaps_kib "$PROXY_PID" Pss)
	v0=$(($(smaps_kib "$PROXY_PID" Private_Dirty) + $(smaps_kib "$PROXY_PID" Private_Clean)))
	timeout --kill-after=5 $((IDLE_SETTLE + 180)) taskset -c "$LOAD_CPU" "$TMP/bin/tcpload" -mode idle \
		-addr "127.0.0.1:$PROXY_PORT" -n "$IDLE_CONNS" -c 64 -timeout 60s -hold $((IDLE_SETTLE + 120))s >"$out" 2>"$out.err" &
	load_pid=$!
	LIVE[$load_pid]=1
	# Wait for "ready N" (the tool's setup is bounded by its -timeout).
	for i in $(seq 1 900); do
		grep -q '^ready ' "$out" && break
		alive "$load_pid" || break
		sleep 0.1
	done
	ready=$(awk '$1 == "ready" { print $2 }' "$out")
	if [[ -z $ready ]]; then
		check="tcpload never reported ready: $(tail -1 "$out.err")"
		ready=0
	else
		sleep "$IDLE_SETTLE"
		r1=$(rss_kib "$PROXY_PID")
		s1=$(smaps_kib "$PROXY_PID" Rss)
		p1=$(smaps_kib "$PROXY_PID" Pss)
		v1=$(($(smaps_kib "$PROXY_PID" Private_Dirty) + $(smaps_kib "$PROXY_PID" Private_Clean)))
	fi
	stop_pid "$load_pid"
	open=$(awk '$1 == "open" { print $2 }' "$out")
	[[ $ready == "$IDLE_CONNS" ]] || [[ $check != ok ]] || check="ready $ready of $IDLE_CONNS: $(tail -1 "$out.err")"
	[[ ${open:-0} == "$IDLE_CONNS" ]] || [[ $check != ok ]] || check="the proxy closed $((IDLE_CONNS - ${open:-0})) of $IDLE_CONNS idle connections"
	per=-
	smaps=-
	if ((ready > 0)) && [[ -n ${r1:-} ]]; then
		per=$(awk -v a="$r0" -v b="$r1" -v n="$ready" 'BEGIN { printf "%.2f", (b - a) / n }')
		[[ -z $s0 || -z ${s1:-} ]] || smaps=$(awk -v a="$s0" -v b="$s1" -v c="$p0" -v d="$p1" -v e="$v0" -v f="$v1" -v n="$ready" \
			'BEGIN { printf "%.2f/%.2f/%.2f", (b - a) / n, (d - c) / n, (f - e) / n }')
	fi
	record "$name" idle "$rep" "$ready" - - "$per" "$smaps" "${r1:-0}" $((IDLE_CONNS - ${open:-0})) - - "$check"
	log "$name / idle: $ready connections ready, ${open:-0} open at the end, RSS $r0 → ${r1:-?} KiB: $per KiB each (smaps Rss/Pss/Private $smaps): $check"
	stop_pid "$PROXY_PID"
}

log "CPU $PROXY_CPU/$LOAD_CPU: measuring how busy they are with other work"
background_busy
log "CPU $PROXY_CPU/$LOAD_CPU busy with other work before the run: $BG_BUSY"
START=$(date +%s)
for ((rep = 1; rep <= REPEAT; rep++)); do
	proxy_order "$rep" "${SELECTED[@]}"
	for s in $SCENARIOS; do
		for p in "${ORDER[@]}"; do
			# Idle connections hold no pipe: haproxy-splice's idle row would be haproxy's.
			[[ $p != haproxy-splice || $s != idle ]] || continue
			log "$p / $s: run $rep of $REPEAT"
			"run_$s" "$p" "$rep"
		done
	done
done
log "done in $(($(date +%s) - START)) s"

# ---------------------------------------------------------------- report

# median NAME SCENARIO COL: the median over runs that passed their checks of column COL
# (1-based), and the min–max; the lower middle for an even count.
median() {
	awk -F'\t' -v n="$1" -v s="$2" -v c="$3" '
		$1 == n && $2 == s && $13 == "ok" && $c != "-" { v[++m] = $c + 0 }
		END {
			if (m == 0) { print "-\t-"; exit }
			for (i = 2; i <= m; i++) for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
			printf "%s\t%s–%s\n", v[int((m + 1) / 2)], v[1], v[m]
		}' "$RESULTS"
}

# paired NAME SCENARIO COL: the median over runs of NAME's column COL ÷ BASE's in the same
# run (both passed their checks), and the min–max.
paired() {
	awk -F'\t' -v n="$1" -v s="$2" -v c="$3" -v b="$BASE" '
		$2 == s && $13 == "ok" && $c != "-" { v[$1, $3] = $c + 0; runs[$3] }
		END {
			m = 0
			for (r in runs) if ((n, r) in v && (b, r) in v && v[b, r] > 0) x[++m] = v[n, r] / v[b, r]
			if (m == 0) { print "-\t-"; exit }
			for (i = 2; i <= m; i++) for (j = i; j > 1 && x[j - 1] > x[j]; j--) { t = x[j]; x[j] = x[j - 1]; x[j - 1] = t }
			med = (m % 2) ? x[(m + 1) / 2] : (x[m / 2] + x[m / 2 + 1]) / 2
			printf "%.2f×\t%.2f–%.2f\n", med, x[1], x[m]
		}' "$RESULTS"
}

cpu_model=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
versions="$(uname -sr); $(go version | awk '{print $3}')"
[[ " ${SELECTED[*]} " != *" gotthard "* ]] || versions+="; examples/tcp-proxy at $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
[[ " ${SELECTED[*]} " != *" haproxy"* ]] || versions+="; $(haproxy -v 2>&1 | awk 'NR==1{print "HAProxy " $3}')"
echo "### TCP proxy ($(date -u '+%Y-%m-%d %H:%M UTC'), ${cpu_model:-unknown CPU}, $NCPU CPUs)"
echo
echo "Proxy alone on CPU $PROXY_CPU; tcpload and tcpsink on CPU $LOAD_CPU. Before the run, CPU $PROXY_CPU/$LOAD_CPU were $BG_BUSY busy with other work (0%/0% on a quiet machine); $versions."
[[ -z $IDLE_NOTE ]] || echo "**$IDLE_NOTE.**"
echo "Command: \`REPEAT=$REPEAT DURATION=$DURATION WARMUP=$WARMUP CONNS=$CONNS BULK_BYTES=$BULK_BYTES BULK_CONNS=$BULK_CONNS IDLE_CONNS=$IDLE_CONNS IDLE_SETTLE=$IDLE_SETTLE PROXIES=\"$PROXIES\" SCENARIOS=\"$SCENARIOS\" bash bench/tcp.sh\`"
echo
((REPEAT == 1)) || echo "Each figure is the median of the $REPEAT runs that passed their checks (min–max after it); the paired ratio is the median over runs of the figure ÷ $BASE's in the same round, which ran next to it."
echo
echo "| proxy | scenario | figure | median (min–max) | CPU | median (min–max) | paired CPU vs $BASE | proxy CPU | runs ok |"
echo "|---|---|---|---:|---|---:|---:|---:|---:|"
for s in $SCENARIOS; do
	for p in "${SELECTED[@]}"; do
		[[ $p != haproxy-splice || $s != idle ]] || continue
		nok=$(awk -F'\t' -v n="$p" -v s="$s" '$1 == n && $2 == s && $13 == "ok" { k++ } END { print k + 0 }' "$RESULTS")
		case $s in
		bulk) fig="MiB/s" cpu="ms CPU/GiB" col=5 ;;
		rate) fig="conn/s" cpu="µs CPU/conn" col=5 ;;
		idle) fig="KiB RSS/conn" cpu="smaps Rss/Pss/Private KiB/conn" col=7 ;;
		esac
		if [[ $s == idle ]]; then
			IFS=$'\t' read -r m1 r1 <<<"$(median "$p" idle 7)"
			sm=$(awk -F'\t' -v n="$p" '$1 == n && $2 == "idle" && $13 == "ok" { print $8 }' "$RESULTS" | paste -sd ' ')
			IFS=$'\t' read -r pr prr <<<"$(paired "$p" idle 7)"
			echo "| $p | idle ($IDLE_CONNS conns) | $fig | $m1 ($r1) | $cpu | ${sm:--} | $pr ($prr) (RSS) | - | $nok of $REPEAT |"
		else
			IFS=$'\t' read -r m1 r1 <<<"$(median "$p" "$s" 4)"
			IFS=$'\t' read -r m2 r2 <<<"$(median "$p" "$s" 5)"
			IFS=$'\t' read -r pr prr <<<"$(paired "$p" "$s" "$col")"
			IFS=$'\t' read -r u _ <<<"$(median "$p" "$s" 6)"
			echo "| $p | $s | $fig | $m1 ($r1) | $cpu | $m2 ($r2) | $pr ($prr) | $u% | $nok of $REPEAT |"
		fi
	done
done
echo
echo "All runs:"
echo
echo "| run | proxy | scenario | MiB/s, conn/s or conns held | CPU ms/GiB or µs/conn | proxy CPU | KiB RSS/conn | smaps Rss/Pss/Private KiB/conn or p99 ms | RSS after (KiB) | errors | other load on proxy core | load core busy | check |"
echo "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
awk -F'\t' 'function pct(v) { return (v == "-") ? v : v "%" }
	{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $3, $1, $2, $4, $5, pct($6), $7, $8, $9, $10, pct($11), pct($12), $13 }' "$RESULTS"
echo

# target NAME SCENARIO COL LIMIT TEXT: a target on the paired ratio (LIMIT ends in ×) or
# on the median figure.
target() {
	local v range met
	if [[ $4 == *× ]]; then
		IFS=$'\t' read -r v range <<<"$(paired "$1" "$2" "$3")"
		[[ $v == - ]] || met=$(awk -v a="${v%×}" -v l="${4%×}" 'BEGIN { print (a <= l) ? "yes" : "no" }')
	else
		IFS=$'\t' read -r v range <<<"$(median "$1" "$2" "$3")"
		[[ $v == - ]] || met=$(awk -v a="$v" -v l="${4#*=}" -v op="${4%%=*}" 'BEGIN { print ((op == "min") ? a >= l : a <= l) ? "yes" : "no" }')
	fi
	echo "| $5 | ${v} (${range}) | ${met:--} |"
}
if [[ " ${SELECTED[*]} " == *" gotthard "* ]]; then
	echo "| target | measured: median (min–max) | met |"
	echo "|---|---:|---|"
	[[ " $SCENARIOS " != *" bulk "* ]] || target gotthard bulk 5 1.0× "bulk: gotthard CPU per GiB ≤ 1.0× $BASE's (paired)"
	[[ " $SCENARIOS " != *" rate "* ]] || target gotthard rate 4 min=10000 "rate: ≥ 10,000 connections per second through gotthard"
	[[ " $SCENARIOS " != *" idle "* ]] || target gotthard idle 7 max=2 "idle: gotthard RSS growth ≤ 2 KiB per idle connection, read ${IDLE_SETTLE} s after set-up (130: after the runtime's periodic collection)"
	echo
fi
if ((FAILED)); then
	log "error: a run failed its checks (see the check column)"
	exit 1
fi
