#!/usr/bin/env bash
# Zero-downtime upgrades under load: examples/gateway serves HTTP/1.1 (wrk), HTTP/2 over
# TLS (h2load), WebSockets and a gRPC server stream (bench/upgradeload) in front of
# bench/upgradeorigin, and is upgraded UPGRADES times while the load runs. See
# bench/README.md for what it measures and what passing means.
#
#   bash bench/upgrade.sh          # quit: start the new binary with -u, SIGQUIT the old
#   bash bench/upgrade.sh usr2     # SIGUSR2: the process re-executes itself
#   bash bench/upgrade.sh term     # no upgrade: one SIGTERM near the end, the drain checked
#
# The Markdown report goes to stdout, progress to stderr; the exit status is 1 when
# anything failed. Loopback only; every process it starts is stopped by its PID on exit.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)

MODE=${1:-quit}
DURATION=${DURATION:-30}                 # seconds of load
UPGRADES=${UPGRADES:-5}                  # upgrades during the load (quit, usr2)
CONNS=${CONNS:-64}                       # wrk connections (HTTP/1.1)
H2_CONNS=${H2_CONNS:-4}                  # h2load connections (HTTP/2 over TLS)
H2_STREAMS=${H2_STREAMS:-10}             # h2load streams per connection
WS_CLIENTS=${WS_CLIENTS:-20}             # WebSocket clients
GRACE=${GRACE:-2}                        # grace_period_seconds
SHUTDOWN_TIMEOUT=${SHUTDOWN_TIMEOUT:-10} # graceful_shutdown_timeout_seconds
# The most a hand-over (signal to new process serving) may take. With SIGQUIT the new
# process is already running, waiting; with SIGUSR2 the time includes starting it (exec,
# the runtime, building the services) on CPUs the load keeps busy.
MAX_TOOK_MS=${MAX_TOOK_MS:-$([[ ${1:-quit} == usr2 ]] && echo 250 || echo 100)}
DRAIN_SLACK=${DRAIN_SLACK:-2}            # seconds an old process may take to exit after its grace period
WRK=${WRK:-1}                            # 0: the HTTP/1.1 load comes from bench/upgradeload, not wrk
H2LOAD=${H2LOAD:-1}                      # 0: no HTTP/2 load

case $MODE in
quit | usr2 | term) ;;
-h | --help | help)
	sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
	exit 0
	;;
*)
	echo "usage: $0 [quit|usr2|term]" >&2
	exit 2
	;;
esac

LOG_PREFIX=upgrade
# shellcheck source=bench/proc.sh
source "$BENCH_DIR/proc.sh"

for v in DURATION UPGRADES CONNS H2_CONNS H2_STREAMS WS_CLIENTS GRACE SHUTDOWN_TIMEOUT MAX_TOOK_MS DRAIN_SLACK WRK H2LOAD; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
((DURATION >= 5 && DURATION <= 600)) || die "DURATION must be between 5 and 600"
((UPGRADES >= 1 && UPGRADES <= 50)) || die "UPGRADES must be between 1 and 50"
((CONNS > 0 && H2_CONNS > 0 && H2_STREAMS > 0 && WS_CLIENTS > 0 && GRACE > 0)) || die "CONNS, H2_CONNS, H2_STREAMS, WS_CLIENTS and GRACE must be > 0"
((SHUTDOWN_TIMEOUT > GRACE)) || die "SHUTDOWN_TIMEOUT must be more than GRACE"
if [[ $MODE != term ]] && ((DURATION * 1000 / (UPGRADES + 1) <= (GRACE + DRAIN_SLACK) * 1000)); then
	die "upgrades every $((DURATION * 1000 / (UPGRADES + 1))) ms leave no time for an old process to drain (GRACE+DRAIN_SLACK s): raise DURATION or lower UPGRADES"
fi

# ---------------------------------------------------------------- cleanup

# Processes this script started (or its gateways started) go in LIVE.
setup_tmp upgrade

# ---------------------------------------------------------------- tools

export PATH="$PATH:/usr/sbin:/sbin"
command -v go >/dev/null || die "go is not on PATH"
ensure curl curl || die "curl is missing and could not be installed"
ensure openssl openssl || die "openssl is missing and could not be installed"
HAVE_WRK=$((WRK != 0))
((HAVE_WRK == 0)) || ensure wrk wrk || {
	HAVE_WRK=0
	log "wrk is missing: bench/upgradeload makes the HTTP/1.1 load instead"
}
HAVE_H2LOAD=$((H2LOAD != 0))
((HAVE_H2LOAD == 0)) || ensure h2load nghttp2-client || {
	HAVE_H2LOAD=0
	log "h2load is missing (Debian: nghttp2-client): no HTTP/2 load"
}

hard=$(ulimit -Hn)
[[ $hard == unlimited ]] && hard=65536
ulimit -n "$hard" 2>/dev/null || true

# ---------------------------------------------------------------- helpers

# now_ms: milliseconds since the epoch.
now_ms() {
	local t=${EPOCHREALTIME/[.,]/}
	echo $((t / 1000))
}

# sleep_until MS: sleep until now_ms reaches MS.
sleep_until() {
	local d=$(($1 - $(now_ms)))
	((d <= 0)) || sleep "$(awk -v d="$d" 'BEGIN { printf "%.3f", d / 1000 }')"
}

# to_ms DURATION: a Go duration ("850µs", "12.5ms", "1.2s", "1m2s") in milliseconds.
to_ms() {
	awk -v v="$1" 'BEGIN {
		ms = 0
		while (match(v, /^[0-9.]+(ns|us|µs|ms|s|m|h)/)) {
			tok = substr(v, 1, RLENGTH); v = substr(v, RLENGTH + 1)
			match(tok, /^[0-9.]+/); n = substr(tok, 1, RLENGTH) + 0; u = substr(tok, RLENGTH + 1)
			if (u == "ns") ms += n / 1e6
			else if (u == "us" || u == "µs") ms += n / 1e3
			else if (u == "ms") ms += n
			else if (u == "s") ms += n * 1e3
			else if (u == "m") ms += n * 6e4
			else ms += n * 3.6e6
		}
		if (v != "") { print "?"; exit }
		printf "%.1f", ms
	}'
}

# hex_port PORT: the port as /proc/net/tcp writes it.
hex_port() { printf '%04X' "$1"; }

# fd_census PID: the open fds of PID, by kind, as
# "total listeners upstream downstream other_tcp unix other_sockets non_sockets":
# TCP listening sockets, TCP connections to the origin's ports, TCP connections on the
# gateway's ports, other TCP sockets, Unix sockets, other sockets, and fds that are not
# sockets (the runtime's epoll and event fds, standard streams, files).
fd_census() {
	local pid=$1 t total=0 nonsock=0 inodes=""
	while read -r t; do
		total=$((total + 1))
		if [[ $t == socket:\[*\] ]]; then
			t=${t#socket:[}
			inodes+=" ${t%]}"
		else
			nonsock=$((nonsock + 1))
		fi
	done < <(fd_targets "$pid")
	awk -v list="$inodes" -v total="$total" -v nonsock="$nonsock" \
		-v up="$(hex_port "$ORIGIN_PORT") $(hex_port "$GRPC_PORT")" \
		-v down="$(hex_port "$HTTP_PORT") $(hex_port "$TLS_PORT")" '
		BEGIN {
			n = split(list, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1
			split(up, u, " "); isup[u[1]] = 1; isup[u[2]] = 1
			split(down, d, " "); isdown[d[1]] = 1; isdown[d[2]] = 1
		}
		FILENAME ~ /tcp6?$/ && FNR > 1 && ($10 in want) && !($10 in seen) {
			seen[$10] = 1
			split($2, l, ":"); split($3, r, ":")
			if ($4 == "0A") listen++
			else if (r[2] in isup) upc++
			else if (l[2] in isdown) downc++
			else othertcp++
		}
		FILENAME ~ /unix$/ && FNR > 1 && ($7 in want) && !($7 in seen) { seen[$7] = 1; unix++ }
		END {
			for (k in want) if (!(k in seen)) othersock++
			print total, listen + 0, upc + 0, downc + 0, othertcp + 0, unix + 0, othersock + 0, nonsock
		}' "/proc/$pid/net/tcp" "/proc/$pid/net/tcp6" "/proc/$pid/net/unix"
}

# fd_targets PID: what each open fd of PID points to, one a line.
fd_targets() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 -printf '%l\n' 2>/dev/null || true; }

# unix_listening_by PID PATH: PID holds a listening Unix socket bound to PATH, or to
# DIR/.NAME.* (a name it binds before renaming the file to PATH).
unix_listening_by() {
	local t inodes=""
	while read -r t; do
		[[ $t == socket:\[*\] ]] || continue
		t=${t#socket:[}
		inodes+=" ${t%]}"
	done < <(fd_targets "$1")
	awk -v list="$inodes" -v path="$2" -v tmp="$(dirname "$2")/.$(basename "$2")." '
		BEGIN { n = split(list, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1 }
		FNR > 1 && ($7 in want) && ($8 == path || index($8, tmp) == 1) && $6 == "01" { found = 1 }
		END { exit !found }' "/proc/$1/net/unix" 2>/dev/null
}

# log_lines PATTERN...: the gateway log's lines holding any of the fixed strings, in order.
log_lines() {
	local args=() p
	for p in "$@"; do args+=(-e "$p"); done
	grep -F "${args[@]}" "$GWLOG" 2>/dev/null || true
}

# field LINE KEY: the value of KEY=... in a slog text line (quotes kept off).
field() {
	local re="(^| )$2=(\"([^\"]*)\"|([^ ]*))"
	[[ $1 =~ $re ]] || return 0
	echo "${BASH_REMATCH[3]}${BASH_REMATCH[4]}"
}

# ---------------------------------------------------------------- build

mkdir -p "$TMP/bin"
log "building the gateway, upgradeorigin and upgradeload into $TMP/bin"
for p in gateway:examples/gateway upgradeorigin:bench/upgradeorigin upgradeload:bench/upgradeload; do
	(cd "$REPO" && go build -o "$TMP/bin/${p%%:*}" "./${p#*:}") >"$TMP/build.log" 2>&1 ||
		{ cat "$TMP/build.log" >&2; die "go build ./${p#*:} failed"; }
done

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
	-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
	-keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>"$TMP/openssl.log" ||
	{ cat "$TMP/openssl.log" >&2; die "openssl could not make a certificate"; }

SOCK=$TMP/upgrade.sock
PIDFILE=$TMP/gateway.pid
cat >"$TMP/conf.yaml" <<EOF
# Generated by bench/upgrade.sh.
pid_file: $PIDFILE
upgrade_sock: $SOCK
grace_period_seconds: $GRACE
graceful_shutdown_timeout_seconds: $SHUTDOWN_TIMEOUT
EOF

# ---------------------------------------------------------------- origin and gateway

pick_port
ORIGIN_PORT=$PORT
pick_port
GRPC_PORT=$PORT
pick_port
HTTP_PORT=$PORT
pick_port
TLS_PORT=$PORT

"$TMP/bin/upgradeorigin" -listen "127.0.0.1:$ORIGIN_PORT" -grpc "127.0.0.1:$GRPC_PORT" 2>"$TMP/origin.log" &
ORIGIN_PID=$!
LIVE[$ORIGIN_PID]=1
wait_port "$ORIGIN_PORT" "$ORIGIN_PID" && wait_port "$GRPC_PORT" "$ORIGIN_PID" ||
	{ cat "$TMP/origin.log" >&2; die "the origin did not start"; }

GW=("$TMP/bin/gateway" -c "$TMP/conf.yaml" -listen "127.0.0.1:$HTTP_PORT" -tls-listen "127.0.0.1:$TLS_PORT"
	-cert "$TMP/cert.pem" -key "$TMP/key.pem"
	-upstream "127.0.0.1:$ORIGIN_PORT" -grpc-upstream "127.0.0.1:$GRPC_PORT")
GWLOG=$TMP/gateway.log # every generation appends to it
: >"$GWLOG"
"${GW[@]}" 2>>"$GWLOG" &
GW_PID=$!
LIVE[$GW_PID]=1
FIRST_PID=$GW_PID
wait_port "$HTTP_PORT" "$GW_PID" && wait_port "$TLS_PORT" "$GW_PID" ||
	{ cat "$GWLOG" >&2; die "the gateway did not start"; }
for i in $(seq 1 50); do
	[[ $(cat "$PIDFILE" 2>/dev/null) == "$GW_PID" ]] && break
	sleep 0.1
done
[[ $(cat "$PIDFILE" 2>/dev/null) == "$GW_PID" ]] || die "the pid file $PIDFILE does not name the gateway ($GW_PID)"
sleep 1 # the connections wait_port opened are closed
read -r B_TOTAL B_LISTEN B_UP B_DOWN B_OTCP B_UNIX B_OSOCK B_NONSOCK <<<"$(fd_census "$GW_PID")"
log "gateway pid $GW_PID on 127.0.0.1:$HTTP_PORT (HTTP) and 127.0.0.1:$TLS_PORT (TLS), $B_TOTAL fds with no clients"
for url in "http://127.0.0.1:$HTTP_PORT/1k" "https://127.0.0.1:$TLS_PORT/1k"; do
	code=$(curl -ks -o /dev/null -w '%{http_code}' --max-time 5 "$url") || true
	[[ $code == 200 ]] || { cat "$GWLOG" >&2; die "$url answered '$code', not 200"; }
done

# ---------------------------------------------------------------- load

LOAD_ARGS=(-ws "ws://127.0.0.1:$HTTP_PORT/ws" -ws-clients "$WS_CLIENTS" -grpc "127.0.0.1:$HTTP_PORT")
LOAD_SECONDS=$DURATION
if [[ $MODE == term ]]; then
	# The WebSockets and the gRPC stream open at SIGTERM (at DURATION-1) must be closed
	# by the gateway when its grace period ends (at DURATION-1+GRACE): no reconnecting
	# after DURATION, and time enough to see the close.
	LOAD_SECONDS=$((DURATION + GRACE + 5))
	LOAD_ARGS+=(-reconnect-for "${DURATION}s")
fi
[[ $HAVE_WRK == 1 ]] || LOAD_ARGS+=(-http "http://127.0.0.1:$HTTP_PORT/1k" -http-conns "$CONNS")

log "load for ${DURATION}s: $([[ $HAVE_WRK == 1 ]] && echo "wrk ($CONNS conns), ")$([[ $HAVE_H2LOAD == 1 ]] && echo "h2load ($H2_CONNS conns x $H2_STREAMS streams, TLS), ")$WS_CLIENTS WebSocket clients, 1 gRPC stream; mode $MODE"
T0=$(now_ms)
timeout $((LOAD_SECONDS + 30)) "$TMP/bin/upgradeload" -duration "${LOAD_SECONDS}s" "${LOAD_ARGS[@]}" \
	>"$TMP/upgradeload.out" 2>"$TMP/upgradeload.err" &
LOAD_PID=$!
LIVE[$LOAD_PID]=1
LOADERS=("$LOAD_PID")
if [[ $HAVE_WRK == 1 ]]; then
	timeout $((DURATION + 30)) wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$HTTP_PORT/1k" >"$TMP/wrk.out" 2>&1 &
	LIVE[$!]=1
	LOADERS+=("$!")
fi

# h2load does not open a new HTTP/2 connection when one is closed (after a GOAWAY, as
# in every drain), so it runs once per stretch between two upgrades: each run starts
# after a hand-over, on the new process, and lasts until a second after the next one, so
# that its connections drain with requests in flight. Nor does it send a request it
# queued after the GOAWAY arrived elsewhere: it counts it as errored, with no start time
# in its --log-file (status -1, start 0). Those never reached the gateway; they are
# reported apart, and only requests that were sent and failed count as failures.
H2_RUNS=0
INTERVAL_MS=$((DURATION * 1000 / (UPGRADES + 1)))
# start_h2load UNTIL_MS: one h2load run until the time UNTIL_MS, its output in h2load.N.out.
start_h2load() {
	[[ $HAVE_H2LOAD == 1 ]] || return 0
	local ms=$(($1 - $(now_ms)))
	((ms > 100)) || return 0
	H2_RUNS=$((H2_RUNS + 1))
	timeout $((ms / 1000 + 30)) h2load -c "$H2_CONNS" -m "$H2_STREAMS" -D "${ms}ms" \
		--log-file="$TMP/h2load.$H2_RUNS.log" "https://127.0.0.1:$TLS_PORT/1k" \
		>"$TMP/h2load.$H2_RUNS.out" 2>&1 &
	LIVE[$!]=1
	LOADERS+=("$!")
}
if [[ $MODE == term ]]; then
	start_h2load $((T0 + DURATION * 1000))
else
	start_h2load $((T0 + INTERVAL_MS + 1000))
fi

# ---------------------------------------------------------------- upgrades

FAILS=()                 # what failed, in words
declare -a U_TOOK U_NEW U_LISTENERS U_SIG U_OLD U_EXIT_MS # by upgrade; U_OLD only for those that handed over
HANDED='msg="server: handed the listeners over"'
FAILED='msg="server: upgrade failed; still serving"'
SERVING='msg="server: serving the listeners handed over"'

# watch_exit PID FILE SINCE_MS: in the background, write to FILE how many ms after
# SINCE_MS the process PID ended (polling every 20 ms, for at most SHUTDOWN_TIMEOUT+10 s).
watch_exit() {
	(
		local end=$(($3 + (SHUTDOWN_TIMEOUT + 10) * 1000))
		while alive "$1" && (($(now_ms) < end)); do sleep 0.02; done
		alive "$1" || echo $(($(now_ms) - $3)) >"$2"
	) &
	LIVE[$!]=1
}

# upgrade I: the I-th upgrade of GW_PID, by MODE; on success GW_PID is the new process.
upgrade() {
	local i=$1 old=$GW_PID new="" n0 line t0 took
	n0=$(log_lines "$HANDED" "$FAILED" | wc -l)
	if [[ $MODE == quit ]]; then
		"${GW[@]}" -u 2>>"$GWLOG" &
		new=$!
		LIVE[$new]=1
		for _ in $(seq 1 100); do
			unix_listening_by "$new" "$SOCK" && break
			alive "$new" || break
			sleep 0.05
		done
		if ! unix_listening_by "$new" "$SOCK"; then
			FAILS+=("upgrade $i: the new process ($new) did not listen on $SOCK")
			stop_pid "$new"
			return
		fi
		t0=$(now_ms)
		kill -QUIT "$old"
	else
		t0=$(now_ms)
		kill -USR2 "$old"
	fi
	watch_exit "$old" "$TMP/exit.$i" "$t0" # it writes nothing if the old process serves on
	U_SIG[i]=$(((t0 - T0) / 100))
	U_SIG[i]="$((U_SIG[i] / 10)).$((U_SIG[i] % 10))"
	line=""
	for _ in $(seq 1 200); do # 10 s
		line=$(log_lines "$HANDED" "$FAILED" | sed -n "$((n0 + 1))p")
		[[ -z $line ]] || break
		sleep 0.05
	done
	if [[ -z $line ]]; then
		FAILS+=("upgrade $i: no hand-over logged within 10 s")
		[[ -z $new ]] || stop_pid "$new"
		return
	fi
	if [[ $line == *"$FAILED"* ]]; then
		FAILS+=("upgrade $i failed: $(field "$line" error)")
		[[ -z $new ]] || stop_pid "$new"
		return
	fi
	took=$(field "$line" took)
	U_TOOK[i]=$(to_ms "$took")
	U_NEW[i]=$(field "$line" pid)
	if [[ -n $new && ${U_NEW[i]} != "$new" ]]; then
		FAILS+=("upgrade $i: the listeners went to pid ${U_NEW[i]}, not to the new process $new")
	fi
	new=${U_NEW[i]}
	LIVE[$new]=1 # in usr2 mode, the old process's child
	GW_PID=$new
	U_OLD[i]=$old
	line=$(log_lines "$SERVING" | grep -F "from=$old " | tail -1) || true
	U_LISTENERS[i]=$(field "$line" listeners)
	[[ ${U_LISTENERS[i]} == 2 ]] || FAILS+=("upgrade $i: the new process took '${U_LISTENERS[i]}' listeners, not 2")
	for _ in $(seq 1 50); do
		[[ $(cat "$PIDFILE" 2>/dev/null) == "$new" ]] && break
		sleep 0.1
	done
	[[ $(cat "$PIDFILE" 2>/dev/null) == "$new" ]] || FAILS+=("upgrade $i: the pid file names '$(cat "$PIDFILE" 2>/dev/null)', not $new")
	log "upgrade $i at ${U_SIG[i]}s: $old -> $new, took $took"
}

TERM_AT="" TERM_PROBE="" TERM_EXIT_MS="" TERM_RC=""
if [[ $MODE == term ]]; then
	sleep_until $((T0 + (DURATION - 1) * 1000))
	t0=$(now_ms)
	TERM_AT=$(((t0 - T0) / 1000))
	log "SIGTERM to $GW_PID at ${TERM_AT}s"
	kill -TERM "$GW_PID"
	watch_exit "$GW_PID" "$TMP/exit.term" "$t0"
	# Half-way through the grace period, a new connection must still be served.
	sleep_until $((t0 + GRACE * 500))
	TERM_PROBE=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$HTTP_PORT/1k") || true
	[[ $TERM_PROBE == 200 ]] || FAILS+=("a new connection during the grace period got '$TERM_PROBE', not 200")
else
	for i in $(seq 1 "$UPGRADES"); do
		sleep_until $((T0 + INTERVAL_MS * i))
		upgrade "$i"
		if ((i < UPGRADES)); then
			start_h2load $((T0 + INTERVAL_MS * (i + 1) + 1000))
		else
			start_h2load $((T0 + DURATION * 1000))
		fi
	done
fi

log "waiting for the load to end"
LOAD_RC=0
for pid in "${LOADERS[@]}"; do
	rc=0
	wait "$pid" || rc=$?
	unset "LIVE[$pid]"
	if [[ $pid == "$LOAD_PID" ]]; then
		LOAD_RC=$rc
	elif ((rc != 0)); then
		FAILS+=("a load generator (pid $pid) exited with status $rc")
	fi
done
((LOAD_RC == 0 || LOAD_RC == 3)) || FAILS+=("upgradeload exited with status $LOAD_RC: $(tail -3 "$TMP/upgradeload.err")")

# Old processes (or, in term mode, the gateway) must have drained and exited.
for i in $(seq 1 "$UPGRADES"); do
	[[ -n ${U_OLD[i]:-} ]] || continue
	old=${U_OLD[i]}
	for _ in $(seq 1 $(((SHUTDOWN_TIMEOUT + 5) * 10))); do
		[[ -s $TMP/exit.$i ]] && break
		alive "$old" || break
		sleep 0.1
	done
	alive "$old" || sleep 0.1 # the watcher polls every 20 ms
	if [[ -s $TMP/exit.$i ]]; then
		U_EXIT_MS[i]=$(cat "$TMP/exit.$i")
		if ((U_EXIT_MS[i] > (GRACE + DRAIN_SLACK) * 1000)); then
			FAILS+=("upgrade $i: the old process $old exited ${U_EXIT_MS[i]} ms after the signal, more than the grace period + ${DRAIN_SLACK} s: its streams were not closed when the grace period ended")
		fi
	elif alive "$old"; then
		FAILS+=("upgrade $i: the old process $old still runs $((SHUTDOWN_TIMEOUT + 5)) s after the signal")
	fi
	if [[ $old == "$FIRST_PID" || $MODE == quit ]]; then # a child of this shell
		rc=0
		alive "$old" || wait "$old" 2>/dev/null || rc=$?
		((rc == 0 || rc == 127)) || FAILS+=("upgrade $i: the old process $old exited with status $rc")
	fi
	alive "$old" || unset "LIVE[$old]"
done
if [[ $MODE == term ]]; then
	for _ in $(seq 1 $(((SHUTDOWN_TIMEOUT + 5) * 10))); do
		alive "$GW_PID" || break
		sleep 0.1
	done
	sleep 0.1 # the watcher writes the time
	TERM_EXIT_MS=$(cat "$TMP/exit.term" 2>/dev/null || true)
	if alive "$GW_PID"; then
		FAILS+=("the gateway still runs $((SHUTDOWN_TIMEOUT + 5)) s after SIGTERM")
	else
		TERM_RC=0
		wait "$GW_PID" 2>/dev/null || TERM_RC=$?
		unset "LIVE[$GW_PID]"
		((TERM_RC == 0)) || FAILS+=("the gateway exited with status $TERM_RC after SIGTERM")
		if [[ -n $TERM_EXIT_MS ]] && ((TERM_EXIT_MS < GRACE * 1000)); then
			FAILS+=("the gateway exited ${TERM_EXIT_MS} ms after SIGTERM, before its grace period of ${GRACE} s")
		elif [[ -n $TERM_EXIT_MS ]] && ((TERM_EXIT_MS > (GRACE + DRAIN_SLACK) * 1000)); then
			FAILS+=("the gateway exited ${TERM_EXIT_MS} ms after SIGTERM, more than the grace period + ${DRAIN_SLACK} s: its streams were not closed when the grace period ended")
		fi
	fi
fi

# The fds of the gateway that serves now, with no clients.
F_TOTAL=""
if [[ $MODE != term ]] && alive "$GW_PID"; then
	sleep 1
	read -r F_TOTAL F_LISTEN F_UP F_DOWN F_OTCP F_UNIX F_OSOCK F_NONSOCK <<<"$(fd_census "$GW_PID")"
	F_EXPECTED=$((2 + B_UNIX + F_UP + B_OSOCK + B_NONSOCK))
	F_DIFF=$((F_TOTAL - F_EXPECTED))
	((F_DIFF <= 0)) || FAILS+=("the gateway holds $F_TOTAL fds after the upgrades, $F_DIFF more than expected ($F_EXPECTED)")
	((F_LISTEN == 2)) || FAILS+=("the gateway holds $F_LISTEN listening sockets, not 2")
elif [[ $MODE != term ]]; then
	FAILS+=("the gateway ($GW_PID) is not running after the upgrades")
fi

# ---------------------------------------------------------------- results

# kv KEY: a value from upgradeload's summary.
kv() { sed -n "s/^$1=//p" "$TMP/upgradeload.out" | head -1; }
[[ -s $TMP/upgradeload.out ]] || FAILS+=("upgradeload printed no summary: $(tail -3 "$TMP/upgradeload.err")")
num() { [[ $1 =~ ^[0-9]+$ ]] && echo "$1" || echo 0; }

WRK_REQ="-" WRK_NON2XX="-" WRK_SOCK="-"
if [[ $HAVE_WRK == 1 ]]; then
	WRK_REQ=$(awk '/requests in/ { print $1; exit }' "$TMP/wrk.out")
	read -r c r w t < <(awk -F'[ ,]+' '/Socket errors:/ { print $4, $6, $8, $10; exit }' "$TMP/wrk.out") || true
	c=$(num "${c:-}") r=$(num "${r:-}") w=$(num "${w:-}") t=$(num "${t:-}")
	WRK_NON2XX=$(num "$(awk '/Non-2xx or 3xx responses:/ { print $NF; exit }' "$TMP/wrk.out")")
	WRK_SOCK="connect $c, read $r, write $w, timeout $t"
	[[ $WRK_REQ =~ ^[0-9]+$ && $WRK_REQ -gt 0 ]] || FAILS+=("wrk completed no request: $(tail -3 "$TMP/wrk.out")")
	((c + r + w + t == 0)) || FAILS+=("wrk: socket errors: $WRK_SOCK")
	((WRK_NON2XX == 0)) || FAILS+=("wrk: $WRK_NON2XX responses not 2xx or 3xx")
fi
H2_DONE="-" H2_FAILED="-" H2_NOTE="not run"
if [[ $HAVE_H2LOAD == 1 ]]; then
	H2_DONE=0 H2_FAILED=0 errored=0 tmo=0 s2=0 s4=0 s5=0 unsent=0
	for r in $(seq 1 "$H2_RUNS"); do
		out=$TMP/h2load.$r.out
		read -r d f e t < <(awk '/^requests:/ { print $6, $10, $12, $14; exit }' "$out") || true
		read -r c2 _ c4 c5 < <(awk '/^status codes:/ { print $3, $5, $7, $9; exit }' "$out") || true
		d=$(num "${d:-}")
		((d > 0)) || FAILS+=("h2load run $r of $H2_RUNS completed no request: $(tail -3 "$out" | tr '\n' ' ')")
		H2_DONE=$((H2_DONE + d)) H2_FAILED=$((H2_FAILED + $(num "${f:-}")))
		errored=$((errored + $(num "${e:-}"))) tmo=$((tmo + $(num "${t:-}")))
		s2=$((s2 + $(num "${c2:-}"))) s4=$((s4 + $(num "${c4:-}"))) s5=$((s5 + $(num "${c5:-}")))
		unsent=$((unsent + $(awk '$1 == 0 && $2 == -1 { n++ } END { print n + 0 }' "$TMP/h2load.$r.log" 2>/dev/null || echo 0)))
	done
	H2_FAILED=$((H2_FAILED - unsent))
	H2_NOTE="$H2_RUNS run(s); errored $errored (of which never sent, queued by h2load after a GOAWAY: $unsent), timeout $tmo; status 2xx $s2, 4xx $s4, 5xx $s5"
	((H2_FAILED + tmo == 0)) || FAILS+=("h2load: $H2_FAILED sent and failed ($H2_NOTE)")
	((s4 + s5 == 0)) || FAILS+=("h2load: 4xx/5xx responses ($H2_NOTE)")
fi
LOAD_FAILURES=$(num "$(kv failures)")
((LOAD_FAILURES == 0)) || FAILS+=("upgradeload counted $LOAD_FAILURES failures (see the WebSocket and gRPC rows)")
# Each drain closes the WebSockets and the gRPC stream of the process that drains, so
# that the clients reconnect to the new one: in term mode once, else once per upgrade.
DRAINS=1
if [[ $MODE != term ]]; then
	DRAINS=0
	for i in $(seq 1 "$UPGRADES"); do [[ -z ${U_NEW[i]:-} ]] || DRAINS=$((DRAINS + 1)); done
fi
(($(num "$(kv ws_close_1001)") >= WS_CLIENTS * DRAINS)) ||
	FAILS+=("$(kv ws_close_1001) WebSockets closed with 1001, fewer than $((WS_CLIENTS * DRAINS)) ($WS_CLIENTS clients, $DRAINS drain(s)): the others were not closed when the grace period ended")
(($(num "$(kv grpc_end_unavailable)") >= DRAINS)) ||
	FAILS+=("$(kv grpc_end_unavailable) gRPC streams ended with Unavailable, fewer than the $DRAINS drain(s)")

MAX_TOOK=""
for i in $(seq 1 "$UPGRADES"); do
	[[ -n ${U_TOOK[i]:-} && ${U_TOOK[i]} != "?" ]] || continue
	if [[ -z $MAX_TOOK ]] || awk -v a="${U_TOOK[i]}" -v b="$MAX_TOOK" 'BEGIN { exit !(a > b) }'; then
		MAX_TOOK=${U_TOOK[i]}
	fi
done
if [[ -n $MAX_TOOK ]] && awk -v a="$MAX_TOOK" -v b="$MAX_TOOK_MS" 'BEGIN { exit !(a > b) }'; then
	FAILS+=("the slowest hand-over took $MAX_TOOK ms, more than $MAX_TOOK_MS ms")
fi

CPU=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
echo "## Zero-downtime upgrades under load: $MODE ($(date -u '+%Y-%m-%d %H:%M UTC'))"
echo
VERSIONS="$(uname -r); $(go env GOVERSION)"
[[ $HAVE_WRK == 0 ]] || VERSIONS+="; wrk $(wrk --version 2>&1 | awk '{ print $2; exit }' || true)" # wrk --version exits 1
[[ $HAVE_H2LOAD == 0 ]] || VERSIONS+="; h2load $(h2load --version | awk '{ print $2; exit }')"
echo "$(nproc) CPUs ($CPU); $VERSIONS. Gateway at $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?'), grace_period_seconds $GRACE, graceful_shutdown_timeout_seconds $SHUTDOWN_TIMEOUT; load for ${DURATION} s; nothing pinned."
case $MODE in
quit) echo "$UPGRADES upgrades: each starts the same command with \`-u\`, waits for it to listen on upgrade_sock, then sends the serving process SIGQUIT." ;;
usr2) echo "$UPGRADES upgrades: each sends the serving process SIGUSR2 (it re-executes itself)." ;;
term) echo "No upgrade: SIGTERM to the gateway $((DURATION - 1)) s into the load; the WebSocket and gRPC clients stop reconnecting at ${DURATION} s and wait for the gateway to close them." ;;
esac
echo "Command: \`DURATION=$DURATION $([[ $MODE == term ]] || echo "UPGRADES=$UPGRADES ")CONNS=$CONNS H2_CONNS=$H2_CONNS H2_STREAMS=$H2_STREAMS WS_CLIENTS=$WS_CLIENTS GRACE=$GRACE bash bench/upgrade.sh $MODE\`"
echo
echo "| load | done | failed | refused / socket errors | more |"
echo "|---|---:|---:|---|---|"
if [[ $HAVE_WRK == 1 ]]; then
	echo "| wrk, HTTP/1.1, $CONNS connections | $WRK_REQ requests | $WRK_NON2XX not 2xx/3xx | $WRK_SOCK | |"
else
	echo "| upgradeload, HTTP/1.1, $CONNS connections (no wrk) | $(kv http_requests) requests | $(kv http_non2xx) not 2xx | refused $(kv http_refused), reset $(kv http_reset), other $(kv http_errors) | |"
fi
echo "| h2load, HTTP/2 over TLS, $H2_CONNS×$H2_STREAMS | $H2_DONE requests | $H2_FAILED | | $H2_NOTE |"
echo "| WebSocket echo, $WS_CLIENTS clients | $(kv ws_msgs_ok) messages echoed | lost $(kv ws_lost_echoes), wrong $(kv ws_msgs_bad), closes other than 1001 $(kv ws_close_other) ($(kv ws_close_other_codes)), dropped $(kv ws_broken) | dials refused $(kv ws_dial_refused), reset $(kv ws_dial_reset), failed $(kv ws_dial_error) | $(kv ws_dials) connections; closes 1001 $(kv ws_close_1001) ($(kv ws_unanswered_at_1001) with a message unanswered) |"
echo "| gRPC server stream | $(kv grpc_msgs) messages | ended otherwise than Unavailable $(kv grpc_end_other) ($(kv grpc_end_other_codes)), out of order $(kv grpc_out_of_order) | failed to open $(kv grpc_open_failed) | $(kv grpc_streams) streams, $(kv grpc_end_unavailable) ended Unavailable; longest gap $(kv grpc_max_gap_ms) ms |"
echo
if [[ $MODE == term ]]; then
	echo "| SIGTERM at | new connection half-way through the grace period | exited after | exit status |"
	echo "|---:|---|---:|---:|"
	echo "| ${TERM_AT} s | ${TERM_PROBE:-?} | ${TERM_EXIT_MS:-?} ms | ${TERM_RC:-?} |"
else
	echo "| upgrade | signal at | took (signal → new process serving) | old pid → new pid | listeners handed over | old process exited after |"
	echo "|---:|---:|---:|---|---:|---:|"
	for i in $(seq 1 "$UPGRADES"); do
		echo "| $i | ${U_SIG[i]:-?} s | ${U_TOOK[i]:-failed} ms | ${U_OLD[i]:-?} → ${U_NEW[i]:-?} | ${U_LISTENERS[i]:-?} | ${U_EXIT_MS[i]:-?} ms |"
	done
	echo
	echo "Slowest hand-over: ${MAX_TOOK:-?} ms (limit $MAX_TOOK_MS ms)."
	echo
	if [[ -n $F_TOTAL ]]; then
		echo "| fds of the gateway | total | listeners | Unix sockets | upstream connections | client connections | other sockets | not sockets (runtime, stdio, files) |"
		echo "|---|---:|---:|---:|---:|---:|---:|---:|"
		echo "| first process ($FIRST_PID), right after start, no clients | $B_TOTAL | $B_LISTEN | $B_UNIX | $B_UP | $B_DOWN | $((B_OTCP + B_OSOCK)) | $B_NONSOCK |"
		echo "| last process ($GW_PID), after the last upgrade, load stopped | $F_TOTAL | $F_LISTEN | $F_UNIX | $F_UP | $F_DOWN | $((F_OTCP + F_OSOCK)) | $F_NONSOCK |"
		echo
		echo "Expected now: 2 listeners + $B_UNIX Unix sockets (as at start; the upgrade socket is not kept) + $F_UP live upstream connections + $((B_OSOCK + B_NONSOCK)) of the runtime's own (as at start) = $F_EXPECTED; counted $F_TOTAL, difference $F_DIFF."
	fi
fi
echo
if ((${#FAILS[@]} == 0)); then
	echo "**PASS**: no failure, refusal or error seen."
	exit 0
fi
echo "**FAIL**:"
echo
for f in "${FAILS[@]}"; do echo "- $f"; done
exit 1
