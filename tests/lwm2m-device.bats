#!/usr/bin/env bats
# The simulated LwM2M device (tests/peers/lwm2m-device.js) that the gateway suites drive, checked
# on its own with libcoap's coap-client, so a broken peer is not mistaken for a broken gateway.

bats_require_minimum_version 1.5.0
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

probe() { node "$PEERS/coap-probe.js" --to "127.0.0.1:$PORT" "$@"; }
# root_answers CODE METHOD FORMAT PAYLOAD [OPTION...]: coap-client's METHOD on / with PAYLOAD in
# content format FORMAT (and more coap-client options) is answered CODE.
root_answers() {
	run $C -m "$2" -t "$3" "${@:5}" -e "$4" "coap://127.0.0.1:$PORT/"
	assert_output --partial "$1"
}

@test "device: Read-Composite is a FETCH on / with SenML JSON or CBOR paths; what it lacks is left out" {
	run -0 $C -m fetch -t 110 -e '[{"n":"/3/0/9"},{"bn":"/3303/0/","n":"5700"},{"n":"9999"}]' "coap://127.0.0.1:$PORT/"
	assert_output '[{"bn":"/3/0/","n":"9","v":100},{"bn":"/3303/0/","n":"5700","v":21.5}]'
	# paths in SenML CBOR (label 0 is "n"), the answer in the same format unless Accept says otherwise
	run -0 probe --method FETCH --ct 112 --payload-cbor '[{"-2":"/3/0/","0":"9"},{"0":"7"}]'
	run -0 jq -cS '[.code, .options["Content-Format"], .cbor]' <<<"$output"
	assert_output '["2.05",[112],[{"-2":"/3/0/","0":"9","2":100},{"0":"7/0","2":3800},{"0":"7/1","2":5000}]]'
	run -0 probe --method FETCH --ct 112 --accept 110 --payload-cbor '[{"0":"/3311/0/5850"}]'
	run -0 jq -c '[.code, .options["Content-Format"], .payload]' <<<"$output"
	assert_output '["2.05",[110],"[{\"bn\":\"/3311/0/\",\"n\":\"5850\",\"vb\":false}]"]'
	# nothing readable: 4.04; bad payloads: 4.00; unknown formats: 4.15 and 4.06
	root_answers 4.04 fetch 110 '[{"n":"/9/0"}]'
	root_answers 4.00 fetch 110 '[{"n":"/3/x"}]'
	root_answers 4.00 fetch 110 '{"n":"/3/0/9"}'
	root_answers 4.15 fetch 0 '/3/0/9'
	root_answers 4.06 fetch 110 '[{"n":"/3/0/9"}]' -A 11542
	run -0 jq -c 'select(.event == "read-composite") | .code' "$BATS_TEST_TMPDIR/dev.out"
	assert_output $'"2.05"\n"2.05"\n"2.05"\n"4.04"\n"4.00"\n"4.00"\n"4.15"\n"4.06"'
}

@test "device: Write-Composite is an iPATCH on / that applies whole or not at all" {
	run $C -m ipatch -t 110 -e '[{"bn":"/3311/0/","n":"5850","vb":true},{"n":"5851","v":20},{"bn":"/3303/0/","n":"5750","vs":"hall"}]' "coap://127.0.0.1:$PORT/"
	refute_output --partial '4.'
	run -0 jq -c 'select(.event == "write-composite") | [.path, .format, .value]' "$BATS_TEST_TMPDIR/dev.out"
	assert_output $'["/3311/0/5850","senml-json",true]\n["/3311/0/5851","senml-json",20]\n["/3303/0/5750","senml-json","hall"]'
	run -0 probe --method iPATCH --ct 112 --payload-cbor '[{"-2":"/3311/0/","0":"5706","3":"red"},{"0":"5852","2":7}]'
	run -0 jq -c '.code' <<<"$output"
	assert_output '"2.04"'
	# one refused record refuses the whole write
	root_answers 4.05 ipatch 110 '[{"n":"/3311/0/5851","v":1},{"n":"/3/0/9","v":1}]'
	root_answers 4.04 ipatch 110 '[{"n":"/3311/0/5851","v":1},{"n":"/3311/7/5851","v":1}]'
	root_answers 4.00 ipatch 110 '[{"n":"/3311/0/5851","v":"one"}]'
	run -0 $C -m fetch -t 110 -e '[{"n":"/3311/0"}]' "coap://127.0.0.1:$PORT/"
	run -0 jq -c 'map({(.n): (.v // .vb // .vs)}) | add' <<<"$output"
	assert_output '{"5706":"red","5750":"led","5850":true,"5851":20,"5852":7}'
}

@test "device: Observe-Composite notifies all its paths; Observe 1 or a Reset ends it" {
	# cancelled with a FETCH carrying Observe 1 (same token, same endpoint)
	probe --method FETCH --ct 110 --observe 0 --payload '[{"n":"/3303/0/5700"},{"n":"/3/0/9"}]' \
		--cancel-after 1 --wait 10 >"$BATS_TEST_TMPDIR/p1.out" &
	local p1=$!
	wait_until 10 grep -q '"event":"observe-composite"' "$BATS_TEST_TMPDIR/dev.out"
	echo "set /3/0/9 55" >>"$BATS_TEST_TMPDIR/dev.cmd"
	wait $p1
	run -0 jq -c '[.code, .options.Observe != null, .payload]' "$BATS_TEST_TMPDIR/p1.out"
	assert_line --index 0 '["2.05",true,"[{\"bn\":\"/3303/0/\",\"n\":\"5700\",\"v\":21.5},{\"bn\":\"/3/0/\",\"n\":\"9\",\"v\":100}]"]'
	assert_line --index 1 '["2.05",true,"[{\"bn\":\"/3303/0/\",\"n\":\"5700\",\"v\":21.5},{\"bn\":\"/3/0/\",\"n\":\"9\",\"v\":55}]"]'
	# the cancel is answered like a Read-Composite, without Observe
	assert_line --index 2 '["2.05",false,"[{\"bn\":\"/3303/0/\",\"n\":\"5700\",\"v\":21.5},{\"bn\":\"/3/0/\",\"n\":\"9\",\"v\":55}]"]'
	grep -q '"event":"cancel-observe","path":"/"' "$BATS_TEST_TMPDIR/dev.out"
	# a Reset in answer to a notification ends it too (SenML CBOR this time)
	probe --method FETCH --ct 112 --observe 0 --payload-cbor '[{"0":"/3311/0/5851"}]' --reset-after 1 --wait 3 \
		>"$BATS_TEST_TMPDIR/p2.out" &
	local p2=$!
	wait_until 10 grep -q '"event":"observe-composite","paths":\["/3311/0/5851"\]' "$BATS_TEST_TMPDIR/dev.out"
	echo "set /3311/0/5851 12" >>"$BATS_TEST_TMPDIR/dev.cmd"
	wait_until 10 grep -q '"event":"observe-end","paths":\["/3311/0/5851"\]' "$BATS_TEST_TMPDIR/dev.out"
	wait $p2
	run -0 jq -cS '.cbor' "$BATS_TEST_TMPDIR/p2.out"
	assert_output $'[{"-2":"/3311/0/","0":"5851","2":80}]\n[{"-2":"/3311/0/","0":"5851","2":12}]'
	echo "set /3311/0/5851 13" >>"$BATS_TEST_TMPDIR/dev.cmd"
	wait_until 10 grep -q '"event":"set","path":"/3311/0/5851","value":13' "$BATS_TEST_TMPDIR/dev.out"
	run -0 grep -c '"event":"notify"' "$BATS_TEST_TMPDIR/dev.out"
	assert_output 2
}

@test "device: an LwM2M 1.0 device refuses FETCH and iPATCH with 4.05" {
	P10=$(free_port)
	start_bg dev10 node "$PEERS/lwm2m-device.js" --server "127.0.0.1:$SRV" --ep dev10 --port "$P10" --lwm2m 1.0
	wait_until 30 grep -q '"event":"started"' "$BATS_TEST_TMPDIR/dev10.out"
	run $C -m fetch -t 110 -e '[{"n":"/3/0/9"}]' "coap://127.0.0.1:$P10/"
	assert_output --partial '4.05'
	run $C -m ipatch -t 110 -e '[{"n":"/3311/0/5850","vb":true}]' "coap://127.0.0.1:$P10/"
	assert_output --partial '4.05'
	run -0 grep -c '"why":"LwM2M 1.0 has no composite operations"' "$BATS_TEST_TMPDIR/dev10.out"
	assert_output 2
}

@test "device: Create answers 2.01 with the new instance in Location-Path" {
	run -0 probe --method POST --path /3311 --ct 110 --payload '[{"n":"/3311/1/5851","v":3}]'
	run -0 jq -c '[.code, .options["Location-Path"]]' <<<"$output"
	assert_output '["2.01",["3311","1"]]'
	run -0 $C -m get -A 0 "coap://127.0.0.1:$PORT/3311/1/5851"
	assert_output '3'
	# an instance that exists already: 4.00
	run -0 probe --method POST --path /3311 --ct 110 --payload '[{"n":"/3311/1/5851","v":3}]'
	run -0 jq -c '.code' <<<"$output"
	assert_output '"4.00"'
}
