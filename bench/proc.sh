# shellcheck shell=bash
# Process and clean-up helpers shared by bench/run.sh, bench/tls.sh and bench/upgrade.sh.
# Source it after setting LOG_PREFIX (the prefix of log lines); it only defines functions
# and empty tables. The script then calls setup_tmp NAME where it wants its temporary
# directory TMP (gotthard-NAME.XXXXXX): from there on, every process put in LIVE is
# stopped by its PID when the script exits, and TMP is removed, or kept (and named on
# stderr) when the exit status is not 0 or KEEP_TMP=1.
#
#   LOG_PREFIX=bench
#   source "$BENCH_DIR/proc.sh"
#   setup_tmp bench
#   some-server & LIVE[$!]=1

declare -A LIVE=()       # background processes the script started and has not stopped yet
declare -A USED_PORTS=() # ports pick_port has handed out
REMOVE_ON_EXIT=()         # directories outside TMP removed on exit, whatever the status
APT_UPDATED=0

# log MESSAGE...: one line on stderr, after LOG_PREFIX.
log() { printf '%s: %s\n' "$LOG_PREFIX" "$*" >&2; }

# die MESSAGE...: logs the error and exits with status 1.
die() {
	log "error: $*"
	exit 1
}

# setup_tmp NAME: makes the temporary directory TMP and sets the traps that run cleanup
# on exit, and exit with status 130 on SIGINT and 143 on SIGTERM (so cleanup runs then too).
setup_tmp() {
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/gotthard-$1.XXXXXX")
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# cleanup stops every process still in LIVE, removes the directories in REMOVE_ON_EXIT,
# then removes TMP unless the script failed or KEEP_TMP=1, and exits with the script's
# status.
cleanup() {
	local rc=$? pid d
	trap - EXIT INT TERM
	for pid in "${!LIVE[@]}"; do
		stop_pid "$pid"
	done
	for d in "${REMOVE_ON_EXIT[@]}"; do
		rm -rf "$d"
	done
	if [[ $rc -ne 0 || ${KEEP_TMP:-0} == 1 ]]; then
		log "logs kept in $TMP"
	else
		rm -rf "$TMP"
	fi
	exit "$rc"
}

# alive PID: the process exists and is not a zombie.
alive() {
	local s
	s=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n $s && ${s:0:1} != Z ]]
}

# stop_pid PID: SIGTERM, then SIGKILL after 5 s; reaps it if it is a child. It takes PID
# out of LIVE.
stop_pid() {
	local pid=$1 i
	unset "LIVE[$pid]"
	if alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 1 50); do
			alive "$pid" || break
			sleep 0.1
		done
		! alive "$pid" || kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

# live_children PID: puts PID's direct children (nginx workers) in LIVE.
live_children() {
	local c
	for c in $(pgrep -P "$1" 2>/dev/null || true); do LIVE[$c]=1; done
}

# stop_tree PID: stops PID, then its direct children of the moment before (nginx workers
# go with their master; this makes sure).
stop_tree() {
	local kids c
	kids=$(pgrep -P "$1" 2>/dev/null || true)
	stop_pid "$1"
	for c in $kids; do stop_pid "$c"; done
}

# ensure CMD PKG: CMD is on PATH, installing Debian package PKG if needed and possible
# (as root, with apt-get). Returns non-zero if it is still missing.
ensure() {
	local cmd=$1 pkg=$2
	command -v "$cmd" >/dev/null 2>&1 && return 0
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
		log "installing $pkg"
		if [[ $APT_UPDATED == 0 ]]; then
			apt-get update -qq >&2 || true
			APT_UPDATED=1
		fi
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >&2 || true
	fi
	command -v "$cmd" >/dev/null 2>&1
}

# pick_port sets PORT to a free TCP port on 127.0.0.1 outside the ephemeral range, so
# outgoing connections cannot take it meanwhile, and never the same one twice.
pick_port() {
	local p i
	for i in $(seq 1 200); do
		p=$((20000 + RANDOM % 12000))
		[[ -z ${USED_PORTS[$p]:-} ]] || continue
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			USED_PORTS[$p]=1
			# shellcheck disable=SC2034 # PORT is the result, read by the caller
			PORT=$p
			return 0
		fi
	done
	die "no free port found"
}

# wait_port PORT PID: waits up to 10 s for 127.0.0.1:PORT to accept while PID lives.
wait_port() {
	local i
	for i in $(seq 1 100); do
		alive "$2" || return 1
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# cpu_ticks PID...: utime+stime (clock ticks) summed over the processes.
cpu_ticks() {
	local p sum=0 f
	for p in "$@"; do
		[[ -r /proc/$p/stat ]] || continue
		# Fields after "(comm) ": state is $1, utime $12, stime $13.
		f=$(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')
		sum=$((sum + f))
	done
	echo "$sum"
}

# cpu_mask CPU: the bit mask of one CPU as nginx's worker_cpu_affinity takes it.
cpu_mask() {
	local m=1 i
	for ((i = 0; i < $1; i++)); do m="${m}0"; done
	echo "$m"
}
