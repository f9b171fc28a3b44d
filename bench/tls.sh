#!/usr/bin/env bash
# TLS handshake benchmark: new TLS connections per second that Gotthard and nginx
# terminate, each pinned alone to the same core, with an ECDSA P-256 certificate;
# full and resumed (session ticket) handshakes over X25519, plus Gotthard with the
# hybrid post-quantum X25519MLKEM768 (nginx's OpenSSL 3.0 has no ML-KEM).
#
#   bash bench/tls.sh        # Markdown report on stdout, progress on stderr
#
# Knobs: DURATION (s, default 5), WARMUP (s, 1), CONNS (32), PROXY_CPU (0), LOAD_CPU (1),
# KEEP_TMP (0). Loopback only; every run is bounded by `timeout`.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
CONNS=${CONNS:-32}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
for v in DURATION WARMUP CONNS PROXY_CPU LOAD_CPU; do
	[[ ${!v} =~ ^[0-9]+$ ]] || { echo "bench: $v must be a whole number" >&2; exit 2; }
done
((DURATION > 0 && DURATION <= 600 && CONNS > 0 && CONNS <= 4096)) || { echo "bench: DURATION in 1..600, CONNS in 1..4096" >&2; exit 2; }

LOG_PREFIX=bench
# shellcheck source=bench/proc.sh
source "$BENCH_DIR/proc.sh"
setup_tmp tlsbench

export PATH="$PATH:/usr/sbin:/sbin"
for c in go taskset openssl nginx; do
	command -v "$c" >/dev/null || die "$c is not on PATH (Debian: golang, util-linux, openssl, nginx-light)"
done
NCPU=$(nproc)
((PROXY_CPU < NCPU && LOAD_CPU < NCPU)) || die "need CPUs $PROXY_CPU and $LOAD_CPU"
CLK_TCK=$(getconf CLK_TCK)

log "building tlsserver and tlshandshake into $TMP"
(cd "$REPO" && go build -o "$TMP/tlsserver" ./bench/tlsserver && go build -o "$TMP/tlshandshake" ./bench/tlshandshake) >"$TMP/build.log" 2>&1 ||
	{ cat "$TMP/build.log" >&2; die "build failed"; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
	-subj /CN=bench.test -addext subjectAltName=DNS:bench.test \
	-keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>"$TMP/openssl.log" || { cat "$TMP/openssl.log" >&2; die "openssl req failed"; }

start_server() { # NAME; sets SRV_PID SRV_PORT
	pick_port
	SRV_PORT=$PORT
	case $1 in
	gotthard)
		GOMAXPROCS=1 taskset -c "$PROXY_CPU" "$TMP/tlsserver" -listen "127.0.0.1:$SRV_PORT" \
			-cert "$TMP/cert.pem" -key "$TMP/key.pem" 2>"$TMP/gotthard.log" &
		;;
	nginx)
		local dir="$TMP/nginx"
		mkdir -p "$dir/tmp"
		cat >"$dir/nginx.conf" <<NGINX
daemon off;
master_process on;
worker_processes 1;
worker_cpu_affinity $(cpu_mask "$PROXY_CPU");
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    server {
        listen 127.0.0.1:$SRV_PORT ssl;
        ssl_certificate $TMP/cert.pem;
        ssl_certificate_key $TMP/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ecdh_curve X25519:prime256v1;
        ssl_session_tickets on;
        location / { return 200 "ok"; }
    }
}
NGINX
		taskset -c "$PROXY_CPU" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" 2>"$TMP/nginx.stderr" &
		;;
	esac
	SRV_PID=$!
	LIVE[$SRV_PID]=1
	wait_port "$SRV_PORT" "$SRV_PID" || { tail -5 "$TMP/$1.log" "$TMP/nginx.stderr" >&2 2>/dev/null || true; die "$1 did not start"; }
	live_children "$SRV_PID"
}
stop_server() { stop_tree "$SRV_PID"; }
load() { # SECONDS MODE GROUP OUT
	local resume=false
	[[ $2 == resumed ]] && resume=true
	GOMAXPROCS=1 timeout --kill-after=5 $(($1 + 30)) taskset -c "$LOAD_CPU" "$TMP/tlshandshake" \
		-addr "127.0.0.1:$SRV_PORT" -conns "$CONNS" -duration "${1}s" -resume="$resume" -group "$3" >"$4" 2>"$4.err"
}

RESULTS="$TMP/results.tsv"
: >"$RESULTS"
run() { # SERVER MODE GROUP
	local name=$1 mode=$2 group=$3 out="$TMP/$1-$2-$3.txt" pids c0 c1
	log "$name / $mode / $group"
	start_server "$name"
	((WARMUP > 0)) && load "$WARMUP" "$mode" "$group" "$out.warm" || true
	mapfile -t pids < <(echo "$SRV_PID"; pgrep -P "$SRV_PID" 2>/dev/null || true)
	c0=$(cpu_ticks "${pids[@]}")
	load "$DURATION" "$mode" "$group" "$out" || log "$name: load tool failed: $(cat "$out.err")"
	c1=$(cpu_ticks "${pids[@]}")
	stop_server
	local hs secs rate errs res neg
	hs=$(grep -o 'handshakes=[0-9]*' "$out" | cut -d= -f2)
	secs=$(grep -o 'seconds=[0-9.]*' "$out" | cut -d= -f2)
	rate=$(grep -o 'rate=[0-9]*' "$out" | cut -d= -f2)
	errs=$(grep -o 'errors=[0-9]*' "$out" | cut -d= -f2)
	res=$(grep -o 'resumed=[0-9]*' "$out" | cut -d= -f2)
	neg=$(grep -o 'group=[A-Za-z0-9]*' "$out" | cut -d= -f2)
	[[ -n $hs && $hs != 0 ]] || { log "$name: no handshakes: $(cat "$out.err")"; return 0; }
	local us util
	us=$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$hs" 'BEGIN{printf "%.1f", t / hz * 1e6 / n}')
	util=$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v s="$secs" 'BEGIN{printf "%.0f", t / hz / s * 100}')
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$mode" "$neg" "$rate" "$us" "$util" "$errs" "$res" "$hs" >>"$RESULTS"
}

for mode in full resumed; do
	run gotthard "$mode" x25519
	run nginx "$mode" x25519
	run gotthard "$mode" x25519mlkem768
done

echo "## TLS handshakes ($(date -u '+%Y-%m-%d %H:%M UTC'))"
echo
echo "$(nproc) CPUs ($(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)); $(uname -sr); $(go version | awk '{print $3}'); $(nginx -v 2>&1 | sed 's/^nginx version: //'); $(openssl version | awk '{print $1, $2}'). Server on CPU $PROXY_CPU (GOMAXPROCS=1 / one nginx worker), load on CPU $LOAD_CPU; ECDSA P-256 certificate; each connection: handshake, one request, \`Connection: close\`."
echo "Command: \`DURATION=$DURATION CONNS=$CONNS bash bench/tls.sh\`"
echo
echo "| server | handshake | group | handshakes/s | server CPU µs/handshake | server CPU | errors | resumed | handshakes/s vs nginx | CPU/handshake vs nginx |"
echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
awk -F'\t' '
	{ row[NR] = $0; if ($1 == "nginx") { nr[$2] = $4; nc[$2] = $5 } }
	END {
		for (i = 1; i <= NR; i++) {
			split(row[i], f, "\t")
			r = (f[2] in nr && nr[f[2]] > 0) ? sprintf("%.2f×", f[4] / nr[f[2]]) : "n/a"
			c = (f[2] in nc && nc[f[2]] > 0) ? sprintf("%.2f×", f[5] / nc[f[2]]) : "n/a"
			printf "| %s | %s | %s | %d | %.1f | %s%% | %d | %d of %d | %s | %s |\n", f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], r, c
		}
	}' "$RESULTS"
echo
echo "Server CPU µs/handshake: utime+stime of the server's processes over the measured run ÷ completed connections (lower is better). Server CPU near 100% means the server was the limit; well under it, the load core was."
