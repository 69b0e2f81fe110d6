#!/usr/bin/env bats
# The simulated LwM2M device (tests/peers/lwm2m-device.js) that the gateway suites drive, checked
# on its own with libcoap's coap-client, so a broken peer is not mistaken for a broken gateway.

load test_helper

setup() {
	PORT=$(free_port)
	SRV=$(free_port)
	start_bg dev node "$PEERS/lwm2m-device.js" --server "127.0.0.1:$SRV" --ep devtest \
		--port "$PORT" --lwm2m 1.1 --commands "$BATS_TEST_TMPDIR/dev.cmd"
	wait_until 30 grep -q '"event":"started"' "$BATS_TEST_TMPDIR/dev.out"
	C="timeout 10 coap-client-gnutls -B 3"
}
teardown() {
	[ -n "${BATS_TEST_COMPLETED:-}" ] || dump_logs
	stop_all
}

@test "device: reads in SenML JSON by default (1.1), text and TLV on request" {
	run $C -m get "coap://127.0.0.1:$PORT/3/0/9"
	assert_output --partial '[{"bn":"/3/0/","n":"9","v":100}]'
	run $C -m get -A 0 "coap://127.0.0.1:$PORT/3303/0/5700"
	assert_output --partial '21.5'
	run sh -c "$C -m get -A 11542 coap://127.0.0.1:$PORT/3/0/9 | od -An -tx1"
	# TLV: resource with value, id 9, length 1, value 100
	assert_output --partial 'c1 09 64'
}

@test "device: write on a read-only resource is 4.05, on a missing one 4.04, a boolean is applied" {
	run $C -m put -t 0 -e 1 "coap://127.0.0.1:$PORT/3/0/9"
	assert_output --partial '4.05'
	run $C -m put -t 0 -e 1 "coap://127.0.0.1:$PORT/3311/0/9999"
	assert_output --partial '4.04'
	run $C -m put -t 0 -e 1 "coap://127.0.0.1:$PORT/3311/0/5850"
	refute_output --partial '4.0'
	run grep -c '"event":"write","path":"/3311/0/5850","method":"PUT","format":"text","code":"2.04","value":true' "$BATS_TEST_TMPDIR/dev.out"
	assert_output 1
	run $C -m get -A 0 "coap://127.0.0.1:$PORT/3311/0/5850"
	assert_output --partial '1'
}

@test "device: observe notifies after a set command" {
	timeout 10 coap-client-gnutls -B 4 -s 4 -m get "coap://127.0.0.1:$PORT/3/0/9" >"$BATS_TEST_TMPDIR/obs.out" 2>&1 &
	local obs=$!
	wait_until 10 grep -q '"event":"observe","path":"/3/0/9"' "$BATS_TEST_TMPDIR/dev.out"
	echo "set /3/0/9 55" >>"$BATS_TEST_TMPDIR/dev.cmd"
	wait_until 10 grep -q '"event":"notify","path":"/3/0/9".*55' "$BATS_TEST_TMPDIR/dev.out"
	wait $obs || true
	run cat "$BATS_TEST_TMPDIR/obs.out"
	assert_output --partial '"v":55'
}

@test "device: a silent device answers nothing" {
	echo "silent on" >>"$BATS_TEST_TMPDIR/dev.cmd"
	wait_until 10 grep -q '"event":"silent"' "$BATS_TEST_TMPDIR/dev.out"
	run timeout 10 coap-client-gnutls -B 2 -m get "coap://127.0.0.1:$PORT/3/0/9"
	refute_output --partial '"v"'
	run grep -c '"event":"dropped"' "$BATS_TEST_TMPDIR/dev.out"
	refute_output 0
}
