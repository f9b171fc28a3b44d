#!/usr/bin/env bash
# A/B comparison of proxy builds by CPU time per request, for changes too small for
# bench/run.sh to show: every proxy runs at once (each pinned to the same core, only
# one loaded at a time), and ROUNDS rounds load each for a short run, in a new random
# order each round. Runs next to each other see the same machine, so the per-round
# ratios to the first proxy hold up where absolute figures move by 20% between minutes.
#
#   go build -o /tmp/a ./examples/gateway     # (at the base commit)
#   go build -o /tmp/b ./examples/gateway     # (with the change)
#   bash bench/ab.sh 10 /tmp/a /tmp/b nginx
#
# A proxy is a binary taking -listen and -upstream (a gateway build, bench/floorproxy)
# or the word nginx. 1 KiB responses, 64 connections; loopback only. Prints, for each
# proxy, the median and mean CPU µs per request, the median of its per-round ratios to
# the first proxy with their quartiles and how many rounds were below 1 (cheaper than
# the first proxy), and the medians of its user and system CPU µs per request.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
ROUNDS=${1:-}
shift || true
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -gt 0 && $# -ge 2 ]] || {
	echo "usage: bash bench/ab.sh ROUNDS PROXY PROXY [PROXY...]   (PROXY: a binary or nginx)" >&2
	exit 2
}
DUR=${DUR:-2}            # seconds per measured run
CONNS=${CONNS:-64}
PATHQ=${PATHQ:-/1k}      # /1k or /100k
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
export PATH="$PATH:/usr/sbin:/sbin"

NAME=ab
NGINX_DIR="" # set once nginx is started, for the cleanup to stop it
EXTRA_CLEANUP='[[ -z $NGINX_DIR ]] || nginx -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf" -s stop 2>/dev/null'
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
for cmd in go wrk curl taskset gawk; do
	command -v "$cmd" >/dev/null || die "$cmd is not on PATH (bench/run.sh installs wrk; gawk is Debian's gawk)"
done

(cd "$REPO" && go build -o "$TMP/origin" ./bench/origin)
ORIGIN=127.0.0.1:$(free_port)
GOMAXPROCS=1 taskset -c "$LOAD_CPU" "$TMP/origin" -listen "$ORIGIN" -stats "127.0.0.1:$(free_port)" 2>"$TMP/origin.log" &
PIDS+=($!)
wait_http "http://$ORIGIN/1k"

declare -A PID_OF PORT_OF NAME_OF
i=0
for p in "$@"; do
	port=$(free_port)
	name=$(basename "$p")
	[[ -z ${NAME_OF[$name]:-} ]] || name="$name#$i"
	if [[ $p == nginx ]]; then
		command -v nginx >/dev/null || die "nginx is not on PATH (bench/run.sh installs it)"
		[[ -z $NGINX_DIR ]] || die "nginx can be given once"
		NGINX_DIR=$TMP/nginx
		mkdir -p "$NGINX_DIR/tmp"
		cat >"$NGINX_DIR/nginx.conf" <<EOF
master_process on; worker_processes 1; pid $NGINX_DIR/nginx.pid; error_log $NGINX_DIR/error.log warn;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path $NGINX_DIR/tmp; proxy_temp_path $NGINX_DIR/tmp;
 keepalive_timeout 120s; keepalive_requests 1000000;
 upstream origin { server $ORIGIN; keepalive 64; keepalive_requests 1000000; keepalive_timeout 120s; }
 server { listen 127.0.0.1:$port; location / { proxy_pass http://origin; proxy_http_version 1.1;
  proxy_set_header Connection ""; proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; proxy_max_temp_file_size 0; } } }
EOF
		taskset -c "$PROXY_CPU" nginx -p "$NGINX_DIR" -e "$NGINX_DIR/error.log" -c "$NGINX_DIR/nginx.conf"
		wait_http "http://127.0.0.1:$port/1k"
		pid=$(pgrep -P "$(cat "$NGINX_DIR/nginx.pid")" | head -1) # the one worker
	else
		[[ -x $p ]] || die "$p is not an executable"
		GOMAXPROCS=1 taskset -c "$PROXY_CPU" "$p" -listen "127.0.0.1:$port" -upstream "$ORIGIN" 2>"$TMP/$i.log" &
		pid=$!
		PIDS+=("$pid")
		wait_http "http://127.0.0.1:$port/1k"
	fi
	PID_OF[$name]=$pid
	PORT_OF[$name]=$port
	NAME_OF[$name]=1
	NAMES+=("$name")
	taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:$port$PATHQ" >/dev/null # warm-up
	i=$((i + 1))
done

ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12, $13}'; } # utime stime
log "$ROUNDS rounds of ${DUR}s per proxy, $CONNS connections, $PATHQ"
for r in $(seq 1 "$ROUNDS"); do
	for name in $(printf '%s\n' "${NAMES[@]}" | shuf); do
		pid=${PID_OF[$name]}
		read -r u0 s0 < <(ticks "$pid")
		out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${DUR}s" "http://127.0.0.1:${PORT_OF[$name]}$PATHQ" 2>&1)
		read -r u1 s1 < <(ticks "$pid")
		n=$(awk '/requests in/ {print $1}' <<<"$out")
		echo "$r $name ${n:-0} $((u1 - u0 + s1 - s0)) $((u1 - u0)) $((s1 - s0))" >>"$TMP/runs"
	done
done

gawk -v tck="$(getconf CLK_TCK)" -v first="${NAMES[0]}" -v order="${NAMES[*]}" '
$3 > 0 { t = $4 * 1e6 / tck / $3; T[$2, $1] = t; R[$1] = 1; U[$2, $1] = $5 * 1e6 / tck / $3; S[$2, $1] = $6 * 1e6 / tck / $3 }
function median(a, n) { asort(a); return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
END {
	printf "%-16s %10s %10s %14s %13s %8s %10s %10s\n", "proxy", "median", "mean", "ratio to " first, "ratio q1-q3", "below", "user", "system"
	split(order, names, " ")
	for (i = 1; i in names; i++) {
		b = names[i]; n = 0; m = 0; s = 0; below = 0; delete v; delete q; delete u; delete k
		for (r in R) {
			if (!((b, r) in T)) continue
			v[++n] = T[b, r]; s += T[b, r]; u[n] = U[b, r]; k[n] = S[b, r]
			if ((first, r) in T) { q[++m] = T[b, r] / T[first, r]; below += q[m] < 1 }
		}
		med = median(q, m) # (sorts q)
		q1 = q[int((m + 3) / 4)]; q3 = q[int((3 * m + 3) / 4)]
		printf "%-16s %7.2f µs %7.2f µs %13.3f× %6.3f-%.3f %5d/%-2d %7.2f µs %7.2f µs\n", b, median(v, n), s / n, med, q1, q3, below, m, median(u, n), median(k, n)
	}
}' "$TMP/runs"
