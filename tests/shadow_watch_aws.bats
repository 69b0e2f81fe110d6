#!/usr/bin/env bats
# shadow-watch --aws: deltas from AWS IoT over MQTT/TLS with an X.509 client certificate,
# against a mosquitto broker started here (certtool PKI, require_certificate), with the
# Device Shadow service's part played by mosquitto_pub and a /get responder.
bats_require_minimum_version 1.5.0
load test_helper
load aws_pki

IMEI=urn:imei:352656100000000

setup() {
	command -v mosquitto >/dev/null || skip "mosquitto is not installed"
	command -v mosquitto_pub >/dev/null || skip "mosquitto_pub (mosquitto-clients) is not installed"
	P=$BATS_TEST_TMPDIR/pki
	DOCS=$BATS_TEST_TMPDIR/docs
	mkdir -p "$DOCS"
	make_pki "$P"
	MPORT=$(free_port tcp)
	cat >"$BATS_TEST_TMPDIR/mosquitto.conf" <<-EOF
	listener $MPORT 127.0.0.1
	cafile $P/ca.pem
	certfile $P/server.pem
	keyfile $P/server.key
	require_certificate true
	use_identity_as_username true
	persistence true
	persistence_location $BATS_TEST_TMPDIR/
	max_queued_messages 0
	user root
	log_dest stderr
	log_type all
	EOF
	CONN=(-h localhost -p "$MPORT" --cafile "$P/ca.pem" --cert "$P/client.pem" --key "$P/client.key")
	unset AWS_IOT_ENDPOINT
}
teardown() { stop_all; }

start_broker() {
	start_bg broker mosquitto -c "$BATS_TEST_TMPDIR/mosquitto.conf"
	wait_until 30 grep -q "running" "$BATS_TEST_TMPDIR/broker.err"
}

start_responder() {
	# the responder needs only the standard library: the system's python starts fastest
	local py=/usr/bin/python3
	[ -x "$py" ] || py=python3
	start_bg responder "$py" "$PEERS/aws_shadow_get.py" "$DOCS" "${CONN[@]}"
	wait_until 30 grep -q 'shadow-service . \$aws/things/+/shadow/name/+/get' "$BATS_TEST_TMPDIR/broker.err"
}

# publish THING[/name/SHADOW] JSON: what AWS IoT publishes on .../update/delta.
publish_delta() {
	mosquitto_pub "${CONN[@]}" -q 1 -t "\$aws/things/${1%%/*}/shadow${1#"${1%%/*}"}/update/delta" -m "$2"
}

watch_aws() {
	start_bg watch shadow-watch --aws -e "localhost:$MPORT" -c "$P/client.pem" -k "$P/client.key" -A "$P/ca.pem" \
		-B 2 -v "$@"
}

subscribed() { grep -c "subscribed to \\\$aws/things/$1/shadow$2\$" "$BATS_TEST_TMPDIR/watch.err" | grep -qx "${3:-1}"; }
printed() { grep -qF -- "$1" "$BATS_TEST_TMPDIR/watch.out"; }

@test "shadow-watch --aws: the current delta on subscribe, then each newer delta; older versions dropped; named shadows" {
	start_broker
	start_responder
	cat >"$DOCS/$IMEI.json" <<-EOF
	{"state":{"desired":{"3311":{"0":{"5850":true}}},"reported":{"3311":{"0":{"5850":false}}},"delta":{"3311":{"0":{"5850":true}}}},"metadata":{"desired":{"3311":{"0":{"5850":{"timestamp":1763850000}}}}},"version":5,"timestamp":1763850001}
	EOF
	watch_aws -N temp "$IMEI" dev2
	wait_until 30 subscribed "$IMEI" ""
	wait_until 30 subscribed "$IMEI" /name/temp
	wait_until 30 subscribed dev2 ""
	wait_until 30 printed '"version":5'
	run -0 head -n 1 "$BATS_TEST_TMPDIR/watch.out"
	assert_output --partial "{\"thing\":\"$IMEI\",\"version\":5,"
	assert_output --partial '"state":{"3311":{"0":{"5850":true}}}'
	publish_delta "$IMEI" '{"version":7,"timestamp":1763850007,"state":{"3311":{"0":{"5850":false}}},"metadata":{"3311":{"0":{"5850":{"timestamp":1763850007}}}}}'
	publish_delta "$IMEI" '{"version":6,"timestamp":1763850006,"state":{"3311":{"0":{"5850":true}}},"metadata":{}}'
	publish_delta "$IMEI/name/temp" '{"version":2,"timestamp":1763850008,"state":{"3303":{"0":{"5701":"Cel"}}},"metadata":{}}'
	publish_delta dev2 '{"version":1,"timestamp":1763850009,"state":{"a":1},"metadata":{}}'
	wait_until 30 printed '"thing":"dev2"'
	run -0 cat "$BATS_TEST_TMPDIR/watch.out"
	assert_line --index 1 "{\"thing\":\"$IMEI\",\"version\":7,\"timestamp\":1763850007,\"state\":{\"3311\":{\"0\":{\"5850\":false}}},\"metadata\":{\"3311\":{\"0\":{\"5850\":{\"timestamp\":1763850007}}}}}"
	assert_line --index 2 "{\"thing\":\"$IMEI\",\"shadow\":\"temp\",\"version\":2,\"timestamp\":1763850008,\"state\":{\"3303\":{\"0\":{\"5701\":\"Cel\"}}},\"metadata\":{}}"
	assert_line --index 3 --partial '{"thing":"dev2","version":1,'
	[ "${#lines[@]}" -eq 4 ]
	# a message on a thing not watched, or not JSON, changes nothing
	publish_delta dev9 '{"version":1,"state":{"a":1}}'
	publish_delta dev2 'not json'
	publish_delta dev2 '{"version":3,"timestamp":1,"state":{"b":2},"metadata":{}}'
	wait_until 30 printed '"state":{"b":2}'
	run -0 cat "$BATS_TEST_TMPDIR/watch.out"
	[ "${#lines[@]}" -eq 5 ]
	refute_output --partial dev9
}

@test "shadow-watch --aws --events: subscribes when lwm2m-listen says a device registered, unsubscribes when it leaves" {
	start_broker
	start_responder
	mkfifo "$BATS_TEST_TMPDIR/events"
	shadow-watch --aws -E -e "localhost:$MPORT" -c "$P/client.pem" -k "$P/client.key" -A "$P/ca.pem" -v \
		<"$BATS_TEST_TMPDIR/events" >"$BATS_TEST_TMPDIR/watch.out" 2>"$BATS_TEST_TMPDIR/watch.err" &
	echo $! >"$BATS_TEST_TMPDIR/watch.pid"
	echo watch >>"$BATS_TEST_TMPDIR/bg.list"
	exec 7>"$BATS_TEST_TMPDIR/events"
	echo "{\"event\":\"register\",\"ep\":\"$IMEI\",\"reg\":\"4a1f0c\",\"lt\":86400,\"lwm2m\":\"1.1\",\"b\":\"U\",\"objects\":[\"/3/0\"],\"time\":1}" >&7
	echo '{"event":"register","ep":"dev5","reg":"77","lt":60,"time":2}' >&7
	echo 'this is not JSON' >&7
	wait_until 30 subscribed "$IMEI" ""
	wait_until 30 subscribed dev5 ""
	grep -q "event line 3" "$BATS_TEST_TMPDIR/watch.err"
	publish_delta "$IMEI" '{"version":3,"timestamp":3,"state":{"x":1},"metadata":{}}'
	wait_until 30 printed '"version":3'
	echo "{\"event\":\"deregister\",\"ep\":\"$IMEI\",\"reg\":\"4a1f0c\",\"time\":4}" >&7
	echo '{"event":"expire","ep":"dev5","reg":"77","time":5}' >&7
	wait_until 30 grep -q "no longer watching dev5" "$BATS_TEST_TMPDIR/watch.err"
	wait_until 30 grep -q "Received UNSUBSCRIBE from shadow-watch" "$BATS_TEST_TMPDIR/broker.err"
	publish_delta "$IMEI" '{"version":4,"timestamp":4,"state":{"x":2},"metadata":{}}'
	publish_delta dev5 '{"version":1,"timestamp":4,"state":{"y":2},"metadata":{}}'
	# a device that registers again is watched again, and the deltas in between were not printed
	echo '{"event":"register","ep":"dev6","reg":"78","lt":60,"time":6}' >&7
	wait_until 30 subscribed dev6 ""
	publish_delta dev6 '{"version":1,"timestamp":7,"state":{"z":3},"metadata":{}}'
	wait_until 30 printed '"thing":"dev6"'
	run -0 cat "$BATS_TEST_TMPDIR/watch.out"
	[ "${#lines[@]}" -eq 2 ]
	refute_output --partial '"version":4'
	refute_output --partial dev5
	exec 7>&-
}

@test "shadow-watch --aws: a broker that goes away mid-stream: reconnects, resubscribes, catches up with /get" {
	start_broker
	start_responder
	watch_aws dev1
	wait_until 30 subscribed dev1 ""
	publish_delta dev1 '{"version":2,"timestamp":2,"state":{"led":true},"metadata":{}}'
	wait_until 30 printed '"version":2'
	stop_bg broker
	wait_until 40 grep -q "lost the connection" "$BATS_TEST_TMPDIR/watch.err"
	# meanwhile the desired state changed twice in the cloud
	cat >"$DOCS/dev1.json" <<-EOF
	{"state":{"desired":{"led":false,"mode":"eco"},"reported":{"led":true}},"metadata":{},"version":4,"timestamp":4}
	EOF
	mv "$BATS_TEST_TMPDIR/broker.err" "$BATS_TEST_TMPDIR/broker.err.1"
	start_broker
	wait_until 60 subscribed dev1 "" 2
	wait_until 40 printed '"version":4'
	publish_delta dev1 '{"version":3,"timestamp":3,"state":{"led":false},"metadata":{}}'
	publish_delta dev1 '{"version":5,"timestamp":5,"state":{"mode":"boost"},"metadata":{}}'
	wait_until 30 printed '"version":5'
	run -0 jq -c '[.version, .state]' "$BATS_TEST_TMPDIR/watch.out"
	assert_output - <<-EOF
	[2,{"led":true}]
	[4,{"led":false,"mode":"eco"}]
	[5,{"mode":"boost"}]
	EOF
	kill -0 "$(bg_pid watch)"
}

@test "shadow-watch --aws: a certificate the broker does not trust is refused; shadow-watch keeps trying and ends on SIGTERM" {
	start_broker
	start_bg watch shadow-watch --aws -e "localhost:$MPORT" -c "$P/other.pem" -k "$P/other.key" -A "$P/ca.pem" -B 1 dev1
	wait_until 40 grep -q "OpenSSL Error\|Client .* disconnected\|protocol error\|certificate" "$BATS_TEST_TMPDIR/broker.err"
	kill -0 "$(bg_pid watch)"
	kill -TERM "$(bg_pid watch)"
	wait_until 30 sh -c "! kill -0 $(bg_pid watch)"
	run -0 cat "$BATS_TEST_TMPDIR/watch.out"
	assert_output ""
}

@test "shadow-watch --aws: usage errors: no certificate, nothing to watch, bad shadow name" {
	run -100 --separate-stderr shadow-watch --aws -e localhost:1 dev1
	[[ "$stderr" == *"client certificate and key"* ]]
	run -100 --separate-stderr shadow-watch --aws -e localhost:1 -c "$P/client.pem" -k "$P/client.key"
	[[ "$stderr" == *"name the things to watch, or give --events"* ]]
	run -100 --separate-stderr shadow-watch --aws -e localhost:1 -c "$P/client.pem" -k "$P/client.key" -N 'bad/name' dev1
	[[ "$stderr" == *"bad shadow name"* ]]
	run -100 --separate-stderr shadow-watch -c x -k y --events
	[[ "$stderr" == *"go with --aws"* ]]
}

@test "shadow-watch --aws: with its output blocked, overflowing messages are fetched again later, not lost" {
	start_broker
	start_responder
	mkfifo "$BATS_TEST_TMPDIR/out"
	exec 8<>"$BATS_TEST_TMPDIR/out" # a reader that reads nothing yet: shadow-watch's output blocks
	shadow-watch --aws -e "localhost:$MPORT" -c "$P/client.pem" -k "$P/client.key" -A "$P/ca.pem" -v dev1 \
		>"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/watch.err" &
	echo $! >"$BATS_TEST_TMPDIR/watch.pid"
	echo watch >>"$BATS_TEST_TMPDIR/bg.list"
	wait_until 30 subscribed dev1 ""
	# far more deltas than the pipe and the queue hold; the service's document is at the last
	echo '{"state":{"desired":{"n":6000},"reported":{"n":0}},"metadata":{},"version":6000,"timestamp":6000}' >"$DOCS/dev1.json"
	seq 1 6000 | sed 's/.*/{"version":&,"timestamp":&,"state":{"n":&},"metadata":{}}/' |
		mosquitto_pub "${CONN[@]}" -q 1 -t '$aws/things/dev1/shadow/update/delta' -l
	# shadow-watch acknowledges a message once its network thread has taken it
	wait_until 180 sh -c "[ \$(grep -c 'Received PUBACK from shadow-watch' '$BATS_TEST_TMPDIR/broker.err') -ge 6000 ]"
	timeout 180 sh -c 'while read -r l; do echo "$l"; case $l in *\"version\":6000,*) exit 0;; esac; done' \
		<&8 >"$BATS_TEST_TMPDIR/watch.out"
	exec 8>&-
	grep -q "dropped while output was blocked; fetching those shadows again" "$BATS_TEST_TMPDIR/watch.err"
	# versions only go up, and the last state arrived
	run -0 jq -s '[.[].version] | (. == (sort | unique)) and (last == 6000)' "$BATS_TEST_TMPDIR/watch.out"
	assert_output true
}
