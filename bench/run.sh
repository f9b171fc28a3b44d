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
CLK_TCK=$(getconf CLK_TCK)

# Room for the idle scenario's connections (and the proxy's own).
hard=$(ulimit -Hn)
[[ $hard == unlimited ]] && hard=1048576
ulimit -n "$hard" 2>/dev/null || true
if [[ $RUN_IDLE == 1 ]] && (($(ulimit -n) < IDLE_CONNS + 1024)); then
	die "ulimit -n is $(ulimit -n); IDLE_CONNS=$IDLE_CONNS needs at least $((IDLE_CONNS + 1024))"
fi

# ---------------------------------------------------------------- helpers

# wait_http URL PID: wait up to 10 s for URL to answer 200 while PID lives.
wait_http() {
	local url=$1 pid=$2 i
	for i in $(seq 1 100); do
		alive "$pid" || return 1
		if curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# pids_of PID: PID and its direct children (nginx master and workers).
pids_of() {
	echo "$1"
	pgrep -P "$1" 2>/dev/null || true
}

# rss_kib PID...: VmRSS summed over the processes, in KiB.
rss_kib() {
	local p sum=0 f
	for p in "$@"; do
		[[ -r /proc/$p/status ]] || continue
		f=$(awk '/^VmRSS:/{print $2}' "/proc/$p/status")
		sum=$((sum + ${f:-0}))
	done
	echo "$sum"
}

# cpu_stat CPU: "total idle steal" jiffies of one CPU from /proc/stat.
cpu_stat() {
	awk -v c="cpu$1" '$1 == c { t = 0; for (i = 2; i <= 9; i++) t += $i; print t, $5 + $6, $9; exit }' /proc/stat
}

# busy_pct BEFORE AFTER: share of the interval the CPU was busy (not idle, not stolen).
busy_pct() {
	awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); t = y[1] - x[1]; if (t <= 0) { print 0; exit }
		printf "%.0f", (t - (y[2] - x[2]) - (y[3] - x[3])) / t * 100 }'
}

# steal_pct BEFORE AFTER: share of the interval the hypervisor gave the CPU to someone else.
steal_pct() {
	awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); t = y[1] - x[1]; if (t <= 0) { print 0; exit }
		printf "%.0f", (y[3] - x[3]) / t * 100 }'
}

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

nginx_conf() { # DIR PORT
	local dir=$1 port=$2 wc=$((IDLE_CONNS + 4096)) v=""
	local nv
	nv=$(nginx -V 2>&1)
	mkdir -p "$dir/tmp"
	for m in fastcgi uwsgi scgi; do
		[[ $nv == *"--without-http_${m}_module"* ]] || v+="    ${m}_temp_path $dir/tmp/$m;"$'\n'
	done
	cat >"$dir/nginx.conf" <<EOF
# Generated by bench/run.sh.
daemon off;
master_process on;
worker_processes 1;
worker_cpu_affinity $(cpu_mask "$PROXY_CPU");
worker_rlimit_nofile $((wc * 2));
pid $dir/nginx.pid;
error_log $dir/error.log warn;

events {
    worker_connections $wc;
}

http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
$v
    # No limit on requests per connection, like the Go servers; nginx's
    # default (1000) would reconnect wrk and upstream connections mid-run.
    keepalive_timeout 120s;
    keepalive_requests 1000000;

    upstream origin {
        server 127.0.0.1:$ORIGIN_PORT;
        keepalive 64;
        keepalive_requests 1000000;
        keepalive_timeout 120s;
    }

    server {
        listen 127.0.0.1:$port;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            # Stream what does not fit the buffers instead of spooling to disk.
            proxy_max_temp_file_size 0;
        }
    }
}
EOF
}

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
	gotthard-observed) # the same build with Prometheus metrics (on the admin service) and a JSON access log
		GOMAXPROCS=1 taskset -c "$PROXY_CPU" "$TMP/bin/gateway" \
			-listen "127.0.0.1:$PROXY_PORT" -upstream "127.0.0.1:$ORIGIN_PORT" \
			-admin 127.0.0.1:0 -access-log json -access-log-file "$TMP/$tag.access.log" 2>"$PROXY_LOG" &
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
		nginx_conf "$dir" "$PROXY_PORT"
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

# to_ms VALUE: wrk latency ("812.00us", "1.23ms", "2.01s", "1.5m") in ms.
to_ms() {
	awk -v v="$1" 'BEGIN {
		n = v + 0
		if (v ~ /us$/) n /= 1000
		else if (v ~ /ms$/) n = n
		else if (v ~ /m$/) n *= 60000
		else if (v ~ /s$/) n *= 1000
		printf "%.2f", n
	}'
}

# run_wrk OUT SECONDS URL
run_wrk() {
	timeout --kill-after=5 $(($2 + 30)) taskset -c "$LOAD_CPU" \
		wrk -t"$THREADS" -c"$CONNS" -d"$2s" --latency --timeout 5s "$3" >"$1" 2>&1
}

# ---------------------------------------------------------------- load

RESULTS="$TMP/results.tsv"
IDLE_RESULTS="$TMP/idle.tsv"
: >"$RESULTS"
: >"$IDLE_RESULTS"

run_load() { # NAME SCENARIO RUN
	local name=$1 scen=$2 rep=$3 tag="$1-$2-$3" out
	log "$name / $scen: starting (run $rep of $REPEAT)"
	if ! start_proxy "$name" "$tag"; then
		log "$name / $scen: proxy did not start, skipped"
		return 0
	fi
	local url="http://127.0.0.1:$PROXY_PORT/$scen"
	if ((WARMUP > 0)); then
		run_wrk "$TMP/wrk-$tag-warmup.txt" "$WARMUP" "$url" || log "$name / $scen: warm-up wrk exited non-zero"
	fi

	local pids c0 c1 o0 o1
	mapfile -t pids < <(pids_of "$PROXY_PID")
	o0=$(origin_conns)
	c0=$(cpu_ticks "${pids[@]}")
	local lc0 pc0 lc1 pc1
	lc0=$(cpu_stat "$LOAD_CPU")
	pc0=$(cpu_stat "$PROXY_CPU")
	out="$TMP/wrk-$tag.txt"
	if ! run_wrk "$out" "$DURATION" "$url"; then
		log "$name / $scen: wrk failed:"
		cat "$out" >&2
		stop_proxy
		return 0
	fi
	c1=$(cpu_ticks "${pids[@]}")
	lc1=$(cpu_stat "$LOAD_CPU")
	pc1=$(cpu_stat "$PROXY_CPU")
	o1=$(origin_conns)
	local rss
	rss=$(rss_kib "${pids[@]}")
	stop_proxy

	local reqs secs rps p99 errs non2xx
	reqs=$(awk '/requests in/{print $1; exit}' "$out")
	secs=$(awk '/requests in/{sub(/,$/, "", $4); print $4; exit}' "$out")
	secs=$(awk -v ms="$(to_ms "$secs")" 'BEGIN{printf "%.3f", ms / 1000}')
	rps=$(awk '/^Requests\/sec:/{print $2; exit}' "$out")
	p99=$(to_ms "$(awk '$1 == "99%" {print $2; exit}' "$out")")
	errs=$(awk '/Socket errors:/{gsub(/,/, ""); print $4 + $6 + $8 + $10; exit}' "$out")
	non2xx=$(awk '/Non-2xx or 3xx responses:/{print $NF; exit}' "$out")
	errs=$((${errs:-0} + ${non2xx:-0}))
	if [[ -z $reqs || $reqs == 0 ]]; then
		log "$name / $scen: no requests completed"
		cat "$out" >&2
		return 0
	fi
	local cpu_us util lbusy steal other
	lbusy=$(busy_pct "$lc0" "$lc1")
	steal="$(steal_pct "$pc0" "$pc1")/$(steal_pct "$lc0" "$lc1")"
	cpu_us=$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$reqs" 'BEGIN{printf "%.1f", t / hz * 1e6 / n}')
	util=$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v s="$secs" 'BEGIN{printf "%.0f", t / hz / s * 100}')
	# Whatever else ran on the proxy's core (other users' work) during the run.
	other=$(($(busy_pct "$pc0" "$pc1") - util))
	((other >= 0)) || other=0
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
		"$name" "$scen" "$rps" "$p99" "$cpu_us" "$util" "$rss" "$((o1 - o0))" "$errs" "$lbusy" "$other" "$rep" >>"$RESULTS"
	log "$name / $scen: $rps req/s, p99 ${p99} ms, ${cpu_us} µs CPU/req, CPU ${util}%, RSS ${rss} KiB, upstream conns +$((o1 - o0)), errors $errs, load core busy ${lbusy}%, other load on proxy core ${other}%, steal ${steal}%"
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
idle0=$(cpu_stat "$PROXY_CPU") idle1=$(cpu_stat "$LOAD_CPU")
sleep 1
BG0=$(busy_pct "$idle0" "$(cpu_stat "$PROXY_CPU")")
BG1=$(busy_pct "$idle1" "$(cpu_stat "$LOAD_CPU")")
BG_BUSY="$BG0%/$BG1%"
log "CPU $PROXY_CPU/$LOAD_CPU busy with other work before the run: $BG_BUSY"

START=$(date +%s)
if [[ $RUN_LOAD == 1 ]]; then
	for ((rep = 1; rep <= REPEAT; rep++)); do
		# Odd runs take the proxies in order, even runs in reverse (A B B A ...), so
		# that a machine that drifts slower or faster over minutes favours none.
		order=("${SELECTED[@]}")
		if ((rep % 2 == 0)); then
			order=()
			for ((i = ${#SELECTED[@]} - 1; i >= 0; i--)); do order+=("${SELECTED[i]}"); done
		fi
		for s in $SCENARIOS; do
			for p in "${order[@]}"; do run_load "$p" "$s" "$rep"; done
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

if [[ -s $RESULTS ]]; then
	# One row per proxy × scenario: the run with the median CPU µs/req (all
	# its columns, so the row is one real run), in the order they ran. Runs in
	# which other work took more than 10% of the proxy's core are left out
	# when there is at least one run without.
	awk -F'\t' '
		!(($1 FS $2) in n) { order[++keys] = $1 FS $2 }
		{ k = $1 FS $2; rows[k, ++n[k]] = $0; if ($11 + 0 <= 10) clean[k]++ }
		END {
			for (j = 1; j <= keys; j++) {
				k = order[j]; m = 0
				for (a = 1; a <= n[k]; a++) {
					split(rows[k, a], f, "\t")
					if (clean[k] > 0 && f[11] + 0 > 10) continue
					m++; c[m] = f[5] + 0; idx[m] = a
				}
				for (a = 2; a <= m; a++)   # insertion sort of idx by c
					for (b = a; b > 1 && c[b - 1] > c[b]; b--) {
						t = idx[b]; idx[b] = idx[b - 1]; idx[b - 1] = t
						t = c[b]; c[b] = c[b - 1]; c[b - 1] = t
					}
				printf "%s\t%d\t%.1f\t%.1f\t%d\n", rows[k, idx[int((m + 1) / 2)]], m, c[1], c[m], n[k]
			}
		}' "$RESULTS" >"$TMP/median.tsv"
	# Paired ratios: in each run (round) a proxy's CPU µs/req ÷ BASE's in the same
	# round, which ran next to it; their median and range per proxy × scenario.
	awk -F'\t' -v base="$BASE" '
		{ cpu[$1, $2, $12] = $5 + 0; if (!(($1 FS $2) in seen)) { seen[$1 FS $2]; keys[++nk] = $1 FS $2 } }
		END {
			for (j = 1; j <= nk; j++) {
				split(keys[j], k, FS); m = 0; delete v
				for (key in cpu) {
					split(key, f, SUBSEP)
					if (f[1] != k[1] || f[2] != k[2] || !((base, f[2], f[3]) in cpu) || cpu[base, f[2], f[3]] <= 0) continue
					v[++m] = cpu[key] / cpu[base, f[2], f[3]]
				}
				if (m == 0) continue
				for (a = 2; a <= m; a++)
					for (b = a; b > 1 && v[b - 1] > v[b]; b--) { t = v[b]; v[b] = v[b - 1]; v[b - 1] = t }
				med = (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
				printf "%s\t%s\t%.2f×\t%.2f–%.2f\n", k[1], k[2], med, v[1], v[m]
			}
		}' "$RESULTS" >"$TMP/paired.tsv"
	if ((REPEAT > 1)); then
		echo "Each row is the median run by CPU µs/req of $REPEAT runs (the runs of all proxies interleaved), leaving out runs where other work took more than 10% of the proxy's core if there are runs without; all runs are listed below."
		echo
	fi
	echo "| proxy | scenario | req/s | p99 (ms) | CPU µs/req | proxy CPU | RSS after (MiB) | upstream conns opened | errors | load core busy | other load on proxy core | CPU/req vs $BASE | req/s vs $BASE |$( ((REPEAT > 1)) && echo " CPU µs/req min–max | CPU/req vs $BASE, paired: median (min–max) |")"
	echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|$( ((REPEAT > 1)) && echo "---:|---:|")"
	awk -F'\t' -v range=$((REPEAT > 1)) -v base="$BASE" '
		FILENAME != ARGV[ARGC - 1] { paired[$1 FS $2] = $3 " (" $4 ")"; next }
		{ row[++nr] = $0; if ($1 == base) { ncpu[$2] = $5; nrps[$2] = $3 } }
		END {
			for (i = 1; i <= nr; i++) {
				split(row[i], f, "\t")
				rc = (f[2] in ncpu && ncpu[f[2]] > 0) ? sprintf("%.2f×", f[5] / ncpu[f[2]]) : "n/a"
				rr = (f[2] in nrps && nrps[f[2]] > 0) ? sprintf("%.2f×", f[3] / nrps[f[2]]) : "n/a"
				printf "| %s | %s | %.0f | %.2f | %.1f | %s%% | %.1f | %d | %d | %s%% | %s%% | %s | %s |",
					f[1], f[2], f[3], f[4], f[5], f[6], f[7] / 1024, f[8], f[9], f[10], f[11], rc, rr
				if (range) printf " %.1f–%.1f (%d of %d runs) | %s |", f[14], f[15], f[13], f[16], ((f[1] FS f[2]) in paired) ? paired[f[1] FS f[2]] : "n/a"
				printf "\n"
			}
		}' "$TMP/paired.tsv" "$TMP/median.tsv"
	echo
	echo "CPU µs/req: utime+stime of all the proxy's processes during the measured run ÷ requests completed (lower is better; ratio < 1 beats $BASE)."
	if ((REPEAT > 1)); then
		echo "CPU/req vs $BASE compares the median rows; the paired ratio is the median over runs of CPU µs/req ÷ $BASE's in the same run, which ran next to it (odd runs take the proxies in order, even runs in reverse): it holds up better when the machine's speed moves between minutes."
	fi
	echo "Proxy CPU: share of its core the proxy used; well under 100% means the load side (CPU $LOAD_CPU, see load core busy) was the limit, not the proxy."
	echo "Load core busy: CPU $LOAD_CPU busy (wrk, origin and anything else); other load on proxy core: CPU $PROXY_CPU busy minus the proxy itself, i.e. other work that competed with the proxy (should be ~0%)."
	echo
	if ((REPEAT > 1)); then
		echo "All runs:"
		echo
		echo "| run | proxy | scenario | req/s | p99 (ms) | CPU µs/req | proxy CPU | upstream conns opened | errors | load core busy | other load on proxy core |"
		echo "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
		awk -F'\t' '{ printf "| %d | %s | %s | %.0f | %.2f | %.1f | %s%% | %d | %d | %s%% | %s%% |\n",
			$12, $1, $2, $3, $4, $5, $6, $8, $9, $10, $11 }' "$RESULTS"
		echo
	fi
fi

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
