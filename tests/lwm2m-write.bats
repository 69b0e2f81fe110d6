#!/usr/bin/env bats
# lwm2m-write against lwm2m-listen over real UDP with the simulated device (npm coap): deltas in,
# writes to the device, shadow updates out; every failure reported.
bats_require_minimum_version 1.5.0
load test_helper
load gw_helper

teardown() {
	[ -n "${BATS_TEST_COMPLETED:-}" ] || dump_logs
	stop_all
}

# start_writer [ARGS...]: lwm2m-write reading the deltas appended to deltas.jsonl (delta LINE).
start_writer() {
	: >"$BATS_TEST_TMPDIR/deltas.jsonl"
	mkfifo "$BATS_TEST_TMPDIR/wfifo"
	start_bg w sh -c "exec lwm2m-write -C '$SOCK' $* <'$BATS_TEST_TMPDIR/wfifo'"
	start_bg feed sh -c "exec >'$BATS_TEST_TMPDIR/wfifo'; exec tail -n +1 -f '$BATS_TEST_TMPDIR/deltas.jsonl'"
}
delta() { echo "$1" >>"$BATS_TEST_TMPDIR/deltas.jsonl"; }

@test "lwm2m-write: a desired LED reaches the device, reported follows and the error is cleared" {
	start_listen
	start_device dev dev1
	wait_for 10 dev.out '.event == "registered"'
	start_writer
	delta '{"thing":"dev1","version":2,"state":{"3311":{"0":{"5850":true,"5851":40}}},"timestamp":1}'
	wait_for 10 w.out '.thing == "dev1" and .state.reported["3311"]["0"]["5850"] == true'
	has w.out '.state.reported["3311"]["0"]["5851"] == 40'
	has w.out '.state.reported["lwm2m:errors"] == {"/3311/0/5850":null,"/3311/0/5851":null}'
	# one partial-update write for the instance
	run -0 count dev.out '.event == "write" and .method == "POST" and .code == "2.04"'
	assert_output 2
	has dev.out '.event == "write" and .path == "/3311/0/5850" and .value == true'
	# a multi-instance resource and an LwM2M 1.0 device (TLV)
	start_device dev10 dev10 --lwm2m 1.0
	wait_for 10 dev10.out '.event == "registered"'
	delta '{"thing":"dev10","version":3,"state":{"3":{"0":{"13":1700000000,"14":"+02:00"}},"3311":{"0":{"5851":7}}}}'
	wait_for 10 w.out '.thing == "dev10" and .state.reported["3"]["0"]["14"] == "+02:00"'
	wait_for 10 w.out '.thing == "dev10" and .state.reported["3311"]["0"]["5851"] == 7'
	has dev10.out '.event == "write" and .format == "tlv" and .path == "/3/0/13" and .value == 1700000000'
}

@test "lwm2m-write: 4.04 and 4.05 from the device are recorded per path, the rest is written" {
	start_listen
	start_device dev dev1 --objects /3/0,/3311/0
	wait_for 10 dev.out '.event == "registered"'
	dev_cmd dev "readonly /3311/0/5706"
	wait_for 10 dev.out '.event == "readonly"'
	start_writer
	delta '{"thing":"dev1","version":2,"state":{"3311":{"0":{"5850":true,"5706":"red"},"1":{"5850":true}},"3303":{"0":{"5750":"x"}}}}'
	wait_for 10 w.out '.state.reported["lwm2m:errors"]["/3311/0/5706"].code == "4.05"'
	wait_for 10 w.out '.state.reported["lwm2m:errors"]["/3311/1/5850"].code == "4.04"'
	wait_for 10 w.out '.state.reported["lwm2m:errors"]["/3303/0/5750"].code == "4.04"'
	wait_for 10 w.out '.state.reported["3311"]["0"]["5850"] == true'
	run -0 count w.out '.state.reported["3311"]["0"]["5706"]'
	assert_output 0
	has w.out '.state.reported["lwm2m:errors"]["/3311/0/5706"].error == "Method Not Allowed"'
	has w.out '.state.reported["lwm2m:errors"]["/3311/0/5706"].time > 1700000000'
	grep -q 'dev1: write /3311/1/5850 = true failed: 4.04' "$BATS_TEST_TMPDIR/w.err"
	# the same desired value is not hammered on the device; a changed one is written
	n=$(count dev.out '.event == "write"')
	delta '{"thing":"dev1","version":3,"state":{"3311":{"0":{"5706":"red"},"1":{"5850":true}},"3303":{"0":{"5750":"x"}}}}'
	delta '{"thing":"dev1","version":4,"state":{"3311":{"0":{"5706":"blue"},"1":{"5850":true}},"3303":{"0":{"5750":"x"}}}}'
	wait_for 10 dev.out '.event == "write" and .code == "4.05" and (.error | test("5706"))' 
	wait_until 10 counted -ge 2 count w.out '.state.reported["lwm2m:errors"]["/3311/0/5706"].code == "4.05"'
	[ "$(count dev.out '.event == "write"')" -eq $((n + 1)) ]
}

@test "lwm2m-write: a group write refused with 5.01 (Wakaama's client, for /3/0/15) is split; the rest is written, the refused one not retried at every Update" {
	start_listen
	start_device dev dev1 --objects /3/0
	wait_for 10 dev.out '.event == "registered"'
	dev_cmd dev "refuse /3/0/14 5.01"
	wait_for 10 dev.out '.event == "refuse"'
	start_writer
	delta '{"thing":"dev1","version":2,"state":{"3":{"0":{"13":1700000000,"14":"+02:00"}}}}'
	wait_for 10 w.out '.state.reported["3"]["0"]["13"] == 1700000000'
	wait_for 10 w.out '.state.reported["lwm2m:errors"]["/3/0/14"].code == "5.01"'
	has dev.out '.event == "write" and .path == "/3/0/13" and .code == "2.04"'
	grep -q 'dev1: write /3/0/14 = "+02:00" failed: 5.01.*(the desired value stays pending)' "$BATS_TEST_TMPDIR/w.err"
	# Not Implemented does not pass: the device's Updates do not bring the write back, a changed
	# desired value of its neighbour is written alone
	n=$(count dev.out '.event == "write" and .code == "5.01"')
	dev_cmd dev "update"
	dev_cmd dev "update"
	wait_until 10 counted -ge 2 count dev.out '.event == "updated"'
	delta '{"thing":"dev1","version":3,"state":{"3":{"0":{"13":1700000001,"14":"+02:00"}}}}'
	wait_for 10 w.out '.state.reported["3"]["0"]["13"] == 1700000001'
	[ "$(count dev.out '.event == "write" and .code == "5.01"')" -eq "$n" ]
	# a new registration does
	dev_cmd dev "register"
	wait_until 10 counted -gt "$n" count dev.out '.event == "write" and .code == "5.01"'
}

@test "lwm2m-write: what the object model forbids is refused without asking the device" {
	start_listen
	start_device dev dev1
	wait_for 10 dev.out '.event == "registered"'
	start_writer
	delta '{"thing":"dev1","version":2,"state":{"3":{"0":{"4":true,"9":50}},"3311":{"0":{"5850":"on","5851":2.5}},"9999":{"0":{"1":1}},"color":"red","3303":{"0":7}}}'
	wait_for 10 w.out '.state.reported["lwm2m:errors"]["/3/0/4"].code == "not-writable"'
	has w.out '.state.reported["lwm2m:errors"]["/3/0/9"].code == "not-writable"'
	has w.out '.state.reported["lwm2m:errors"]["/3311/0/5850"].code == "bad-value"'
	has w.out '.state.reported["lwm2m:errors"]["/3311/0/5851"].code == "bad-value"'
	has w.out '.state.reported["lwm2m:errors"]["/9999/0/1"].code == "unknown-resource"'
	has w.out '.state.reported["lwm2m:errors"]["/color"].code == "not-lwm2m"'
	has w.out '.state.reported["lwm2m:errors"]["/3303/0"].code == "not-lwm2m"'
	grep -q 'refusing desired /3/0/4: an executable resource' "$BATS_TEST_TMPDIR/w.err"
	grep -q 'refusing desired /3311/0/5850: the resource takes a boolean' "$BATS_TEST_TMPDIR/w.err"
	run -0 count dev.out '.event == "write"'
	assert_output 0
}

@test "lwm2m-write: a device that never answers: timeout recorded, written when it talks again" {
	start_listen
	start_device dev dev1 --silent
	wait_for 10 dev.out '.event == "registered"'
	start_writer
	delta '{"thing":"dev1","version":2,"state":{"3311":{"0":{"5850":true}}}}'
	wait_for 60 w.out '.state.reported["lwm2m:errors"]["/3311/0/5850"].code == "timeout"'
	grep -q 'retried when the device next talks' "$BATS_TEST_TMPDIR/w.err"
	run -0 count w.out '.state.reported["3311"]'
	assert_output 0
	dev_cmd dev "silent off"
	dev_cmd dev "update"
	wait_for 60 w.out '.state.reported["3311"]["0"]["5850"] == true and .state.reported["lwm2m:errors"]["/3311/0/5850"] == null'
}

@test "lwm2m-write: a device that talks while a write to it still waits for its answer gets it again at once" {
	start_listen -t 3 -r 0
	start_device dev dev1 --silent
	wait_for 10 dev.out '.event == "registered"'
	start_writer
	delta '{"thing":"dev1","version":2,"state":{"3311":{"0":{"5851":33}}}}'
	# the write went unanswered (no retransmission with -r 0); its answer timeout still runs
	wait_for 20 dev.out '.event == "dropped"'
	dev_cmd dev "silent off"
	dev_cmd dev "update"
	wait_for 10 dev.out '.event == "updated"'
	# the timeout comes after the Update: the write goes again now, not at the next Update
	wait_for 20 dev.out '.event == "write" and .path == "/3311/0/5851" and .value == 33'
	wait_for 10 w.out '.state.reported["3311"]["0"]["5851"] == 33'
}

@test "lwm2m-write: an offline device gets the write when it registers" {
	start_listen
	start_writer
	delta '{"thing":"late","version":2,"state":{"3311":{"0":{"5850":true}}}}'
	wait_for 10 w.out '.thing == "late" and .state.reported["lwm2m:errors"]["/3311/0/5850"].code == "offline"'
	delta '{"thing":"nobody","version":1,"state":{"3311":{"0":{"5850":false}}}}'
	start_device dev late
	wait_for 10 w.out '.thing == "late" and .state.reported["3311"]["0"]["5850"] == true'
	has dev.out '.event == "write" and .path == "/3311/0/5850" and .value == true'
	run -0 count w.out '.thing == "nobody" and .state.reported["3311"]'
	assert_output 0
	# a later delta without that path (desired withdrawn): its error record is removed
	delta '{"thing":"nobody","version":2,"state":{"3311":{"0":{"5851":1}}}}'
	wait_for 10 w.out '.thing == "nobody" and .state.reported["lwm2m:errors"] == {"/3311/0/5850":null}'
}

@test "lwm2m-write: bad lines are reported by number; at the end of input it waits for answers" {
	start_listen
	start_device dev dev1
	wait_for 10 dev.out '.event == "registered"'
	printf '%s\n' '{"thing":' '{"state":{}}' '[]' '{"thing":"dev1","state":{"3311":{"0":{"5850":true}}}}' >"$BATS_TEST_TMPDIR/in"
	run -1 --separate-stderr lwm2m-write -C "$SOCK" <"$BATS_TEST_TMPDIR/in"
	[[ $stderr == *'line 1: malformed JSON'* ]]
	[[ $stderr == *'line 2: a delta needs "thing"'* ]]
	[[ $stderr == *'line 3: not a JSON object'* ]]
	jq_some '.state.reported["3311"]["0"]["5850"] == true' <<<"$output"
	run -100 --separate-stderr lwm2m-write --timeout nope </dev/null
	run -100 --separate-stderr lwm2m-write extra-operand </dev/null
}

@test "lwm2m-write: -h, -V, and the man page lists the same options" {
	run -0 lwm2m-write -h
	assert_output --partial '--max-paths N'
	run -0 lwm2m-write -V
	assert_output --partial 'lwm2m-write'
	for opt in $(lwm2m-write -h | grep -o -- '--[a-z-]*' | sort -u); do
		grep -q -- "Fl Fl ${opt#--}" "$TOP/man/lwm2m-write.1" || { echo "man page lacks $opt"; false; }
	done
}

@test "lwm2m-write: one delta piped in by hand is written before it exits" {
	start_listen
	start_device dev dev1
	wait_for 10 dev.out '.event == "registered"'
	local n # not i: bats' run changes i
	for n in 1 2 3 4 5; do
		run -0 --separate-stderr sh -c "echo '{\"thing\":\"dev1\",\"state\":{\"3311\":{\"0\":{\"5851\":$n}}}}' | lwm2m-write -C '$SOCK'"
		jq_some ".state.reported[\"3311\"][\"0\"][\"5851\"] == $n" <<<"$output"
	done
	# not registered: said, and left for the shadow's delta
	run -0 --separate-stderr sh -c "echo '{\"thing\":\"nodev\",\"state\":{\"3311\":{\"0\":{\"5850\":true}}}}' | lwm2m-write -C '$SOCK'"
	[[ $stderr == *'1 desired value not written at exit'* ]]
	# lwm2m-listen not running: says so
	run -0 --separate-stderr sh -c "echo '{\"thing\":\"dev1\",\"state\":{\"3311\":{\"0\":{\"5850\":true}}}}' | lwm2m-write -C '$BATS_TEST_TMPDIR/nosock'"
	[[ $stderr == *'1 desired value not written at exit'* ]]
}
