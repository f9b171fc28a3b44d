#!/usr/bin/env bash
# HTTP/2 over TLS load benchmark: Gotthard, nginx and HAProxy, each alone on one core
# (GOMAXPROCS=1; one nginx worker; nbthread 1), terminating HTTP/2 over TLS 1.3 for
# h2load (CONNS connections x STREAMS concurrent streams, 1 KiB responses) in front of
# one origin, with kept-alive upstream connections. Every server gets the same ECDSA
# P-256 certificate and the same TLS 1.3 suite (h2load offers only SUITE; each run
# checks what was negotiated). Two upstreams:
#
#   h1   an HTTP/1.1 origin (the common case)
#   h2c  the same origin over HTTP/2 in clear text (gRPC-shaped: nginx with grpc_pass,
#        HAProxy with `proto h2`, Gotthard with -upstream-proto h2c)
#
# "gotthard" is bench/h2proxy, a proxy.Service with a TLS endpoint and one peer and
# nothing else; "gateway" is examples/gateway with the same job (and GW_ARGS), whose
# binary links metrics, tracing, caching, compression and limits besides.
#
# nginx and Gotthard keep up to 2 x CONNS x STREAMS idle upstream connections: an
# HTTP/1.1 connection (and nginx's grpc_pass one) carries one request at a time, so with
# fewer they would open and close connections under load. HAProxy reuses its upstream
# connections always.
#
# For each run: requests/s, CPU time per request of the server's processes, latency
# percentiles from h2load's per-request log, and the servers' memory (the largest sums of
# RSS and of Pss over their processes, sampled each second under load). Runs interleave over REPEAT rounds, the order of
# the servers turning each round; the report gives medians and, for the CPU per request,
# Gotthard's paired ratio to each other server (median, min–max over the rounds).
#
#   bash bench/h2.sh                               # REPEAT=3, about 7 minutes
#   REPEAT=5 DURATION=10 bash bench/h2.sh > h2.md  # the report on stdout, progress on stderr
#   UPSTREAMS=h1 SERVERS="gotthard haproxy" bash bench/h2.sh
#
# Knobs: DURATION (s, 10), WARMUP (s, 2), CONNS (16), STREAMS (10), REPEAT (3), SERVERS
# ("gotthard nginx haproxy"; "gateway" too), UPSTREAMS ("h1 h2c"), SUITE (TLS_AES_128_GCM_SHA256),
# PROXY_CPU (0), LOAD_CPU (1), GW_ARGS (more gateway flags), KEEP_TMP (1 keeps logs).
# Loopback only; every run is bounded by `timeout`. Exits 1 if a run failed its checks.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-16}
STREAMS=${STREAMS:-10}
REPEAT=${REPEAT:-3}
SERVERS=${SERVERS:-"gotthard nginx haproxy"}
UPSTREAMS=${UPSTREAMS:-"h1 h2c"}
SUITE=${SUITE:-TLS_AES_128_GCM_SHA256}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
read -r -a GW_FLAGS <<<"${GW_ARGS:-}"
LOG_PREFIX=h2bench
# shellcheck source=bench/proc.sh
source "$BENCH_DIR/proc.sh"

for v in DURATION WARMUP CONNS STREAMS REPEAT PROXY_CPU LOAD_CPU; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number"
done
((DURATION > 0 && DURATION <= 300 && REPEAT > 0 && REPEAT <= 15)) || die "DURATION in 1..300, REPEAT in 1..15"
for s in $SERVERS; do [[ $s =~ ^(gotthard|gateway|nginx|haproxy)$ ]] || die "unknown server $s"; done
for u in $UPSTREAMS; do [[ $u =~ ^(h1|h2c)$ ]] || die "unknown upstream $u"; done
[[ " $SERVERS " == *" gotthard "* ]] || die "SERVERS must include gotthard"

export PATH="$PATH:/usr/sbin:/sbin"
ensure h2load nghttp2-client || die "h2load is missing (Debian: nghttp2-client)"
ensure openssl openssl || die "openssl is missing"
[[ " $SERVERS " != *" nginx "* ]] || ensure nginx nginx-light || die "nginx is missing"
[[ " $SERVERS " != *" haproxy "* ]] || ensure haproxy haproxy || die "haproxy is missing"
command -v taskset >/dev/null || die "taskset (util-linux) is missing"

setup_tmp h2bench
log "building"
(cd "$REPO" && go build -o "$TMP/h2proxy" ./bench/h2proxy && go build -o "$TMP/origin" ./bench/origin)
if [[ " $SERVERS " == *" gateway "* ]]; then
	(cd "$REPO" && go build -o "$TMP/gateway" ./examples/gateway)
fi
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
	-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null
cat "$TMP/cert.pem" "$TMP/key.pem" >"$TMP/combined.pem"

pick_port
ORIGIN_PORT=$PORT
pick_port
ORIGIN_H2C_PORT=$PORT
GOMAXPROCS=1 taskset -c "$LOAD_CPU" "$TMP/origin" -listen "127.0.0.1:$ORIGIN_PORT" -h2c "127.0.0.1:$ORIGIN_H2C_PORT" \
	-stats 127.0.0.1:0 2>"$TMP/origin.log" &
ORIGIN_PID=$!
LIVE["$ORIGIN_PID"]=1
if ! wait_port "$ORIGIN_PORT" "$ORIGIN_PID" || ! wait_port "$ORIGIN_H2C_PORT" "$ORIGIN_PID"; then
	die "origin did not start: $(cat "$TMP/origin.log")"
fi

# upstream_port UP: the origin's port for upstream UP.
upstream_port() { if [[ $1 == h2c ]]; then echo "$ORIGIN_H2C_PORT"; else echo "$ORIGIN_PORT"; fi; }

# start_gotthard UP, start_gateway UP, start_nginx UP, start_haproxy UP: start the server
# on PORT, in front of upstream UP; SERVER_PIDS are its processes.
start_gotthard() {
	pick_port
	GOMAXPROCS=1 taskset -c "$PROXY_CPU" "$TMP/h2proxy" -listen "127.0.0.1:$PORT" -cert "$TMP/cert.pem" -key "$TMP/key.pem" \
		-upstream "127.0.0.1:$(upstream_port "$1")" -upstream-proto "$1" -keepalive $((CONNS * STREAMS * 2)) 2>"$TMP/gotthard.log" &
	SERVER_PIDS=($!)
	LIVE[$!]=1
	wait_port "$PORT" "$!" || die "h2proxy did not start: $(cat "$TMP/gotthard.log")"
}

start_gateway() {
	local proto=h1 plain
	[[ $1 == h2c ]] && proto=h2c
	pick_port
	plain=$PORT
	pick_port
	echo "upstream_keepalive_pool_size: $((CONNS * STREAMS * 2))" >"$TMP/gateway.yaml"
	GOMAXPROCS=1 taskset -c "$PROXY_CPU" "$TMP/gateway" -c "$TMP/gateway.yaml" -listen "127.0.0.1:$plain" -tls-listen "127.0.0.1:$PORT" \
		-cert "$TMP/cert.pem" -key "$TMP/key.pem" -upstream "127.0.0.1:$(upstream_port "$1")" -upstream-proto "$proto" \
		"${GW_FLAGS[@]}" 2>"$TMP/gateway.log" &
	SERVER_PIDS=($!)
	LIVE[$!]=1
	wait_port "$PORT" "$!" || die "gateway did not start: $(cat "$TMP/gateway.log")"
}

start_nginx() {
	local dir="$TMP/nginx" pass
	pick_port
	mkdir -p "$dir/tmp"
	if [[ $1 == h2c ]]; then
		pass="grpc_pass grpc://origin;"
	else
		pass='proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection "";'
	fi
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
        server 127.0.0.1:$(upstream_port "$1");
        keepalive $((CONNS * STREAMS * 2)); # one upstream connection per stream in flight, kept
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$PORT ssl http2;
        ssl_certificate $TMP/cert.pem;
        ssl_certificate_key $TMP/key.pem;
        ssl_protocols TLSv1.3;
        location / { $pass }
    }
}
CONF
	taskset -c "$PROXY_CPU" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" 2>"$TMP/nginx.log" &
	local master=$!
	LIVE[$master]=1
	wait_port "$PORT" "$master" || die "nginx did not start: $(cat "$TMP/nginx.log" "$dir/error.log" 2>/dev/null)"
	live_children "$master"
	mapfile -t SERVER_PIDS < <(echo "$master"; pgrep -P "$master")
}

start_haproxy() {
	local proto=""
	[[ $1 == h2c ]] && proto=" proto h2"
	pick_port
	cat >"$TMP/haproxy.cfg" <<CONF
global
    nbthread 1
    maxconn 4096
    ssl-default-bind-options ssl-min-ver TLSv1.3
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    http-reuse always
frontend fe
    bind 127.0.0.1:$PORT ssl crt $TMP/combined.pem alpn h2,http/1.1
    default_backend be
backend be
    server origin 127.0.0.1:$(upstream_port "$1")$proto
CONF
	taskset -c "$PROXY_CPU" haproxy -db -f "$TMP/haproxy.cfg" 2>"$TMP/haproxy.log" &
	SERVER_PIDS=($!)
	LIVE[$!]=1
	wait_port "$PORT" "$!" || die "haproxy did not start: $(cat "$TMP/haproxy.log")"
}

stop_server() {
	local pid
	for pid in "${SERVER_PIDS[@]}"; do stop_pid "$pid"; done
}

# mem_kib FIELD PID...: the sum of the processes' FIELD (Pss or Rss) from smaps_rollup,
# in KiB.
mem_kib() {
	local field=$1 p sum=0 v
	shift
	for p in "$@"; do
		v=$(awk -v f="$field:" '$1 == f {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || true)
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}

# sample_mem FILE PID...: writes the largest sums of Pss and of Rss seen each second to
# FILE ("pss rss", KiB) until killed.
sample_mem() {
	local f=$1 pss=0 rss=0 v w
	shift
	while :; do
		v=$(mem_kib Pss "$@")
		w=$(mem_kib Rss "$@")
		((v > pss)) && pss=$v
		((w > rss)) && rss=$w
		echo "$pss $rss" >"$f"
		sleep 1
	done
}

# percentile FILE P: the P-th percentile of the numbers in FILE (one per line, sorted).
percentile() {
	awk -v p="$2" '{a[NR]=$1} END{if (NR==0) {print 0; exit}; i=int(NR*p/100+0.5); if (i<1) i=1; if (i>NR) i=NR; print a[i]}' "$1"
}

tck=$(getconf CLK_TCK)
declare -A CPU RPS P50 P99 MEM RSS # key: upstream/server/round
read -r -a SV <<<"$SERVERS"
for r in $(seq 1 "$REPEAT"); do
	for up in $UPSTREAMS; do
		n=${#SV[@]}
		for ((i = 0; i < n; i++)); do
			s=${SV[$(((i + r - 1) % n))]}
			"start_$s" "$up"
			url="https://127.0.0.1:$PORT/1k"
			h2=(h2load -c "$CONNS" -m "$STREAMS" --tls13-ciphers="$SUITE")
			if ((WARMUP > 0)); then
				timeout $((WARMUP + 30)) taskset -c "$LOAD_CPU" "${h2[@]}" -D "$WARMUP" "$url" >/dev/null 2>&1 || true
			fi
			sample_mem "$TMP/mem" "${SERVER_PIDS[@]}" &
			sampler=$!
			LIVE["$sampler"]=1
			c0=$(cpu_ticks "${SERVER_PIDS[@]}")
			out=$(timeout $((DURATION + 30)) taskset -c "$LOAD_CPU" "${h2[@]}" -D "$DURATION" --log-file="$TMP/lat.tsv" "$url" 2>&1) ||
				die "h2load against $s ($up) failed: $out"
			c1=$(cpu_ticks "${SERVER_PIDS[@]}")
			stop_pid "$sampler"
			grep -q "^Cipher: $SUITE" <<<"$out" || die "$s ($up) did not negotiate $SUITE: $(grep -E '^(TLS|Cipher|Application)' <<<"$out")"
			grep -q '^Application protocol: h2' <<<"$out" || die "$s ($up) did not negotiate h2"
			read -r ok failed errored < <(awk '/^requests:/{print $8, $10, $12}' <<<"$out")
			[[ $ok =~ ^[0-9]+$ && $ok -gt 0 ]] || die "no request succeeded through $s ($up): $out"
			((failed == 0 && errored == 0)) || die "$s ($up): $failed failed, $errored errored: $out"
			non2xx=$(awk '/^status codes:/{print $5 + $7 + $9}' <<<"$out")
			((non2xx == 0)) || die "$s ($up): $non2xx responses were not 2xx: $out"
			k="$up/$s/$r"
			CPU[$k]=$(awk -v c=$((c1 - c0)) -v t="$tck" -v n="$ok" 'BEGIN{printf "%.2f", c / t * 1e6 / n}')
			RPS[$k]=$(awk -v n="$ok" -v d="$DURATION" 'BEGIN{printf "%.0f", n / d}')
			awk -F'\t' '$2 ~ /^2/ {print $3}' "$TMP/lat.tsv" | sort -n >"$TMP/lat.sorted"
			P50[$k]=$(awk -v v="$(percentile "$TMP/lat.sorted" 50)" 'BEGIN{printf "%.2f", v / 1000}')
			P99[$k]=$(awk -v v="$(percentile "$TMP/lat.sorted" 99)" 'BEGIN{printf "%.2f", v / 1000}')
			read -r pss rss < <(cat "$TMP/mem" 2>/dev/null || echo 0 0)
			MEM[$k]=$(awk -v v="$pss" 'BEGIN{printf "%.1f", v / 1024}')
			RSS[$k]=$(awk -v v="$rss" 'BEGIN{printf "%.1f", v / 1024}')
			log "round $r $up $s: ${RPS[$k]} req/s, ${CPU[$k]} µs/request, p50 ${P50[$k]} ms, p99 ${P99[$k]} ms, Pss ${MEM[$k]} MiB, RSS ${RSS[$k]} MiB"
			stop_server
			rm -f "$TMP/mem" "$TMP/lat.tsv"
		done
	done
done

# median: the median of the numbers on stdin, one per line.
median() { sort -g | awk '{a[NR]=$1} END{if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }

# column UP SERVER ARRAY: the values of ARRAY for UP and SERVER over the rounds.
column() {
	local -n arr=$3
	local r
	for r in $(seq 1 "$REPEAT"); do echo "${arr[$1/$2/$r]}"; done
}

# paired UP SERVER BASE: SERVER's CPU per request over BASE's, per round: "median
# (min–max)".
paired() {
	local r v=()
	for r in $(seq 1 "$REPEAT"); do
		v+=("$(awk -v a="${CPU[$1/$2/$r]}" -v b="${CPU[$1/$3/$r]}" 'BEGIN{printf "%.3f", a / b}')")
	done
	printf '%s\n' "${v[@]}" | sort -g | awk '{a[NR]=$1} END{m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f× (%.2f–%.2f)", m, a[1], a[NR]}'
}

versions="$(go env GOVERSION)"
command -v nginx >/dev/null && versions+="; $(nginx -v 2>&1 | sed 's/.*: //')"
command -v haproxy >/dev/null && versions+="; HAProxy $(haproxy -v | awk 'NR==1{print $3}')"
echo "## HTTP/2 over TLS ($(date -u '+%Y-%m-%d %H:%M UTC'))"
echo
echo "$(nproc) CPUs ($(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)); $(uname -r); $versions; h2load $(h2load --version | awk '{print $2}')."
echo "Each server alone on CPU $PROXY_CPU (GOMAXPROCS=1, one nginx worker, HAProxy nbthread 1); h2load and the origin on CPU $LOAD_CPU. gotthard is bench/h2proxy, gateway examples/gateway."
echo "TLS 1.3 with $SUITE and one ECDSA P-256 certificate for all; $CONNS connections × $STREAMS streams, 1 KiB responses, ${DURATION} s per run, $REPEAT rounds."
echo "Command: \`DURATION=$DURATION CONNS=$CONNS STREAMS=$STREAMS REPEAT=$REPEAT SERVERS=\"$SERVERS\" UPSTREAMS=\"$UPSTREAMS\" bash bench/h2.sh\`"
for up in $UPSTREAMS; do
	echo
	if [[ $up == h1 ]]; then echo "### HTTP/1.1 upstream"; else echo "### h2c upstream (nginx: grpc_pass; HAProxy: proto h2)"; fi
	echo
	hdr="| server | requests/s | CPU µs/request | p50 ms | p99 ms | RSS MiB | Pss MiB"
	sep="|---|---:|---:|---:|---:|---:|---:"
	for b in "${SV[@]}"; do
		[[ $b == nginx || $b == haproxy ]] || continue
		hdr+=" | CPU/request vs $b"
		sep+="|---:"
	done
	echo "$hdr |"
	echo "$sep|"
	for s in "${SV[@]}"; do
		line="| $s"
		for a in RPS CPU P50 P99 RSS MEM; do line+=" | $(column "$up" "$s" "$a" | median)"; done
		for b in "${SV[@]}"; do
			[[ $b == nginx || $b == haproxy ]] || continue
			if [[ $s == gotthard || $s == gateway ]]; then line+=" | $(paired "$up" "$s" "$b")"; else line+=" | "; fi
		done
		echo "$line |"
	done
done
echo
echo "Medians over the rounds; the ratios are paired per round (median, min–max). Memory is the largest sum over the server's processes sampled each second under load: RSS counts the pages nginx's master and worker share twice, Pss splits them."
