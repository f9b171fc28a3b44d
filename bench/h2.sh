#!/usr/bin/env bash
# HTTP/2 load benchmark: Gotthard's gateway and nginx, each pinned alone to the same
# core, terminating HTTP/2 over TLS (ALPN h2, ECDSA P-256 certificate) for h2load (16
# connections x 10 concurrent streams, 1 KiB responses) in front of an HTTP/1.1 origin
# with kept-alive upstream connections. Reports requests/s and CPU time per request.
#
#   bash bench/h2.sh        # Markdown report on stdout, progress on stderr
#
# Knobs: DURATION (s, default 10), CONNS (16), STREAMS (10), REPEAT (1), PROXY_CPU (0),
# LOAD_CPU (1). Loopback only; every run is bounded by `timeout`.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
DURATION=${DURATION:-10}
CONNS=${CONNS:-16}
STREAMS=${STREAMS:-10}
REPEAT=${REPEAT:-1}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
for v in DURATION CONNS STREAMS REPEAT PROXY_CPU LOAD_CPU; do
	[[ ${!v} =~ ^[0-9]+$ ]] || { echo "bench: $v must be a whole number" >&2; exit 2; }
done
((DURATION > 0 && DURATION <= 300 && REPEAT > 0 && REPEAT <= 10)) || { echo "bench: DURATION in 1..300, REPEAT in 1..10" >&2; exit 2; }

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/gotthard-h2bench.XXXXXX")
PIDS=()
cleanup() {
	local rc=$? pid
	trap - EXIT INT TERM
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

export PATH="$PATH:/usr/sbin:/sbin"
need=()
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v nginx >/dev/null || need+=(nginx-light)
command -v openssl >/dev/null || need+=(openssl)
if ((${#need[@]})); then
	[[ $(id -u) == 0 ]] || die "missing: ${need[*]} (install them, or run as root)"
	log "installing ${need[*]}"
	apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_of() { # sum of utime+stime (ticks) of the given pids
	local t=0 pid
	for pid in "$@"; do
		[[ -r /proc/$pid/stat ]] && t=$((t + $(sed 's/^.*) //' "/proc/$pid/stat" | awk '{print $12+$13}')))
	done
	echo "$t"
}
wait_port() {
	local i
	for i in $(seq 1 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

log "building"
(cd "$REPO" && go build -o "$TMP/gateway" ./examples/gateway && go build -o "$TMP/origin" ./bench/origin)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
	-keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null

ORIGIN_PORT=$(free_port)
GOMAXPROCS=1 taskset -c "$LOAD_CPU" "$TMP/origin" -listen "127.0.0.1:$ORIGIN_PORT" -stats "127.0.0.1:$(free_port)" 2>"$TMP/origin.log" &
PIDS+=($!)
wait_port "$ORIGIN_PORT" || die "origin did not start"

start_gotthard() {
	PORT=$(free_port)
	GOMAXPROCS=1 taskset -c "$PROXY_CPU" "$TMP/gateway" -listen "127.0.0.1:$(free_port)" -tls-listen "127.0.0.1:$PORT" \
		-cert "$TMP/cert.pem" -key "$TMP/key.pem" -upstream "127.0.0.1:$ORIGIN_PORT" 2>"$TMP/gotthard.log" &
	SERVER_PIDS=($!)
	PIDS+=($!)
	wait_port "$PORT" || die "gateway did not start: $(cat "$TMP/gotthard.log")"
}

start_nginx() {
	PORT=$(free_port)
	local dir="$TMP/nginx"
	mkdir -p "$dir/tmp"
	cat >"$dir/nginx.conf" <<CONF
daemon off;
master_process on;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    keepalive_requests 1000000;
    http2_max_requests 1000000;
    upstream origin {
        server 127.0.0.1:$ORIGIN_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$PORT ssl http2;
        ssl_certificate $TMP/cert.pem;
        ssl_certificate_key $TMP/key.pem;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
CONF
	taskset -c "$PROXY_CPU" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" 2>"$TMP/nginx.log" &
	local master=$!
	PIDS+=($master)
	wait_port "$PORT" || die "nginx did not start: $(cat "$TMP/nginx.log" "$dir/error.log" 2>/dev/null)"
	SERVER_PIDS=("$master" $(pgrep -P "$master"))
}

tck=$(getconf CLK_TCK)
declare -A CPU RPS
echo "## HTTP/2 over TLS ($(date -u '+%Y-%m-%d %H:%M UTC'))"
echo
echo "$(nproc) CPUs ($(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)); $(uname -r); $(go env GOVERSION); $(nginx -v 2>&1 | sed 's/.*: //'); h2load $(h2load --version | awk '{print $2}'). Server on CPU $PROXY_CPU (GOMAXPROCS=1 / one nginx worker); h2load and the HTTP/1.1 origin on CPU $LOAD_CPU; $CONNS connections x $STREAMS streams, 1 KiB responses, ${DURATION}s per run."
echo "Command: \`DURATION=$DURATION CONNS=$CONNS STREAMS=$STREAMS REPEAT=$REPEAT bash bench/h2.sh\`"
echo
echo "| run | server | requests/s | CPU µs/request | CPU/request vs nginx |"
echo "|---:|---|---:|---:|---:|"
for r in $(seq 1 "$REPEAT"); do
	for s in gotthard nginx; do
		"start_$s"
		url="https://127.0.0.1:$PORT/1k"
		timeout 30 taskset -c "$LOAD_CPU" h2load -c "$CONNS" -m "$STREAMS" -D 2 "$url" >/dev/null 2>&1 || true # warm-up
		c0=$(cpu_of "${SERVER_PIDS[@]}")
		out=$(timeout $((DURATION + 30)) taskset -c "$LOAD_CPU" h2load -c "$CONNS" -m "$STREAMS" -D "$DURATION" "$url" 2>&1) || die "h2load failed: $out"
		c1=$(cpu_of "${SERVER_PIDS[@]}")
		n=$(awk '/^requests:/{print $8}' <<<"$out")
		[[ $n =~ ^[0-9]+$ && $n -gt 0 ]] || die "no requests succeeded: $out"
		CPU[$s]=$(awk -v c=$((c1 - c0)) -v t="$tck" -v n="$n" 'BEGIN{printf "%.1f", c / t * 1e6 / n}')
		RPS[$s]=$(awk -v n="$n" -v d="$DURATION" 'BEGIN{printf "%.0f", n / d}')
		log "run $r $s: ${RPS[$s]} req/s, ${CPU[$s]} µs/request"
		for pid in "${SERVER_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
		for pid in "${SERVER_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	done
	for s in gotthard nginx; do
		echo "| $r | $s | ${RPS[$s]} | ${CPU[$s]} | $(awk -v a="${CPU[$s]}" -v b="${CPU[nginx]}" 'BEGIN{printf "%.2f×", a / b}') |"
	done
done
