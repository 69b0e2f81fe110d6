#!/usr/bin/env bats
# examples/s6 and examples/runit: the service directories, copied into a scan directory with their
# paths and ports moved into a scratch root, run under the real supervisors (s6-svscan and
# runsvdir from Debian's s6 and runit packages), with the simulated device (npm coap) and a
# Network Server played by curl over mutual TLS.
bats_require_minimum_version 1.5.0
load test_helper
load gw_helper

APPKEY=2B7E151628AED2A6ABF7158809CF4F3C
LORA="$BATS_TEST_DIRNAME/node/lora-join.js"

setup() {
	# unix socket paths must stay short: a root of our own under /tmp
	ROOT=$(mktemp -d /tmp/lwm2m-svc.XXXXXX)
	SCAN=$ROOT/scan
	mkdir -p "$SCAN" "$ROOT/run"
	cp -R "$TOP/examples/etc/lwm2m-gw" "$ROOT/etc"
	PORT=$(free_port)
	DPORT=$(free_port)
	JPORT=$(free_port tcp)
	SOCK=$ROOT/run/lwm2m.sock
	STORE=$ROOT/lib/shadows
}

teardown() {
	[ -n "${BATS_TEST_COMPLETED:-}" ] || { dump_logs; tail -n 30 "$ROOT"/log/*/current 2>/dev/null; tail -n 30 "$BATS_TEST_TMPDIR"/dev.out; }
	if [ -f "$BATS_TEST_TMPDIR/svscan.pid" ]; then
		# s6-svscan on SIGTERM: every service down, its logger drained, then exit
		kill -TERM "$(bg_pid svscan)" 2>/dev/null || true
	elif [ -f "$BATS_TEST_TMPDIR/runsvdir.pid" ]; then
		# runsvdir on SIGHUP: TERM to every runsv, which stops its service and log, then exits
		kill -HUP "$(bg_pid runsvdir)" 2>/dev/null || true
	fi
	wait_until 20 none_left "$ROOT" || { pgrep -a -f "$ROOT"; pkill -9 -f "$ROOT"; } || true
	stop_all
	rm -rf "$ROOT"
}

# none_left PATTERN: no process's command line matches (a function: no sh -c that would match)
none_left() { ! pgrep -f "$1" >/dev/null; }

# install_svc KIND NAME...: copy examples/KIND/NAME into the scan directory, with /etc, /run,
# /var/lib and /var/log moved under $ROOT, the tools from $BIN, and our ports on 127.0.0.1.
install_svc() {
	local kind=$1 s f
	shift
	for s in "$@"; do
		cp -R "$TOP/examples/$kind/$s" "$SCAN/$s"
		for f in "$SCAN/$s/conf" "$SCAN/$s/log/run"; do
			sed -i -e "s#/etc/lwm2m-gw#$ROOT/etc#g; s#/run/lwm2m-gw#$ROOT/run#g" \
				-e "s#/var/lib/lwm2m-gw#$ROOT/lib#g; s#/var/log/lwm2m-gw#$ROOT/log#g" \
				-e "s#^PATH=/usr/local/bin:#PATH=$BIN:#" \
				-e "s#0.0.0.0:5683#127.0.0.1:$PORT#; s#0.0.0.0:5684#127.0.0.1:$DPORT#; s#0.0.0.0:8443#127.0.0.1:$JPORT#" \
				-e 's#^LISTEN_ARGS=#LISTEN_ARGS="-t 0.3 -r 1 -s 0"#' "$f"
		done
	done
}

start_s6() {
	start_bg svscan s6-svscan "$SCAN"
	local s
	for s in "$@"; do wait_until 10 s6-svok "$SCAN/$s"; done
}
# ready NAME...: wait (bounded) until each service is up and has notified readiness
ready() {
	local s dirs=()
	for s in "$@"; do dirs+=("$SCAN/$s"); done
	s6-svwait -U -t 20000 "${dirs[@]}"
}
svpid() { s6-svstat -o pid "$SCAN/$1"; }

shadow() { jq -en "input | $2" "$STORE/$1.json" >/dev/null 2>&1; }
desire() { echo "$1" | shadow-put -s "$STORE" >/dev/null; }

# the gateway loop through the services: values in, a desired LED out
gateway_loop() {
	start_device dev dev1
	wait_until 20 shadow dev1 '.state.reported["3303"]["0"]["5700"] == 21.5 and .state.reported["3"]["0"]["9"] == 100'
	dev_cmd dev "set /3303/0/5700 23.25"
	wait_until 10 shadow dev1 '.state.reported["3303"]["0"]["5700"] == 23.25'
	desire '{"thing":"dev1","state":{"desired":{"3311":{"0":{"5850":true}}}}}'
	wait_for 10 dev.out '.event == "write" and .path == "/3311/0/5850" and .value == true'
	wait_until 10 shadow dev1 '.state.reported["3311"]["0"]["5850"] == true'
}

@test "services: the s6 directories are complete and their scripts parse" {
	local s
	for s in lwm2m-listen lwm2m-reported lwm2m-desired ljs-join; do
		for f in run finish log/run; do
			[ -x "$TOP/examples/s6/$s/$f" ] && sh -n "$TOP/examples/s6/$s/$f"
			[ -x "$TOP/examples/runit/$s/$f" ] && sh -n "$TOP/examples/runit/$s/$f"
		done
		[ "$(cat "$TOP/examples/s6/$s/notification-fd")" = 3 ]
		[ ! -e "$TOP/examples/runit/$s/notification-fd" ]
		sh -n "$TOP/examples/s6/$s/conf"
	done
}

@test "services: s6: ready, device values land in the shadow, a desired LED reaches the device" {
	install_svc s6 lwm2m-listen lwm2m-reported lwm2m-desired
	start_s6 lwm2m-listen lwm2m-reported lwm2m-desired
	ready lwm2m-listen lwm2m-reported lwm2m-desired
	test -S "$SOCK"
	gateway_loop
	# logs went through s6-log: one TAI64N-stamped line per event
	wait_until 10 grep -q 'lwm2m-listen: info: listening on udp' "$ROOT/log/lwm2m-listen/current"
	grep -q '"event":"register"' "$ROOT/log/lwm2m-listen/current"
	grep -q '^@4000' "$ROOT/log/lwm2m-listen/current"
	# shadow-put's results (one line per update) are in the pipelines' logs
	wait_until 10 grep -q '"result":"accepted"' "$ROOT/log/lwm2m-reported/current"
}

@test "services: s6: a killed service is restarted and the loop works again" {
	install_svc s6 lwm2m-listen lwm2m-reported lwm2m-desired
	start_s6 lwm2m-listen lwm2m-reported lwm2m-desired
	ready lwm2m-listen lwm2m-reported lwm2m-desired
	start_device dev dev1
	wait_until 20 shadow dev1 '.state.reported["3"]["0"]["9"] == 100'
	local p1 p2 tok
	tok=$(jq -r 'select(.event == "observe" and .path == "/3/0/9") | .token' "$BATS_TEST_TMPDIR/dev.out")
	p1=$(svpid lwm2m-listen)
	s6-svc -k "$SCAN/lwm2m-listen"
	wait_until 10 sh -c "[ \"\$(s6-svstat -o pid '$SCAN/lwm2m-listen')\" -gt 0 ] && [ \"\$(s6-svstat -o pid '$SCAN/lwm2m-listen')\" != $p1 ]"
	ready lwm2m-listen
	# the registration survived (state dir); lwm2m-observe reconnected and asked again, and the
	# requests go out once the device talks (its next Update: the session is the device's)
	wait_until 20 grep -q 'from the registration list' "$ROOT/log/lwm2m-reported/current"
	dev_cmd dev update
	wait_until 20 has dev.out '.event == "observe" and .path == "/3/0/9" and .token != "'"$tok"'"'
	dev_cmd dev "set /3/0/9 42"
	wait_until 20 shadow dev1 '.state.reported["3"]["0"]["9"] == 42'
	# the producer of a pipeline: its consumer goes with it, both come back
	p2=$(svpid lwm2m-reported)
	s6-svc -k "$SCAN/lwm2m-reported"
	wait_until 10 sh -c "[ \"\$(s6-svstat -o pid '$SCAN/lwm2m-reported')\" -gt 0 ] && [ \"\$(s6-svstat -o pid '$SCAN/lwm2m-reported')\" != $p2 ]"
	ready lwm2m-reported
	dev_cmd dev "set /3/0/9 43"
	wait_until 20 shadow dev1 '.state.reported["3"]["0"]["9"] == 43'
	# a stopped pipeline leaves no stage behind
	s6-svc -wD -T 10000 -d "$SCAN/lwm2m-desired"
	wait_until 10 none_left "shadow-watch -s $STORE"
	wait_until 10 none_left "lwm2m-write -C $SOCK"
}

@test "services: s6: a configuration error (exit 100) is not restarted" {
	install_svc s6 lwm2m-listen
	printf -- '- ep: dtls1\n  psk_identity: dtls1-id\n  psk_key: "not hex"\n' >"$ROOT/etc/credentials.yml"
	start_s6 lwm2m-listen
	wait_until 20 grep -q 'not restarting' "$ROOT/log/lwm2m-listen/current"
	wait_until 10 sh -c "s6-svstat '$SCAN/lwm2m-listen' | grep -q '^down (exitcode 100)'"
	# down, not wanted up: s6-supervise will not start it again by itself
	run -0 s6-svstat -o up,wantedup,exitcode "$SCAN/lwm2m-listen"
	assert_output 'false false 100'
	# the finish script said why, after the tool's own message naming the file
	grep -q 'credentials.yml' "$ROOT/log/lwm2m-listen/current"
	# fixed, and brought up by hand, it runs
	cp "$TOP/examples/etc/lwm2m-gw/credentials.yml" "$ROOT/etc/credentials.yml"
	s6-svc -u "$SCAN/lwm2m-listen"
	ready lwm2m-listen
}

@test "services: s6: a pipeline stage's configuration error (exit 100) stops the whole service, not restarted" {
	install_svc s6 lwm2m-listen lwm2m-reported
	echo 'PUT_ARGS="-b 0"' >>"$SCAN/lwm2m-reported/conf"
	start_s6 lwm2m-listen lwm2m-reported
	# shadow-put, a consumer, exits 100; lwm2m-observe (nothing to write yet) is stopped with it
	wait_until 20 grep -q 'shadow-put exited 100 .*not restarting' "$ROOT/log/lwm2m-reported/current"
	wait_until 10 sh -c "s6-svstat -o up,wantedup '$SCAN/lwm2m-reported' | grep -qx 'false false'"
	grep -q 'shadow-put: fatal: bad batch size' "$ROOT/log/lwm2m-reported/current"
	wait_until 10 none_left "lwm2m-observe -d 3 -s -C $SOCK"
	# fixed, and brought up by hand, it runs
	sed -i '$d' "$SCAN/lwm2m-reported/conf"
	s6-svc -u "$SCAN/lwm2m-reported"
	ready lwm2m-reported
}

@test "services: s6: SIGHUP reloads lwm2m-listen's credentials" {
	install_svc s6 lwm2m-listen
	start_s6 lwm2m-listen
	ready lwm2m-listen
	printf -- '- ep: dev2\n  psk_identity: dev2-id\n  psk_key: "0f0e0d0c0b0a09080706050403020100"\n' >>"$ROOT/etc/credentials.yml"
	s6-svc -h "$SCAN/lwm2m-listen"
	wait_until 10 grep -q 'SIGHUP: 2 DTLS credentials' "$ROOT/log/lwm2m-listen/current"
}

# Certificates made here: a server CA and server certificate, the NetID 000013 CA the sample
# interop.yml names, and a Network Server's client certificate under it.
make_pki() {
	local d=$ROOT/etc/ljs-join
	(
		cd "$d"
		certtool --generate-privkey --key-type=ecdsa --outfile srvca.key 2>/dev/null
		printf 'cn = "srvca"\nca\ncert_signing_key\nexpiration_days = 30\n' >srvca.tmpl
		certtool --generate-self-signed --load-privkey srvca.key --template srvca.tmpl --outfile srvca.pem 2>/dev/null
		certtool --generate-privkey --key-type=ecdsa --outfile ca-000013.key 2>/dev/null
		printf 'cn = "ca-000013"\nca\ncert_signing_key\nexpiration_days = 30\n' >ca.tmpl
		certtool --generate-self-signed --load-privkey ca-000013.key --template ca.tmpl --outfile ca-000013.pem 2>/dev/null
		certtool --generate-privkey --key-type=ecdsa --outfile server.key 2>/dev/null
		printf 'cn = "localhost"\ntls_www_server\nip_address = "127.0.0.1"\nsigning_key\nexpiration_days = 30\n' >server.tmpl
		certtool --generate-certificate --load-privkey server.key --load-ca-certificate srvca.pem \
			--load-ca-privkey srvca.key --template server.tmpl --outfile server.pem 2>/dev/null
		certtool --generate-privkey --key-type=ecdsa --outfile ns.key 2>/dev/null
		printf 'cn = "ns-000013"\ntls_www_client\nsigning_key\nexpiration_days = 30\n' >ns.tmpl
		certtool --generate-certificate --load-privkey ns.key --load-ca-certificate ca-000013.pem \
			--load-ca-privkey ca-000013.key --template ns.tmpl --outfile ns.pem 2>/dev/null
	)
}
post() {
	local d=$ROOT/etc/ljs-join
	curl -s --max-time 20 --cacert "$d/srvca.pem" --cert "$d/ns.pem" --key "$d/ns.key" \
		--data-binary "$1" "https://127.0.0.1:$JPORT/"
}
joinreq() {
	local phy
	phy=$(node "$LORA" jr $APPKEY 70B3D57ED0000001 0004A30B001C0530 "$1")
	printf '{"ProtocolVersion":"1.0","SenderID":"000013","ReceiverID":"70B3D57ED0000001","TransactionID":7,"MessageType":"JoinReq","MACVersion":"1.0.3","PHYPayload":"%s","DevEUI":"0004A30B001C0530","DevAddr":"26011234","DLSettings":"00","RxDelay":1}' "$phy"
}

@test "services: s6: ljs-join over mutual TLS with kms-wrap serve holding the root keys" {
	make_pki
	install_svc s6 ljs-join
	start_s6 ljs-join
	ready ljs-join
	run -0 post "$(joinreq 0101)"
	[ "$(jq -r .Result.ResultCode <<<"$output")" = Success ]
	phy=$(jq -r .PHYPayload <<<"$output")
	run -0 node "$LORA" ja10 $APPKEY 0101 "$phy"
	[ "$(jq -r .mic <<<"$output")" = true ]
	# the same DevNonce again is refused; the crypto process is a child of ljs-join
	run -0 post "$(joinreq 0101)"
	[ "$(jq -r .Result.ResultCode <<<"$output")" = JoinReqFailed ]
	pgrep -P "$(svpid ljs-join)" -f 'kms-wrap serve' >/dev/null
	# its log: ljs-join's lines and kms-wrap's, never a key
	wait_until 10 grep -q 'ljs-join: info: listening on' "$ROOT/log/ljs-join/current"
	grep -q 'kms-wrap: info: loaded 2 registry devices' "$ROOT/log/ljs-join/current"
	run grep -i "$APPKEY" "$ROOT/log/ljs-join/current"
	assert_failure
}

# runit: runsvdir from Debian's runit package (not runit-init: it does not take over init).
start_runit() {
	start_bg runsvdir runsvdir -P "$SCAN"
	local s
	for s in "$@"; do wait_until 10 sv status "$SCAN/$s"; done
}
# runsv's supervise/status: byte 17 is what is wanted, 'u' or 'd'
want() { od -An -c -j17 -N1 "$SCAN/$1/supervise/status" | tr -d ' '; }
want_is() { [ "$(want "$1")" = "$2" ]; }

@test "services: runit: device values land in the shadow, a desired LED reaches the device" {
	install_svc runit lwm2m-listen lwm2m-reported lwm2m-desired
	start_runit lwm2m-listen lwm2m-reported lwm2m-desired
	wait_until 10 test -S "$SOCK"
	gateway_loop
	wait_until 10 grep -q 'lwm2m-listen: info: listening on udp' "$ROOT/log/lwm2m-listen/current"
	# svlogd -tt stamps
	grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}_' "$ROOT/log/lwm2m-listen/current"
	# a killed service is restarted
	local p1
	p1=$(cat "$SCAN/lwm2m-listen/supervise/pid")
	sv kill "$SCAN/lwm2m-listen"
	wait_until 10 sh -c "p=\$(cat '$SCAN/lwm2m-listen/supervise/pid'); [ -n \"\$p\" ] && [ \"\$p\" != $p1 ]"
	# (the socket file outlived the killed process: wait for lwm2m-observe's new observations)
	wait_until 20 grep -q 'from the registration list' "$ROOT/log/lwm2m-reported/current"
	dev_cmd dev update
	wait_until 20 counted -ge 2 count dev.out '.event == "observe" and .path == "/3/0/9"'
	dev_cmd dev "set /3/0/9 41"
	wait_until 20 shadow dev1 '.state.reported["3"]["0"]["9"] == 41'
}

@test "services: runit: a configuration error (exit 100) is not restarted" {
	install_svc runit lwm2m-reported
	printf 'paths: [/3/0/9, /not/a/path]\n' >"$ROOT/etc/observe.yml"
	start_runit lwm2m-reported
	wait_until 20 grep -q 'not restarting' "$ROOT/log/lwm2m-reported/current"
	# runsv took the "d" (want down), after which it never starts the service by itself
	wait_until 10 want_is lwm2m-reported d
	wait_until 10 sh -c "sv status '$SCAN/lwm2m-reported' | grep -q '^down:'"
	[ "$(want lwm2m-reported)" = d ]
	grep -q 'observe.yml' "$ROOT/log/lwm2m-reported/current"
}

@test "services: runit: a pipeline stage's configuration error (exit 100) keeps the whole service down" {
	install_svc runit lwm2m-desired
	echo 'WRITE_ARGS="-t 0"' >>"$SCAN/lwm2m-desired/conf"
	start_runit lwm2m-desired
	# lwm2m-write, the middle stage, exits 100; shadow-watch (no delta to write) is stopped with it
	wait_until 20 grep -q 'lwm2m-write exited 100 .*not restarting' "$ROOT/log/lwm2m-desired/current"
	wait_until 10 want_is lwm2m-desired d
	wait_until 10 sh -c "sv status '$SCAN/lwm2m-desired' | grep -q '^down:'"
	grep -q 'lwm2m-write: fatal: bad timeout' "$ROOT/log/lwm2m-desired/current"
	wait_until 10 none_left "shadow-watch -s $STORE"
}

# ready_file NAME: FD 5 of the tool under test goes to this file; true once it holds a newline
got_newline() { [ "$(od -An -c "$BATS_TEST_TMPDIR/$1.rdy" 2>/dev/null | tr -d ' ')" = '\n' ]; }

@test "services: every long-running tool writes its readiness newline to -d FD" {
	cd "$BATS_TEST_TMPDIR"
	# standard input that stays open: a fifo this shell holds open for reading and writing (at
	# the end of its input lwm2m-write finishes its work and exits, maybe before it is ready)
	mkfifo hold
	exec 9<>hold
	start_bg listen sh -c "exec lwm2m-listen -l 127.0.0.1:$PORT -C '$SOCK' -S '' -d 5 5>listen.rdy"
	start_bg observe sh -c "exec lwm2m-observe -s -C '$SOCK' -d 5 5>observe.rdy"
	start_bg write sh -c "exec lwm2m-write -C '$SOCK' -d 5 5>write.rdy <hold"
	start_bg watch sh -c "exec shadow-watch -s '$STORE' -d 5 5>watch.rdy"
	start_bg put sh -c "exec shadow-put -s '$STORE' -d 5 5>put.rdy <hold"
	printf '{"dev_eui":"0004A30B001C0530","join_eui":"70B3D57ED0000001","mac_version":"1.0.3","app_key":"%s"}\n' $APPKEY >devices.jsonl
	start_bg join sh -c "exec ljs-join -D devices.jsonl -S ljs -l 127.0.0.1:$JPORT -d 5 5>join.rdy"
	start_bg kms sh -c "exec kms-wrap serve -D devices.jsonl -d 5 5>kms.rdy <hold"
	local t
	for t in listen observe write watch put join kms; do
		wait_until 10 got_newline $t
	done
}
