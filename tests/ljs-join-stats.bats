#!/usr/bin/env bats
# ljs-join's counters: one JSON line on stderr on SIGUSR1 and on GET /stats of the admin
# listener (-m). Join-requests are built by npm lora-packet (tests/node/lora-join.js).
bats_require_minimum_version 1.5.0
load test_helper

APPKEY=2B7E151628AED2A6ABF7158809CF4F3C
LORA="$BATS_TEST_DIRNAME/node/lora-join.js"

setup() {
	cd "$BATS_TEST_TMPDIR"
	printf '{"dev_eui":"0004A30B001C0530","join_eui":"70B3D57ED0000001","mac_version":"1.0.3","app_key":"%s","home_net_id":"000013"}\n' $APPKEY >devices.jsonl
	PORT=$(free_port tcp)
	APORT=$(free_port tcp)
}

teardown() {
	[ -n "${BATS_TEST_COMPLETED:-}" ] || dump_logs
	stop_all
}

# joinreq DEVNONCE [KEY]: a JoinReq of the 1.0.3 device, its MIC made with KEY (default its AppKey)
joinreq() {
	local phy
	phy=$(node "$LORA" jr "${2:-$APPKEY}" 70B3D57ED0000001 0004A30B001C0530 "$1")
	printf '{"ProtocolVersion":"1.0","SenderID":"000013","ReceiverID":"70B3D57ED0000001","TransactionID":1,"MessageType":"JoinReq","MACVersion":"1.0.3","PHYPayload":"%s","DevEUI":"0004A30B001C0530","DevAddr":"26011234","DLSettings":"00","RxDelay":1}' "$phy"
}
post() { curl -s --max-time 20 --data-binary "$1" "http://127.0.0.1:$PORT/"; }
stats() { curl -s --max-time 10 "http://127.0.0.1:$APORT/stats"; }

@test "ljs-join stats: requests by type, answers by result, MIC failures and DevNonce replays, on GET /stats and SIGUSR1" {
	start_bg js ljs-join -D devices.jsonl -S st -l 127.0.0.1:$PORT -m 127.0.0.1:$APORT
	wait_until 10 stats
	run -0 stats
	[ "$(jq -c '[.stats, .devices, .requests.JoinReq, .in_flight]' <<<"$output")" = '["ljs-join",1,0,0]' ]
	post '{"ProtocolVersion":"1.0","MessageType":"HomeNSReq","SenderID":"000013","ReceiverID":"70B3D57ED0000001","DevEUI":"0004A30B001C0530"}' >/dev/null
	[ "$(post "$(joinreq 0001)" | jq -r .Result.ResultCode)" = Success ]
	[ "$(post "$(joinreq 0001)" | jq -r .Result.ResultCode)" = JoinReqFailed ]
	[ "$(post "$(joinreq 0002 00000000000000000000000000000000)" | jq -r .Result.ResultCode)" = MICFailed ]
	post '{"ProtocolVersion":"1.0","MessageType":"PRStartReq","SenderID":"000013","ReceiverID":"70B3D57ED0000001"}' >/dev/null
	[ "$(curl -s -o /dev/null -w '%{http_code}' --data-binary '{"Protocol' "http://127.0.0.1:$PORT/")" = 400 ]
	run -0 stats
	[ "$(jq -c .requests <<<"$output")" = '{"JoinReq":3,"HomeNSReq":1,"AppSKeyReq":0,"other":1}' ]
	[ "$(jq -c '[.results.Success, .results.JoinReqFailed, .results.MICFailed, .results.MalformedMessage]' <<<"$output")" = '[2,1,1,1]' ]
	[ "$(jq -c '[.mic_failures, .devnonce_replays, .http_errors, .tls_failures, .in_flight]' <<<"$output")" = '[1,1,1,0,0]' ]
	# one join stored (one log write); three JoinReqs timed, the stored one through the disk
	[ "$(jq -c '[.log_writes, .log_records, (.latency_ms | .join.count, .store.count, .write.count, .wake.count, .queue.count)]' <<<"$output")" = '[1,1,3,1,1,1,1]' ]
	jq -en 'input | .latency_ms | to_entries | all(.value | .p50 <= .p99 and .p99 <= .p999 and .p999 <= .max and .max > 0)' <<<"$output"
	jq -en 'input | .latency_ms | .store.max >= .write.max and .store.max >= .queue.max and .join.max >= .store.max' <<<"$output"
	# SIGUSR1: the same counters, one JSON line on stderr
	kill -USR1 "$(bg_pid js)"
	wait_until 10 grep -q '^{"stats":"ljs-join"' "$BATS_TEST_TMPDIR/js.err"
	run -0 sh -c "grep '^{' '$BATS_TEST_TMPDIR/js.err' | jq -c '[.requests.JoinReq, .mic_failures, .devnonce_replays]'"
	assert_output '[3,1,1]'
	# the latency histograms start over on POST /stats/latency/reset; the counters go on
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$APORT/stats/latency/reset")" = 405 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$APORT/stats/latency/reset")" = 200 ]
	run -0 stats
	[ "$(jq -c '[.requests.JoinReq, .log_writes, ([.latency_ms[] | .count, .max] | add)]' <<<"$output")" = '[3,1,0]' ]
	[ "$(post "$(joinreq 0003)" | jq -r .Result.ResultCode)" = Success ]
	run -0 stats
	[ "$(jq -c '[.requests.JoinReq, .log_writes, (.latency_ms | .join.count, .store.count, .queue.count)]' <<<"$output")" = '[4,2,1,1,1]' ]
	# the admin listener serves nothing else
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$APORT/")" = 404 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' --data-binary x "http://127.0.0.1:$APORT/stats")" = 405 ]
	# and the Join Server's own port does not serve the counters
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/stats")" = 405 ]
}

@test "ljs-join stats: a failed TLS handshake is counted; SIGUSR1 works on stdin too" {
	certtool --generate-privkey --key-type=ecdsa --outfile srv.key 2>/dev/null
	printf 'cn = "localhost"\nip_address = "127.0.0.1"\ntls_www_server\nsigning_key\nexpiration_days = 30\n' >srv.tmpl
	certtool --generate-self-signed --load-privkey srv.key --template srv.tmpl --outfile srv.pem 2>/dev/null
	start_bg js ljs-join -D devices.jsonl -S st -l 127.0.0.1:$PORT -t server-only -e srv.pem -k srv.key -m 127.0.0.1:$APORT
	wait_until 10 stats
	# plain HTTP to the TLS port: no handshake
	curl -s --max-time 5 --data-binary '{}' "http://127.0.0.1:$PORT/" >/dev/null || true
	wait_until 10 sh -c "curl -s http://127.0.0.1:$APORT/stats | jq -en 'input | .tls_failures == 1'"
	# a good TLS request is no failure
	curl -s --max-time 10 --cacert srv.pem --data-binary '{"ProtocolVersion":"1.0","MessageType":"HomeNSReq","SenderID":"000013","ReceiverID":"70B3D57ED0000001","DevEUI":"0004A30B001C0530"}' "https://127.0.0.1:$PORT/" | jq -en 'input | .Result.ResultCode == "Success"'
	run -0 stats
	[ "$(jq -c '[.tls_failures, .requests.HomeNSReq]' <<<"$output")" = '[1,1]' ]
	stop_bg js
	# stdin mode: kept open by a fifo, SIGUSR1 between two messages
	mkfifo in
	start_bg js2 sh -c "exec ljs-join -D devices.jsonl -S st2 <in"
	exec 8>in
	joinreq 0001 >&8
	echo >&8
	wait_until 10 grep -q Success "$BATS_TEST_TMPDIR/js2.out"
	kill -USR1 "$(bg_pid js2)"
	wait_until 10 grep -q '^{"stats":"ljs-join"' "$BATS_TEST_TMPDIR/js2.err"
	exec 8>&-
	run -0 sh -c "grep '^{' '$BATS_TEST_TMPDIR/js2.err' | jq -c '[.requests.JoinReq, .results.Success]'"
	assert_output '[1,1]'
}

@test "ljs-join stats: a bad admin address is a usage error" {
	run -100 --separate-stderr ljs-join -D devices.jsonl -S st -l 127.0.0.1:$PORT -m nowhere </dev/null
	[[ "$stderr" == *"--admin"* ]]
	run -100 --separate-stderr ljs-join -D devices.jsonl -S st -l 127.0.0.1:$PORT -m example.com:80 </dev/null
}
