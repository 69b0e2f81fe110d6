#!/usr/bin/env bats
# shadow-put on the local store: AWS IoT Device Shadow semantics, limits, bad lines,
# concurrent writers and crashes.
bats_require_minimum_version 1.5.0
load test_helper

setup() {
	S="$BATS_TEST_TMPDIR/store"
	export SHADOW_STORE="$S"
}

teardown() { stop_all; }

doc() { jq -c "$2" "$S/$1.json"; }

@test "shadow_doc unit checks pass" {
	run "$UNIT/test_shadow"
	assert_success
}

@test "shadow-put: -h, -V, bad usage" {
	run shadow-put -h
	assert_success
	assert_output --partial "--store"
	run shadow-put -V
	assert_success
	assert_output --partial "shadow-put"
	run -100 shadow-put --no-such-option
	run -100 shadow-put -b 0
	run -100 shadow-put extra-operand
}

@test "shadow-put: accepted document, stored document, versions" {
	run --separate-stderr sh -c 'printf "%s\n" \
	  "{\"thing\":\"dev1\",\"state\":{\"reported\":{\"3303\":{\"0\":{\"5700\":21.5}}}}}" \
	  "{\"thing\":\"dev1\",\"clientToken\":\"tok-1\",\"state\":{\"desired\":{\"3311\":{\"0\":{\"5850\":true}}}}}" \
	  | shadow-put'
	assert_success
	[ "${#lines[@]}" -eq 2 ]
	run jq -ec 'select(.thing=="dev1" and .result=="accepted" and .version==1
	  and .state.reported["3303"]["0"]["5700"]==21.5
	  and (.metadata.reported["3303"]["0"]["5700"].timestamp|type)=="number"
	  and (.timestamp|type)=="number")' <<<"${lines[0]}"
	assert_success
	run jq -ec 'select(.version==2 and .clientToken=="tok-1" and .state.desired["3311"]["0"]["5850"]==true)' <<<"${lines[1]}"
	assert_success
	run doc dev1 '[.version, .state.reported["3303"]["0"]["5700"], .state.desired["3311"]["0"]["5850"]]'
	assert_output '[2,21.5,true]'
}

@test "shadow-put: nested merge, null deletes, arrays replace, sections clear, metadata follows" {
	cat >"$BATS_TEST_TMPDIR/in" <<'EOF'
{"thing":"d","state":{"reported":{"a":1,"o":{"x":1,"y":2},"l":[1,2,3]}}}
{"thing":"d","state":{"reported":{"o":{"y":null,"z":3},"l":[9],"a":null}}}
EOF
	run shadow-put <"$BATS_TEST_TMPDIR/in"
	assert_success
	run doc d '.state'
	assert_output '{"reported":{"o":{"x":1,"z":3},"l":[9]}}'
	run doc d '.metadata.reported|[paths(type=="number")|join("/")]|sort'
	assert_output '["l/timestamp","o/x/timestamp","o/z/timestamp"]'
	echo '{"thing":"d","state":{"reported":{"o":{"x":null,"z":null}},"desired":{"q":1}}}' | shadow-put
	run doc d '[.state, (.metadata|keys)]'
	assert_output '[{"reported":{"l":[9]},"desired":{"q":1}},["desired","reported"]]'
	echo '{"thing":"d","state":{"desired":null}}' | shadow-put
	run doc d '[.state, .metadata, .version]'
	assert_output '[{"reported":{"l":[9]}},{"reported":{"l":{"timestamp":'"$(doc d '.metadata.reported.l.timestamp')"'}}},4]'
}

@test "shadow-put: version conflict is 409, clientToken echoed, nothing changes" {
	echo '{"thing":"dev1","state":{"reported":{"a":1}}}' | shadow-put
	run -1 --separate-stderr sh -c 'printf "%s\n" \
	  "{\"thing\":\"dev1\",\"version\":5,\"clientToken\":\"c1\",\"state\":{\"reported\":{\"a\":2}}}" \
	  "{\"thing\":\"dev1\",\"version\":1,\"state\":{\"reported\":{\"a\":3}}}" | shadow-put'
	run jq -ec 'select(.result=="rejected" and .code==409 and .message=="Version conflict"
	  and .clientToken=="c1" and .line==1 and .thing=="dev1")' <<<"${lines[0]}"
	assert_success
	run jq -ec 'select(.result=="accepted" and .version==2)' <<<"${lines[1]}"
	assert_success
	run doc dev1 '[.version,.state.reported.a]'
	assert_output '[2,3]'
}

@test "shadow-put: malformed lines are refused with their line numbers and the run carries on" {
	run -1 --separate-stderr sh -c 'printf "%s\n" \
	  "{\"thing\":\"dev1\",\"state\":{\"reported\":{\"a\":1}}}" \
	  "{not json" \
	  "" \
	  "[1,2]" \
	  "{\"thing\":\"dev1\",\"state\":{\"reported\":{\"b\":2}}}" | shadow-put'
	[ "${#lines[@]}" -eq 5 ]
	for i in 1 2 3; do
		run jq -ec --argjson n $((i + 1)) 'select(.result=="rejected" and .code==400
		  and .message=="Invalid JSON" and .line==$n)' <<<"${lines[$i]}"
		assert_success
	done
	[[ "$stderr" == *"line 2: malformed JSON"* ]]
	[[ "$stderr" == *"line 4: not a JSON object"* ]]
	run doc dev1 '[.version,.state.reported]'
	assert_output '[2,{"a":1,"b":2}]'
}

@test "shadow-put: a last line without newline is applied" {
	run sh -c 'printf "{\"thing\":\"t\",\"state\":{\"reported\":{\"a\":1}}}" | shadow-put'
	assert_success
	run doc t .version
	assert_output 1
}

@test "shadow-put: limits and names with AWS codes and messages" {
	big=$(head -c 8300 /dev/zero | tr '\0' x)
	deep='{"1":{"2":{"3":{"4":{"5":{"6":{"7":1}}}}}}}'
	six='{"1":{"2":{"3":{"4":{"5":{"6":1}}}}}}'
	long=$(head -c 129 /dev/zero | tr '\0' a)
	cat >"$BATS_TEST_TMPDIR/in" <<EOF
{"thing":"t","state":{"reported":{"s":"$big"}}}
{"thing":"t","state":{"reported":$deep}}
{"thing":"t","state":{"reported":$six}}
{"thing":"bad/name","state":{}}
{"thing":"$long","state":{}}
{"thing":"t","shadow":"no.dots","state":{}}
{"thing":"t"}
{"state":{}}
{"thing":"t","state":{"desired":[1]}}
{"thing":"t","state":{"colour":{}}}
{"thing":"t","state":{"desired":{"c":[null,"RED"]}}}
{"thing":"t","clientToken":"$(head -c 65 /dev/zero | tr '\0' k)","state":{}}
{"thing":"t","version":-1,"state":{}}
EOF
	run -1 --separate-stderr shadow-put <"$BATS_TEST_TMPDIR/in"
	[ "${#lines[@]}" -eq 13 ]
	printf '%s\n' "${lines[@]}" | jq -c '[.line,.code,.message]' >"$BATS_TEST_TMPDIR/got"
	run jq -c 'select(.result=="accepted")|.version' <<<"${lines[2]}"
	assert_output 1
	run cat "$BATS_TEST_TMPDIR/got"
	assert_output - <<'EOF'
[1,413,"The payload exceeds the maximum size allowed"]
[2,400,"JSON contains too many levels of nesting; maximum is 6"]
[null,null,null]
[4,400,"Invalid thing name"]
[5,400,"Invalid thing name"]
[6,400,"Invalid shadow name"]
[7,400,"Missing required node: state"]
[8,400,"Missing required node: thing"]
[9,400,"Desired node must be an object"]
[10,400,"State contains an invalid node"]
[11,400,"State contains an invalid node"]
[12,400,"Invalid clientToken"]
[13,400,"Invalid version"]
EOF
}

@test "shadow-put: the shadow's state after the merge is limited to 8 KB too" {
	half=$(head -c 4500 /dev/zero | tr '\0' x)
	echo "{\"thing\":\"t\",\"state\":{\"reported\":{\"a\":\"$half\"}}}" | shadow-put
	run -1 --separate-stderr sh -c "echo '{\"thing\":\"t\",\"state\":{\"desired\":{\"b\":\"$half\"}}}' | shadow-put"
	run jq -c '[.code,.message]' <<<"$output"
	assert_output '[413,"The payload exceeds the maximum size allowed"]'
	run doc t .version
	assert_output 1
}

@test "shadow-put: named shadows live beside the classic one" {
	printf '%s\n' '{"thing":"dev1","shadow":"cfg","state":{"desired":{"p":1}}}' \
	  '{"thing":"dev1","state":{"reported":{"q":2}}}' | shadow-put >"$BATS_TEST_TMPDIR/out"
	run jq -c '[.thing,.shadow,.version]' "$BATS_TEST_TMPDIR/out"
	assert_output - <<'EOF'
["dev1","cfg",1]
["dev1",null,1]
EOF
	run doc dev1.cfg .state
	assert_output '{"desired":{"p":1}}'
	run doc dev1 .state
	assert_output '{"reported":{"q":2}}'
}

@test "shadow-put: two processes hammering one thing lose nothing" {
	for w in a b; do
		for i in $(seq 1 300); do
			echo "{\"thing\":\"hot\",\"state\":{\"reported\":{\"$w$i\":$i}}}"
		done >"$BATS_TEST_TMPDIR/$w.in"
	done
	# small batches so the two writers interleave many times
	shadow-put -b 7 <"$BATS_TEST_TMPDIR/a.in" >"$BATS_TEST_TMPDIR/a.out" &
	pa=$!
	shadow-put -b 5 <"$BATS_TEST_TMPDIR/b.in" >"$BATS_TEST_TMPDIR/b.out" &
	pb=$!
	wait $pa
	wait $pb
	run doc hot '[.version, (.state.reported|length)]'
	assert_output "[600,600]"
	# every version was handed out exactly once
	run sh -c "cat '$BATS_TEST_TMPDIR/a.out' '$BATS_TEST_TMPDIR/b.out' | jq -s '[.[].version]|unique|length'"
	assert_output 600
}

@test "shadow-put: kill -9 mid-stream never leaves a torn document; acknowledged updates stay" {
	python3 - "$BATS_TEST_TMPDIR/in" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(200000):
        f.write(json.dumps({"thing": "t%d" % (i % 3), "state": {"reported": {"n": i, "pad": "x" * 200}}}) + "\n")
PY
	# a reader that checks every document it sees while the writer runs
	cat >"$BATS_TEST_TMPDIR/reader.sh" <<'EOF'
while :; do
	for f in "$1"/t*.json; do
		[ -e "$f" ] || continue
		jq -en 'input | .version' "$f" >/dev/null 2>&1 || { echo "torn: $f"; cat "$f"; exit 1; }
	done
done
EOF
	mkdir -p "$S"
	start_bg reader sh "$BATS_TEST_TMPDIR/reader.sh" "$S"
	shadow-put <"$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" &
	pid=$!
	wait_until 20 sh -c "[ \$(wc -l <'$BATS_TEST_TMPDIR/out') -gt 3000 ]"
	kill -9 $pid
	wait $pid || true
	kill -0 "$(bg_pid reader)" # the reader found nothing torn
	stop_bg reader
	run cat "$BATS_TEST_TMPDIR/reader.out"
	assert_output ""
	for t in t0 t1 t2; do
		acked=$(grep "\"thing\":\"$t\"" "$BATS_TEST_TMPDIR/out" | tail -n 1 | jq .version)
		stored=$(doc $t .version)
		[ "$stored" -ge "$acked" ]
	done
	# a new writer carries on from the stored versions
	echo '{"thing":"t0","state":{"reported":{"after":1}}}' | shadow-put >"$BATS_TEST_TMPDIR/out2"
	run jq .version "$BATS_TEST_TMPDIR/out2"
	assert_output "$(($(doc t0 .version)))"
}

@test "shadow-put: two processes over many things in opposite orders neither deadlock nor lose" {
	python3 - "$BATS_TEST_TMPDIR" <<'PY'
import json, sys
d = sys.argv[1]
for w, order in (("a", range(20)), ("b", range(19, -1, -1))):
    with open("%s/%s.in" % (d, w), "w") as f:
        for i in range(15):
            for t in order:
                f.write(json.dumps({"thing": "m%d" % t, "state": {"reported": {"%s%d" % (w, i): i}}}) + "\n")
PY
	shadow-put -b 13 <"$BATS_TEST_TMPDIR/a.in" >/dev/null &
	pa=$!
	shadow-put -b 11 <"$BATS_TEST_TMPDIR/b.in" >/dev/null &
	pb=$!
	wait $pa
	wait $pb
	run sh -c "cat '$S'/m*.json | jq -s -c '[length, (map(.version)|unique), (map(.state.reported|length)|unique)]'"
	assert_output '[20,[30],[30]]'
}

@test "shadow-put: SIGTERM while waiting for input ends it cleanly" {
	mkfifo "$BATS_TEST_TMPDIR/in"
	shadow-put <"$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/out" &
	pid=$!
	exec 7>"$BATS_TEST_TMPDIR/in"
	echo '{"thing":"s","state":{"reported":{"a":1}}}' >&7
	wait_until 10 grep -q accepted "$BATS_TEST_TMPDIR/out"
	kill -TERM $pid
	rc=0
	wait $pid || rc=$?
	exec 7>&-
	[ "$rc" -eq 0 ]
	run jq -c .version "$BATS_TEST_TMPDIR/out"
	assert_output 1
}

@test "shadow-put: SIGTERM is honoured while input keeps flowing" {
	mkfifo "$BATS_TEST_TMPDIR/in"
	start_bg yes sh -c 'exec yes "{\"thing\":\"busy\",\"state\":{\"reported\":{\"a\":1}}}" >"$0"' "$BATS_TEST_TMPDIR/in"
	shadow-put <"$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/out" &
	pid=$!
	wait_until 20 sh -c "[ \$(wc -l <'$BATS_TEST_TMPDIR/out') -gt 100 ]"
	kill -TERM $pid
	wait_until 20 sh -c "! kill -0 $pid" || kill -9 $pid
	rc=0
	wait $pid || rc=$?
	[ "$rc" -eq 0 ]
	# every result printed is in the document: the last one is its version
	run jq -s -c 'map(.version)|max' "$BATS_TEST_TMPDIR/out"
	assert_output "$(jq .version "$S/busy.json")"
}

@test "shadow-put: killed between the log and the documents, the update is restored once, for every reader" {
	printf '%s\n' '{"thing":"k","state":{"desired":{"x":1},"reported":{"x":1}}}' '{"thing":"other","state":{"reported":{"n":1}}}' |
		shadow-put >/dev/null
	# a watcher that runs through the crash, and a writer that stays up through it
	mkfifo "$BATS_TEST_TMPDIR/w.ready" "$BATS_TEST_TMPDIR/live.in"
	start_bg w sh -c 'exec shadow-watch -n -d 3 3>"$0"' "$BATS_TEST_TMPDIR/w.ready"
	read -r -t 10 _ <"$BATS_TEST_TMPDIR/w.ready"
	start_bg live sh -c 'exec shadow-put <"$0"' "$BATS_TEST_TMPDIR/live.in"
	exec 7>"$BATS_TEST_TMPDIR/live.in"
	echo '{"thing":"other","state":{"reported":{"n":2}}}' >&7
	wait_until 10 grep -q '"version":2' "$BATS_TEST_TMPDIR/live.out"
	# the batch is synced to .wal/log, then the process dies before any document is written
	rc=0
	echo '{"thing":"k","state":{"desired":{"x":2}}}' | SHADOW_STORE_CRASH_AFTER_LOG=1 shadow-put >"$BATS_TEST_TMPDIR/crash.out" || rc=$?
	[ "$rc" -eq 137 ]
	run cat "$BATS_TEST_TMPDIR/crash.out"
	assert_output "" # never acknowledged
	run doc k .version
	assert_output 1
	grep -q '^d k \. ' "$S/.wal/log"
	# the writer that stayed up applies the logged batch before its next one: no version twice
	echo '{"thing":"k","state":{"reported":{"y":1}}}' >&7
	wait_until 10 grep -q '"thing":"k"' "$BATS_TEST_TMPDIR/live.out"
	run jq -c 'select(.thing=="k")|.version' "$BATS_TEST_TMPDIR/live.out"
	assert_output 3
	run doc k '[.version,.state.desired.x,.state.reported.y]'
	assert_output '[3,2,1]'
	# the running watcher saw the restored version's delta, once
	wait_until 10 grep -q '"version":2' "$BATS_TEST_TMPDIR/w.out"
	exec 7>&-
	stop_bg live
	stop_bg w
	run jq -c 'select(.thing=="k")|[.version,.state.x]' "$BATS_TEST_TMPDIR/w.out"
	assert_output '[2,2]'
}

@test "shadow-put: new things past a commit's file budget wait in memory and in the log; a crash loses none acknowledged" {
	for i in $(seq 1 1500); do echo "{\"thing\":\"n$i\",\"state\":{\"reported\":{\"v\":$i}}}"; done >"$BATS_TEST_TMPDIR/in"
	# two commits of 1000 and 500 lines; killed right after logging the second, before it
	# writes the documents it holds back (files beyond ~2 ms of creating them per commit)
	rc=0
	SHADOW_STORE_CRASH_AFTER_LOG=2 shadow-put -b 1000 <"$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/out" || rc=$?
	[ "$rc" -eq 137 ]
	run -0 jq -en '[inputs | select(.result == "accepted")] | length' "$BATS_TEST_TMPDIR/out"
	assert_output 1000
	before=$(find "$S" -maxdepth 1 -name 'n*.json' | wc -l)
	echo "documents on disk after the crash: $before of 1500 logged"
	# the next process to open the store writes every logged one, acknowledged or not
	shadow-put </dev/null
	run -0 sh -c 'cat "$0"/n*.json | jq -s "map(select(.version == 1)) | length"' "$S"
	assert_output 1500
	run doc n1000 .state.reported.v
	assert_output 1000
	[ ! -s "$S/.wal/log" ]
}

@test "shadow-put: new things past a commit's file budget are in the store once it exits" {
	for i in $(seq 1 1500); do echo "{\"thing\":\"m$i\",\"state\":{\"reported\":{\"v\":$i}}}"; done >"$BATS_TEST_TMPDIR/in"
	shadow-put -b 1000 <"$BATS_TEST_TMPDIR/in" >/dev/null
	run -0 sh -c 'cat "$0"/m*.json | jq -s "map(select(.version == 1)) | length"' "$S"
	assert_output 1500
	# and while it runs, when its input pauses: each thing a second time, then nothing more
	mkfifo "$BATS_TEST_TMPDIR/live"
	start_bg live sh -c 'exec shadow-put -b 1000 <"$0"' "$BATS_TEST_TMPDIR/live"
	exec 7>"$BATS_TEST_TMPDIR/live"
	sed 's/"v":/"w":/' "$BATS_TEST_TMPDIR/in" >&7
	wait_until 30 counted -eq 1500 jq -n '[inputs | select(.result == "accepted")] | length' "$BATS_TEST_TMPDIR/live.out"
	wait_until 10 sh -c 'cat "$0"/m*.json | jq -e -s "map(select(.version == 2)) | length == 1500" >/dev/null' "$S"
	exec 7>&-
	stop_bg live
}

@test "shadow-put: a crash before the documents is repaired by the next process to open the store" {
	echo '{"thing":"r","state":{"reported":{"a":1}}}' | shadow-put >/dev/null
	for i in 2 3; do
		echo "{\"thing\":\"r\",\"state\":{\"desired\":{\"a\":$i}}}" |
			SHADOW_STORE_CRASH_AFTER_LOG=1 shadow-put >/dev/null || true
	done
	# the second crash already replayed the first one on opening the store
	run doc r '[.version,.state.desired.a]'
	assert_output '[2,2]'
	# so does a watcher (it prints the pending delta, version 3)
	mkfifo "$BATS_TEST_TMPDIR/ready"
	start_bg w sh -c 'exec shadow-watch -d 3 3>"$0"' "$BATS_TEST_TMPDIR/ready"
	read -r -t 10 _ <"$BATS_TEST_TMPDIR/ready"
	run doc r '[.version,.state.desired.a]'
	assert_output '[3,3]'
	wait_until 10 grep -q '"version":3' "$BATS_TEST_TMPDIR/w.out"
	# the log was emptied once its batches were in durable documents
	[ ! -s "$S/.wal/log" ]
}

@test "shadow-put: checkpoints set the log aside, sync, and start a new one; nothing is lost" {
	export SHADOW_WAL_MAX=2000
	for i in $(seq 1 300); do
		echo "{\"thing\":\"c$((i % 7))\",\"state\":{\"reported\":{\"n\":$i}}}"
	done | shadow-put -b 5 >"$BATS_TEST_TMPDIR/out"
	[ "$(grep -c accepted "$BATS_TEST_TMPDIR/out")" -eq 300 ]
	[ "$(stat -c %s "$S/.wal/log")" -le 4000 ]
	[ ! -e "$S/.wal/log.old" ]
	run sh -c "cat '$S'/c*.json | jq -s -c 'map(.state.reported.n)|sort'"
	assert_output '[294,295,296,297,298,299,300]'
}

@test "shadow-put: a stdout reader that stalls holds the input back; memory stays bounded; every result arrives, in order" {
	cd "$BATS_TEST_TMPDIR"
	n=100000
	python3 -c '
import sys
with open("in.jsonl", "w") as f:
    for i in range(int(sys.argv[1])):
        f.write("{\"thing\":\"s%d\",\"state\":{\"reported\":{\"n\":%d,\"pad\":\"%s\"}}}\n" % (i % 100, i, "x" * 40))
' "$n"
	mkfifo in out
	# the reader opens the fifo but takes nothing until ./go exists
	start_bg reader python3 -c '
import os, time
f = open("out", "rb")
while not os.path.exists("go"):
    time.sleep(0.05)
with open("results.jsonl", "wb") as o:
    while True:
        b = f.read1(65536)
        if not b:
            break
        o.write(b)
'
	start_bg put sh -c 'exec shadow-put -s store <in >out'
	# the feeder reports how far it got
	start_bg feed python3 -c '
import sys
with open("in", "w") as f, open("in.jsonl") as src:
    for i, line in enumerate(src, 1):
        f.write(line)
        if i % 1000 == 0:
            f.flush()
            open("fed", "w").write(str(i))
'
	pid=$(bg_pid put)
	wait_until 30 grep -q 'the reader is not reading' put.err
	# stalled: shadow-put waits in poll for stdout, reads no input, and the feeder is held back
	fed1=$(cat fed)
	rss1=$(awk '$1 == "VmRSS:" {print $2}' "/proc/$pid/status")
	sleep 2
	fed2=$(cat fed)
	rss2=$(awk '$1 == "VmRSS:" {print $2}' "/proc/$pid/status")
	echo "fed $fed1 -> $fed2 of $n, VmRSS $rss1 -> $rss2 kB"
	[ "$fed2" -eq "$fed1" ]
	[ "$fed2" -lt $((n / 2)) ]
	[[ "$(cat "/proc/$pid/wchan")" == *poll* ]]
	hwm=$(awk '$1 == "VmHWM:" {print $2}' "/proc/$pid/status")
	[ "$hwm" -lt $((64 * 1024)) ]
	[ "$rss2" -le $((rss1 + 1024)) ]
	# what it acknowledged so far is in the store already, though nobody has read it
	stored=$(cat store/s*.json | jq -s 'map(.version)|add')
	[ "$stored" -gt 0 ]
	touch go
	wait_until 120 sh -c '! kill -0 '"$(bg_pid feed)"
	wait_until 120 sh -c '! kill -0 '"$pid"
	grep -q 'the reader caught up' put.err
	wait_until 30 sh -c '! kill -0 '"$(bg_pid reader)"
	# every line acknowledged, once, in input order
	run -0 jq -en --argjson n "$n" '[inputs | select(.result == "accepted") | .state.reported.n] as $got
		| ($got | length) == $n and $got == [range($n)]' results.jsonl
	assert_output true
	run -0 sh -c 'cat store/s*.json | jq -s "map(.version)|add"'
	assert_output "$n"
}

@test "shadow-put: SIGTERM while stdout is not read ends it with 111, counting the results it could not write" {
	cd "$BATS_TEST_TMPDIR"
	for i in $(seq 1 20000); do echo "{\"thing\":\"h$((i % 10))\",\"state\":{\"reported\":{\"n\":$i}}}"; done >in.jsonl
	mkfifo out
	# a reader that holds the fifo open and never reads
	start_bg hold sh -c 'exec 3<out; exec sleep 600'
	shadow-put -s store <in.jsonl >out 2>put.err &
	pid=$!
	wait_until 30 grep -q 'the reader is not reading' put.err
	kill -TERM $pid
	rc=0
	wait $pid || rc=$?
	[ "$rc" -eq 111 ]
	run grep -o 'stopped with [0-9]* result lines unwritten' put.err
	assert_success
	unwritten=$(grep -o 'stopped with [0-9]*' put.err | grep -o '[0-9]*$')
	# the updates behind them are committed
	committed=$(cat store/h*.json | jq -s 'map(.version)|add')
	[ "$unwritten" -gt 0 ]
	[ "$committed" -ge "$unwritten" ]
}
