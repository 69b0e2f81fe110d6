#!/usr/bin/env bats
# The long-running tools under valgrind, each for a short session of real work, ended with
# SIGTERM: no memory error and no definite leak (valgrind's exit status 99 otherwise). Run alone
# with `make check-valgrind`; skipped for sanitizer builds (ASan and valgrind do not mix).
bats_require_minimum_version 1.5.0
load test_helper
load gw_helper

APPKEY=2B7E151628AED2A6ABF7158809CF4F3C
LORA="$BATS_TEST_DIRNAME/node/lora-join.js"

setup() {
	command -v valgrind >/dev/null || skip "valgrind is not installed"
	if ldd "$BIN/lwm2m-listen" | grep -q libasan; then
		skip "sanitizer build: valgrind runs on the plain one (make check-valgrind)"
	fi
	cd "$BATS_TEST_TMPDIR"
}

teardown() {
	[ -n "${BATS_TEST_COMPLETED:-}" ] || dump_logs
	stop_all
}

# vg_start NAME 'COMMAND LINE': the command (sh syntax, redirections allowed) under valgrind in
# the background; valgrind's report goes to NAME.vg.
vg_start() {
	local name=$1
	shift
	start_bg "$name" sh -c "exec valgrind -q --leak-check=full --errors-for-leak-kinds=definite \
		--error-exitcode=99 --log-file='$BATS_TEST_TMPDIR/$name.vg' $*"
}

# vg_stop NAME [STATUS]: SIGTERM; it must exit STATUS (default 0; valgrind makes it 99 when it
# found an error or a definite leak).
vg_stop() {
	local pid rc=0
	pid=$(bg_pid "$1")
	kill -TERM "$pid"
	wait "$pid" || rc=$?
	if [ "$rc" -ne "${2:-0}" ]; then
		echo "$1 exited $rc under valgrind:"
		cat "$BATS_TEST_TMPDIR/$1.vg"
		return 1
	fi
}

@test "valgrind: lwm2m-listen, lwm2m-observe, lwm2m-write over registrations, notifications, writes, de-registers" {
	PORT=$(free_port)
	SOCK=$BATS_TEST_TMPDIR/ctl
	STATE=$BATS_TEST_TMPDIR/state
	vg_start listen "lwm2m-listen -l 127.0.0.1:$PORT -C '$SOCK' -S '$STATE' -s 0"
	wait_until 60 test -S "$SOCK"
	start_device dev dev1
	start_device dev2 dev2 --lwm2m 1.0
	wait_for 60 dev.out '.event == "registered"'
	wait_for 60 dev2.out '.event == "registered"'
	vg_start obs "lwm2m-observe -s -C '$SOCK' /3/0/9"
	wait_for 60 obs.out '.thing == "dev1" and .state.reported["3"]["0"]["9"] == 100'
	dev_cmd dev 'set /3/0/9 42'
	wait_for 60 obs.out '.thing == "dev1" and .state.reported["3"]["0"]["9"] == 42'
	: >deltas.jsonl
	mkfifo wfifo
	vg_start w "lwm2m-write -C '$SOCK' <wfifo"
	start_bg feed sh -c "exec >wfifo; exec tail -n +1 -f deltas.jsonl"
	echo '{"thing":"dev1","version":1,"state":{"3311":{"0":{"5850":true}}}}' >>deltas.jsonl
	echo '{"thing":"nobody","version":1,"state":{"3311":{"0":{"5850":true}}}}' >>deltas.jsonl
	echo '{"thing":' >>deltas.jsonl
	wait_for 60 dev.out '.event == "write" and .path == "/3311/0/5850" and .value == true'
	wait_for 60 w.out '.thing == "dev1" and .state.reported["3311"]["0"]["5850"] == true'
	dev_cmd dev update
	wait_for 60 listen.out '.event == "update" and .ep == "dev1"'
	dev_cmd dev deregister
	wait_for 60 listen.out '.event == "deregister" and .ep == "dev1"'
	run -0 ctl '{"op":"stats"}' '{"op":"list"}' '{"op":"read","ep":"dev2","path":"/3/0"}'
	vg_stop w 1 # line 3 was rejected
	vg_stop obs
	# dev2 is still registered, observed and has requests behind it: all of that is freed at exit
	vg_stop listen
}

@test "valgrind: shadow-watch over updates, deltas and deletes" {
	export SHADOW_STORE=$BATS_TEST_TMPDIR/store
	echo '{"thing":"t0","state":{"desired":{"a":0}}}' | shadow-put >/dev/null
	vg_start watch shadow-watch
	wait_for 60 watch.out '.thing == "t0"'
	for i in 1 2 3; do
		echo "{\"thing\":\"t$i\",\"state\":{\"desired\":{\"a\":$i,\"b\":{\"c\":[1,2]}},\"reported\":{\"a\":0}}}"
	done | shadow-put >/dev/null
	echo '{"thing":"t1","state":{"reported":{"a":1}}}' | shadow-put >/dev/null
	wait_for 60 watch.out '.thing == "t3" and .state.a == 3'
	vg_stop watch
}

@test "valgrind: shadow-put over merges, deletes, deltas, rejections and named shadows" {
	mkfifo in
	vg_start put "shadow-put -s store -b 7 <in"
	exec 7>in
	big=$(head -c 9000 /dev/zero | tr '\0' x)
	for i in $(seq 1 60); do
		echo "{\"thing\":\"t$((i % 4))\",\"state\":{\"reported\":{\"a\":$i,\"o\":{\"x\":$i.5,\"l\":[1,\"s\"]}}}}"
		echo "{\"thing\":\"t$((i % 4))\",\"shadow\":\"cfg\",\"clientToken\":\"c$i\",\"state\":{\"desired\":{\"p\":$i,\"q\":{\"r\":true}}}}"
		echo "{\"thing\":\"t$((i % 4))\",\"state\":{\"reported\":{\"o\":{\"x\":null},\"a\":{\"deep\":1},\"e\":{}}}}"
		echo "{\"thing\":\"t$((i % 4))\",\"version\":1,\"state\":{\"reported\":{\"a\":0}}}"
		echo "{\"thing\":\"t$((i % 4))\",\"state\":{\"desired\":null}}"
	done >&7
	echo "{\"thing\":\"t0\",\"state\":{\"reported\":{\"big\":\"$big\"}}}" >&7
	echo '{not json' >&7
	echo '{"thing":"t0","state":null}' >&7
	wait_until 120 sh -c '[ "$(wc -l <put.out)" -eq 303 ]'
	[ "$(grep -c '"result":"rejected"' put.out)" -ge 3 ]
	vg_stop put 1 # some lines were rejected; 99 would be a valgrind finding
	exec 7>&-
}

@test "valgrind: ljs-join serving joins over HTTP" {
	cat >devices.jsonl <<EOF
{"dev_eui":"0004A30B001C0530","join_eui":"70B3D57ED0000001","mac_version":"1.0.3","app_key":"$APPKEY","home_net_id":"000013"}
EOF
	local port
	port=$(free_port tcp)
	vg_start js "ljs-join -D devices.jsonl -S st -l 127.0.0.1:$port -d 3 3>ready"
	wait_until 60 test -s ready
	for n in 0001 0002 0003; do
		phy=$(node "$LORA" jr $APPKEY 70B3D57ED0000001 0004A30B001C0530 $n)
		printf '{"ProtocolVersion":"1.0","SenderID":"000013","ReceiverID":"70B3D57ED0000001","TransactionID":%d,"MessageType":"JoinReq","MACVersion":"1.0.3","PHYPayload":"%s","DevEUI":"0004A30B001C0530","DevAddr":"26011234","DLSettings":"00","RxDelay":1}' \
			"$((10#$n))" "$phy" >req
		run -0 curl -s --max-time 60 --data-binary @req "http://127.0.0.1:$port/"
		[ "$(jq -r .Result.ResultCode <<<"$output")" = Success ]
	done
	# a replayed DevNonce, and a body that is not JSON
	run -0 curl -s --max-time 60 --data-binary @req "http://127.0.0.1:$port/"
	[ "$(jq -r .Result.ResultCode <<<"$output")" != Success ]
	run -0 curl -s --max-time 60 -o /dev/null --data-binary '{"Protocol' "http://127.0.0.1:$port/"
	vg_stop js
}

@test "valgrind: kms-wrap serve answering check-mic on its socket" {
	cat >devices.jsonl <<EOF
{"dev_eui":"0004A30B001C0530","join_eui":"70B3D57ED0000001","mac_version":"1.0.3","app_key":"$APPKEY","home_net_id":"000013"}
EOF
	vg_start serve "kms-wrap serve -D devices.jsonl -L '$BATS_TEST_TMPDIR/kms.sock' -d 3 3>ready"
	wait_until 60 test -s ready
	jr=$(node "$LORA" jr $APPKEY 70B3D57ED0000001 0004A30B001C0530 0001)
	{
		echo "{\"id\":1,\"op\":\"check-mic\",\"DevEUI\":\"0004A30B001C0530\",\"JoinEUI\":\"70B3D57ED0000001\",\"MACVersion\":\"1.0.3\",\"PHYPayload\":\"$jr\"}"
		echo "{\"id\":2,\"op\":\"check-mic\",\"DevEUI\":\"0004A30B001C0599\",\"JoinEUI\":\"70B3D57ED0000001\",\"MACVersion\":\"1.0.3\",\"PHYPayload\":\"$jr\"}"
		echo '{"id":3,"op":"root-keys"'
	} >reqs.jsonl
	run -0 python3 - "$BATS_TEST_TMPDIR/kms.sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(60)
s.sendall(open("reqs.jsonl", "rb").read())
f = s.makefile()
for _ in range(3):
    print(f.readline(), end="")
PY
	run -0 jq -c '[.id, .ok]' <<<"$output"
	assert_line --index 0 '[1,true]'
	assert_line --index 1 '[2,false]'
	vg_stop serve
}
