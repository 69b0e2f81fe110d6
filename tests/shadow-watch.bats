#!/usr/bin/env bats
# shadow-watch on the local store: deltas as they are published, every version once, --initial,
# selection, journal rotation, readiness and SIGTERM.
bats_require_minimum_version 1.5.0
load test_helper

setup() {
	S="$BATS_TEST_TMPDIR/store"
	export SHADOW_STORE="$S"
}

teardown() {
	dump_logs
	stop_all
}

put() { printf '%s\n' "$@" | shadow-put >/dev/null; }

# start_watch NAME ARGS...: start shadow-watch and wait for its readiness newline.
start_watch() {
	local name=$1; shift
	local fifo="$BATS_TEST_TMPDIR/$name.ready"
	mkfifo "$fifo"
	start_bg "$name" sh -c 'exec shadow-watch -d 3 "$@" 3>"$0"' "$fifo" "$@"
	read -r -t 10 _ <"$fifo"
}

out() { cat "$BATS_TEST_TMPDIR/$1.out"; }
count() { [ "$(wc -l <"$BATS_TEST_TMPDIR/$1.out")" -ge "$2" ]; }

@test "shadow-watch: -h, -V, bad usage" {
	run shadow-watch -h
	assert_success
	assert_output --partial "--no-initial"
	run shadow-watch -V
	assert_success
	run -100 shadow-watch --bogus
	run -100 shadow-watch -d x
}

@test "shadow-watch: a desired update prints the delta; reported-only updates print none" {
	start_watch w
	put '{"thing":"dev1","state":{"reported":{"3303":{"0":{"5700":21.5}},"3311":{"0":{"5850":false}}}}}'
	put '{"thing":"dev1","clientToken":"c7","state":{"desired":{"3311":{"0":{"5850":true}},"3303":{"0":{"5700":21.5}}}}}'
	wait_until 10 count w 1
	put '{"thing":"dev1","state":{"reported":{"3311":{"0":{"5850":true}}}}}'
	put '{"thing":"dev1","state":{"desired":{"3303":{"0":{"5700":21.5}}}}}'
	put '{"thing":"dev2","state":{"desired":{"a":1}}}'
	wait_until 10 count w 2
	run jq -c '[.thing,.version,.state,.clientToken]' "$BATS_TEST_TMPDIR/w.out"
	assert_output - <<'EOF'
["dev1",2,{"3311":{"0":{"5850":true}}},"c7"]
["dev2",1,{"a":1},null]
EOF
	run jq -sec '.[0].metadata["3311"]["0"]["5850"].timestamp|numbers' "$BATS_TEST_TMPDIR/w.out"
	assert_success
}

@test "shadow-watch: every version of quick successive updates, in order, once" {
	start_watch w
	for i in $(seq 1 300); do
		echo "{\"thing\":\"fast\",\"state\":{\"desired\":{\"n\":$i}}}"
	done >"$BATS_TEST_TMPDIR/in"
	# one commit per line, and then the same again in large groups
	shadow-put -b 1 <"$BATS_TEST_TMPDIR/in" >/dev/null
	shadow-put <"$BATS_TEST_TMPDIR/in" >/dev/null
	wait_until 20 count w 600
	run sh -c "jq -c '[.version,.state.n]' '$BATS_TEST_TMPDIR/w.out' | jq -s -c '[.[0],.[-1],length, (map(.[0])==([range(1;601)])), (map(.[1])==([range(1;301)]+[range(1;301)]))]'"
	assert_output '[[1,1],[600,300],600,true,true]'
}

@test "shadow-watch: --initial (the default) prints pending deltas at start, --no-initial does not" {
	put '{"thing":"a1","state":{"desired":{"x":1},"reported":{"x":0}}}' \
	    '{"thing":"a2","state":{"desired":{"x":1},"reported":{"x":1}}}' \
	    '{"thing":"a3","shadow":"cfg","state":{"desired":{"y":"on"}}}' \
	    '{"thing":"a4","state":{"reported":{"z":1}}}'
	start_watch w
	start_watch n --no-initial
	wait_until 10 count w 2
	run sh -c "jq -c '[.thing,.shadow,.version,.state]' '$BATS_TEST_TMPDIR/w.out' | sort"
	assert_output - <<'EOF'
["a1",null,1,{"x":1}]
["a3","cfg",1,{"y":"on"}]
EOF
	put '{"thing":"a1","state":{"desired":{"x":2}}}'
	wait_until 10 count n 1
	wait_until 10 count w 3
	run jq -c '[.thing,.version,.state]' "$BATS_TEST_TMPDIR/n.out"
	assert_output '["a1",2,{"x":2}]'
}

@test "shadow-watch: selection by name and glob, as operands or -t" {
	start_watch w 'lamp-*' -t dev7
	put '{"thing":"lamp-1","state":{"desired":{"on":true}}}' \
	    '{"thing":"dev7","state":{"desired":{"on":true}}}' \
	    '{"thing":"dev70","state":{"desired":{"on":true}}}' \
	    '{"thing":"other","state":{"desired":{"on":true}}}' \
	    '{"thing":"lamp-2","state":{"desired":{"on":true}}}'
	wait_until 10 count w 3
	put '{"thing":"dev7","state":{"desired":{"on":false}}}'
	wait_until 10 count w 4
	run jq -r .thing "$BATS_TEST_TMPDIR/w.out"
	assert_output - <<'EOF'
lamp-1
dev7
lamp-2
dev7
EOF
}

@test "shadow-watch: a version older than one printed is never printed" {
	put '{"thing":"v","state":{"desired":{"x":1}}}' '{"thing":"v","state":{"desired":{"x":2}}}'
	start_watch w
	wait_until 10 count w 1
	# a stale line (as a slow writer could append) and a repeat of the last one
	echo '{"thing":"v","version":1,"state":{"x":1},"metadata":{},"timestamp":1}' >>"$S/.journal/deltas"
	echo '{"thing":"v","version":2,"state":{"x":2},"metadata":{},"timestamp":1}' >>"$S/.journal/deltas"
	echo 'not json' >>"$S/.journal/deltas"
	put '{"thing":"v","state":{"desired":{"x":3}}}'
	wait_until 10 count w 2
	run jq -c '[.version,.state.x]' "$BATS_TEST_TMPDIR/w.out"
	assert_output - <<'EOF'
[2,2]
[3,3]
EOF
}

@test "shadow-watch: follows the journal across rotations, and rescans when it fell behind" {
	export SHADOW_JOURNAL_MAX=2000
	start_watch w
	for i in $(seq 1 100); do
		echo "{\"thing\":\"r$((i % 4))\",\"state\":{\"desired\":{\"n\":$i}}}"
	done | shadow-put -b 3 >/dev/null
	wait_until 20 count w 100
	run sh -c "jq -c .state.n '$BATS_TEST_TMPDIR/w.out' | jq -s -c '.==[range(1;101)]'"
	assert_output true
	[ -e "$S/.journal/deltas.1" ]
	[ "$(stat -c %s "$S/.journal/deltas")" -le 2000 ]
	# stopped while the journal rotates many times: it cannot replay, so it rescans the store
	kill -STOP "$(bg_pid w)"
	for i in $(seq 101 200); do
		echo "{\"thing\":\"r$((i % 4))\",\"state\":{\"desired\":{\"n\":$i}}}"
	done | shadow-put -b 3 >/dev/null
	kill -CONT "$(bg_pid w)"
	put '{"thing":"r0","state":{"desired":{"n":1000}}}'
	wait_until 20 sh -c "tail -n 1 '$BATS_TEST_TMPDIR/w.out' | grep -q '\"n\":1000'"
	# each thing's latest delta was printed, and no version went backwards
	for t in r1 r2 r3; do
		run sh -c "jq -c 'select(.thing==\"$t\")|.state.n' '$BATS_TEST_TMPDIR/w.out' | tail -n 1"
		assert_output "$(jq .state.desired.n "$S/$t.json")"
	done
	run sh -c "jq -c '[.thing,.version]' '$BATS_TEST_TMPDIR/w.out' | jq -s -c 'group_by(.[0])|map(map(.[1])|(.==(sort|unique)))|all'"
	assert_output true
}

@test "shadow-watch: SIGTERM ends it cleanly" {
	start_watch w
	pid=$(bg_pid w)
	kill -TERM "$pid"
	rc=0
	wait "$pid" || rc=$?
	[ "$rc" -eq 0 ]
}

@test "shadow-watch: the cloud-to-device loop settles: one delta, reported catches up, no echo" {
	# a stand-in for lwm2m-write: report every delta back as the device's new state
	cat >"$BATS_TEST_TMPDIR/device.sh" <<'SH'
while IFS= read -r line; do
	printf '%s\n' "$line" | jq -c '{thing, state: {reported: .state}}'
done
SH
	# shadow-watch | device | shadow-put, one process per stage so that teardown stops each
	mkfifo "$BATS_TEST_TMPDIR/deltas" "$BATS_TEST_TMPDIR/reports"
	start_bg put sh -c 'exec shadow-put <"$0"' "$BATS_TEST_TMPDIR/reports"
	start_bg device sh -c 'exec sh "$0" <"$1" >"$2"' "$BATS_TEST_TMPDIR/device.sh" \
	  "$BATS_TEST_TMPDIR/deltas" "$BATS_TEST_TMPDIR/reports"
	start_bg watch sh -c 'exec shadow-watch >"$0"' "$BATS_TEST_TMPDIR/deltas"
	put '{"thing":"lamp","state":{"desired":{"3311":{"0":{"5850":true,"5851":80}}}}}'
	wait_until 10 sh -c "jq -en 'input | .version==2' '$S/lamp.json'"
	run jq -c '[.state.desired==.state.reported, .version]' "$S/lamp.json"
	assert_output '[true,2]'
	# the report published no delta of its own: nothing for the loop to echo
	run wc -l <"$S/.journal/deltas"
	assert_output 1
}
