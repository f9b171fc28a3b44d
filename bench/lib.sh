# shellcheck shell=bash
# Helpers shared by bench/ab.sh, bench/pgo.sh and bench/instr.sh (bench/run.sh, tls.sh
# and upgrade.sh use bench/proc.sh); source it after setting NAME (the prefix of log
# lines). It defines log, die, free_port and wait_http, and a temporary directory TMP
# whose background processes (PIDS) are stopped and which is removed on exit; a script
# with more to clean up sets EXTRA_CLEANUP to a command.

TMP=$(mktemp -d "${TMPDIR:-/tmp}/gotthard-$NAME.XXXXXX")
PIDS=()
EXTRA_CLEANUP=${EXTRA_CLEANUP:-}

log() { echo "$NAME: $*" >&2; }

die() {
	log "$*"
	exit 1
}

cleanup() {
	local pid
	[[ -z $EXTRA_CLEANUP ]] || eval "$EXTRA_CLEANUP" || true
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$TMP"
}
trap cleanup EXIT

# free_port prints a loopback TCP port nothing listens on.
free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 12000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	die "no free port found"
}

# wait_http URL waits up to 10 s for URL to answer.
wait_http() {
	for _ in $(seq 1 100); do
		curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	die "$1 did not answer"
}
