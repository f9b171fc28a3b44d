#!/usr/bin/env bash
# RFC 9111 conformance of shared caches by http-cache-tests (the suite behind
# cache-tests.fyi): installs the suite with npm outside the repository, starts its origin
# server on loopback, runs the suite through each cache in front of that server, and
# prints the counts of required tests passed and failed, classified as cache-tests.fyi
# classifies them. See docs/cache-bench.md.
#
#   bash bench/cache-conformance.sh                      # summary: nginx, Varnish, gotthard
#   bash bench/cache-conformance.sh summary nginx        # one cache
#   bash bench/cache-conformance.sh failures gotthard    # each failed test: id, description, reason
#   bash bench/cache-conformance.sh test gotthard ID     # one test, with its requests and responses
#
# A cache is nginx (proxy_cache), varnish or gotthard (examples/gateway -cache; skipped
# with a message while the gateway has no -cache flag). Logs go to stderr; the Markdown
# report to stdout.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)

SUITE_VERSION=${SUITE_VERSION:-0.4.5}
SUITE_DIR=${SUITE_DIR:-${TMPDIR:-/tmp}/gotthard-http-cache-tests-$SUITE_VERSION} # outside the repository
SUITE_TIMEOUT=${SUITE_TIMEOUT:-300} # seconds one run of the suite may take
CACHE_SIZE=${CACHE_SIZE:-67108864}  # bytes of memory for the gateway's cache
GATEWAY_BIN=${GATEWAY_BIN:-}        # a gateway binary to use instead of building ./examples/gateway

MODE=${1:-summary}
shift || true
case $MODE in
summary | failures)
	CACHES=("$@")
	((${#CACHES[@]} > 0)) || CACHES=(nginx varnish gotthard)
	;;
test)
	[[ $# -eq 2 ]] || { echo "usage: $0 test CACHE TEST-ID" >&2; exit 2; }
	CACHES=("$1")
	TEST_ID=$2
	;;
-h | --help | help)
	sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
	exit 0
	;;
*)
	echo "usage: $0 [summary|failures] [nginx|varnish|gotthard ...] | $0 test CACHE TEST-ID" >&2
	exit 2
	;;
esac
for c in "${CACHES[@]}"; do
	[[ $c == nginx || $c == varnish || $c == gotthard ]] || { echo "unknown cache '$c' (known: nginx varnish gotthard)" >&2; exit 2; }
done
[[ $SUITE_TIMEOUT =~ ^[0-9]+$ && $CACHE_SIZE =~ ^[0-9]+$ ]] || { echo "SUITE_TIMEOUT and CACHE_SIZE must be whole numbers" >&2; exit 2; }
[[ -z $GATEWAY_BIN || -x $GATEWAY_BIN ]] || { echo "GATEWAY_BIN=$GATEWAY_BIN is not an executable" >&2; exit 2; }

LOG_PREFIX=cache-conformance
# shellcheck source=bench/proc.sh
source "$BENCH_DIR/proc.sh"
setup_tmp cache-conformance
# nginx's worker (nobody, when nginx starts as root) must reach its directories in TMP.
chmod 711 "$TMP"

export PATH="$PATH:/usr/sbin:/sbin"
ensure node nodejs || die "node is missing and could not be installed (apt-get install nodejs npm)"
ensure npm npm || die "npm is missing and could not be installed (apt-get install npm)"
ensure curl curl || die "curl is missing and could not be installed"

# ---------------------------------------------------------------- the suite

PKG=$SUITE_DIR/node_modules/http-cache-tests
installed=$(node -p "require('$PKG/package.json').version" 2>/dev/null || true)
if [[ $installed != "$SUITE_VERSION" ]]; then
	log "installing http-cache-tests@$SUITE_VERSION into $SUITE_DIR"
	mkdir -p "$SUITE_DIR"
	timeout 300 npm install --prefix "$SUITE_DIR" --no-audit --no-fund --omit=dev --no-save \
		"http-cache-tests@$SUITE_VERSION" >"$TMP/npm.log" 2>&1 || { tail -20 "$TMP/npm.log" >&2; die "npm install http-cache-tests@$SUITE_VERSION failed"; }
fi
log "http-cache-tests $SUITE_VERSION in $PKG"

# The suite's origin server, on loopback only (loopback.cjs). It reads its settings from
# npm's environment variables, as `npm run server` would set them.
pick_port
SUITE_PORT=$PORT
(cd "$PKG" && exec env npm_config_protocol=http npm_config_port="$SUITE_PORT" npm_config_pidfile="$TMP/suite.pid" \
	node --require "$BENCH_DIR/cache-conformance/loopback.cjs" server/server.mjs) >"$TMP/suite-server.log" 2>&1 &
SUITE_PID=$!
LIVE[$SUITE_PID]=1
wait_port "$SUITE_PORT" "$SUITE_PID" || { cat "$TMP/suite-server.log" >&2; die "the suite's server did not start"; }
log "the suite's origin server on 127.0.0.1:$SUITE_PORT (pid $SUITE_PID)"

# ---------------------------------------------------------------- caches

GATEWAY=unbuilt
# start_cache NAME: starts the cache NAME in front of the suite's server on a fresh
# loopback port; sets CACHE_PID and CACHE_PORT. Returns 1, saying why, if it cannot.
start_cache() {
	local name=$1 dir=$TMP/$1
	pick_port
	CACHE_PORT=$PORT
	mkdir -p "$dir"
	case $name in
	nginx)
		ensure nginx nginx-light || { log "skipping nginx: it is missing and could not be installed (apt-get install nginx-light)"; return 1; }
		# The configuration cache-tests.fyi tests nginx with: a cache zone,
		# freshness from the origin's headers, revalidation with conditional
		# requests; the rest nginx's defaults.
		cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 2048; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy-temp;
    proxy_cache_path $dir/cache levels=1:2 keys_zone=conformance:8m max_size=1000m inactive=600m;
    server {
        listen 127.0.0.1:$CACHE_PORT;
        location / {
            proxy_pass http://127.0.0.1:$SUITE_PORT;
            proxy_cache conformance;
            proxy_cache_revalidate on;
        }
    }
}
EOF
		nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" >"$dir/stderr.log" 2>&1 &
		;;
	varnish)
		ensure varnishd varnish || { log "skipping varnish: it is missing and could not be installed (apt-get install varnish)"; return 1; }
		# A backend and nothing else (Varnish's built-in VCL), and the parameters
		# cache-tests.fyi runs Varnish with (the suite's docker/serve.sh): no
		# default TTL, so that a response without explicit freshness is not
		# reused (the suite depends on that), no grace, and an hour's keep for
		# revalidation.
		cat >"$dir/conformance.vcl" <<EOF
vcl 4.1;
backend origin { .host = "127.0.0.1"; .port = "$SUITE_PORT"; }
EOF
		varnishd -F -j none -n "$dir/n" -T none -a "127.0.0.1:$CACHE_PORT" -f "$dir/conformance.vcl" \
			-p default_ttl=0 -p default_grace=0 -p default_keep=3600 -s malloc,64m >"$dir/stderr.log" 2>&1 &
		;;
	gotthard)
		if [[ $GATEWAY == unbuilt && -n $GATEWAY_BIN ]]; then
			GATEWAY=ok
			cp "$GATEWAY_BIN" "$TMP/gateway"
		elif [[ $GATEWAY == unbuilt ]]; then
			GATEWAY=failed
			(cd "$REPO" && go build -o "$TMP/gateway" ./examples/gateway) >"$TMP/build-gateway.log" 2>&1 && GATEWAY=ok
		fi
		if [[ $GATEWAY != ok ]]; then
			log "skipping gotthard: go build ./examples/gateway failed:"
			sed 's/^/    /' "$TMP/build-gateway.log" | head -20 >&2
			return 1
		fi
		local probe
		probe=$("$TMP/gateway" -cache "$CACHE_SIZE" -h 2>&1 || true)
		if grep -q 'flag provided but not defined: -cache' <<<"$probe"; then
			log "skipping gotthard: this examples/gateway has no -cache flag yet (it said: flag provided but not defined: -cache)"
			return 1
		elif grep -q 'invalid value' <<<"$probe"; then
			log "skipping gotthard: examples/gateway refused -cache $CACHE_SIZE (set CACHE_SIZE to a size it takes): $(grep -m1 'invalid value' <<<"$probe")"
			return 1
		fi
		"$TMP/gateway" -listen "127.0.0.1:$CACHE_PORT" -upstream "127.0.0.1:$SUITE_PORT" \
			-cache "$CACHE_SIZE" >"$dir/stderr.log" 2>&1 &
		;;
	esac
	CACHE_PID=$!
	LIVE[$CACHE_PID]=1
	if ! wait_port "$CACHE_PORT" "$CACHE_PID"; then
		tail -20 "$dir/stderr.log" >&2 || true
		log "skipping $name: it did not start"
		stop_tree "$CACHE_PID"
		return 1
	fi
	live_children "$CACHE_PID"
}

# run_suite NAME [ID]: runs the suite's command-line client through the cache NAME on
# CACHE_PORT (only the test ID, with its exchanges, if given); its output goes to
# TMP/NAME.json (or TMP/NAME-ID.txt).
run_suite() {
	local name=$1 id=${2:-} out
	out=$TMP/$name.json
	[[ -z $id ]] || out=$TMP/$name-$id.txt
	# npm_package_config_id is what `npm run cli` sets from package.json; the client
	# runs every test when it is empty.
	(cd "$PKG" && exec env npm_config_base="http://127.0.0.1:$CACHE_PORT" npm_config_id="$id" npm_package_config_id="" \
		timeout --kill-after=5 "$SUITE_TIMEOUT" node --no-warnings cli.mjs) >"$out" 2>"$TMP/$name.client.log" || {
		tail -20 "$TMP/$name.client.log" >&2
		log "$name: the suite's client failed or took more than ${SUITE_TIMEOUT}s"
		return 1
	}
	[[ -n $id ]] || node -e 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))' "$out" 2>/dev/null || {
		head -5 "$out" >&2
		log "$name: the suite's client printed no JSON results"
		return 1
	}
}

RESULTS=()
for name in "${CACHES[@]}"; do
	start_cache "$name" || continue
	log "$name on 127.0.0.1:$CACHE_PORT (pid $CACHE_PID): running the suite"
	start=$(date +%s)
	if run_suite "$name" "${TEST_ID:-}"; then
		log "$name: done in $(($(date +%s) - start)) s"
		RESULTS+=("$name=$TMP/$name.json")
	fi
	stop_tree "$CACHE_PID"
done

# ---------------------------------------------------------------- report

if [[ $MODE == test ]]; then
	[[ ${#RESULTS[@]} -gt 0 ]] || die "no result"
	sed 's/\x1b\[[0-9;]*m//g' "$TMP/${CACHES[0]}-$TEST_ID.txt"
	exit 0
fi
((${#RESULTS[@]} > 0)) || die "no cache was tested"

versions="node $(node --version)"
for r in "${RESULTS[@]}"; do
	name=${r%%=*}
	case $name in
	nginx) versions+="; $(nginx -v 2>&1 | sed 's/^nginx version: //')" ;;
	varnish) versions+="; $( (varnishd -V 2>&1 || true) | awk 'NR==1{gsub(/[()]/, ""); print $2}')" ;;
	gotthard)
		if [[ -n $GATEWAY_BIN ]]; then versions+="; the gateway $GATEWAY_BIN"; else versions+="; examples/gateway at $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"; fi
		;;
	esac
done
echo "### http-cache-tests $SUITE_VERSION ($(date -u '+%Y-%m-%d %H:%M UTC'))"
echo
echo "Each cache in front of the suite's origin server on 127.0.0.1, configured as cache-tests.fyi configures it; $versions."
echo "Command: \`bash bench/cache-conformance.sh $MODE ${CACHES[*]}\`"
echo
node "$BENCH_DIR/cache-conformance/report.mjs" "$PKG" "$MODE" "${RESULTS[@]}"
if [[ $MODE == summary ]]; then
	echo
	echo "Required tests are those of kind \`required\` (or of no kind); a test whose dependency did not pass is counted apart (⚪️ on cache-tests.fyi), as are tests the harness could not set up (🔹) or that saw a retry (↻). Optional tests (\`optimal\`) and behaviour checks (\`check\`) are no conformance requirement."
fi
