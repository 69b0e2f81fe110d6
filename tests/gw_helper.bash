# Shared by the gateway suites (lwm2m-observe, lwm2m-write, pipeline): lwm2m-listen on a free UDP
# port, the simulated device (tests/peers/lwm2m-device.js, the npm coap package) and waiting on
# their JSON-lines output.

# start_listen [ARGS...]: lwm2m-listen on $PORT (free unless set) with control socket $SOCK and
# state in $STATE; short CoAP retransmissions so a silent device times out quickly. Its stdout
# goes to the fifo $EVENTS when that exists, else to listen.out.
start_listen() {
	PORT=${PORT:-$(free_port)}
	SOCK=$BATS_TEST_TMPDIR/ctl
	STATE=$BATS_TEST_TMPDIR/state
	if [ -p "${EVENTS:-}" ]; then
		start_bg listen sh -c "exec lwm2m-listen -l 127.0.0.1:$PORT -C '$SOCK' -S '$STATE' -t 0.3 -r 1 -s 0 $* >'$EVENTS'"
	else
		start_bg listen lwm2m-listen -l "127.0.0.1:$PORT" -C "$SOCK" -S "$STATE" -t 0.3 -r 1 -s 0 "$@"
	fi
	wait_until 5 test -S "$SOCK"
}

# start_device NAME EP [ARGS...]: the simulated device NAME registering as EP with lwm2m-listen;
# commands go to NAME.cmd (dev_cmd), events to NAME.out.
start_device() {
	local name=$1 ep=$2
	shift 2
	: >"$BATS_TEST_TMPDIR/$name.cmd"
	start_bg "$name" node "$PEERS/lwm2m-device.js" --server "127.0.0.1:$PORT" --ep "$ep" \
		--commands "$BATS_TEST_TMPDIR/$name.cmd" "$@"
}

# dev_cmd NAME LINE: give the device a console command.
dev_cmd() { echo "$2" >>"$BATS_TEST_TMPDIR/$1.cmd"; }

# has FILE JQ-FILTER: some line of FILE makes the filter true.
has() { jq -e -s "map(select($2)) | length > 0" "$BATS_TEST_TMPDIR/$1" >/dev/null 2>&1; }
# count FILE JQ-FILTER: how many lines make it true.
count() { jq -s "map(select($2)) | length" "$BATS_TEST_TMPDIR/$1"; }

# wait_for SECONDS FILE JQ-FILTER
wait_for() { wait_until "$1" has "$2" "$3"; }

# hwm_kb NAME: the peak resident memory of background process NAME, in kB
hwm_kb() { awk '$1 == "VmHWM:" {print $2}' "/proc/$(bg_pid "$1")/status"; }

# bounded NAME [KB]: its peak resident memory is under KB (default 64 MB); in a sanitizer build
# 384 MB more, as ASan keeps up to 256 MB of freed memory in quarantine besides its shadow
bounded() {
	local hwm limit=${2:-$((64 * 1024))}
	hwm=$(hwm_kb "$1")
	! ldd "$BIN/lwm2m-listen" | grep -q libasan || limit=$((limit + 384 * 1024))
	echo "$1: VmHWM $hwm kB (bound $limit kB)"
	[ "$hwm" -lt "$limit" ]
}

# start_stalled_reader NAME FIFO GATE OUT: background NAME opens FIFO for reading but takes
# nothing from it until the file GATE exists, then copies all it reads to OUT as it comes (a
# downstream stage that stalls, then drains)
start_stalled_reader() {
	start_bg "$1" python3 -c '
import os, sys, time
fifo, gate, dest = sys.argv[1:4]
f = open(fifo, "rb")
while not os.path.exists(gate):
    time.sleep(0.05)
out = open(dest, "wb")
while True:
    b = f.read1(65536)
    if not b:
        break
    out.write(b)
    out.flush()
' "$2" "$3" "$4"
}
