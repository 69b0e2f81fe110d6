#!/usr/bin/env bats
# lwm2m-observe against lwm2m-listen over real UDP with the simulated device (npm coap).
bats_require_minimum_version 1.5.0
load test_helper
load gw_helper

teardown() {
	[ -n "${BATS_TEST_COMPLETED:-}" ] || dump_logs
	stop_all
}

# lwm2m-listen's events through a fifo into lwm2m-observe (the pipeline, without a shell pipe
# whose processes stop_all could not reach).
start_pair() {
	EVENTS=$BATS_TEST_TMPDIR/events
	mkfifo "$EVENTS"
	SOCK=$BATS_TEST_TMPDIR/ctl
	start_bg obs sh -c "exec lwm2m-observe -C '$SOCK' $* <'$EVENTS'"
	start_listen
}

@test "lwm2m-observe: the default paths of a registering device become shadow updates" {
	start_pair
	start_device dev dev1 --lwm2m 1.1
	wait_for 10 obs.out '.thing == "dev1" and .state.reported["3347"]["1"]["5501"] == 4'
	# the five default resources, each once (answers that arrive together share a line)
	run -0 jq -s '[.[] | select(.thing == "dev1") | .state.reported | paths(scalars)] | length' "$BATS_TEST_TMPDIR/obs.out"
	assert_output 5
	has obs.out '.state.reported["3"]["0"]["9"] == 100'
	has obs.out '.state.reported["4"]["0"]["2"] == -60'
	has obs.out '.state.reported["3303"]["0"]["5700"] == 21.5'
	has obs.out '.state.reported["3347"]["0"]["5501"] == 3'
	# a notification after a change on the device
	dev_cmd dev "set /3/0/9 55"
	wait_for 10 obs.out '.state.reported["3"]["0"]["9"] == 55'
	dev_cmd dev "set /3303/0/5700 23.25"
	wait_for 10 obs.out '.state.reported["3303"]["0"]["5700"] == 23.25'
}

@test "lwm2m-observe: an LwM2M 1.0 device (TLV) and a multi-instance resource" {
	start_pair /3/0/7 /3/0/9
	start_device dev dev10 --lwm2m 1.0
	wait_for 10 obs.out '.state.reported["3"]["0"]["7"] == {"0":3800,"1":5000}'
	wait_for 10 obs.out '.state.reported["3"]["0"]["9"] == 100'
	dev_cmd dev "set /3/0/7/1 4900"
	wait_for 10 obs.out '.state.reported["3"]["0"]["7"]["1"] == 4900'
}

@test "lwm2m-observe: a path the device lacks is skipped with one log line" {
	start_pair
	start_device dev small --objects /3/0
	wait_for 10 obs.out '.state.reported["3"]["0"]["9"] == 100'
	wait_until 10 grep -q 'not observing /3347/1/5501' "$BATS_TEST_TMPDIR/obs.err"
	run -0 grep -c 'not observing /3303/0/5700' "$BATS_TEST_TMPDIR/obs.err"
	assert_output 1
	run -0 count obs.out '.thing == "small"'
	assert_output 1
	# the object list grows with an Update: the new paths are observed, once
	dev_cmd dev "objects /3/0,/3303/0"
	wait_for 10 obs.out '.state.reported["3303"]["0"]["5700"] == 21.5'
	run -0 grep -c 'not observing /3303/0/5700' "$BATS_TEST_TMPDIR/obs.err"
	assert_output 1
	run -0 count obs.out '.thing == "small" and .state.reported["3"]'
	assert_output 1
	# a resource the instance lacks: a clear line, not a storm
	run -0 grep -c '"event":"observe"' "$BATS_TEST_TMPDIR/dev.out"
	assert_output 2
}

@test "lwm2m-observe: per-endpoint paths from a YAML file, a missing resource logged" {
	cat >"$BATS_TEST_TMPDIR/obs.yml" <<'YML'
paths: [/3/0/9]
endpoints:
  - match: "lamp-*"
    paths: [/3311/0/5850, /3311/0/5851, /3311/0/9999]
    attributes: {pmax: 60}
YML
	start_pair -c "$BATS_TEST_TMPDIR/obs.yml"
	start_device lamp lamp-1
	start_device other sensor-1
	wait_for 10 obs.out '.thing == "lamp-1" and .state.reported["3311"]["0"]["5851"] == 80'
	wait_for 10 obs.out '.thing == "lamp-1" and .state.reported["3311"]["0"]["5850"] == false'
	wait_for 10 obs.out '.thing == "sensor-1" and .state.reported["3"]["0"]["9"] == 100'
	wait_until 10 grep -q 'lamp-1: observe /3311/0/9999: 4.04' "$BATS_TEST_TMPDIR/obs.err"
	run -0 count obs.out '.thing == "lamp-1" and .state.reported["3"]'
	assert_output 0
	run -0 count obs.out '.thing == "sensor-1" and .state.reported["3311"]'
	assert_output 0
	wait_for 10 lamp.out '.event == "write-attributes" and .path == "/3311/0/5850" and .attributes.pmax == "60"'
}

@test "lwm2m-observe: a bad configuration is a usage error naming the file and line" {
	printf 'paths: [/3/0/9]\nendpoints:\n  - match: "x*"\n    paths: [/3/x/9]\n' >"$BATS_TEST_TMPDIR/bad.yml"
	run -100 --separate-stderr lwm2m-observe -C /nonexistent -c "$BATS_TEST_TMPDIR/bad.yml" </dev/null
	[[ $stderr == *'bad.yml:4'* ]]
	[[ $stderr == *'/3/x/9'* ]]
	printf 'paths: [/3/0/9]\nbogus: 1\n' >"$BATS_TEST_TMPDIR/bad2.yml"
	run -100 --separate-stderr lwm2m-observe -C /nonexistent -c "$BATS_TEST_TMPDIR/bad2.yml" </dev/null
	[[ $stderr == *'bad2.yml:2: unknown key'* ]]
	run -100 --separate-stderr lwm2m-observe -C /nonexistent /3/0/99999 </dev/null
	[[ $stderr == *'/3/0/99999'* ]]
	run -100 --separate-stderr lwm2m-observe --no-such-option </dev/null
}

@test "lwm2m-observe: malformed input lines are reported with their number, the rest goes on" {
	start_listen
	start_device dev dev1
	wait_for 10 dev.out '.event == "registered"'
	reg=$(ctl '{"op":"list"}' | jq -c '.registrations[0] | .event = "register"')
	printf '{"event":"register",broken\n[1,2]\n%s\n' "$reg" >"$BATS_TEST_TMPDIR/in"
	# the input ends: lwm2m-observe stops (exit 1: some lines were rejected)
	run -1 --separate-stderr lwm2m-observe -C "$SOCK" <"$BATS_TEST_TMPDIR/in"
	[[ $stderr == *'line 1: malformed JSON'* ]]
	[[ $stderr == *'line 2: not a JSON object'* ]]
	# with the input kept open it observes the device it was told about
	mkfifo "$BATS_TEST_TMPDIR/fifo"
	start_bg obs sh -c "exec lwm2m-observe -C '$SOCK' /3/0/9 <'$BATS_TEST_TMPDIR/fifo'"
	start_bg feed sh -c "exec >'$BATS_TEST_TMPDIR/fifo'; cat '$BATS_TEST_TMPDIR/in'; exec sleep 60"
	wait_for 10 obs.out '.thing == "dev1" and .state.reported["3"]["0"]["9"] == 100'
}

@test "lwm2m-observe: -s takes events from the control socket and survives an lwm2m-listen restart" {
	start_listen
	start_bg obs lwm2m-observe -s -C "$SOCK" -n telemetry /3/0/9
	start_device dev dev1
	wait_for 10 obs.out '.thing == "dev1" and .shadow == "telemetry" and .state.reported["3"]["0"]["9"] == 100'
	stop_bg listen
	rm -f "$SOCK"
	start_listen
	wait_until 10 grep -q 'reconnected to lwm2m-listen' "$BATS_TEST_TMPDIR/obs.err"
	# the restored registration is observed once the device talks again
	dev_cmd dev "set /3/0/9 42"
	dev_cmd dev "update"
	wait_for 15 obs.out '.thing == "dev1" and .state.reported["3"]["0"]["9"] == 42'
}

@test "lwm2m-observe: -h, -V, and the man page lists the same options" {
	run -0 lwm2m-observe -h
	assert_output --partial '--control PATH'
	run -0 lwm2m-observe -V
	assert_output --partial 'lwm2m-observe'
	for opt in $(lwm2m-observe -h | grep -o -- '--[a-z-]*' | sort -u); do
		grep -q -- "Fl -${opt#--}" "$TOP/man/lwm2m-observe.1" || grep -q -- "${opt#--}" "$TOP/man/lwm2m-observe.1" || { echo "man page lacks $opt"; false; }
	done
}

@test "lwm2m-observe: observations are made again on every Register, not only at start" {
	start_pair /3/0/9 /3303/0/5700
	start_device dev dev1
	wait_for 10 obs.out '.state.reported["3303"]["0"]["5700"] == 21.5'
	wait_for 10 obs.out '.state.reported["3"]["0"]["9"] == 100'
	# the device registers again (a reboot): lwm2m-listen ends the old observations
	dev_cmd dev register
	wait_until 10 counted -eq 2 count dev.out '.event == "registered"'
	wait_until 10 counted -eq 4 count dev.out '.event == "observe"'
	run -0 jq -c 'select(.event == "observe") | .path' "$BATS_TEST_TMPDIR/dev.out"
	assert_output $'"/3/0/9"\n"/3303/0/5700"\n"/3/0/9"\n"/3303/0/5700"'
	# and the new observations carry the values
	dev_cmd dev "set /3303/0/5700 19.5"
	wait_for 10 obs.out '.state.reported["3303"]["0"]["5700"] == 19.5'
	# likewise with -O: one Observe-Composite per registration
	stop_all
	rm -f "$EVENTS"
	PORT=
	start_pair -O /3/0/9 /3303/0/5700
	start_device dev2 dev2
	wait_for 10 obs.out '.thing == "dev2" and .state.reported["3"]["0"]["9"] == 100'
	dev_cmd dev2 register
	wait_until 10 counted -eq 2 count dev2.out '.event == "observe-composite"'
	dev_cmd dev2 "set /3/0/9 12"
	wait_for 10 obs.out '.thing == "dev2" and .state.reported["3"]["0"]["9"] == 12'
}

@test "lwm2m-observe -O: one Observe-Composite per 1.1 device, its values in one update" {
	start_pair -O
	start_device dev dev1 --lwm2m 1.1 --objects /3/0,/4/0,/3303/0,/3347/0
	wait_for 10 obs.out '.thing == "dev1"'
	# the first answer: every path the device has, together
	run -0 jq -c 'select(.thing == "dev1") | .state.reported' "$BATS_TEST_TMPDIR/obs.out"
	assert_output '{"3":{"0":{"9":100}},"4":{"0":{"2":-60}},"3303":{"0":{"5700":21.5}},"3347":{"0":{"5501":3}}}'
	run -0 jq -c 'select(.event | test("observe")) | [.event, .paths]' "$BATS_TEST_TMPDIR/dev.out"
	assert_output '["observe-composite",["/3/0/9","/4/0/2","/3303/0/5700","/3347/0/5501"]]'
	grep -q 'not observing /3347/1/5501' "$BATS_TEST_TMPDIR/obs.err"
	# a change notifies all the paths at once
	dev_cmd dev "set /3303/0/5700 23.25"
	wait_for 10 obs.out '.state.reported["3303"]["0"]["5700"] == 23.25'
	run -0 jq -c 'select(.state.reported["3303"]["0"]["5700"] == 23.25) | .state.reported | [.["3"]["0"]["9"], .["4"]["0"]["2"], .["3347"]["0"]["5501"]]' "$BATS_TEST_TMPDIR/obs.out"
	assert_output '[100,-60,3]'
	# a new object instance: the Observe-Composite is made again with it; a vanished one drops out
	dev_cmd dev "objects /3/0,/4/0,/3303/0,/3347/0,/3347/1"
	wait_for 10 dev.out '.event == "observe-composite" and (.paths | length) == 5'
	wait_for 10 dev.out '.event == "cancel-observe-composite" and (.paths | length) == 4'
	wait_for 10 obs.out '.state.reported["3347"]["1"]["5501"] == 4'
	dev_cmd dev "objects /3/0,/3303/0"
	wait_for 10 dev.out '.event == "observe-composite" and .paths == ["/3/0/9","/3303/0/5700"]'
	dev_cmd dev "set /3/0/9 7"
	wait_for 10 obs.out '.state.reported == {"3":{"0":{"9":7}},"3303":{"0":{"5700":23.25}}}'
	run -0 ctl '{"op":"stats"}'
	run -0 jq -c '.observations' <<<"$output"
	assert_output 1
}

@test "lwm2m-observe -O: a 1.0 device, and a 1.1 device that refuses Observe-Composite, are observed path by path" {
	start_pair -O /3/0/9 /3303/0/5700
	start_device old dev10 --lwm2m 1.0
	start_device nocomp devnc --lwm2m 1.1 --no-composite
	wait_for 10 obs.out '.thing == "dev10" and .state.reported["3303"]["0"]["5700"] == 21.5'
	wait_for 10 obs.out '.thing == "dev10" and .state.reported["3"]["0"]["9"] == 100'
	wait_for 10 obs.out '.thing == "devnc" and .state.reported["3303"]["0"]["5700"] == 21.5'
	wait_for 10 obs.out '.thing == "devnc" and .state.reported["3"]["0"]["9"] == 100'
	# the 1.0 device was never asked; the other refused once (4.05) and got one Observe per path
	run -0 count old.out '.method == "FETCH"'
	assert_output 0
	run -0 count old.out '.event == "observe"'
	assert_output 2
	run -0 count nocomp.out '.event == "bad-request" and .method == "FETCH"'
	assert_output 1
	run -0 count nocomp.out '.event == "observe"'
	assert_output 2
	grep -q 'devnc: Observe-Composite refused (4.05 Method Not Allowed); observing path by path' "$BATS_TEST_TMPDIR/obs.err"
	dev_cmd nocomp "set /3/0/9 42"
	wait_for 10 obs.out '.thing == "devnc" and .state.reported["3"]["0"]["9"] == 42'
}

@test "lwm2m-observe -O: a 1.1 device that drops Observe-Composite without a word (Wakaama) is observed path by path after its second timeout" {
	EVENTS=$BATS_TEST_TMPDIR/events
	mkfifo "$EVENTS"
	SOCK=$BATS_TEST_TMPDIR/ctl
	start_bg obs sh -c "exec lwm2m-observe -C '$SOCK' -O /3/0/9 /3303/0/5700 <'$EVENTS'"
	start_listen -w 3
	start_device dev devwk --lwm2m 1.1 --drop-composite
	wait_until 20 grep -q 'devwk: Observe-Composite: timeout.*(retried when the device next talks)' "$BATS_TEST_TMPDIR/obs.err"
	run -0 count obs.out '.thing == "devwk"'
	assert_output 0
	# tried again when it talks; unanswered again: one Observe per path
	dev_cmd dev update
	wait_until 20 grep -q 'devwk: Observe-Composite unanswered twice (timeout); observing path by path' "$BATS_TEST_TMPDIR/obs.err"
	wait_for 10 obs.out '.thing == "devwk" and .state.reported["3303"]["0"]["5700"] == 21.5'
	wait_for 10 obs.out '.thing == "devwk" and .state.reported["3"]["0"]["9"] == 100'
	[ "$(count dev.out '.event == "dropped-composite"')" -ge 2 ]
	run -0 count dev.out '.event == "observe"'
	assert_output 2
	dev_cmd dev "set /3/0/9 42"
	wait_for 10 obs.out '.thing == "devwk" and .state.reported["3"]["0"]["9"] == 42'
}

@test "lwm2m-observe: a registration burst through the plain pipe does not deadlock" {
	# lwm2m-listen blocks writing events while lwm2m-observe sends observe commands back: the
	# commands are queued, never written blocking, so both keep going
	start_pair -q /3303/0/5700
	# 3000 devices: enough to fill both the pipe and the socket (the old blocking writes hung
	# after about 1900 observations)
	run -0 "$UNIT/lwm2m-loadgen" -s "127.0.0.1:$PORT" -n 3000 -E 1 --settle-max 90 -T 150 -q
	echo "$output"
	jq_some '.registered > 2500 and .observations == .registered' <<<"$output"
	# values flow (lwm2m-listen may drop answers to a connection that reads too slowly)
	wait_until 30 counted -gt 2000 count obs.out '.state.reported["3303"]["0"]["5700"]'
}

@test "lwm2m-observe: notifications of a thing that wait together become one update with the latest values" {
	start_pair
	start_device dev dev1 --lwm2m 1.1
	wait_for 10 obs.out '.state.reported["3347"]["1"]["5501"] == 4'
	wait_for 10 obs.out '.state.reported["3303"]["0"]["5700"] == 21.5'
	run -0 ctl '{"op":"stats"}'
	n0=$(jq '.notifications_out' <<<"$output")
	# lwm2m-observe stopped: lwm2m-listen writes the three notification lines to its socket
	kill -STOP "$(bg_pid obs)"
	dev_cmd dev "set /3303/0/5700 30.5"
	dev_cmd dev "set /3/0/9 50"
	dev_cmd dev "set /3303/0/5700 31.5"
	notified() { ctl '{"op":"stats"}' | jq_some ".notifications_out >= $1"; }
	wait_until 10 notified $((n0 + 3))
	kill -CONT "$(bg_pid obs)"
	wait_for 10 obs.out '.state.reported["3303"]["0"]["5700"] == 31.5'
	run -0 count obs.out '.state.reported["3303"]["0"]["5700"] == 30.5'
	assert_output 0
	run -0 count obs.out '.state.reported == {"3":{"0":{"9":50}},"3303":{"0":{"5700":31.5}}}'
	assert_output 1
}

@test "lwm2m-observe: a register event for a registration it already has from the list does not observe again" {
	# lwm2m-observe connects while a Register's event still waits in the pipe: the registration
	# list shows the device first, then the event arrives; the device gets one observation, not two
	start_listen
	start_device dev dev1
	wait_for 10 listen.out '.event == "register" and .ep == "dev1"'
	mkfifo "$BATS_TEST_TMPDIR/ev"
	start_bg hold sh -c 'exec sleep 600 >"$0"' "$BATS_TEST_TMPDIR/ev"
	start_bg obs sh -c 'exec lwm2m-observe -C "$0" /3/0/9 <"$1"' "$SOCK" "$BATS_TEST_TMPDIR/ev"
	wait_for 10 obs.out '.thing == "dev1" and .state.reported["3"]["0"]["9"] == 100'
	jq -c 'select(.event == "register")' "$BATS_TEST_TMPDIR/listen.out" >"$BATS_TEST_TMPDIR/ev"
	wait_until 10 counted -eq 2 grep -c 'dev1: registered' "$BATS_TEST_TMPDIR/obs.err"
	# a value sent after the event has come through: a second observation would have been asked by now
	dev_cmd dev "set /3/0/9 55"
	wait_for 10 obs.out '.thing == "dev1" and .state.reported["3"]["0"]["9"] == 55'
	run -0 count dev.out '.event == "observe"'
	assert_output 1
}
