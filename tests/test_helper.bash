# Shared by every bats suite: where the binaries are, free ports, background processes.
bats_load_library bats-support
bats_load_library bats-assert

TOP=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
BIN=${LWM2M_GW_BIN:-$TOP/bin}
UNIT=${LWM2M_GW_UNIT:-$TOP/build/tests}
export PATH="$BIN:$PATH"
export NODE_PATH="$TOP/tests/node/node_modules"
PEERS="$TOP/tests/peers"

# A port nothing listens on now (udp or tcp), on 127.0.0.1.
free_port() {
	python3 - "${1:-udp}" <<'PY'
import socket, sys
kind = socket.SOCK_DGRAM if sys.argv[1] == "udp" else socket.SOCK_STREAM
s = socket.socket(socket.AF_INET, kind)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
PY
}

# wait_until SECONDS CMD...: retry CMD every 50 ms until it succeeds; fail after SECONDS.
# (A bound on waiting for an event, not a timing assertion.)
# wait_until SECONDS CMD...: run CMD until it succeeds. CMD runs anew each time, but its arguments
# are expanded once, at the call: `wait_until 5 test "$(count ...)" -eq 2` compares one fixed number
# and can never see the count change; write `wait_until 5 counted -eq 2 count ...` instead.
wait_until() {
	local limit=$1; shift
	local end=$((SECONDS + limit))
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -ge $end ] && { echo "timed out after ${limit}s waiting for: $*" >&2; return 1; }
		sleep 0.05
	done
}

# counted OP N CMD...: CMD prints a number; true if it is OP (-eq, -ge, -gt...) N. For wait_until,
# which runs it again each time.
counted() {
	local op=$1 n=$2 v
	shift 2
	v=$("$@")
	test "${v:-none}" "$op" "$n" 2>/dev/null
}

# jq_some FILTER [FILE...]: some JSON value read (FILE or stdin) makes FILTER true. Unlike
# jq -e, which exits 0 on empty input, it fails when there is nothing to read.
jq_some() {
	local f=$1
	shift
	jq -en "[inputs | select($f)] | length > 0" "$@" >/dev/null
}

# start_bg NAME CMD...: run CMD in the background, stdout to $BATS_TEST_TMPDIR/NAME.out,
# stderr to NAME.err; stopped by stop_all in teardown.
start_bg() {
	local name=$1; shift
	"$@" >"$BATS_TEST_TMPDIR/$name.out" 2>"$BATS_TEST_TMPDIR/$name.err" &
	echo $! >"$BATS_TEST_TMPDIR/$name.pid"
	echo "$name" >>"$BATS_TEST_TMPDIR/bg.list"
}

bg_pid() { cat "$BATS_TEST_TMPDIR/$1.pid"; }

stop_bg() {
	local pid
	pid=$(bg_pid "$1" 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

stop_all() {
	[ -f "$BATS_TEST_TMPDIR/bg.list" ] || return 0
	local n
	for n in $(tac "$BATS_TEST_TMPDIR/bg.list"); do stop_bg "$n"; done
	rm -f "$BATS_TEST_TMPDIR/bg.list"
}

# Print a background process's stderr when a test fails, to see why.
dump_logs() {
	local f
	for f in "$BATS_TEST_TMPDIR"/*.err; do
		[ -s "$f" ] && { echo "--- $f"; tail -n 40 "$f"; }
	done
	return 0
}

# ctl LINE...: send each line on one connection to lwm2m-listen's control socket $SOCK, print as
# many answer lines. ctl_at SOCK LINE...: the same on another socket.
ctl() { ctl_at "$SOCK" "$@"; }
ctl_at() {
	python3 - "$@" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(20)
for line in sys.argv[2:]:
    s.sendall(line.encode() + b"\n")
f = s.makefile()
for _ in sys.argv[2:]:
    print(f.readline(), end="")
PY
}
