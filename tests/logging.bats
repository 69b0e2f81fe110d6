#!/usr/bin/env bats
# Logging and signals, the same across the seven tools: one line per event on stderr in the
# "tool: level: message" form, -q silences info, -v adds debug, no key ever reaches a log (even
# at -vv, over a DTLS PSK handshake and a join), SIGTERM ends each long-running tool with 0.
bats_require_minimum_version 1.5.0
load test_helper

APPKEY=2B7E151628AED2A6ABF7158809CF4F3C
LORA="$BATS_TEST_DIRNAME/node/lora-join.js"
PSK_TEXT=log-secret-psk-1
TOOLS_RE='^(lwm2m-listen|lwm2m-observe|lwm2m-write|shadow-put|shadow-watch|ljs-join|kms-wrap): (debug|info|warning|error|fatal): '

setup() {
	cd "$BATS_TEST_TMPDIR"
	PORT=$(free_port)
	DPORT=$(free_port)
	JPORT=$(free_port tcp)
	SOCK=$BATS_TEST_TMPDIR/ctl
	PSK_HEX=$(printf %s "$PSK_TEXT" | xxd -p | tr -d '\n')
	printf '{"dev_eui":"0004A30B001C0530","join_eui":"70B3D57ED0000001","mac_version":"1.0.3","app_key":"%s","home_net_id":"000013"}\n' $APPKEY >devices.jsonl
}

teardown() {
	[ -n "${BATS_TEST_COMPLETED:-}" ] || dump_logs
	stop_all
}

# every line of FILE is a log line of the tools (or a JSON line: events, stats)
log_lines_only() {
	grep -Ev "$TOOLS_RE" "$1" | grep -v '^{' | grep -v '^$' && return 1
	return 0
}

@test "logging: no PSK in lwm2m-listen's log at -vv over a DTLS handshake and registration" {
	printf '{"ep":"dev1","psk_identity":"dev1-id","psk_key":"%s"}\n' "$PSK_HEX" >creds.jsonl
	start_bg listen lwm2m-listen -vv -l 127.0.0.1:$PORT -D 127.0.0.1:$DPORT -k creds.jsonl -C "$SOCK" -S ""
	wait_until 10 test -S "$SOCK"
	timeout 30 coap-client-gnutls -B 3 -m post -u dev1-id -k "$PSK_TEXT" -e '</1/0>,</3/0>' \
		"coaps://127.0.0.1:$DPORT/rd?ep=dev1&lt=300" >/dev/null 2>&1 || true
	wait_until 10 grep -q '"event":"register"' "$BATS_TEST_TMPDIR/listen.out"
	# a wrong key too, and a SIGHUP that rereads the file
	timeout 30 coap-client-gnutls -B 2 -m post -u dev1-id -k wrong-key -e '</1/0>' \
		"coaps://127.0.0.1:$DPORT/rd?ep=dev1&lt=300" >/dev/null 2>&1 || true
	kill -HUP "$(bg_pid listen)"
	wait_until 10 grep -q 'SIGHUP: 1 DTLS credentials' "$BATS_TEST_TMPDIR/listen.err"
	stop_bg listen
	grep -q 'debug:' "$BATS_TEST_TMPDIR/listen.err"
	run grep -iF -e "$PSK_HEX" -e "$PSK_TEXT" "$BATS_TEST_TMPDIR/listen.err" "$BATS_TEST_TMPDIR/listen.out"
	assert_failure
}

@test "logging: no root or session key in ljs-join's and kms-wrap serve's logs at -vv" {
	local phy ans k
	phy=$(node "$LORA" jr $APPKEY 70B3D57ED0000001 0004A30B001C0530 0001)
	printf '{"ProtocolVersion":"1.0","SenderID":"000013","ReceiverID":"70B3D57ED0000001","TransactionID":1,"MessageType":"JoinReq","MACVersion":"1.0.3","PHYPayload":"%s","DevEUI":"0004A30B001C0530","DevAddr":"26011234","DLSettings":"00","RxDelay":1}\n' "$phy" >req
	run -0 --separate-stderr ljs-join -vv -D devices.jsonl -S st -c "kms-wrap serve -vv -D devices.jsonl" <req
	ans=$output
	[ "$(jq -r .Result.ResultCode <<<"$ans")" = Success ]
	echo "$stderr" >err
	grep -q 'ljs-join: debug:' err
	log_lines_only err
	# the session keys went out in the answer (in clear: no KEK configured); no log has them
	for k in $APPKEY $(jq -r '.AppSKey.AESKey, .NwkSKey.AESKey' <<<"$ans"); do
		[ ${#k} -eq 32 ]
		run grep -iF "$k" err
		assert_failure
	done
}

@test "logging: -q leaves no info line, -v adds debug, and every line has the tool's prefix" {
	start_bg listen sh -c "exec lwm2m-listen -q -l 127.0.0.1:$PORT -C '$SOCK' -S '' -d 5 5>listen.rdy"
	wait_until 10 test -s listen.rdy
	start_bg observe sh -c "exec lwm2m-observe -q -s -C '$SOCK' -d 5 5>observe.rdy"
	start_bg write sh -c "exec lwm2m-write -q -C '$SOCK' -d 5 5>write.rdy </dev/null"
	start_bg watch sh -c "exec shadow-watch -q -s store -d 5 5>watch.rdy"
	start_bg join sh -c "exec ljs-join -q -D devices.jsonl -S st -l 127.0.0.1:$JPORT -d 5 5>join.rdy"
	local t
	for t in observe write watch join; do wait_until 10 test -s $t.rdy; done
	echo '{"thing":"t1","state":{"reported":{"a":1}}}' | shadow-put -q -s store >/dev/null 2>put.err
	kms-wrap serve -q -D devices.jsonl </dev/null >/dev/null 2>kms.err
	stop_all
	for t in listen observe write watch join put kms; do
		run grep -E ': (info|debug): ' "$BATS_TEST_TMPDIR/$t.err"
		assert_failure
	done
	# -v: the debug level, in the same one-line form
	echo '{"thing":"t1","state":{"reported":{"a":2}}}' | shadow-put -v -s store >/dev/null 2>put.err
	grep -q '^shadow-put: debug: ' put.err
	kms-wrap serve -v -D devices.jsonl </dev/null >/dev/null 2>kms.err
	grep -q '^kms-wrap: info: ' kms.err
	log_lines_only put.err
	log_lines_only kms.err
}

@test "logging: SIGTERM ends every long-running tool with status 0" {
	start_bg listen sh -c "exec lwm2m-listen -l 127.0.0.1:$PORT -C '$SOCK' -S st -d 5 5>listen.rdy"
	wait_until 10 test -s listen.rdy
	start_bg observe sh -c "exec lwm2m-observe -s -C '$SOCK' -d 5 5>observe.rdy"
	# standard input that stays open: a fifo this shell holds open for reading and writing
	mkfifo hold
	exec 9<>hold
	start_bg write sh -c "exec lwm2m-write -C '$SOCK' -d 5 5>write.rdy <hold"
	start_bg watch sh -c "exec shadow-watch -s store -d 5 5>watch.rdy"
	start_bg put sh -c "exec shadow-put -s store -d 5 5>put.rdy <hold"
	start_bg join sh -c "exec ljs-join -D devices.jsonl -S ljs -l 127.0.0.1:$JPORT -d 5 5>join.rdy"
	start_bg joinin sh -c "exec ljs-join -D devices.jsonl -S ljs2 -d 5 5>joinin.rdy <hold"
	# kms-wrap serve on a socket (a service of its own); on stdin it is a co-process that ends
	# with its input (ljs-join closes the pipe), checked below
	start_bg kms sh -c "exec kms-wrap serve -D devices.jsonl -L kms.sock -d 5 5>kms.rdy"
	local t pid rc
	for t in listen observe write watch put join joinin kms; do wait_until 10 test -s $t.rdy; done
	for t in kms joinin join put watch write observe listen; do
		pid=$(bg_pid $t)
		kill -TERM "$pid"
		rc=0
		wait "$pid" || rc=$?
		echo "$t: $rc"
		[ "$rc" -eq 0 ]
		log_lines_only "$BATS_TEST_TMPDIR/$t.err"
	done
	grep -q 'lwm2m-listen: info: stopping' listen.err
	run -0 kms-wrap serve -D devices.jsonl </dev/null
}
