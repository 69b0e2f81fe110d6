#!/bin/sh
# make bench: throughput, latency and memory of the gateway and the join server on this machine.
# Prints a table and writes bench.json. A benchmark, not a test: it never fails on a figure;
# a tool that is not built yet gives a "not measured" line instead of a number.
# Everything runs on 127.0.0.1 (the device simulator also binds 127.0.0.2.. as source
# addresses past 20k devices: one address has only ~28k ports). Every step is bounded in
# count and time.
#   BENCH_JSON=file   where to write the figures (default ./bench.json)
#   BENCH_SCALE=x     multiply the counts (0.1 for a quick pass)
#   BENCH_ONLY="reg pipeline rss filters join"   run only these sections
#   BENCH_JOIN_RATE=n the JoinReqs/s offered to ljs-join in its open-loop rows (10000)
#   BENCH_SHADOW_FLAGS=-v  shadow-put's log options in the pipeline rows (-q; -v logs each commit)
#   BENCH_KEEP=1      keep the work directory (the pipeline rows leave <tag>.timeline there:
#                     bench-lag -t, lines and lag per 100 ms)
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${LWM2M_GW_BIN:-$TOP/bin}
UNIT=${LWM2M_GW_UNIT:-$TOP/build/tests}
OUT=${BENCH_JSON:-$TOP/bench.json}
SCALE=${BENCH_SCALE:-1}
ONLY=${BENCH_ONLY:-"reg psk pipeline rss filters return join"}
export PATH="$BIN:$UNIT:$PATH"

work=$(mktemp -d /tmp/lwm2m-bench.XXXXXX) || exit 111
started=""
figs="$work/figures.tsv"
: >"$figs"

cleanup() {
	for p in $started; do kill "$p" 2>/dev/null; done
	sleep 0.2
	for p in $started; do kill -9 "$p" 2>/dev/null; done
	[ -n "${BENCH_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf 'bench: %s\n' "$*" >&2; }
n() { awk -v a="$1" -v s="$SCALE" 'BEGIN { v = int(a * s); print (v < 1 ? 1 : v) }'; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
per_s() { awk -v c="$1" -v a="$2" -v b="$3" 'BEGIN { d = b - a; printf "%.0f", (d > 0 ? c / d : 0) }'; }
jget() { jq -r "$2 // empty" "$1" 2>/dev/null | head -n 1; }
section() { case " $ONLY " in *" $1 "*) return 0 ;; esac; return 1; }
have() { [ -x "$BIN/$1" ]; }

# fig NAME VALUE UNIT TARGET NOTE: one figure for the table and bench.json.
fig() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${5:-}" >>"$figs"; }
# skip NAME TARGET REASON
skip() {
	fig "$1" "" "" "$2" "not measured: $3"
	log "$1: not measured: $3"
}
missing() {
	for _t in "$@"; do have "$_t" || { echo "$_t not built yet"; return 0; }; done
	return 1
}

free_port() {
	python3 - "${1:-udp}" <<'PY'
import socket, sys
kind = socket.SOCK_DGRAM if sys.argv[1] == "udp" else socket.SOCK_STREAM
s = socket.socket(socket.AF_INET, kind)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
PY
}

# start NAME CMD...: in the background, stdout to $work/NAME.out unless redirected by the caller
# through the variables IN and OUTF, stderr to $work/NAME.err.
start() {
	_n=$1; shift
	"$@" <"${IN:-/dev/null}" >"${OUTF:-$work/$_n.out}" 2>"$work/$_n.err" &
	_p=$!
	echo "$_p" >"$work/$_n.pid"
	started="$started $_p"
}
pid_of() { cat "$work/$1.pid"; }
# stop NAME [SIGNAL]: end it and wait for it, 5 s at most before SIGKILL.
stop() {
	_p=$(pid_of "$1" 2>/dev/null) || return 0
	kill "-${2:-TERM}" "$_p" 2>/dev/null
	_i=0
	while kill -0 "$_p" 2>/dev/null && [ $_i -lt 100 ]; do sleep 0.05; _i=$((_i + 1)); done
	kill -9 "$_p" 2>/dev/null
	wait "$_p" 2>/dev/null
	return 0
}
# wait_for SECONDS CMD...: retry every 50 ms; 1 when the bound passes.
wait_for() {
	_e=$(($(date +%s) + $1)); shift
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -ge "$_e" ] && return 1
		sleep 0.05
	done
}
wait_exit() { # wait_exit NAME SECONDS: wait for NAME to end by itself
	_w=$(pid_of "$1")
	_e=$(($(date +%s) + $2))
	while kill -0 "$_w" 2>/dev/null; do
		[ "$(date +%s)" -ge "$_e" ] && { log "$1 still running after $2 s; stopping it"; stop "$1"; return 1; }
		sleep 0.05
	done
	wait "$_w" 2>/dev/null
	return 0
}
nonempty() { [ -s "$1" ]; }
# CPU seconds (user + system) a process has used so far
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null; }
# ... of a process and its children (ljs-join with its crypto process, sh -c wrappers)
cpu_tree() {
	_t=$(cpu_s "$1")
	for _c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		_t=$(awk -v a="$_t" -v b="$(cpu_tree "$_c")" 'BEGIN { printf "%.2f", a + b }')
	done
	echo "${_t:-0}"
}
# per_cpu COUNT CPU_SECONDS: rate per second of CPU (per core)
per_cpu() { awk -v c="$1" -v t="$2" 'BEGIN { printf "%.0f", (t > 0 ? c / t : 0) }'; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
tail_err() { [ -s "$work/$1.err" ] && { log "--- $1 stderr:"; tail -n 5 "$work/$1.err" >&2; }; return 0; }

# launch_listen TAG [STDOUT]: lwm2m-listen on a fresh port and state directory, its events to
# STDOUT (a file or a fifo; default $work/listen-TAG.out); sets LPORT and CTL. 1 if not ready.
launch_listen() {
	_tag=$1
	LPORT=$(free_port udp)
	CTL="$work/$_tag.sock"
	mkdir -p "$work/$_tag.state"
	: >"$work/$_tag.ready"
	OUTF=${2:-$work/listen-$_tag.out} start listen-$_tag sh -c 'exec lwm2m-listen -l "$1" -S "$2" -C "$3" -P 0 -q -d 3 3>"$4"' sh \
		"127.0.0.1:$LPORT" "$work/$_tag.state" "$CTL" "$work/$_tag.ready"
	if ! wait_for 10 nonempty "$work/$_tag.ready"; then
		log "lwm2m-listen did not get ready"
		tail_err "listen-$_tag"
		stop "listen-$_tag"
		return 1
	fi
	return 0
}

machine() {
	cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	printf '%s, %s cores, %s, %s' "$cpu" "$(nproc)" "$(uname -sr)" \
		"$(awk '/^MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo)"
}

log "machine: $(machine)"
log "work directory: $work"

# ---------------------------------------------------------------------------------------------
# 1. Registers/s into lwm2m-listen (NoSec), devices registering as fast as a window of 256
#    outstanding Registers allows.
if section reg; then
	for count in 2000 15000; do
	devs=$(n $count)
	name="Registers/s into lwm2m-listen (NoSec, $devs devices)"
	if why=$(missing lwm2m-listen); then
		skip "$name" ">= 20000/s" "$why"
	elif launch_listen reg$count; then
		c0=$(cpu_s "$(pid_of listen-reg$count)")
		lj="$work/reg$count.loadgen.json"
		rd="$work/reg$count.registered"
		: >"$rd"
		# then 4 Updates per device (the message devices send most), after a 1 s pause that
		# lets the CPU used by the Registers be read apart
		OUTF="$lj" start loadgen-reg$count sh -c 'exec lwm2m-loadgen "$@" -d 3 3>"$0"' "$rd" \
			-s "127.0.0.1:$LPORT" -n "$devs" -w 64 -o '</1/0>,</3/0>,</3303/0>' --settle 0 \
			--settle-max 0 -H 1 -U 4 -T 120
		wait_for 120 nonempty "$rd"
		cm=$(cpu_s "$(pid_of listen-reg$count)")
		wait_exit loadgen-reg$count 130
		c1=$(cpu_s "$(pid_of listen-reg$count)")
		r=$(jget "$lj" .registers_per_s)
		if [ -n "$r" ]; then
			cs=$(awk -v a="$c0" -v b="$cm" 'BEGIN { printf "%.2f", b - a }')
			fig "$name" "$r" "registers/s" ">= 20000/s" \
				"$(jq -r '"p50 \(.register_p50_ms) ms, p99 \(.register_p99_ms) ms, \(.retransmissions) retransmissions, \(.register_failed) failed"' "$lj"); lwm2m-listen used $cs CPU s: $(per_cpu "$(jget "$lj" .registered)" "$cs") per CPU second"
			cs=$(awk -v a="$cm" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')
			fig "Updates/s into lwm2m-listen (NoSec, $devs devices, 4 each)" "$(jget "$lj" .updates_per_s)" "updates/s" "" \
				"$(jq -r '"\(.updates) answered, p50 \(.update_p50_ms) ms, p99 \(.update_p99_ms) ms, \(.update_failed) failed"' "$lj"); lwm2m-listen used $cs CPU s: $(per_cpu "$(jget "$lj" .updates)" "$cs") per CPU second"
		else
			skip "$name" ">= 20000/s" "the load generator gave no figures"
			tail_err loadgen-reg$count
		fi
		stop listen-reg$count
	fi
	done
fi

# 2. DTLS-PSK handshakes (+ Register)/s: devices with their own PSK (identity = endpoint name),
#    each a libcoap GnuTLS client session that handshakes, registers and stays connected; a window
#    of 32 handshakes at once over the generator's jobs (lwm2m-listen's -H allows 100), and no job
#    closes its sessions before every job is registered.
if section psk; then
	name="PSK handshakes (+Register)/s into lwm2m-listen"
	devs=$(n 2000)
	if why=$(missing lwm2m-listen); then
		skip "$name" ">= 1000/s" "$why"
	elif ! lwm2m-loadgen --help 2>&1 | grep -q -- --psk; then
		skip "$name" ">= 1000/s" "lwm2m-loadgen has no --psk"
	else
		key=000102030405060708090a0b0c0d0e0f
		creds="$work/psk.creds.jsonl"
		awk -v n="$devs" -v k="$key" 'BEGIN { for (i = 0; i < n; i++)
			printf "{\"ep\":\"psk-%06d\",\"psk_identity\":\"psk-%06d\",\"psk_key\":\"%s\"}\n", i, i, k }' >"$creds"
		LPORT=$(free_port udp)
		DPORT=$(free_port udp)
		mkdir -p "$work/psk.state"
		: >"$work/psk.ready"
		OUTF="$work/listen-psk.out" start listen-psk sh -c 'exec lwm2m-listen -l "$1" -D "$2" -k "$3" -S "$4" -P 0 -q -d 3 3>"$5"' sh \
			"127.0.0.1:$LPORT" "127.0.0.1:$DPORT" "$creds" "$work/psk.state" "$work/psk.ready"
		if wait_for 10 nonempty "$work/psk.ready"; then
			lp=$(pid_of listen-psk)
			c0=$(cpu_s "$lp")
			lj="$work/psk.loadgen.json"
			OUTF="$lj" start loadgen-psk lwm2m-loadgen -s "127.0.0.1:$DPORT" -n "$devs" -w 32 -e psk- -k "$key" \
				-o '</1/0>,</3/0>,</3303/0>' -T 120 -q
			wait_exit loadgen-psk 130
			c1=$(cpu_s "$lp")
			r=$(jget "$lj" .registers_per_s)
			if [ -n "$r" ]; then
				cs=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')
				fig "$name" "$r" "handshakes+registers/s" ">= 1000/s" \
					"$(jq -r '"\(.registered) of \(.devices) devices, p50 \(.register_p50_ms) ms, p99 \(.register_p99_ms) ms (handshake + Register), \(.register_failed) failed"' "$lj"); lwm2m-listen used $cs CPU s: $(per_cpu "$(jget "$lj" .registered)" "$cs") per CPU second"
			else
				skip "$name" ">= 1000/s" "the load generator gave no figures"
				tail_err loadgen-psk
			fi
		else
			skip "$name" ">= 1000/s" "lwm2m-listen with -D did not get ready"
			tail_err listen-psk
		fi
		stop listen-psk
	fi
fi

# ---------------------------------------------------------------------------------------------
# 3. Device value -> shadow on disk: lwm2m-listen | lwm2m-observe | shadow-put, every device
#    observed on /3303/0/5700, notifications (CON) stamped with their send time; bench-lag reads
#    shadow-put's results (printed once the update is on disk) and computes the lag.
pipeline_run() { # pipeline_run TAG DEVICES RATE SECONDS [STORE]
	tag=$1 devs=$2 rate=$3 dur=$4 store=${5:-$work/$1.store}
	mkfifo "$work/$tag.ev" "$work/$tag.up" "$work/$tag.res"
	mkdir -p "$store"
	CTL="$work/$tag.sock"
	# the plain pipeline: lwm2m-listen's events on lwm2m-observe's standard input
	IN="$work/$tag.ev" OUTF="$work/$tag.up" start observe-$tag lwm2m-observe -C "$CTL" -q /3303/0/5700
	IN="$work/$tag.up" OUTF="$work/$tag.res" start shadow-$tag shadow-put -s "$store" ${BENCH_SHADOW_FLAGS:--q}
	mkfifo "$work/$tag.res2"
	IN="$work/$tag.res" OUTF="$work/$tag.res2" start tee-$tag tee "$work/$tag.lag.raw"
	IN="$work/$tag.res2" OUTF="$work/$tag.lag.json" start lag-$tag bench-lag -k 5700 -S "$devs" -T 300 -t "$work/$tag.timeline"
	launch_listen "$tag" "$work/$tag.ev" || return 1
	OUTF="$work/$tag.loadgen.json" start loadgen-$tag lwm2m-loadgen -s "127.0.0.1:$LPORT" -n "$devs" \
		-o '</1/0>,</3303/0>' -E 1 --settle-max 60 -N "$rate" -D "$dur" -C -T $((dur + 120))
	# the stages' CPU time once the notifications start (registration and observation set-up
	# excluded), for the per-CPU-second figure of the notification path itself
	_cl0=0 _co0=0 _cs0=0
	_lg=$(pid_of "loadgen-$tag")
	while kill -0 "$_lg" 2>/dev/null; do
		if grep -q 'info: notifying' "$work/loadgen-$tag.err" 2>/dev/null; then
			_cl0=$(cpu_s "$(pid_of "listen-$tag")"); _co0=$(cpu_s "$(pid_of "observe-$tag")"); _cs0=$(cpu_s "$(pid_of "shadow-$tag")")
			break
		fi
		sleep 0.05
	done
	wait_exit "loadgen-$tag" $((dur + 130))
	# let the last values reach the disk (30 s at most), then close the pipeline from its head
	_n=0
	while [ $_n -lt 6 ]; do
		_a=$(wc -c <"$work/$tag.lag.raw" 2>/dev/null)
		sleep 5
		[ "$(wc -c <"$work/$tag.lag.raw" 2>/dev/null)" = "$_a" ] && break
		_n=$((_n + 1))
	done
	_cl=$(cpu_s "$(pid_of "listen-$tag")"); _co=$(cpu_s "$(pid_of "observe-$tag")"); _cs=$(cpu_s "$(pid_of "shadow-$tag")")
	CPUSUM=$(awk -v a="${_cl:-0}" -v b="${_co:-0}" -v c="${_cs:-0}" 'BEGIN { printf "%.2f", a + b + c }')
	CPU="lwm2m-listen ${_cl} s, lwm2m-observe ${_co} s, shadow-put ${_cs} s"
	NCPU=$(awk -v a="${_cl:-0}" -v b="${_co:-0}" -v c="${_cs:-0}" -v d="${_cl0:-0}" -v e="${_co0:-0}" -v f="${_cs0:-0}" \
		'BEGIN { printf "lwm2m-listen %.2f s, lwm2m-observe %.2f s, shadow-put %.2f s", a - d, b - e, c - f }')
	NCPUSUM=$(awk -v a="$CPUSUM" -v d="${_cl0:-0}" -v e="${_co0:-0}" -v f="${_cs0:-0}" 'BEGIN { printf "%.2f", a - d - e - f }')
	stop "listen-$tag"
	wait_exit "observe-$tag" 10
	wait_exit "shadow-$tag" 10
	wait_exit "tee-$tag" 10
	wait_exit "lag-$tag" 10
	for s in listen observe shadow; do tail_err "$s-$tag"; done
	return 0
}
if section pipeline; then
	name="device value -> shadow on disk, offered"
	if why=$(missing lwm2m-listen lwm2m-observe shadow-put); then
		skip "notifications/s listen|observe|shadow-put" ">= 20000/s" "$why"
		skip "device send -> shadow on disk p50/p99" "p99 < 50 ms" "$why"
	else
		# 2000 devices at the target rate (5 s), and 200 devices at 400/s (10 s), a load the
		# store keeps up with, for the latency of an unsaturated path; then the first again
		# on the store it left (a gateway restarted under its fleet: every thing on disk)
		for spec in "20000 2000 5" "400 200 10" "20000 2000 5 restart"; do
			set -- $spec
			tag=pipe$1 st="" what="$2 devices, offered $(n "$1")/s"
			if [ -n "${4:-}" ]; then
				tag=pipe$1r st="$work/pipe$1.store" what="$what, restart: the store of the first row in place"
				[ -d "$st" ] || continue
			fi
			rate=$(n "$1")
			if pipeline_run "$tag" "$(n "$2")" "$rate" "$3" $st && [ -s "$work/$tag.lag.json" ]; then
				lg="$work/$tag.lag.json"; ld="$work/$tag.loadgen.json"
				fig "notifications/s listen|observe|shadow-put ($what)" \
					"$(jget "$lg" .lines_per_s)" "values/s on disk" ">= 20000/s" \
					"$(jget "$ld" .notify_sent) sent at $(jget "$ld" .notifications_per_s)/s, $(jget "$ld" .notify_acked) acknowledged (ack p50 $(jget "$ld" .notify_ack_p50_ms) / p99 $(jget "$ld" .notify_ack_p99_ms) ms), $(jget "$ld" .notify_busy) held back by devices waiting for an ACK, $(jget "$ld" .retransmissions) retransmissions; $(jget "$lg" .stamped) update lines landed (lwm2m-observe merges the values of one thing that wait together); $(per_cpu "$(jget "$ld" .notify_acked)" "$CPUSUM") values per CPU second of the three stages, $(per_cpu "$(jget "$ld" .notify_acked)" "$NCPUSUM") counting the notification phase only ($NCPU)"
				fig "device send -> shadow on disk ($what)" \
					"p50 $(jget "$lg" .lag_p50_ms) / p99 $(jget "$lg" .lag_p99_ms)" "ms" "p99 < 50 ms" \
					"max $(jget "$lg" .lag_max_ms) ms; past the first $(jget "$lg" .steady_after_s) s (the start, where every thing comes to the store and its first values come at once): p50 $(jget "$lg" .steady_lag_p50_ms) / p99 $(jget "$lg" .steady_lag_p99_ms) / max $(jget "$lg" .steady_lag_max_ms) ms over $(jget "$lg" .steady_stamped) values; CPU: $CPU"
			else
				skip "notifications/s listen|observe|shadow-put ($what)" ">= 20000/s" \
					"the pipeline did not run (see the logs above)"
			fi
		done
	fi
fi

# ---------------------------------------------------------------------------------------------
# 4. RSS of lwm2m-listen per registered device with its observations (/3/0/9 and /3303/0/5700).
if section rss; then
	for devs in 10000 100000; do
		d=$(n $devs)
		name="lwm2m-listen RSS per device, $d devices"
		if why=$(missing lwm2m-listen); then
			skip "$name" "<= 2048 B" "$why"
			continue
		fi
		tag=rss$devs
		CTL="$work/$tag.sock"
		obs=0
		# the plain pipeline: lwm2m-listen's events on lwm2m-observe's standard input
		mkfifo "$work/$tag.ev"
		if have lwm2m-observe; then
			IN="$work/$tag.ev" OUTF=/dev/null start observe-$tag lwm2m-observe -C "$CTL" -q /3/0/9 /3303/0/5700
			obs=2
		else
			IN="$work/$tag.ev" OUTF=/dev/null start observe-$tag cat
		fi
		launch_listen "$tag" "$work/$tag.ev" || { skip "$name" "<= 2048 B" "lwm2m-listen did not start"; continue; }
		lp=$(pid_of "listen-$tag")
		before=$(rss_kib "$lp")
		# bounded: libcoap 4.3.1 walks every session for each new peer, so registering slows as
		# the count grows; RSS is read once the generator has ended (registrations stay)
		bound=$((devs / 1000 + 50)); [ $bound -gt 120 ] && bound=120
		# 64 Registers outstanding per generator job (one job per ~20k devices: the fd limit)
		w=$(( (d + 19935) / 19936 * 64 ))
		OUTF="$work/$tag.loadgen.json" start loadgen-$tag lwm2m-loadgen -s "127.0.0.1:$LPORT" -n "$d" \
			-w "$w" -E "$obs" --settle 2 --settle-max "$bound" -T "$bound" -q
		wait_exit "loadgen-$tag" $((bound + 20))
		sleep 1
		after=$(rss_kib "$lp")
		ld="$work/$tag.loadgen.json"
		reg=$(jget "$ld" .registered)
		if [ -n "$after" ] && [ -n "$before" ] && [ "${reg:-0}" -gt 0 ]; then
			per=$(awk -v a="$after" -v b="$before" -v r="$reg" 'BEGIN { printf "%.0f", (a - b) * 1024 / r }')
			note="VmRSS $before -> $after KiB, $reg of $d registered in $(jget "$ld" .register_seconds) s (bound ${bound} s), $(jget "$ld" .observations) observations"
			[ "$obs" = 0 ] && note="$note (lwm2m-observe not built yet: no observations)"
			fig "$name" "$per" "B/device" "<= 2048 B" "$note"
		else
			skip "$name" "<= 2048 B" "no device registered in time"
			tail_err "loadgen-$tag"
		fi
		stop "listen-$tag"
		stop "observe-$tag"
	done
fi

# ---------------------------------------------------------------------------------------------
# 5. Each filter stage alone, JSON lines in and out.
if section filters; then
	# shadow-put: updates round-robin over 1000 things, durability on (a result is printed once
	# the update is on disk); bounded to 20 s a run, the figure is results per second
	if why=$(missing shadow-put); then
		skip "shadow-put lines/s (durable, batched)" ">= 20000/s" "$why"
		skip "shadow-put lines/s (durable, one fsync per update: -b 1)" "" "$why"
	else
		cnt=$(n 200000)
		awk -v n="$cnt" 'BEGIN { for (i = 0; i < n; i++)
			printf "{\"thing\":\"dev%d\",\"state\":{\"reported\":{\"3303\":{\"0\":{\"5700\":%d.5}},\"3\":{\"0\":{\"9\":%d}}}}}\n", i % 1000, i, i % 100 }' \
			>"$work/updates.jsonl"
		for mode in batched single things10; do
			rm -rf "$work/sp.store"; mkdir -p "$work/sp.store"
			extra=""; input="$work/updates.jsonl"
			label="shadow-put lines/s (durable, batched, 1000 things)"
			case $mode in
			single) extra="-b 1"; label="shadow-put lines/s (durable, -b 1: one commit per update)" ;;
			things10) label="shadow-put lines/s (durable, batched, 10 things)"
				input="$work/updates10.jsonl"
				sed 's/"dev\([0-9]*\)\([0-9]\)"/"dev\2"/' "$work/updates.jsonl" >"$input" ;;
			esac
			t0=$(now)
			# shellcheck disable=SC2086
			timeout -k 3 -s TERM 20 shadow-put -s "$work/sp.store" -q $extra <"$input" >"$work/sp.out" 2>"$work/sp.err"
			t1=$(now)
			ok=$(grep -c '"accepted"' "$work/sp.out")
			fig "$label" "$(per_s "$ok" "$t0" "$t1")" "updates/s" ">= 20000/s" \
				"$ok accepted in $(secs "$t0" "$t1") s (bounded to 20 s)"
		done
	fi

	# lwm2m-observe alone: register events in, notification lines from bench-ctl, updates out
	if why=$(missing lwm2m-observe); then
		skip "lwm2m-observe notifications/s alone" ">= 50000/s" "$why"
	else
		k=$(n 1000); cnt=$(n 300000)
		awk -v n="$k" 'BEGIN { for (i = 0; i < n; i++)
			printf "{\"event\":\"register\",\"ep\":\"dev%d\",\"reg\":\"r%d\",\"lt\":86400,\"lwm2m\":\"1.1\",\"b\":\"U\",\"queue\":false,\"objects\":[\"/1/0\",\"/3303/0\"],\"addr\":\"127.0.0.1:%d\",\"sec\":\"nosec\",\"time\":1763850000}\n", i, i, 20000 + i }' \
			>"$work/events.jsonl"
		start ctl-obs bench-ctl -C "$work/ctl-obs.sock" -n "$cnt" -E "$k" -T 200
		wait_for 5 test -S "$work/ctl-obs.sock"
		mkfifo "$work/obs.out"
		IN="$work/obs.out" OUTF="$work/obs.lag.json" start lag-obs bench-lag -k 5700 -T 200
		# stdin stays open after the events (the filter must not end before its notifications)
		mkfifo "$work/obs.in"
		IN="$work/obs.in" OUTF="$work/obs.out" start observe-alone lwm2m-observe -C "$work/ctl-obs.sock" -q /3303/0/5700
		OUTF="$work/obs.in" start feed-obs sh -c 'cat "$1"; exec sleep 600' sh "$work/events.jsonl"
		# bench-ctl writes its notifications as fast as lwm2m-observe reads them (the socket
		# buffer holds ~1,000): its rate is the filter's. lwm2m-observe merges the values of a
		# thing that wait together, so its update lines are fewer than the notifications.
		wait_exit ctl-obs 200
		oc=$(cpu_s "$(pid_of observe-alone)")
		stop feed-obs
		wait_exit observe-alone 10
		wait_exit lag-obs 10
		sent=$(sed -n 's/.*"notify_sent":\([0-9]*\).*/\1/p' "$work/ctl-obs.err" | tail -n 1)
		secs_n=$(sed -n 's/.*"notify_seconds":\([0-9.]*\).*/\1/p' "$work/ctl-obs.err" | tail -n 1)
		if [ -n "$sent" ] && [ -n "$secs_n" ] && [ -s "$work/obs.lag.json" ]; then
			fig "lwm2m-observe notifications/s alone" "$(awk -v c="$sent" -v t="$secs_n" 'BEGIN { printf "%.0f", (t > 0 ? c / t : 0) }')" "notifications/s" ">= 50000/s" \
				"$sent notification lines from bench-ctl (1,000 things) in $secs_n s, $(jget "$work/obs.lag.json" .lines) update lines out; lwm2m-observe used $oc CPU s in all: $(per_cpu "$sent" "$oc") notifications per CPU second"
		else
			skip "lwm2m-observe notifications/s alone" ">= 50000/s" "no output"
			tail_err observe-alone
			tail_err ctl-obs
		fi
	fi

	# lwm2m-write alone: deltas in, writes answered 2.04 by bench-ctl, reported updates out
	if why=$(missing lwm2m-write); then
		skip "lwm2m-write lines/s alone" "" "$why"
	else
		k=$(n 1000); cnt=$(n 50000)
		awk -v n="$cnt" -v k="$k" 'BEGIN { for (i = 0; i < n; i++)
			printf "{\"thing\":\"dev%d\",\"version\":%d,\"state\":{\"3311\":{\"0\":{\"5850\":%s}}},\"timestamp\":1763850000}\n", i % k, i + 1, (i % 2) ? "true" : "false" }' \
			>"$work/deltas.jsonl"
		start ctl-wr bench-ctl -C "$work/ctl-wr.sock" -R "$k" -T 200
		wait_for 5 test -S "$work/ctl-wr.sock"
		t0=$(now)
		timeout 200 lwm2m-write -C "$work/ctl-wr.sock" -q <"$work/deltas.jsonl" >"$work/wr.out" 2>"$work/wr.err"
		t1=$(now)
		stop ctl-wr
		out=$(wc -l <"$work/wr.out")
		fig "lwm2m-write lines/s alone" "$(per_s "$cnt" "$t0" "$t1")" "deltas/s" "" \
			"$cnt deltas to $k devices in $(secs "$t0" "$t1") s, $out lines out"
	fi
fi

# ---------------------------------------------------------------------------------------------
# 5b. The return path: desired state -> device. bench-feed's desired lines into shadow-put on a
# local store, shadow-watch on that store | lwm2m-write | lwm2m-listen | lwm2m-loadgen devices,
# which log each write's arrival; the lag is the write's arrival less its line's send time (the
# k-th write a device gets pairs with the k-th line for its thing: every line flips the light).
# lwm2m-write's results go to a file here, not back into the store.
return_run() { # return_run TAG DEVICES RATE SECONDS
	tag=$1 devs=$2 rate=$3 dur=$4
	mkdir -p "$work/$tag.store"
	launch_listen "$tag" || return 1
	OUTF="$work/$tag.loadgen.json" start loadgen-$tag lwm2m-loadgen -s "127.0.0.1:$LPORT" -n "$devs" \
		-o '</1/0>,</3/0>,</3311/0>' -N 0 -H $((dur + 15)) -W "$work/$tag.writes" -T $((dur + 120)) -q
	if ! wait_for 60 sh -c '[ "$(grep -c "\"event\":\"register\"" "$1")" -ge "$2" ]' sh "$work/listen-$tag.out" "$devs"; then
		log "$tag: the devices did not all register"
		tail_err "loadgen-$tag"
		stop "loadgen-$tag"; stop "listen-$tag"
		return 1
	fi
	mkfifo "$work/$tag.deltas" "$work/$tag.desired"
	OUTF="$work/$tag.deltas" start watch-$tag shadow-watch -s "$work/$tag.store" -q
	IN="$work/$tag.deltas" OUTF="$work/$tag.results" start write-$tag lwm2m-write -C "$CTL" -q
	IN="$work/$tag.desired" OUTF="$work/$tag.put" start put-$tag shadow-put -s "$work/$tag.store" -q
	sleep 0.5
	# the feed's end does not end shadow-put (its CPU time is read below)
	OUTF="$work/$tag.desired" start feed-$tag sh -c 'd=$1; shift; bench-feed "$@" && : >"$d"; exec sleep 600' sh \
		"$work/$tag.feed.done" -n "$devs" -r "$rate" -D "$dur" -l "$work/$tag.feed"
	wait_for $((dur + 30)) test -e "$work/$tag.feed.done"
	# the last writes (30 s at most), then the path from its head
	_n=0 _want=$(wc -l <"$work/$tag.feed")
	while [ $_n -lt 300 ] && [ "$(awk 'END { print NR }' "$work/$tag.writes" 2>/dev/null)" -lt "$_want" ]; do
		sleep 0.1; _n=$((_n + 1))
	done
	CPU="shadow-put $(cpu_s "$(pid_of "put-$tag")") s, shadow-watch $(cpu_s "$(pid_of "watch-$tag")") s, lwm2m-write $(cpu_s "$(pid_of "write-$tag")") s, lwm2m-listen $(cpu_s "$(pid_of "listen-$tag")") s"
	stop "loadgen-$tag"
	stop "feed-$tag"
	wait_exit "put-$tag" 10
	stop "watch-$tag"
	wait_exit "write-$tag" 10
	stop "listen-$tag"
	for s in put watch write listen; do tail_err "$s-$tag"; done
	awk 'FNR == NR { n[$1]++; t[$1, n[$1]] = $2; next }
		{ m[$1]++; if (($1, m[$1]) in t) print ($3 - t[$1, m[$1]]) / 1000 }' \
		"$work/$tag.feed" "$work/$tag.writes" 2>/dev/null | sort -n >"$work/$tag.lags"
	return 0
}
if section return; then
	if why=$(missing shadow-put shadow-watch lwm2m-write lwm2m-listen); then
		skip "desired -> device write (return path)" "" "$why"
	else
		for spec in "1000 1000 5" "5000 2000 5"; do
			set -- $spec
			tag=ret$1 rate=$(n "$1") devs=$(n "$2")
			what="$devs devices, offered $rate/s"
			if return_run "$tag" "$devs" "$rate" "$3" && [ -s "$work/$tag.lags" ]; then
				sent=$(wc -l <"$work/$tag.feed") got=$(wc -l <"$work/$tag.lags")
				first=$(head -n 1 "$work/$tag.feed" | cut -d' ' -f2) last=$(sort -k3,3n "$work/$tag.writes" | tail -n 1 | cut -d' ' -f3)
				fig "desired -> device writes/s ($what)" \
					"$(awk -v c="$got" -v a="$first" -v b="$last" 'BEGIN { printf "%.0f", (b > a ? c / ((b - a) / 1e6) : 0) }')" \
					"writes/s" "" "$sent desired lines sent, $got writes reached the devices, $(wc -l <"$work/$tag.results") result lines from lwm2m-write; CPU: $CPU"
				fig "desired -> device write lag ($what)" \
					"$(awk '{ a[NR] = $1 } END { printf "p50 %.2f / p99 %.2f", a[int(NR * 0.5) + 1], a[int(NR * 0.99) + 1] }' "$work/$tag.lags")" \
					"ms" "" "from bench-feed's line to the device's receipt of the write; max $(tail -n 1 "$work/$tag.lags") ms"
			else
				skip "desired -> device write lag ($what)" "" "the return path did not run (see the logs above)"
			fi
		done
	fi
fi

# ---------------------------------------------------------------------------------------------
# 6. ljs-join: JoinReq/s over keep-alive HTTP, new mutual-TLS handshakes/s, and with --crypto.
if section join; then
	if why=$(missing ljs-join); then
		skip "ljs-join JoinReq/s (HTTP keep-alive)" ">= 10000/s, p99 < 5 ms" "$why"
		skip "ljs-join JoinReq latency at ${BENCH_JOIN_RATE:-10000}/s offered (HTTP keep-alive)" "p99 < 5 ms" "$why"
		skip "ljs-join new mutual-TLS handshakes/s" ">= 1000/s" "$why"
		skip "ljs-join JoinReq/s with --crypto kms-wrap serve" "" "$why"
	else
		. "$TOP/tests/bench/join.sh"
	fi
fi

# ---------------------------------------------------------------------------------------------
# The table and bench.json
date_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)
commit=$(git -C "$TOP" rev-parse --short HEAD 2>/dev/null || echo unknown)
{
	printf '\nlwm2m-gw benchmarks, %s, commit %s\n%s\n\n' "$date_utc" "$commit" "$(machine)"
	awk -F'\t' '{
		v = ($2 == "") ? "-" : $2 " " $3
		printf "%-60s %-26s %-30s %s\n", $1, v, ($4 == "" ? "" : "target " $4), $5
	}' "$figs"
	echo
}
jq -Rn --arg date "$date_utc" --arg commit "$commit" --arg machine "$(machine)" \
	--arg cpu "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" --argjson nproc "$(nproc)" '
	{date: $date, commit: $commit, machine: $machine, cpu: $cpu, nproc: $nproc,
	 figures: [inputs | split("\t") | {name: .[0], value: (.[1] | (tonumber? // (if . == "" then null else . end))),
	   unit: .[2], target: .[3], note: .[4]}]}' <"$figs" >"$OUT"
log "figures written to $OUT"
exit 0
