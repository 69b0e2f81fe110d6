#!/usr/bin/env bats
# Hard stops, floods and stalled neighbours: kill -9 at random points, oversized and abusive
# input, bounded memory (VmHWM from /proc), backpressure through pipes that are not read.
bats_require_minimum_version 1.5.0
load test_helper
load gw_helper

teardown() {
	[ -n "${BATS_TEST_COMPLETED:-}" ] || dump_logs
	stop_all
}

@test "lwm2m-listen: kill -9 while devices register; restored registrations are exactly the acknowledged ones" {
	local port
	port=$(free_port)
	# -s 0.5: saves happen between kills too, so a kill lands before, during and after them
	run -0 python3 "$PEERS/listen_killer.py" "$port" "$BATS_TEST_TMPDIR/state" "$BATS_TEST_TMPDIR/ctl" \
		"$PEERS/lwm2m-device.js" 5 8 "${KILL_SEED:-$RANDOM}" -s 0.5
	echo "$output"
	jq_some '.ok and .kills >= 2 and .acked_ops == 45' <<<"$output"
}

@test "lwm2m-listen: a journal line torn by a kill spoils only itself" {
	local port state=$BATS_TEST_TMPDIR/state sock=$BATS_TEST_TMPDIR/ctl
	port=$(free_port)
	mkdir -p "$state"
	now=$(date +%s)
	cat >"$state/registrations.jsonl" <<EOF
{"ep":"a","reg":"0000000a","lt":600,"lwm2m":"1.1","b":"U","queue":false,"objects":["/3/0"],"addr":"127.0.0.1:9","sec":"nosec","registered":$now,"updated":$now}
{"ep":"b","reg":"0000000b","lt":600,"lwm2m":"1.1","b":"U","queue":false,"objects":["/3/0"],"addr":"127.0.0.1:9","sec":"nosec","registered":$now,"updated":$now}
EOF
	# b de-registered, c registered, then a line cut short by the kill
	printf '%s\n%s\n%s' '{"op":"del","ep":"b","reg":"0000000b"}' \
		"{\"ep\":\"c\",\"reg\":\"0000000c\",\"lt\":600,\"lwm2m\":\"1.0\",\"b\":\"U\",\"queue\":false,\"objects\":[],\"addr\":\"127.0.0.1:9\",\"sec\":\"nosec\",\"registered\":$now,\"updated\":$now}" \
		'{"ep":"d","reg":"0000000d","lt":6' >"$state/registrations.jsonl.journal"
	# -s 3600: no save, only the journal, for the Register below
	start_bg listen lwm2m-listen -l "127.0.0.1:$port" -C "$sock" -S "$state" -s 3600
	wait_until 5 test -S "$sock"
	run -0 ctl_at "$sock" '{"op":"list"}'
	run -0 jq -c '[.registrations[] | [.ep, .reg]] | sort' <<<"$output"
	assert_output '[["a","0000000a"],["c","0000000c"]]'
	grep -q 'registrations.jsonl.journal: line 3: ' "$BATS_TEST_TMPDIR/listen.err"
	run -0 coap-client-gnutls -B 5 -m post -e '</3/0>' "coap://127.0.0.1:$port/rd?ep=e&lt=600"
	kill -9 "$(bg_pid listen)"
	rm -f "$sock"
	start_bg listen2 lwm2m-listen -l "127.0.0.1:$port" -C "$sock" -S "$state" -s 3600
	wait_until 5 test -S "$sock"
	run -0 ctl_at "$sock" '{"op":"list"}'
	run -0 jq -c '[.registrations[].ep] | sort' <<<"$output"
	assert_output '["a","c","e"]'
}

@test "lwm2m-listen: saved registrations with a lifetime outside 32 bits are skipped by line, objects come back in order (fuzz_registry)" {
	local port state=$BATS_TEST_TMPDIR/state sock=$BATS_TEST_TMPDIR/ctl
	port=$(free_port)
	mkdir -p "$state"
	now=$(date +%s)
	# lt 1e30 and -1 (and ct 1e9 and -1) were converted to uint32_t: undefined behaviour (UBSan)
	cat >"$state/registrations.jsonl" <<EOF
{"ep":"a","reg":"0000000a","lt":600,"lwm2m":"1.1","b":"U","objects":["/3303/0","/1/0","/3303/0","/3"],"ct":[1e9,-1,112],"addr":"127.0.0.1:9","sec":"nosec","registered":$now,"updated":$now}
{"ep":"b","reg":"0000000b","lt":1e30,"lwm2m":"1.1","b":"U","objects":["/3/0"],"addr":"127.0.0.1:9","sec":"nosec","registered":$now,"updated":$now}
{"ep":"c","reg":"0000000c","lt":-1,"lwm2m":"1.1","b":"U","objects":["/3/0"],"addr":"127.0.0.1:9","sec":"nosec","registered":$now,"updated":$now}
{"ep":"d","reg":"0000000d","lt":600,"lwm2m":"1.0","b":"U","objects":["/3/0"],"addr":"127.0.0.1:9","sec":"nosec","registered":$now,"updated":$now}
EOF
	start_bg listen lwm2m-listen -l "127.0.0.1:$port" -C "$sock" -S "$state" -s 3600
	wait_until 5 test -S "$sock"
	run -0 ctl_at "$sock" '{"op":"list"}'
	run -0 jq -c '[.registrations[] | [.ep, .objects, .ct]] | sort' <<<"$output"
	assert_output '[["a",["/1/0","/3","/3303/0"],[112]],["d",["/3/0"],null]]'
	grep -q 'registrations.jsonl: line 2: not a registration I can restore' "$BATS_TEST_TMPDIR/listen.err"
	grep -q 'registrations.jsonl: line 3: not a registration I can restore' "$BATS_TEST_TMPDIR/listen.err"
	# and it goes on: a device registers
	run -0 coap-client-gnutls -B 5 -m post -e '</3/0>' "coap://127.0.0.1:$port/rd?ep=e&lt=600"
	run -0 ctl_at "$sock" '{"op":"list"}'
	run -0 jq -c '[.registrations[].ep] | sort' <<<"$output"
	assert_output '["a","d","e"]'
}

@test "lwm2m-observe: a register or update event without a registration id is refused with a log line, the next one observed (fuzz_observer)" {
	start_listen
	start_device dev dev1
	wait_for 10 dev.out '.event == "registered"'
	reg=$(ctl '{"op":"list"}' | jq -c '.registrations[0] | .event = "register"')
	# it passed a NULL "reg" to jv_string when it observed (SIGSEGV)
	printf '%s\n' '{"event":"register","ep":"dev1","lwm2m":"1.1","objects":["/3/0"]}' \
		'{"event":"update","ep":"dev1","reg":7,"objects":["/3/0"]}' "$reg" >"$BATS_TEST_TMPDIR/in"
	mkfifo "$BATS_TEST_TMPDIR/fifo"
	start_bg obs sh -c "exec lwm2m-observe -C '$SOCK' /3/0/9 <'$BATS_TEST_TMPDIR/fifo'"
	start_bg feed sh -c "exec >'$BATS_TEST_TMPDIR/fifo'; cat '$BATS_TEST_TMPDIR/in'; exec sleep 60"
	wait_for 10 obs.out '.thing == "dev1" and .state.reported["3"]["0"]["9"] == 100'
	grep -q 'dev1: register event without a registration id ("reg"), ignored' "$BATS_TEST_TMPDIR/obs.err"
	grep -q 'dev1: update event without a registration id ("reg"), ignored' "$BATS_TEST_TMPDIR/obs.err"
	run -0 count dev.out '.event == "observe"'
	assert_output 1
}

@test "lwm2m-write: a group write refused as a whole is retried resource by resource, without one whose desired value was refused meanwhile (fuzz_writer; unit checks)" {
	# it was written again with no value, and the next flush made libjq abort
	run -0 "$UNIT/test_writer" "$BATS_TEST_TMPDIR"
}

@test "ljs-join: a JWKS that is not well-formed JSON is refused by the checked parse, naming the byte" {
	cd "$BATS_TEST_TMPDIR"
	: >devices.jsonl
	# ["a" "b"]-style input is what jq 1.6 leaks on; json_check stops it first
	echo '{"keys":[{"kty":"EC" "crv":"P-256"}]}' >bad.json
	run -100 --separate-stderr ljs-join -D devices.jsonl -S st -l "127.0.0.1:$(free_port tcp)" -i iss -a aud -J bad.json </dev/null
	[[ $stderr == *"bad.json: not a JWKS: malformed JSON: expected ',' or '}' at byte 21"* ]]
	printf '[{"keys":[]}]\n' >array.json
	run -100 --separate-stderr ljs-join -D devices.jsonl -S st -l "127.0.0.1:$(free_port tcp)" -i iss -a aud -J array.json </dev/null
	[[ $stderr == *"array.json: not a JWKS: not a JSON object"* ]]
}

# flood_line NAME CMD...: CMD reads a 100 MB line, then "[1]", on a stdin kept open. It must
# refuse the first naming line 1, go on to report line 2, and its peak RSS (VmHWM) stay < 64 MB.
flood_line() {
	local name=$1 hwm
	shift
	mkfifo "$BATS_TEST_TMPDIR/$name.in"
	start_bg "$name" sh -c 'exec "$@" <"$0"' "$BATS_TEST_TMPDIR/$name.in" "$@"
	start_bg "$name-feed" python3 -c '
import sys, time
with open(sys.argv[1], "wb") as f:
    f.write(b"{\"x\":\"")
    chunk = b"a" * (1 << 20)
    for _ in range(100):
        f.write(chunk)
    f.write(b"\"}\n[1]\n")
    f.flush()
    time.sleep(300)
' "$BATS_TEST_TMPDIR/$name.in"
	wait_until 60 grep -q 'line 2: not a JSON object' "$BATS_TEST_TMPDIR/$name.err"
	grep -E 'line 1: (line )?(too long|longer than)' "$BATS_TEST_TMPDIR/$name.err"
	kill -0 "$(bg_pid "$name")"
	hwm=$(awk '$1 == "VmHWM:" {print $2}' "/proc/$(bg_pid "$name")/status")
	echo "$name: VmHWM $hwm kB"
	[ "$hwm" -lt $((64 * 1024)) ]
}

@test "filters: a 100 MB JSON line is refused by number, the next line is read, memory stays bounded" {
	cd "$BATS_TEST_TMPDIR"
	flood_line put shadow-put -s store
	: >devices.jsonl
	flood_line join ljs-join -D devices.jsonl -S st
	kms-wrap genkey -k ring.yml parts
	flood_line kms kms-wrap encrypt -k ring.yml -K parts
	flood_line serve kms-wrap serve -D devices.jsonl -k ring.yml
	start_listen
	flood_line observe lwm2m-observe -C "$SOCK"
	flood_line write lwm2m-write -C "$SOCK"
}

@test "lwm2m-listen: 3000 Registers from one address under made-up names: -P caps them, one log line, stats count" {
	start_listen -P 100
	run -0 python3 "$PEERS/coap_flood.py" registers "$PORT" 3000
	assert_output '{"codes": {"2.01": 100, "5.03": 2900}}'
	run -0 grep -c 'refused: 100 registrations from that address already (-P)' "$BATS_TEST_TMPDIR/listen.err"
	assert_output 1
	run -0 ctl '{"op":"stats"}'
	run -0 jq -c '[.registrations, .refused_per_address]' <<<"$output"
	assert_output '[100,2900]'
	# another address still gets in
	run -0 coap-client-gnutls -B 5 -m post -e '</3/0>' "coap://127.0.0.1:$PORT/rd?ep=other&lt=600" -a 127.0.0.2
	[ "$(count listen.out '.event == "register" and .ep == "other"')" -eq 1 ]
	bounded listen
}

@test "lwm2m-listen: block-wise abuse: too large 4.13 (with or without Size1), a lone later block 4.08; a Size1 claim costs no memory" {
	start_listen
	# 70 KiB of links, Size1 announced: refused at the first block (RFC 7959 2.9.3)
	run -0 python3 "$PEERS/coap_flood.py" block1 "$PORT" 70 71680
	assert_output '{"codes": {"4.13": 1}, "size1": 65536}'
	# block 5 with nothing before it
	run -0 python3 "$PEERS/coap_flood.py" block1-gap "$PORT"
	assert_output '{"codes": {"4.08": 1}}'
	# no Size1 (RFC 7959 makes it optional): the parts are taken and the Register registers
	run -0 python3 "$PEERS/coap_flood.py" block1 "$PORT" 3
	assert_output '{"codes": {"2.31": 2, "2.01": 1}}'
	wait_for 5 listen.out '.event == "register" and .ep == "big" and .objects == ["/3303/0"]'
	# Size1 says 100 MB: refused before anything is kept
	run -0 python3 "$PEERS/coap_flood.py" block1 "$PORT" 40 100000000
	assert_output '{"codes": {"4.13": 1}, "size1": 65536}'
	# 70 KiB in blocks with a Size1 claim of 1 KiB, and with no Size1 at all: refused once past
	# 64 KiB, 4.13 with Size1 65536
	run -0 python3 "$PEERS/coap_flood.py" block1 "$PORT" 70 1024
	assert_output '{"codes": {"2.31": 64, "4.13": 1}, "size1": 65536}'
	run -0 python3 "$PEERS/coap_flood.py" block1 "$PORT" 70
	assert_output '{"codes": {"2.31": 64, "4.13": 1}, "size1": 65536}'
	run -0 grep -c 'refused: request body too large: its Block1 part at byte 65536 goes past the 65536 bytes taken (4.13)' \
		"$BATS_TEST_TMPDIR/listen.err"
	assert_output 2
	grep -q 'refused: Block1 block without the blocks before it' "$BATS_TEST_TMPDIR/listen.err"
	bounded listen
	# a well-formed Block1 Register (coap-client sends Size1) still registers
	links=$(python3 -c 'print(",".join(f"</{3300+i}/0>" for i in range(40)))')
	run -0 coap-client-gnutls -B 5 -m post -b 64 -e "$links" "coap://127.0.0.1:$PORT/rd?ep=blk&lt=600"
	wait_for 5 listen.out '.event == "register" and .ep == "blk" and (.objects | length) == 40'
}

@test "lwm2m-listen: DTLS handshakes that never finish stay within -H; a real client still registers" {
	local dport
	dport=$(free_port)
	printf '{"ep":"dev1","psk_identity":"dev1-id","psk_key":"%s"}\n' "$(printf secret-one | xxd -p)" >"$BATS_TEST_TMPDIR/creds"
	start_listen -D "127.0.0.1:$dport" -k "$BATS_TEST_TMPDIR/creds" -H 10
	run -0 python3 "$PEERS/coap_flood.py" dtls-hello "$dport" 40
	echo "$output"
	[ "$(jq '.codes.server_hello' <<<"$output")" -ge 10 ]
	grep -q 'DTLS handshake limit reached (-H 10)' "$BATS_TEST_TMPDIR/listen.err"
	bounded listen
	run -0 coap-client-gnutls -B 10 -m post -u dev1-id -k secret-one -e '</3/0>' "coaps://127.0.0.1:$dport/rd?ep=dev1&lt=600"
	wait_for 10 listen.out '.event == "register" and .ep == "dev1" and .sec == "psk"'
}

@test "lwm2m-listen: a stdout reader that stalls holds datagrams back unacknowledged, and no event is lost" {
	cd "$BATS_TEST_TMPDIR"
	PORT=$(free_port)
	SOCK=$BATS_TEST_TMPDIR/ctl
	mkfifo ev
	# the reader opens the fifo but takes nothing until ./go exists
	start_stalled_reader reader ev go events.jsonl
	start_bg listen sh -c "exec lwm2m-listen -l 127.0.0.1:$PORT -C '$SOCK' -S '' -P 0 >ev"
	wait_until 10 test -S "$SOCK"
	# Registers until one is left unanswered for 3 s: lwm2m-listen stopped reading datagrams
	FLOOD_TIMEOUT=3 run -0 python3 "$PEERS/coap_flood.py" registers "$PORT" 20000
	echo "$output"
	acked=$(jq '.codes["2.01"]' <<<"$output")
	[ "$(jq '.codes.timeout' <<<"$output")" = 1 ]
	[ "$acked" -lt 20000 ]
	run -0 ctl '{"op":"stats"}'
	echo "$output"
	# everything acknowledged is registered and its line queued; the last Register waits unread
	[ "$(jq .registrations <<<"$output")" -eq "$acked" ]
	[ "$(jq .stdout_backlog <<<"$output")" -gt $((1 << 20)) ]
	[ "$(jq .stdout_stalls <<<"$output")" -eq 1 ]
	[ "$(jq .dropped_lines <<<"$output")" -eq 0 ]
	grep -q 'stdout: the reader is not reading' "$BATS_TEST_TMPDIR/listen.err"
	bounded listen
	touch go
	# the reader catches up; the waiting Register is read and answered (into a closed socket)
	wait_until 30 grep -q 'the reader caught up' "$BATS_TEST_TMPDIR/listen.err"
	wait_until 30 counted -eq $((acked + 1)) grep -c '"event":"register"' events.jsonl
	run -0 ctl '{"op":"stats"}'
	[ "$(jq .registrations <<<"$output")" -eq $((acked + 1)) ]
	# every acknowledged Register has its line, none twice
	run -0 jq -rs '[.[] | select(.event == "register") | .ep] | (length == (unique | length)) and
		(map(select(. < "f'"$(printf %06d "$acked")"'")) | length) == '"$acked" events.jsonl
	assert_output true
}

# epipe CMD...: run CMD with ./in on a stdin kept open and a stdout whose reader is already
# gone; print its exit status (or "still running") and its stderr.
epipe() {
	python3 - "$@" <<'PY'
import os, subprocess, sys
r, w = os.pipe()
os.close(r)
p = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE, stdout=w, stderr=subprocess.PIPE)
os.close(w)
p.stdin.write(open("in", "rb").read())
p.stdin.flush()
try:
    print(p.wait(timeout=60))  # stdin stays open: it ends on EPIPE, not at the end of input
except subprocess.TimeoutExpired:
    p.kill()
    p.wait()
    print("still running")
sys.stdout.write(p.stderr.read().decode())
PY
}

@test "filters: a reader that is gone (EPIPE) ends them with a message and exit 111, not SIGPIPE" {
	cd "$BATS_TEST_TMPDIR"
	echo '{"thing":"t1","state":{"reported":{"a":1}}}' >in
	run -0 epipe shadow-put -s store
	assert_line --index 0 111 || { echo "$output"; false; }
	assert_output --partial 'unable to write to stdout: Broken pipe'
	# the update was committed before its acknowledgement could not be written
	run -0 sh -c 'echo "{\"thing\":\"t1\",\"state\":{\"reported\":{\"b\":2}}}" | shadow-put -s store'
	[ "$(jq .version <<<"$output")" = 2 ]
	kms-wrap genkey -k ring.yml parts 2>/dev/null
	echo '{"psk_root_keys":"000102030405060708090a0b0c0d0e0f"}' >in
	run -0 epipe kms-wrap encrypt -k ring.yml -K parts
	assert_line --index 0 111 || { echo "$output"; false; }
	assert_output --partial 'Broken pipe'
	: >devices.jsonl
	echo '{"ProtocolVersion":"1.0","MessageType":"HomeNSReq","SenderID":"000013","DevEUI":"0004A30B001C0530"}' >in
	run -0 epipe ljs-join -D devices.jsonl -S st
	assert_line --index 0 111 || { echo "$output"; false; }
	assert_output --partial 'Broken pipe'
	start_listen
	start_device dev dev1
	wait_for 20 dev.out '.event == "registered"'
	echo '{"thing":"dev1","version":1,"state":{"3311":{"0":{"5850":true}}}}' >in
	run -0 epipe lwm2m-write -C "$SOCK"
	assert_line --index 0 111 || { echo "$output"; false; }
	assert_output --partial 'unable to write to stdout: Broken pipe'
	: >in
	run -0 epipe lwm2m-observe -s -C "$SOCK" /3/0/9
	assert_line --index 0 111 || { echo "$output"; false; }
	assert_output --partial 'unable to write to stdout: Broken pipe'
}

@test "lwm2m-listen: a control client that vanishes mid-request is logged; its observation ends on the device and the rest carries on" {
	# -t 3: the read below stays in flight (unanswered, retransmitted) well past the kill
	start_listen -t 3
	start_device d11 dev1
	wait_for 20 d11.out '.event == "registered"'
	# lwm2m-observe observes, then dies without a word
	start_bg observe lwm2m-observe -s -C "$SOCK" /3303/0/5700
	wait_for 10 observe.out '.thing == "dev1" and .state.reported["3303"]["0"]["5700"] == 21.5'
	kill -9 "$(bg_pid observe)"
	wait_until 5 grep -q 'control connection [0-9]* closed: 1 observation cancelled on the devices, the answers to 0 requests in progress will be dropped' \
		"$BATS_TEST_TMPDIR/listen.err"
	wait_for 5 d11.out '.event == "cancel-observe"'
	# a client whose read is on its way to a device that does not answer yet
	dev_cmd d11 "silent on"
	wait_for 5 d11.out '.event == "silent"'
	start_bg client python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"{\"id\":1,\"op\":\"read\",\"ep\":\"dev1\",\"path\":\"/3/0/9\"}\n")
time.sleep(60)
' "$SOCK"
	wait_for 10 d11.out '.event == "dropped" and .method == "GET"' || { cat "$BATS_TEST_TMPDIR/d11.out"; false; }
	kill -9 "$(bg_pid client)"
	wait_until 5 grep -q 'control connection [0-9]* closed: 0 observations cancelled on the devices, the answers to 1 request in progress will be dropped' \
		"$BATS_TEST_TMPDIR/listen.err"
	dev_cmd d11 "silent off"
	wait_for 5 d11.out '.event == "silent" and .on == false'
	# lwm2m-listen goes on, the device still registered and answering, no observation left
	kill -0 "$(bg_pid listen)"
	run -0 ctl '{"id":2,"op":"read","ep":"dev1","path":"/3303/0/5700"}'
	assert_output --partial '"code":"2.05"'
	run -0 ctl '{"op":"stats"}'
	run -0 jq -c '[.registrations, .observations]' <<<"$output"
	assert_output '[1,0]'
	[ "$(count listen.out '.event == "deregister" or .event == "expire"')" -eq 0 ]
}

@test "lwm2m-listen: a confirmable notification is acknowledged only once its line is queued: a stalled stdout makes the device retransmit, and the line comes once drained" {
	cd "$BATS_TEST_TMPDIR"
	PORT=$(free_port)
	SOCK=$BATS_TEST_TMPDIR/ctl
	mkfifo ev cmds
	start_stalled_reader reader ev go events.jsonl
	start_bg listen sh -c "exec lwm2m-listen -l 127.0.0.1:$PORT -C '$SOCK' -S '' -P 0 <cmds >ev"
	exec {cmdfd}>cmds
	wait_until 10 test -S "$SOCK"
	NOTIFY_WHEN=$BATS_TEST_TMPDIR/notify start_bg dev python3 "$PEERS/block_device.py" "$PORT" nd notify
	wait_for 10 dev.out '.event == "registered"'
	# observed from stdin, so its notifications go to stdout
	echo '{"id":"o","op":"observe","ep":"nd","path":"/3303/0/5700","format":"text"}' >&"$cmdfd"
	wait_for 10 dev.out '.event == "get" and .observe == 0'
	# fill stdout past its bound: lwm2m-listen stops reading datagrams
	FLOOD_TIMEOUT=3 run -0 python3 "$PEERS/coap_flood.py" registers "$PORT" 20000
	[ "$(jq '.codes.timeout' <<<"$output")" = 1 ]
	grep -q 'stdout: the reader is not reading' listen.err
	touch notify
	# no ACK while stalled: the device sends it again and again
	wait_for 10 dev.out '.event == "notify-sent" and .attempt >= 4'
	! has dev.out '.event == "notify-acked"'
	run -0 ctl '{"op":"stats"}'
	[ "$(jq .notifications_in <<<"$output")" -eq 0 ]
	[ "$(jq .dropped_lines <<<"$output")" -eq 0 ]
	touch go
	wait_for 30 dev.out '.event == "notify-acked"'
	wait_until 30 grep -q '"op":"notify"' events.jsonl
	run -0 jq -c 'select(.op != null) | [.id, .op, .code, .value]' events.jsonl
	assert_output '["o","observe","2.05",21.5]
["o","notify","2.05",22.5]'
	exec {cmdfd}>&-
}

@test "lwm2m-listen: a control connection that does not read is cut off at 8 MiB of lines: one log line, dropped_lines counts, others go on" {
	start_listen -P 0
	run -0 python3 "$PEERS/coap_flood.py" registers "$PORT" 1000
	assert_output '{"codes": {"2.01": 1000}}'
	# 100 list answers of ~180 KB each to a client that never reads them
	start_bg sink python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"{\"op\":\"list\"}\n" * 100)
time.sleep(120)
' "$SOCK"
	wait_until 30 grep -q 'control connection [0-9]* does not read its lines: dropping them past 8 MiB' "$BATS_TEST_TMPDIR/listen.err"
	run -0 grep -c 'does not read its lines' "$BATS_TEST_TMPDIR/listen.err"
	assert_output 1
	run -0 ctl '{"op":"stats"}'
	[ "$(jq .dropped_lines <<<"$output")" -gt 0 ]
	[ "$(jq .registrations <<<"$output")" -eq 1000 ]
	# devices and other clients are not held back
	run -0 coap-client-gnutls -B 5 -m post -e '</3/0>' "coap://127.0.0.1:$PORT/rd?ep=late&lt=600"
	wait_for 5 listen.out '.event == "register" and .ep == "late"'
	bounded listen
}

@test "lwm2m-listen: a 100 MB command line on stdin and on the control socket is refused by number, the next line is read, memory stays bounded" {
	local port sock=$BATS_TEST_TMPDIR/ctl2
	port=$(free_port)
	flood_line listen2 lwm2m-listen -l "127.0.0.1:$port" -C "$sock" -S ''
	# the same on a control connection: the answers name the lines
	run -0 python3 - "$sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b'{"op":"x","v":"')
chunk = b"a" * (1 << 20)
for _ in range(100):
    s.sendall(chunk)
s.sendall(b'"}\n[1]\n')
f = s.makefile()
print(f.readline(), end="")
print(f.readline(), end="")
PY
	run -0 jq -c '[.code, .error]' <<<"$output"
	assert_output '["bad-command","line 1: line longer than 1048576 bytes"]
["bad-command","line 2: not a JSON object"]'
	kill -0 "$(bg_pid listen2)"
	hwm=$(hwm_kb listen2)
	echo "listen2: VmHWM $hwm kB"
	[ "$hwm" -lt $((64 * 1024)) ]
}

@test "lwm2m-listen: a 20 MB Block1 Register over DTLS is refused 4.13 at its first part; one whose Size1 understates it, at the part past 64 KiB; memory stays bounded" {
	local dport body=$((20 * 1024 * 1024))
	dport=$(free_port)
	printf '{"ep":"dev1","psk_identity":"dev1-id","psk_key":"%s"}\n' "$(printf secret-one | xxd -p)" >"$BATS_TEST_TMPDIR/creds"
	start_listen -D "127.0.0.1:$dport" -k "$BATS_TEST_TMPDIR/creds"
	python3 -c 'import sys; sys.stdout.write(("</3303/0>," * (int(sys.argv[1]) // 10 + 1))[:int(sys.argv[1])])' "$body" >"$BATS_TEST_TMPDIR/big"
	# coap-client announces the size (Size1): the answer to its first part is 4.13 with Size1
	coap-client-gnutls -B 30 -v 7 -m post -b 1024 -u dev1-id -k secret-one -f "$BATS_TEST_TMPDIR/big" \
		"coaps://127.0.0.1:$dport/rd?ep=dev1&lt=600" >"$BATS_TEST_TMPDIR/client.log" 2>&1
	grep -q '4.13 request body too large' "$BATS_TEST_TMPDIR/client.log"
	grep -q 't:ACK c:4.13 .*Size1:65536' "$BATS_TEST_TMPDIR/client.log"
	# the parts it sent (libcoap 4.3.1 with COAP_BLOCK_SINGLE_BODY took in all 20480)
	run -0 sh -c "grep -o 't:CON c:POST [^[]*\[[^]]*Block1:[0-9]*' '$BATS_TEST_TMPDIR/client.log' | grep -o 'Block1:[0-9]*\$' | sort -u | wc -l"
	assert_output 1
	grep -q 'refused: request body too large: Size1 20971520 in its first Block1 part' "$BATS_TEST_TMPDIR/listen.err"
	# a device that announces 1 KiB and sends on: 64 parts are taken, the 65th gets 4.13
	run -0 timeout 60 node "$PEERS/dtls-device.js" --port "$dport" --identity dev1-id --key secret-one --ep dev1 \
		--block1 20480 --size1 1024 </dev/null
	run -0 jq -c 'select(.event == "block1") | [.codes, .last, .size1, .parts]' <<<"$output"
	assert_output '[{"2.31":64,"4.13":1},"4.13",65536,65]'
	grep -q 'refused: request body too large: its Block1 part at byte 65536 goes past the 65536 bytes taken' \
		"$BATS_TEST_TMPDIR/listen.err"
	# what a body in progress costs is its 64 KiB (20 MB taken in cost 26.7 MB before)
	bounded listen $((16 * 1024))
	# a Register in 30 parts on DTLS still registers, and so does a small one
	python3 -c 'import sys; sys.stdout.write(("</3303/0>," * 3000)[:29999])' >"$BATS_TEST_TMPDIR/mid"
	run -0 coap-client-gnutls -B 10 -m post -b 1024 -u dev1-id -k secret-one -f "$BATS_TEST_TMPDIR/mid" \
		"coaps://127.0.0.1:$dport/rd?ep=dev1&lt=600"
	refute_output --partial '4.'
	wait_for 10 listen.out '.event == "register" and .ep == "dev1" and .objects == ["/3303/0"]'
	run -0 coap-client-gnutls -B 10 -m post -u dev1-id -k secret-one -e '</3/0>' "coaps://127.0.0.1:$dport/rd?ep=dev1&lt=600"
	wait_for 10 listen.out '.event == "register" and .ep == "dev1" and .objects == ["/3/0"]'
}
