#!/usr/bin/env bats
# The whole gateway loop, device -> shadow -> device, as examples/gateway.sh (what `make run`
# starts) runs it, over real UDP with the simulated device (npm coap) and the local shadow store.
bats_require_minimum_version 1.5.0
load test_helper
load gw_helper

teardown() {
	[ -n "${BATS_TEST_COMPLETED:-}" ] || { dump_logs; tail -n 20 "$BATS_TEST_TMPDIR"/gw.out; }
	stop_all
}

# start_gateway [LISTEN_ARGS]: examples/gateway.sh on $PORT with its state in $VAR
# (lwm2m-observe's options in $OBSERVE_ARGS).
start_gateway() {
	PORT=${PORT:-$(free_port)}
	VAR=$BATS_TEST_TMPDIR/var
	STORE=$VAR/shadows
	SOCK=$VAR/lwm2m.sock
	LWM2M_LISTEN=127.0.0.1:$PORT LWM2M_VAR=$VAR LISTEN_ARGS="-t 0.3 -r 1 -s 0 $*" OBSERVE_ARGS=${OBSERVE_ARGS:-} \
		start_bg gw sh "$TOP/examples/gateway.sh"
	wait_until 10 grep -q 'gateway: ready' "$BATS_TEST_TMPDIR/gw.err"
	wait_until 10 test -S "$SOCK"
}

# shadow THING JQ-FILTER: the thing's shadow document makes the filter true.
shadow() { jq -en "input | $2" "$STORE/$1.json" >/dev/null 2>&1; }
desire() { echo "$1" | shadow-put -s "$STORE" >/dev/null; }

@test "pipeline: a registering device's values land in its shadow, and a change follows" {
	start_gateway
	start_device dev dev1
	wait_until 10 shadow dev1 '.state.reported["3"]["0"]["9"] == 100 and .state.reported["4"]["0"]["2"] == -60'
	wait_until 10 shadow dev1 '.state.reported["3303"]["0"]["5700"] == 21.5 and .state.reported["3347"]["1"]["5501"] == 4'
	dev_cmd dev "set /3/0/9 55"
	wait_until 10 shadow dev1 '.state.reported["3"]["0"]["9"] == 55'
	grep -q 'gateway: device -> shadow' "$BATS_TEST_TMPDIR/gw.err"
	# Ctrl-C (here SIGTERM) stops every stage
	stop_bg gw
	grep -q 'gateway: stopped' "$BATS_TEST_TMPDIR/gw.err"
	run pgrep -f "lwm2m-listen -l 127.0.0.1:$PORT"
	assert_failure
}

@test "pipeline: desired LED on reaches the device, reported matches, the delta is gone" {
	start_gateway
	start_device dev dev1
	wait_until 10 shadow dev1 '.state.reported["3"]["0"]["9"] == 100'
	desire '{"thing":"dev1","state":{"desired":{"3311":{"0":{"5850":true}}}}}'
	wait_for 10 dev.out '.event == "write" and .path == "/3311/0/5850" and .value == true'
	wait_until 10 shadow dev1 '.state.reported["3311"]["0"]["5850"] == true'
	shadow dev1 '.state.desired["3311"]["0"]["5850"] == true'
	shadow dev1 '.state.reported["lwm2m:errors"] == null'
	# no delta left: desired is contained in reported
	shadow dev1 '(.state.desired | paths(scalars)) as $p | (.state.reported | getpath($p)) == (.state.desired | getpath($p))'
	# and off again
	desire '{"thing":"dev1","state":{"desired":{"3311":{"0":{"5850":false}}}}}'
	wait_until 10 shadow dev1 '.state.reported["3311"]["0"]["5850"] == false'
}

@test "pipeline: a write to a resource the device lacks is reported in the shadow and stays desired" {
	start_gateway
	start_device dev dev1 --objects /3/0,/3311/0
	wait_until 10 shadow dev1 '.state.reported["3"]["0"]["9"] == 100'
	desire '{"thing":"dev1","state":{"desired":{"3311":{"1":{"5850":true}},"3":{"0":{"4":true}}}}}'
	wait_until 10 shadow dev1 '.state.reported["lwm2m:errors"]["/3311/1/5850"].code == "4.04"'
	wait_until 10 shadow dev1 '.state.reported["lwm2m:errors"]["/3/0/4"].code == "not-writable"'
	shadow dev1 '.state.desired["3311"]["1"]["5850"] == true'
	shadow dev1 '.state.reported["3311"] == null'
}

@test "pipeline: a device that never answers gets a timeout in its shadow" {
	start_gateway
	# a lamp only: no observations to wait behind, the write is its only request
	start_device dev mute --silent --objects /3311/0
	wait_for 10 dev.out '.event == "registered"'
	desire '{"thing":"mute","state":{"desired":{"3311":{"0":{"5850":true}}}}}'
	wait_until 60 shadow mute '.state.reported["lwm2m:errors"]["/3311/0/5850"].code == "timeout"'
	shadow mute '.state.desired["3311"]["0"]["5850"] == true'
	shadow mute '.state.reported | keys == ["lwm2m:errors"]'
}

# asleep_in_list EP: lwm2m-listen's list says EP is asleep (a function: `sh -c` would not see ctl,
# and jq -e on empty input succeeds: -n with input fails on it).
asleep_in_list() {
	ctl '{"op":"list"}' | jq -en --arg ep "$1" 'input | [.registrations[] | select(.ep == $ep) | .asleep] == [true]'
}

@test "pipeline: a sleeping queue-mode device gets the write when it wakes" {
	start_gateway -a 1
	start_device dev sleepy --queue --lwm2m 1.1
	wait_until 10 shadow sleepy '.state.reported["3"]["0"]["9"] == 100'
	dev_cmd dev sleep
	wait_until 10 asleep_in_list sleepy
	desire '{"thing":"sleepy","state":{"desired":{"3311":{"0":{"5851":55}}}}}'
	# held in lwm2m-listen while it sleeps: nothing reaches the device
	sleep 1
	run -0 count dev.out '.event == "write"'
	assert_output 0
	dev_cmd dev wake
	wait_for 10 dev.out '.event == "write" and .path == "/3311/0/5851" and .value == 55'
	wait_until 10 shadow sleepy '.state.reported["3311"]["0"]["5851"] == 55'
}

@test "pipeline: a delta set while the gateway was down reaches the device after a restart" {
	start_gateway
	start_device dev dev1
	wait_until 10 shadow dev1 '.state.reported["3"]["0"]["9"] == 100'
	stop_bg gw
	desire '{"thing":"dev1","state":{"desired":{"3311":{"0":{"5850":true}}}}}'
	start_gateway
	# the registration was restored; requests wait until the device talks
	dev_cmd dev update
	wait_for 20 dev.out '.event == "write" and .path == "/3311/0/5850" and .value == true'
	wait_until 10 shadow dev1 '.state.reported["3311"]["0"]["5850"] == true'
	# and a device that was offline when the delta was set gets it when it registers
	desire '{"thing":"dev2","state":{"desired":{"3311":{"0":{"5851":9}}}}}'
	wait_until 10 shadow dev2 '.state.reported["lwm2m:errors"]["/3311/0/5851"].code == "offline"'
	start_device dev2 dev2
	wait_until 10 shadow dev2 '.state.reported["3311"]["0"]["5851"] == 9 and .state.reported["lwm2m:errors"] == null'
}

@test "pipeline: with lwm2m-observe -O a 1.1 device's values reach its shadow through one Observe-Composite" {
	OBSERVE_ARGS=-O start_gateway
	start_device dev dev1 --lwm2m 1.1
	start_device old dev10 --lwm2m 1.0
	start_device nc devnc --lwm2m 1.1 --no-composite
	wait_until 10 shadow dev1 '.state.reported["3"]["0"]["9"] == 100 and .state.reported["3347"]["1"]["5501"] == 4'
	wait_until 10 shadow dev1 '.state.reported["3303"]["0"]["5700"] == 21.5 and .state.reported["4"]["0"]["2"] == -60'
	# one shadow version for all five values: they came in one update
	shadow dev1 '.version == 1'
	run -0 jq -c 'select(.event | test("observe")) | [.event, (.paths | length)]' "$BATS_TEST_TMPDIR/dev.out"
	assert_output '["observe-composite",5]'
	# a notification updates the shadow
	dev_cmd dev "set /3303/0/5700 24.5"
	wait_until 10 shadow dev1 '.state.reported["3303"]["0"]["5700"] == 24.5 and .version == 2'
	# the 1.0 device and the one that refuses composite operations: one Observe per path
	wait_until 10 shadow dev10 '.state.reported["3"]["0"]["9"] == 100 and .state.reported["3347"]["1"]["5501"] == 4'
	wait_until 10 shadow devnc '.state.reported["3"]["0"]["9"] == 100 and .state.reported["3347"]["1"]["5501"] == 4'
	run -0 count old.out '.event == "observe"'
	assert_output 5
	run -0 count nc.out '.event == "observe"'
	assert_output 5
	# and a re-Register is observed again
	dev_cmd dev register
	wait_until 10 counted -eq 2 count dev.out '.event == "observe-composite"'
	dev_cmd dev "set /3/0/9 61"
	wait_until 10 shadow dev1 '.state.reported["3"]["0"]["9"] == 61'
}
