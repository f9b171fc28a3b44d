# shellcheck shell=bash
# The load measurement and its report, shared by bench/run.sh and bench/cache.sh, so that
# both measure CPU time per request the same way: one measured wrk run against a proxy
# pinned alone to PROXY_CPU, its processes' utime+stime over the run ÷ requests completed,
# runs interleaved over REPEAT rounds, the median run and the paired ratio to BASE.
#
# Source it after bench/proc.sh and setup_tmp; the script sets, before calling anything
# here: PROXY_CPU, LOAD_CPU, THREADS, CONNS, DURATION, REPEAT, BASE and RESULTS (the
# file measure appends one row to per measured run).
#
#   nginx_conf DIR PORT CONNS [HTTP [LOCATION]] nginx's configuration, the same for all
#   measure NAME SCENARIO RUN URL PID COUNTER   one measured run, a row in RESULTS
#   proxy_order RUN NAME...                     the interleaved order of a round (ORDER)
#   background_busy                             how busy the CPUs are before the run
#   report_load UPSTREAM_LABEL                  the Markdown tables of RESULTS
#
# A row of RESULTS has tab-separated fields: name, scenario, req/s, p99 (ms), CPU µs/req,
# proxy CPU %, RSS (KiB), upstream count delta, errors, load core busy %, other load on
# the proxy core %, run.

CLK_TCK=$(getconf CLK_TCK)

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

# pids_of PID: PID and its direct children (nginx master and workers, Varnish's manager
# and child).
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

# run_wrk OUT SECONDS URL: wrk on LOAD_CPU, bounded by timeout.
run_wrk() {
	timeout --kill-after=5 $(($2 + 30)) taskset -c "$LOAD_CPU" \
		wrk -t"$THREADS" -c"$CONNS" -d"$2s" --latency --timeout 5s "$3" >"$1" 2>&1
}

# background_busy: how busy PROXY_CPU and LOAD_CPU are with other work over 1 s, before
# the run; sets BG0, BG1 (percentages) and BG_BUSY ("BG0%/BG1%").
background_busy() {
	local idle0 idle1
	idle0=$(cpu_stat "$PROXY_CPU")
	idle1=$(cpu_stat "$LOAD_CPU")
	sleep 1
	BG0=$(busy_pct "$idle0" "$(cpu_stat "$PROXY_CPU")")
	BG1=$(busy_pct "$idle1" "$(cpu_stat "$LOAD_CPU")")
	# shellcheck disable=SC2034 # a result, read by the caller
	BG_BUSY="$BG0%/$BG1%"
}

# proxy_order RUN NAME...: sets ORDER to the names in order for an odd run and reversed
# for an even one (A B B A ...), so that a machine that drifts slower or faster over
# minutes favours none.
proxy_order() {
	local rep=$1 i
	shift
	ORDER=("$@")
	if ((rep % 2 == 0)); then
		ORDER=()
		for ((i = $#; i >= 1; i--)); do ORDER+=("${!i}"); done
	fi
}

# measure NAME SCENARIO RUN URL PID COUNTER: one measured wrk run of DURATION seconds
# against URL, served by the proxy PID (and its direct children). COUNTER is a command
# that prints an upstream count (the origin's connections or requests); its growth over
# the run goes in the row. Appends the row to RESULTS and sets MEASURED_REQS (requests
# completed) and MEASURED_UPSTREAM (the counter's growth). Returns 1, with the reason
# logged, if wrk failed or completed nothing.
measure() {
	local name=$1 scen=$2 rep=$3 url=$4 pid=$5 counter=$6 tag="$1-$2-$3"
	local pids c0 c1 o0 o1 lc0 pc0 lc1 pc1 out rss
	mapfile -t pids < <(pids_of "$pid")
	o0=$($counter)
	c0=$(cpu_ticks "${pids[@]}")
	lc0=$(cpu_stat "$LOAD_CPU")
	pc0=$(cpu_stat "$PROXY_CPU")
	out="$TMP/wrk-$tag.txt"
	if ! run_wrk "$out" "$DURATION" "$url"; then
		log "$name / $scen: wrk failed:"
		cat "$out" >&2
		return 1
	fi
	c1=$(cpu_ticks "${pids[@]}")
	lc1=$(cpu_stat "$LOAD_CPU")
	pc1=$(cpu_stat "$PROXY_CPU")
	o1=$($counter)
	rss=$(rss_kib "${pids[@]}")

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
		return 1
	fi
	local cpu_us util lbusy steal other
	lbusy=$(busy_pct "$lc0" "$lc1")
	steal="$(steal_pct "$pc0" "$pc1")/$(steal_pct "$lc0" "$lc1")"
	cpu_us=$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$reqs" 'BEGIN{printf "%.1f", t / hz * 1e6 / n}')
	util=$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v s="$secs" 'BEGIN{printf "%.0f", t / hz / s * 100}')
	# Whatever else ran on the proxy's core (other users' work) during the run.
	other=$(($(busy_pct "$pc0" "$pc1") - util))
	((other >= 0)) || other=0
	# shellcheck disable=SC2034 # a result, read by the caller
	MEASURED_REQS=$reqs
	MEASURED_UPSTREAM=$((o1 - o0))
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
		"$name" "$scen" "$rps" "$p99" "$cpu_us" "$util" "$rss" "$MEASURED_UPSTREAM" "$errs" "$lbusy" "$other" "$rep" >>"$RESULTS"
	log "$name / $scen: $rps req/s, p99 ${p99} ms, ${cpu_us} µs CPU/req, CPU ${util}%, RSS ${rss} KiB, upstream +$MEASURED_UPSTREAM, errors $errs, load core busy ${lbusy}%, other load on proxy core ${other}%, steal ${steal}%"
}

# nginx_conf DIR PORT WORKER_CONNECTIONS [HTTP_EXTRA [LOCATION_EXTRA]]: writes
# DIR/nginx.conf for a reverse proxy on 127.0.0.1:PORT to the origin on ORIGIN_PORT:
# master + 1 worker pinned to PROXY_CPU, HTTP/1.1 keep-alive on both sides with no limit
# on requests per connection, no access log, no spooling to disk. HTTP_EXTRA goes in the
# http block, LOCATION_EXTRA in the location (bench/cache.sh adds its cache there).
nginx_conf() {
	local dir=$1 port=$2 wc=$3 http_extra=${4:-} location_extra=${5:-} v="" nv m
	nv=$(nginx -V 2>&1)
	mkdir -p "$dir/tmp"
	for m in fastcgi uwsgi scgi; do
		[[ $nv == *"--without-http_${m}_module"* ]] || v+="    ${m}_temp_path $dir/tmp/$m;"$'\n'
	done
	cat >"$dir/nginx.conf" <<EOF
# Generated by bench/$(basename "$0").
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
    $http_extra

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
            $location_extra
        }
    }
}
EOF
}

# paired_cpu A B: the median over the runs in RESULTS of A's CPU µs/req ÷ B's in the same run,
# the range and the number of runs (tab-separated), or "-" when no run has both.
paired_cpu() {
	awk -F'\t' -v a="$1" -v b="$2" '
		{ cpu[$1, $12] = $5 + 0; runs[$12] }
		END {
			m = 0
			for (r in runs) if ((a, r) in cpu && (b, r) in cpu && cpu[b, r] > 0) v[++m] = cpu[a, r] / cpu[b, r]
			if (m == 0) { print "-"; exit }
			for (i = 2; i <= m; i++) for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
			med = (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
			printf "%.2f\t%.2f–%.2f\t%d\n", med, v[1], v[m], m
		}' "$RESULTS"
}

# report_load UPSTREAM_LABEL: the Markdown tables of RESULTS: one row per proxy ×
# scenario (the median run, its ratios to BASE and, with REPEAT > 1, the paired ratios)
# and, with REPEAT > 1, every run. UPSTREAM_LABEL names the upstream count's column.
report_load() {
	local up=$1
	[[ -s $RESULTS ]] || return 0
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
	echo "| proxy | scenario | req/s | p99 (ms) | CPU µs/req | proxy CPU | RSS after (MiB) | $up | errors | load core busy | other load on proxy core | CPU/req vs $BASE | req/s vs $BASE |$( ((REPEAT > 1)) && echo " CPU µs/req min–max | CPU/req vs $BASE, paired: median (min–max) |")"
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
		echo "| run | proxy | scenario | req/s | p99 (ms) | CPU µs/req | proxy CPU | $up | errors | load core busy | other load on proxy core |"
		echo "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
		awk -F'\t' '{ printf "| %d | %s | %s | %.0f | %.2f | %.1f | %s%% | %d | %d | %s%% | %s%% |\n",
			$12, $1, $2, $3, $4, $5, $6, $8, $9, $10, $11 }' "$RESULTS"
		echo
	fi
}
