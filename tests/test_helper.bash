# Shared by every bats suite: where the binaries are, free ports, background processes.
bats_load_library bats-support
bats_load_library bats-assert

TOP=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
BIN=${LWM2M_GW_BIN:-$TOP/bin}
UNIT=${LWM2M_GW_UNIT:-$TOP/build/tests}
export PATH="$BIN:$PATH"
export NODE_PATH="$TOP/tests/node/node_modules"
PEERS="$TOP/tests/peers"

# free_port [udp|tcp]: a port on 127.0.0.1 that is free for both UDP and TCP now. Chosen below the
# kernel's ephemeral range (ip_local_port_range, 32768+ here), where client sockets of the tools,
# curl and the peers get their ports: a port picked from the ephemeral range by binding to 0 was
# twice taken by such a socket between the pick and the tool's bind. Ports handed out in this run
# are remembered so two picks never return the same one.
free_port() {
	python3 - "${BATS_RUN_TMPDIR:-${TMPDIR:-/tmp}}/free_ports" <<'PY'
import fcntl, random, socket, sys
with open(sys.argv[1], "a+") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    f.seek(0)
    used = set(f.read().split())
    lo, hi = 20000, 32767
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as r:
            eph = int(r.read().split()[0])
        hi = min(hi, eph - 1) if eph > lo + 1000 else hi
    except (OSError, ValueError):
        pass
    for _ in range(2000):
        port = random.randint(lo, hi)
        if str(port) in used:
            continue
        try:
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                s = socket.socket(socket.AF_INET, kind)
                try:
                    s.bind(("127.0.0.1", port))
                finally:
                    s.close()
        except OSError:
            continue
        f.write(f"{port}\n")
        print(port)
        sys.exit(0)
sys.exit("free_port: no free port found in %d-%d" % (lo, hi))
PY
}

# wait_until SECONDS CMD...: retry CMD every 50 ms until it succeeds; fail after SECONDS (a bound
# on waiting for an event, not a timing assertion). CMD runs anew each time, but its arguments
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
