#!/usr/bin/env bash
# Compression benchmark: CPU time per request and bytes sent for a 100 KiB text response
# (plain text from a fixed word list, gzip 6 codes it to about a third) compressed with
# gzip by Gotthard's compression module (bench/compressproxy, modules/compress) and by
# nginx's `gzip on; gzip_comp_level 6;`, each in front of the same origin (a second
# nginx serving the file from memory, uncompressed). Measured like bench/run.sh (the same
# code, bench/load.sh): each proxy pinned alone to one core, interleaved runs, the median
# run and paired ratios. Every response is checked to be gzip and to decode to the file.
# See docs/modules-compress.md.
#
#   bash bench/compress.sh                          # one run each, ~30 s plus build
#   REPEAT=3 DURATION=5 bash bench/compress.sh      # for figures that go in a doc
#   PROXIES="gotthard gotthard-5 gotthard-1 nginx" bash bench/compress.sh   # other gzip levels
#
# Logs go to stderr; the Markdown report goes to stdout.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)

DURATION=${DURATION:-10}     # seconds per measured run
WARMUP=${WARMUP:-2}          # seconds of load before each measured run
CONNS=${CONNS:-16}           # wrk connections
THREADS=${THREADS:-1}        # wrk threads
REPEAT=${REPEAT:-1}          # measured runs per proxy, interleaved
SIZE=${SIZE:-102400}         # bytes of the response before compression
PROXIES=${PROXIES:-"gotthard nginx"} # gotthard (gzip GZIP_LEVEL), gotthard-N (gzip level N), nginx
BASE=${BASE:-nginx}          # the proxy the ratio columns compare to
GZIP_LEVEL=${GZIP_LEVEL:-6}  # Gotthard's gzip level for "gotthard"
NGINX_LEVEL=${NGINX_LEVEL:-6} # nginx's gzip_comp_level
PROXY_CPU=${PROXY_CPU:-0}    # core the proxy under test runs on, alone
LOAD_CPU=${LOAD_CPU:-1}      # core wrk runs on (and the origin, by default)
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
	echo "usage: $0   (knobs are environment variables: see the top of this file)" >&2
	exit 2
	;;
esac

LOG_PREFIX=compress-bench
# shellcheck source=bench/proc.sh
source "$BENCH_DIR/proc.sh"
# shellcheck source=bench/load.sh
source "$BENCH_DIR/load.sh"

for v in DURATION WARMUP CONNS THREADS REPEAT SIZE GZIP_LEVEL NGINX_LEVEL PROXY_CPU LOAD_CPU ORIGIN_CPU; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
((DURATION > 0 && CONNS > 0 && THREADS > 0 && REPEAT > 0 && SIZE > 0)) || die "DURATION, CONNS, THREADS, REPEAT and SIZE must be > 0"
((GZIP_LEVEL >= 1 && GZIP_LEVEL <= 9 && NGINX_LEVEL >= 1 && NGINX_LEVEL <= 9)) || die "GZIP_LEVEL and NGINX_LEVEL must be 1 to 9"

setup_tmp compress-bench

export PATH="$PATH:/usr/sbin:/sbin"
command -v go >/dev/null || die "go is not on PATH"
command -v taskset >/dev/null || die "taskset (util-linux) is not on PATH"
command -v gzip >/dev/null || die "gzip is not on PATH"
ensure curl curl || die "curl is missing and could not be installed"
ensure wrk wrk || die "wrk is missing and could not be installed"
ensure nginx nginx-light || die "nginx is missing and could not be installed (apt-get install nginx-light); it is the origin"
NCPU=$(nproc)
((PROXY_CPU < NCPU && LOAD_CPU < NCPU && ORIGIN_CPU < NCPU)) || die "need CPUs $PROXY_CPU, $LOAD_CPU and $ORIGIN_CPU, this machine has $NCPU (set PROXY_CPU/LOAD_CPU/ORIGIN_CPU)"
[[ $PROXY_CPU != "$LOAD_CPU" && $PROXY_CPU != "$ORIGIN_CPU" ]] || log "warning: the proxy shares its core with the load or the origin"

SELECTED=()
for p in $PROXIES; do
	case $p in
	gotthard | nginx) SELECTED+=("$p") ;;
	gotthard-[1-9]) SELECTED+=("$p") ;;
	*) die "unknown proxy '$p' in PROXIES (known: gotthard, gotthard-1 … gotthard-9, nginx)" ;;
	esac
done

# The wrk runs ask for gzip, as a browser would (and nothing else, so both proxies code
# with gzip).
run_wrk() {
	timeout --kill-after=5 $(($2 + 30)) taskset -c "$LOAD_CPU" \
		wrk -t"$THREADS" -c"$CONNS" -d"$2s" --latency --timeout 5s -H "Accept-Encoding: gzip" "$3" >"$1" 2>&1
}

# ---------------------------------------------------------------- build and sample

mkdir -p "$TMP/bin"
# The origin's root, outside TMP (mode 700): nginx's worker runs as nobody when started
# as root, and must reach the file.
WWW=$(mktemp -d "${TMPDIR:-/tmp}/gotthard-compress-www.XXXXXX")
REMOVE_ON_EXIT+=("$WWW")
chmod 755 "$WWW"
log "building bench/compressproxy into $TMP/bin"
(cd "$REPO" && go build -o "$TMP/bin/compressproxy" ./bench/compressproxy) >"$TMP/build.log" 2>&1 ||
	{ cat "$TMP/build.log" >&2; die "building bench/compressproxy failed"; }

# The response: words, markup and numbers from a fixed list in a pseudo-random order
# with a fixed seed, so every run serves the same SIZE bytes.
SAMPLE="$WWW/sample.txt"
awk -v size="$SIZE" 'BEGIN {
	n = split("the of and to in is that for it as was with be by on not he this are or his from at which but have an they you were their one all we can her has there been if more when will would who so no out up into do than time only could new other some these two may first then any like my now over such our man me even most made after also did many before must through back years where much your way well down should because each just those people how too little state good very make world still own see men work long get here between both life being under never day same another know while last might us great old year off come since against go came right used take three proxy request response header body stream server client upstream origin cache <div class=\"item\"> </div> <p> </p> <a href=\"/page/\"> </a> <span> </span> <li> </li> {\"id\": \"name\": \"value\": [ ] , true false null 0 1 2 3 4 5 6 7 8 9 10 100 2026", w, " ")
	x = 20261207; out = 0
	while (out < size) {
		# The Park-Miller generator: exact in the doubles of awk (the product stays
		# under 2^53), so every awk gives the same text.
		x = (x * 16807) % 2147483647
		s = w[int(x / 256) % n + 1] ((int(x / 7) % 11 == 0) ? "\n" : " ")
		if (out + length(s) > size) s = substr(s, 1, size - out)
		printf "%s", s; out += length(s)
	}
}' >"$SAMPLE"
chmod 644 "$SAMPLE"
[[ $(stat -c %s "$SAMPLE") == "$SIZE" ]] || die "the sample is not $SIZE bytes"
ZLIB6=$(gzip -6 -c "$SAMPLE" | wc -c)
log "sample: $SIZE bytes, $ZLIB6 bytes with gzip -6"

# ---------------------------------------------------------------- origin

pick_port
ORIGIN_PORT=$PORT
mkdir -p "$TMP/origin/tmp"
cat >"$TMP/origin/nginx.conf" <<EOF
# Generated by bench/compress.sh: the origin, a static file served uncompressed.
daemon off;
master_process on;
worker_processes 1;
worker_cpu_affinity $(cpu_mask "$ORIGIN_CPU");
pid $TMP/origin/nginx.pid;
error_log $TMP/origin/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $TMP/origin/tmp/body;
    proxy_temp_path $TMP/origin/tmp/proxy;
    keepalive_timeout 120s;
    keepalive_requests 1000000;
    open_file_cache max=100 inactive=60s;
    gzip off;
    types { text/plain txt; }
    server {
        listen 127.0.0.1:$ORIGIN_PORT;
        root $WWW;
    }
}
EOF
taskset -c "$ORIGIN_CPU" nginx -p "$TMP/origin" -e "$TMP/origin/error.log" -c "$TMP/origin/nginx.conf" 2>"$TMP/origin.stderr" &
ORIGIN_PID=$!
LIVE[$ORIGIN_PID]=1
wait_http "http://127.0.0.1:$ORIGIN_PORT/sample.txt" "$ORIGIN_PID" || { cat "$TMP/origin.stderr" "$TMP/origin/error.log" >&2 2>/dev/null; die "the origin did not start"; }
live_children "$ORIGIN_PID"
log "origin (nginx, static) on 127.0.0.1:$ORIGIN_PORT (pid $ORIGIN_PID, CPU $ORIGIN_CPU)"

no_count() { echo 0; }

# ---------------------------------------------------------------- proxies

# start_proxy NAME TAG: starts NAME pinned to PROXY_CPU on a fresh port; sets
# SERVER_PID, SERVER_PORT and SERVER_LOG.
start_proxy() {
	local name=$1 tag=$2 level dir
	pick_port
	SERVER_PORT=$PORT
	SERVER_LOG="$TMP/$tag.log"
	case $name in
	gotthard | gotthard-*)
		level=$GZIP_LEVEL
		[[ $name == gotthard ]] || level=${name#gotthard-}
		GOMAXPROCS=1 taskset -c "$PROXY_CPU" "$TMP/bin/compressproxy" -codings gzip -gzip-level "$level" \
			-listen "127.0.0.1:$SERVER_PORT" -upstream "127.0.0.1:$ORIGIN_PORT" 2>"$SERVER_LOG" &
		;;
	nginx)
		dir="$TMP/$tag"
		mkdir -p "$dir"
		nginx_conf "$dir" "$SERVER_PORT" 4096 \
			"gzip on;
    gzip_comp_level $NGINX_LEVEL;
    gzip_types text/plain;
    gzip_min_length 256;
    gzip_proxied any;
    gzip_vary on;"
		SERVER_LOG="$dir/error.log"
		taskset -c "$PROXY_CPU" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" 2>"$TMP/$tag.stderr" &
		;;
	esac
	SERVER_PID=$!
	LIVE[$SERVER_PID]=1
	if ! wait_http "http://127.0.0.1:$SERVER_PORT/sample.txt" "$SERVER_PID"; then
		tail -20 "$SERVER_LOG" >&2 2>/dev/null || true
		return 1
	fi
	live_children "$SERVER_PID"
}

# check_gzip NAME URL: the response is gzip and decodes to the sample; sets CODED (its
# size in bytes).
check_gzip() {
	local name=$1 url=$2 head
	head=$(curl -fsS -H 'Accept-Encoding: gzip' -D - -o "$TMP/coded.gz" --max-time 5 "$url") || return 1
	if ! grep -qi '^Content-Encoding: gzip' <<<"$head"; then
		log "$name: the response is not gzip:"
		printf '%s\n' "$head" >&2
		return 1
	fi
	if ! gzip -dc "$TMP/coded.gz" | cmp -s - "$SAMPLE"; then
		log "$name: the response does not decode to the sample"
		return 1
	fi
	CODED=$(stat -c %s "$TMP/coded.gz")
}

# ---------------------------------------------------------------- runs

RESULTS="$TMP/results.tsv"
SIZES="$TMP/sizes.tsv" # name, run, bytes
: >"$RESULTS"
: >"$SIZES"

run_one() { # NAME RUN
	local name=$1 rep=$2 tag="$1-$2" url
	log "$name: starting (run $rep of $REPEAT)"
	if ! start_proxy "$name" "$tag"; then
		log "$name: did not start, skipped"
		return 0
	fi
	url="http://127.0.0.1:$SERVER_PORT/sample.txt"
	if ! check_gzip "$name" "$url"; then
		log "$name: skipped"
		stop_tree "$SERVER_PID"
		return 0
	fi
	printf '%s\t%s\t%s\n' "$name" "$rep" "$CODED" >>"$SIZES"
	if ((WARMUP > 0)); then
		run_wrk "$TMP/wrk-$tag-warmup.txt" "$WARMUP" "$url" || log "$name: warm-up wrk exited non-zero"
	fi
	measure "$name" 100k-gzip "$rep" "$url" "$SERVER_PID" no_count || true
	stop_tree "$SERVER_PID"
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

size_of() { awk -F'\t' -v n="$1" '$1 == n { print $3; exit }' "$SIZES"; }

cpu_model=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
versions="$(uname -sr); $(go version | awk '{print $3}'); bench/compressproxy at $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown); $(nginx -v 2>&1 | sed 's/^nginx version: //'); $( (wrk -v 2>&1 || true) | awk 'NR==1{print "wrk " $2}')"
echo "### Response compression, gzip ($(date -u '+%Y-%m-%d %H:%M UTC'), ${cpu_model:-unknown CPU}, $NCPU CPUs)"
echo
echo "GET /sample.txt with \`Accept-Encoding: gzip\`: $SIZE bytes of text/plain ($ZLIB6 bytes with \`gzip -6\`), from an nginx origin serving it uncompressed. Proxy alone on CPU $PROXY_CPU; wrk ($THREADS thread(s), $CONNS connections) on CPU $LOAD_CPU, the origin on CPU $ORIGIN_CPU."
echo "gotthard: bench/compressproxy, gzip level $GZIP_LEVEL (gotthard-N: level N); nginx: \`gzip on; gzip_comp_level $NGINX_LEVEL;\`."
echo "Before the run, CPU $PROXY_CPU/$LOAD_CPU were $BG_BUSY busy with other work (0%/0% on a quiet machine)."
if ((BG0 > 10 || BG1 > 10)); then
	echo "**The machine was busy with other work: req/s and p99 below are not representative; CPU µs/req and the paired ratios hold up better.**"
fi
echo "Measured runs of ${DURATION}s after a ${WARMUP}s warm-up; $versions."
echo "Command: \`DURATION=$DURATION CONNS=$CONNS REPEAT=$REPEAT PROXIES=\"$PROXIES\" GZIP_LEVEL=$GZIP_LEVEL NGINX_LEVEL=$NGINX_LEVEL bash bench/compress.sh\`"
echo
report_load "origin requests (not counted)"

echo "| proxy | bytes sent (body) | vs nginx | CPU/req vs nginx, paired: median (min–max) | runs | ≤ 1.0× nginx's CPU at ≤ its size |"
echo "|---|---:|---:|---:|---:|---|"
NSIZE=$(size_of nginx)
for p in "${SELECTED[@]}"; do
	s=$(size_of "$p")
	[[ -n $s ]] || continue
	rs=-
	[[ -z $NSIZE ]] || rs=$(awk -v a="$s" -v b="$NSIZE" 'BEGIN { printf "%.3f×", a / b }')
	if [[ $p == nginx ]]; then
		echo "| $p | $s | 1.000× | 1.00× | - | - |"
		continue
	fi
	r=$(paired_cpu "$p" nginx)
	if [[ $r == - ]]; then
		echo "| $p | $s | $rs | not measured | 0 | - |"
		continue
	fi
	IFS=$'\t' read -r med range n <<<"$r"
	met=$(awk -v m="$med" -v a="$s" -v b="${NSIZE:-0}" 'BEGIN { print (m <= 1.0 && a <= b) ? "yes" : "no" }')
	echo "| $p | $s | $rs | ${med}× ($range) | $n | $met |"
done
echo
