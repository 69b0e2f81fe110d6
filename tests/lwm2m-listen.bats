#!/usr/bin/env bats
# lwm2m-listen over real UDP on loopback: the registration interface driven by Debian's
# coap-client (libcoap3-bin), commands on the control socket and on stdin, persistence, bad input.
bats_require_minimum_version 1.5.0
load test_helper

teardown() {
	[ -n "${BATS_TEST_COMPLETED:-}" ] || dump_logs
	stop_all
}

# start_listen [ARGS...]: lwm2m-listen on a free port with a control socket and state in the
# test's directory; short CoAP retransmissions so timeouts come quickly.
start_listen() {
	PORT=${PORT:-$(free_port)}
	SOCK=$BATS_TEST_TMPDIR/ctl
	STATE=$BATS_TEST_TMPDIR/state
	OUT=$BATS_TEST_TMPDIR/listen.out
	start_bg listen lwm2m-listen -l "127.0.0.1:$PORT" -C "$SOCK" -S "$STATE" -t 0.3 -r 1 -s 0 "$@"
	wait_until 5 test -S "$SOCK"
}

# register QUERY [LINKS]: a Register from coap-client; prints what coap-client prints.
register() {
	coap-client-gnutls -B 5 -m post -t 40 -e "${2:-</1/0>,</3/0>,</3303/0>}" "coap://127.0.0.1:$PORT/rd?$1"
}

# the registration id of the last register event of endpoint $1
reg_of() {
	grep "\"event\":\"register\"" "$OUT" | jq -r --arg ep "$1" 'select(.ep == $ep) | .reg' | tail -n 1
}

count_events() {
	jq -c --arg e "$1" 'select(.event == $e)' "$OUT" | wc -l
}

@test "lwm2m-listen: -h, -V and a bad option" {
	run -0 lwm2m-listen -h
	assert_output --partial "--listen ADDR:PORT"
	run -0 lwm2m-listen -V
	assert_output --partial "lwm2m-listen"
	run -100 --separate-stderr lwm2m-listen --no-such-option
	run -100 --separate-stderr lwm2m-listen -l not-an-address -S ""
	[[ $stderr == *"bad listen address"* ]]
}

@test "lwm2m-listen: Register, Update and De-register from coap-client print one event each" {
	start_listen
	run -0 register "ep=dev1&lt=60&lwm2m=1.1&b=U"
	wait_until 5 grep -q '"event":"register"' "$OUT"
	run -0 jq -ce 'select(.event == "register") | [.ep, .lt, .lwm2m, .b, .queue, .objects, .sec]' "$OUT"
	assert_output '["dev1",60,"1.1","U",false,["/1/0","/3/0","/3303/0"],"nosec"]'
	run -0 jq -re 'select(.event == "register") | .addr' "$OUT"
	assert_output --regexp '^127\.0\.0\.1:[0-9]+$'
	reg=$(reg_of dev1)
	[ ${#reg} -eq 8 ]

	# Update: new lifetime and a new object list
	run -0 coap-client-gnutls -B 5 -m post -t 40 -e '</3/0>,</3303/0>,</3303/1>' "coap://127.0.0.1:$PORT/rd/$reg?lt=120"
	wait_until 5 grep -q '"event":"update"' "$OUT"
	run -0 jq -ce 'select(.event == "update") | [.reg, .lt, .objects, (.changed | index("lt") != null), (.changed | index("objects") != null)]' "$OUT"
	assert_output "[\"$reg\",120,[\"/3/0\",\"/3303/0\",\"/3303/1\"],true,true]"

	# Update with no payload keeps the objects
	run -0 coap-client-gnutls -B 5 -m post "coap://127.0.0.1:$PORT/rd/$reg"
	wait_until 5 counted -eq 2 count_events update
	run -0 jq -ce 'select(.event == "update") | .objects' "$OUT"
	assert_line --index 1 '["/3/0","/3303/0","/3303/1"]'

	run -0 coap-client-gnutls -B 5 -m delete "coap://127.0.0.1:$PORT/rd/$reg"
	wait_until 5 grep -q '"event":"deregister"' "$OUT"
	run -0 jq -ce 'select(.event == "deregister") | [.ep, .reg]' "$OUT"
	assert_output "[\"dev1\",\"$reg\"]"
	# gone: an Update and a second De-register of it are refused with 4.04
	run coap-client-gnutls -B 5 -m post "coap://127.0.0.1:$PORT/rd/$reg"
	assert_output --partial "4.04"
	run -0 ctl '{"id":"l","op":"list"}'
	assert_output '{"id":"l","op":"list","code":"2.05","registrations":[]}'
}

@test "lwm2m-listen: a 1.0 client with no lwm2m parameter, and the defaults" {
	start_listen
	run -0 register "ep=old-one" "</1/0>,</3/0>"
	wait_until 5 grep -q '"event":"register"' "$OUT"
	run -0 jq -ce 'select(.event == "register") | [.lwm2m, .lt, .b, .queue]' "$OUT"
	assert_output '["1.0",86400,"U",false]'
}

@test "lwm2m-listen: bad Register parameters get 4.00 and 4.12, and no event" {
	start_listen
	run register "lt=60&lwm2m=1.1"
	assert_output --partial "4.00"
	run register "ep=dev1&lwm2m=2.0"
	assert_output --partial "4.12"
	run register "ep=dev1&lwm2m=banana"
	assert_output --partial "4.12"
	run register "ep=dev1&lt=soon"
	assert_output --partial "4.00"
	run register "ep=dev1&lt=0"
	assert_output --partial "4.00"
	run register "ep=dev1&b=XYZ"
	assert_output --partial "4.00"
	run register "ep=dev1" "</3/0>,<broken"
	assert_output --partial "4.00"
	run register "ep=dev1" "</3/0>;rt=\"unterminated"
	assert_output --partial "4.00"
	run -0 ctl '{"id":1,"op":"stats"}'
	run -0 jq -c '[.registrations, .rejected_registrations]' <<<"$output"
	assert_output '[0,8]'
	[ ! -s "$OUT" ]
}

@test "lwm2m-listen: a re-Register of a known endpoint replaces the old registration" {
	start_listen
	run -0 register "ep=dev1&lt=60&lwm2m=1.1"
	wait_until 5 counted -eq 1 count_events register
	first=$(reg_of dev1)
	run -0 register "ep=dev1&lt=90&lwm2m=1.1" "</3/0>"
	wait_until 5 counted -eq 2 count_events register
	second=$(reg_of dev1)
	[ "$first" != "$second" ]
	run -0 jq -ce 'select(.event == "register") | [.reg, .replaced, .lt, .objects]' "$OUT"
	assert_line --index 1 "[\"$second\",\"$first\",90,[\"/3/0\"]]"
	run -0 ctl '{"op":"list"}'
	run -0 jq -c '[.registrations[] | [.ep, .reg]]' <<<"$output"
	assert_output "[[\"dev1\",\"$second\"]]"
	run coap-client-gnutls -B 5 -m post "coap://127.0.0.1:$PORT/rd/$first"
	assert_output --partial "4.04"
}

@test "lwm2m-listen: a registration whose lifetime ends is expired with an event" {
	start_listen
	run -0 register "ep=short&lt=1&lwm2m=1.1"
	run -0 register "ep=long&lt=600&lwm2m=1.1"
	wait_until 10 grep -q '"event":"expire"' "$OUT"
	run -0 jq -ce 'select(.event == "expire") | .ep' "$OUT"
	assert_output '"short"'
	run -0 ctl '{"op":"list"}'
	run -0 jq -c '[.registrations[].ep]' <<<"$output"
	assert_output '["long"]'
}

@test "lwm2m-listen: registrations survive a restart (state directory)" {
	start_listen
	run -0 register "ep=dev1&lt=600&lwm2m=1.1&b=U"
	run -0 register "ep=dev2&lt=600&lwm2m=1.0&b=UQ" "</3/0>"
	wait_until 5 counted -eq 2 count_events register
	reg1=$(reg_of dev1)
	stop_bg listen
	[ -s "$STATE/registrations.jsonl" ]
	start_listen
	run -0 ctl '{"op":"list"}'
	run -0 jq -c '[.registrations[] | [.ep, .reg, .lwm2m, .b, .queue, .objects]] | sort' <<<"$output"
	assert_output "[[\"dev1\",\"$reg1\",\"1.1\",\"U\",false,[\"/1/0\",\"/3/0\",\"/3303/0\"]],[\"dev2\",\"$(jq -r 'select(.ep=="dev2") | .reg' "$STATE/registrations.jsonl")\",\"1.0\",\"UQ\",true,[\"/3/0\"]]]"
	# the restored registration takes Updates
	run -0 coap-client-gnutls -B 5 -m post "coap://127.0.0.1:$PORT/rd/$reg1?lt=700"
	wait_until 5 grep -q '"event":"update"' "$OUT"
	run -0 jq -ce 'select(.event == "update") | [.ep, .lt, (.changed | index("session") != null)]' "$OUT"
	assert_output '["dev1",700,true]'
}

@test "lwm2m-listen: broken datagrams do not hurt it" {
	start_listen
	python3 - "$PORT" <<'PY'
import os, random, socket, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
random.seed(7)
bad = [b"", b"\x00", b"\xff" * 4, b"\x40", b"\x40\x02\x00", b"\x4f\x02\x00\x01",  # short, bad token length
       b"\x40\x02\x00\x01\xb2rd\xff",                                              # payload marker, no payload
       b"\x40\x02\x00\x02\xb2rd\x4f" + b"x" * 3,                                 # option longer than the packet
       b"\x40\x02\x00\x03\xb2rd\x3dep=" + b"A" * 300,                            # extended length lies
       b"\x40\x02\x00\x04\xb2rd\x47ep=dev\xff" + b"<" * 1000,                    # Register with junk links
       b"\x60\x45\x12\x34",                                                      # a response nobody asked for
       b"\x50\x02\x00\x05\xb2rd\x47ep=dev\xff</3/0>,,,<</>>"]
bad += [os.urandom(random.randint(1, 1400)) for _ in range(300)]
for b in bad:
    s.sendto(b, ("127.0.0.1", port))
PY
	run -0 register "ep=after-garbage&lwm2m=1.1"
	wait_until 5 grep -q '"after-garbage"' "$OUT"
	run -0 kill -0 "$(bg_pid listen)"
	run -0 jq -r 'select(.event=="register") | .ep' "$OUT"
	assert_output "after-garbage"
}

@test "lwm2m-listen: malformed commands get bad-command with their line number, and it carries on" {
	start_listen
	run -0 ctl '{"id":1,"op":"list"}' 'this is not json' '["an","array"]' '{"id":4}' '{"id":5,"op":"read","ep":"dev1"}' \
		'{"id":6,"op":"read","ep":"dev1","path":"/3/x/9"}' '{"id":7,"op":"frobnicate","ep":"dev1","path":"/3"}' \
		'{"id":[1],"op":"list"}' '{"id":9,"op":"read","ep":"nobody","path":"/3/0/9"}'
	run -0 jq -c '[.id, .code, ((.error // "-") | split(":")[0])]' <<<"$output"
	assert_line --index 0 '[1,"2.05","-"]'
	assert_line --index 1 '[null,"bad-command","line 2"]'
	assert_line --index 2 '[null,"bad-command","line 3"]'
	assert_line --index 3 '[4,"bad-command","line 4"]'
	assert_line --index 4 '[5,"bad-command","line 5"]'
	assert_line --index 5 '[6,"bad-command","line 6"]'
	assert_line --index 6 '[7,"bad-command","line 7"]'
	assert_line --index 7 '[null,"bad-command","line 8"]'
	assert_line --index 8 '[9,"unknown-endpoint","no device is registered with this endpoint name"]'
}

@test "lwm2m-listen: commands on stdin are answered on stdout" {
	PORT=$(free_port)
	mkfifo "$BATS_TEST_TMPDIR/in"
	OUT=$BATS_TEST_TMPDIR/listen.out
	start_bg listen sh -c "exec lwm2m-listen -l 127.0.0.1:$PORT -S '' < '$BATS_TEST_TMPDIR/in'"
	start_bg writer sh -c "exec >'$BATS_TEST_TMPDIR/in'; printf '{\"id\":\"a\",\"op\":\"list\"}\\n{broken\\n'; exec sleep 60"
	wait_until 5 grep -q '"bad-command"' "$OUT"
	run -0 cat "$OUT"
	assert_line --index 0 '{"id":"a","op":"list","code":"2.05","registrations":[]}'
	assert_line --index 1 --partial '"id":null,"code":"bad-command","error":"line 2: malformed JSON'
}

@test "lwm2m-listen: subscribe sends events to the control connection too" {
	start_listen
	python3 - "$SOCK" "$PORT" >"$BATS_TEST_TMPDIR/sub.out" <<'PY' &
import socket, subprocess, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(20)
s.sendall(b'{"id":1,"op":"subscribe"}\n')
f = s.makefile()
print(f.readline(), end="", flush=True)
subprocess.run(["coap-client-gnutls", "-B", "5", "-m", "post", "-e", "</3/0>",
                "coap://127.0.0.1:%s/rd?ep=sub1&lwm2m=1.1" % sys.argv[2]], check=True, capture_output=True)
print(f.readline(), end="", flush=True)
PY
	wait $!
	run -0 jq -c '[.id, .op, .code, .event, .ep]' "$BATS_TEST_TMPDIR/sub.out"
	assert_line --index 0 '[1,"subscribe","2.05",null,null]'
	assert_line --index 1 '[null,null,null,"register","sub1"]'
}

@test "lwm2m-listen: a Register payload in Block1 transfers, and 1.1 content formats" {
	start_listen
	links='</>;rt="oma.lwm2m";ct="110 11542"'
	for i in $(seq 0 199); do links="$links,</3303/$i>"; done
	run -0 coap-client-gnutls -B 5 -b 64 -m post -t 40 -e "$links" "coap://127.0.0.1:$PORT/rd?ep=big&lwm2m=1.1&b=U&Q"
	wait_until 5 grep -q '"big"' "$OUT"
	run -0 jq -c 'select(.event=="register") | [(.objects | length), .ct, .queue]' "$OUT"
	assert_output '[200,[110,11542],true]'
}

@test "lwm2m-listen: stats counts registrations and errors" {
	start_listen
	run -0 register "ep=s1&lwm2m=1.1"
	run -0 register "ep=s2&lwm2m=1.0&b=UQ"
	run register "lwm2m=1.1"
	run -0 ctl '{"id":"s","op":"stats"}' 'garbage'
	run -0 jq -sc '.[0] | [.id, .code, .registrations, .registers, .rejected_registrations, .sleeping, .observations, .in_flight, .errors]' <<<"$output"
	assert_output '["s","2.05",2,2,1,0,0,0,0]'
	run -0 ctl '{"id":"t","op":"stats"}'
	run -0 jq -c '.errors' <<<"$output"
	assert_output '1'
}

@test "lwm2m-listen: the CoRE link-format parser unit checks pass" {
	run -0 "$UNIT/test_corelink"
}

@test "lwm2m-listen: event members, journal and saved lines are byte for byte what jq printed (unit checks)" {
	run -0 "$UNIT/test_registry" "$BATS_TEST_TMPDIR"
}

@test "lwm2m-listen: notification lines written as text are byte for byte what jq printed (unit checks)" {
	run -0 "$UNIT/test_control"
	assert_output --regexp '^[0-9]+ of 20000 replies written as text'
}

# ---- commands against a device: tests/peers/lwm2m-device.js (the npm coap package) ----

# start_device NAME ARGS...: a simulated device registered with lwm2m-listen on $PORT;
# commands go to it with dev NAME "COMMAND".
start_device() {
	local name=$1
	shift
	: >"$BATS_TEST_TMPDIR/$name.cmd"
	start_bg "$name" node "$PEERS/lwm2m-device.js" --server "127.0.0.1:$PORT" \
		--commands "$BATS_TEST_TMPDIR/$name.cmd" "$@"
	wait_until 10 grep -q '"event":"registered"' "$BATS_TEST_TMPDIR/$name.out"
}
dev() { echo "$2" >>"$BATS_TEST_TMPDIR/$1.cmd"; }
dev_saw() { grep -q "$2" "$BATS_TEST_TMPDIR/$1.out"; }

# A control connection that stays open: conn_open NAME; conn_send NAME LINE; its answers and
# notifications collect in NAME.lines.
conn_open() {
	local name=$1
	mkfifo "$BATS_TEST_TMPDIR/$name.fifo"
	start_bg "$name" python3 -c '
import socket, sys, threading
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
out = open(sys.argv[3], "w", buffering=1)
def reader():
    f = s.makefile()
    for line in f:
        out.write(line)
    out.write("EOF\n")
threading.Thread(target=reader, daemon=True).start()
for line in open(sys.argv[2]):
    s.sendall(line.encode())
threading.Event().wait()
' "$SOCK" "$BATS_TEST_TMPDIR/$name.fifo" "$BATS_TEST_TMPDIR/$name.lines"
	exec {fd}>"$BATS_TEST_TMPDIR/$name.fifo"
	eval "CONN_$name=$fd"
}
conn_send() {
	local fd
	eval "fd=\$CONN_$1"
	echo "$2" >&"$fd"
}
conn_lines() { cat "$BATS_TEST_TMPDIR/$1.lines" 2>/dev/null; }
conn_has() { grep -q "$2" "$BATS_TEST_TMPDIR/$1.lines" 2>/dev/null; }

@test "lwm2m-listen: read a 1.0 device (TLV) and a 1.1 device (SenML JSON), and discover" {
	start_listen
	start_device d10 --ep d10 --lwm2m 1.0
	start_device d11 --ep d11 --lwm2m 1.1
	run -0 ctl '{"id":1,"op":"read","ep":"d10","path":"/3303/0/5700"}' '{"id":2,"op":"read","ep":"d11","path":"/3303/0"}' \
		'{"id":3,"op":"read","ep":"d11","path":"/3303/0/5700","format":"text"}' '{"id":4,"op":"discover","ep":"d11","path":"/3311/0"}' \
		'{"id":5,"op":"read","ep":"d10","path":"/3/0/7"}' '{"id":6,"op":"read","ep":"d11","path":"/9/0"}'
	run -0 jq -sc 'sort_by(.id)[] | [.id, .code, .ct, .value]' <<<"$output"
	assert_line --index 0 '[1,"2.05",11542,21.5]'
	assert_line --index 1 '[2,"2.05",110,null]'
	assert_line --index 2 '[3,"2.05",0,21.5]'
	assert_line --index 3 '[4,"2.05",40,null]'
	assert_line --index 4 '[5,"2.05",11542,null]'
	assert_line --index 5 '[6,"4.04",null,null]'
	run -0 ctl '{"id":2,"op":"read","ep":"d11","path":"/3303/0"}' '{"id":4,"op":"discover","ep":"d11","path":"/3311/0"}' '{"id":5,"op":"read","ep":"d10","path":"/3/0/7"}'
	run -0 jq -sc 'sort_by(.id)[] | .values["/3303/0/5700"] // .links // .values' <<<"$output"
	assert_line --index 0 '21.5'
	assert_line --index 1 --partial '</3311/0/5850>'
	assert_line --index 2 --regexp '^\{"/3/0/7/0":[0-9]+,"/3/0/7/1":[0-9]+\}$'
}

@test "lwm2m-listen: write (single value, partial update, replace) in TLV and SenML, and the device's refusals" {
	start_listen
	start_device d10 --ep d10 --lwm2m 1.0
	start_device d11 --ep d11 --lwm2m 1.1 --objects /3/0,/3311/0
	run -0 ctl '{"id":1,"op":"write","ep":"d10","path":"/3311/0/5850","value":true}' \
		'{"id":2,"op":"write","ep":"d11","path":"/3311/0","values":{"/3311/0/5850":true,"/3311/0/5851":42}}' \
		'{"id":3,"op":"read","ep":"d10","path":"/3311/0/5850"}' '{"id":4,"op":"read","ep":"d11","path":"/3311/0"}' \
		'{"id":5,"op":"write","ep":"d11","path":"/3303/0/5700","value":1.5}' \
		'{"id":6,"op":"write","ep":"d11","path":"/3/0/0","value":"me"}' \
		'{"id":7,"op":"write","ep":"d11","path":"/3311/0/5850","value":"yes"}'
	run -0 jq -sc 'sort_by(.id)[] | [.id, .code, .value // .values["/3311/0/5851"]]' <<<"$output"
	assert_line --index 0 '[1,"2.04",null]'
	assert_line --index 1 '[2,"2.04",null]'
	assert_line --index 2 '[3,"2.05",true]'
	assert_line --index 3 '[4,"2.05",42]'
	assert_line --index 4 '[5,"4.04",null]'
	assert_line --index 5 '[6,"4.05",null]'
	assert_line --index 6 '[7,"bad-command",null]'
	wait_until 5 dev_saw d10 '"event":"write".*"format":"tlv"'
	wait_until 5 dev_saw d11 '"event":"write".*"method":"POST".*"format":"senml-json"'
	run -0 ctl '{"id":8,"op":"write","ep":"d11","path":"/3311/0","replace":true,"values":{"/3311/0/5850":false}}'
	assert_output --partial '"code":"2.04"'
	wait_until 5 dev_saw d11 '"event":"write".*"method":"PUT"'
}

@test "lwm2m-listen: execute, delete and write-attributes" {
	start_listen
	start_device d11 --ep d11 --lwm2m 1.1
	run -0 ctl '{"id":1,"op":"execute","ep":"d11","path":"/3/0/4","args":"0=\u0027x\u0027"}' \
		'{"id":2,"op":"delete","ep":"d11","path":"/3303/0"}' \
		'{"id":3,"op":"read","ep":"d11","path":"/3303/0/5700"}' \
		'{"id":4,"op":"delete","ep":"d11","path":"/3/0/9"}' \
		'{"id":5,"op":"write-attributes","ep":"d11","path":"/3311/0/5851","attributes":{"pmin":1,"pmax":60,"gt":30}}' \
		'{"id":6,"op":"write-attributes","ep":"d11","path":"/3311/0/5851","attributes":{"bogus":1}}' \
		'{"id":7,"op":"execute","ep":"d11","path":"/3/0"}'
	run -0 jq -sc 'sort_by(.id)[] | [.id, .code]' <<<"$output"
	assert_output '[1,"2.04"]
[2,"2.02"]
[3,"4.04"]
[4,"4.05"]
[5,"2.04"]
[6,"bad-command"]
[7,"bad-command"]'
	wait_until 5 dev_saw d11 '"event":"write-attributes".*"pmax":"*60'
	wait_until 5 dev_saw d11 "\"event\":\"execute\".*0='x'"
}

@test "lwm2m-listen: observe: notifications go to the connection that made it, until cancel-observe" {
	start_listen
	start_device d11 --ep d11 --lwm2m 1.1
	conn_open a
	conn_open b
	conn_send a '{"id":"oa","op":"observe","ep":"d11","path":"/3303/0/5700"}'
	wait_until 5 conn_has a '"id":"oa","op":"observe"'
	conn_send b '{"id":"lb","op":"list"}'
	wait_until 5 conn_has b '"id":"lb"'
	dev d11 "set /3303/0/5700 22.5"
	wait_until 5 conn_has a '"op":"notify".*"value":22.5'
	dev d11 "set /3303/0/5700 23"
	wait_until 5 conn_has a '"op":"notify".*"value":23'
	run -0 conn_lines a
	assert_line --index 0 '{"id":"oa","op":"observe","ep":"d11","path":"/3303/0/5700","code":"2.05","ct":110,"value":21.5,"values":{"/3303/0/5700":21.5}}'
	run -0 jq -c 'select(.op == "notify") | [.id, .code, .value]' "$BATS_TEST_TMPDIR/a.lines"
	assert_output $'["oa","2.05",22.5]\n["oa","2.05",23]'
	run -0 conn_lines b
	refute_output --partial notify
	# another connection cannot cancel it
	conn_send b '{"id":"cb","op":"cancel-observe","ep":"d11","path":"/3303/0/5700"}'
	wait_until 5 conn_has b '"id":"cb".*"not-found"'
	run -0 ctl '{"id":"s","op":"stats"}'
	run -0 jq -c '[.observations, .notifications_in, .notifications_out]' <<<"$output"
	assert_output '[1,2,2]'
	conn_send a '{"id":"ca","op":"cancel-observe","ep":"d11","path":"/3303/0/5700"}'
	wait_until 5 conn_has a '"id":"ca","op":"cancel-observe".*"code":"2.05"'
	wait_until 5 dev_saw d11 '"event":"cancel-observe"'
	dev d11 "set /3303/0/5700 24"
	wait_until 5 dev_saw d11 '"event":"set".*"value":24'
	sleep 0.3
	run -0 jq -c 'select(.op == "notify") | .value' "$BATS_TEST_TMPDIR/a.lines"
	refute_output --partial 24
	run -0 ctl '{"id":"s","op":"stats"}'
	run -0 jq -c '.observations' <<<"$output"
	assert_output '0'
}

@test "lwm2m-listen: a closed connection's observations end, and a re-Register ends observations" {
	start_listen
	start_device d11 --ep d11 --lwm2m 1.1
	# observe from a connection that goes away
	run -0 ctl '{"id":1,"op":"observe","ep":"d11","path":"/3303/0/5700"}'
	assert_output --partial '"code":"2.05"'
	wait_until 5 dev_saw d11 '"event":"cancel-observe"'
	conn_open a
	conn_send a '{"id":"o","op":"observe","ep":"d11","path":"/3/0/9"}'
	wait_until 5 conn_has a '"id":"o","op":"observe".*"2.05"'
	dev d11 register
	wait_until 5 conn_has a '"id":"o","op":"notify".*"code":"cancelled"'
	run -0 jq -c 'select(.op == "notify") | [.code, .error]' "$BATS_TEST_TMPDIR/a.lines"
	assert_output '["cancelled","registration replaced by a new Register"]'
	run -0 ctl '{"id":"s","op":"stats"}'
	run -0 jq -c '.observations' <<<"$output"
	assert_output '0'
}

@test "lwm2m-listen: a device that never answers gets a timeout after the retransmissions" {
	start_listen
	start_device d11 --ep d11 --lwm2m 1.1
	dev d11 "silent on"
	wait_until 5 dev_saw d11 '"event":"silent"'
	run -0 ctl '{"id":1,"op":"read","ep":"d11","path":"/3/0/9"}'
	run -0 jq -c '[.id, .code]' <<<"$output"
	assert_output '[1,"timeout"]'
	wait_until 5 dev_saw d11 '"event":"dropped"'
	dev d11 "silent off"
	wait_until 5 dev_saw d11 '"on":false'
	run -0 ctl '{"id":2,"op":"read","ep":"d11","path":"/3/0/9"}'
	assert_output --partial '"code":"2.05"'
	run -0 ctl '{"op":"stats"}'
	run -0 jq -c '.timeouts' <<<"$output"
	assert_output '1'
}

@test "lwm2m-listen: queue mode: sleep and wake events, requests held and sent in order when the device talks" {
	start_listen -a 1
	start_device q1 --ep q1 --lwm2m 1.1 --queue
	wait_until 5 grep -q '"event":"register".*"queue":true' "$OUT"
	dev q1 sleep
	wait_until 10 grep -q '"event":"sleep","ep":"q1"' "$OUT"
	conn_open a
	conn_send a '{"id":1,"op":"write","ep":"q1","path":"/3311/0/5851","value":7}'
	conn_send a '{"id":2,"op":"read","ep":"q1","path":"/3311/0/5851"}'
	run -0 ctl '{"op":"stats"}'
	run -0 jq -c '[.sleeping, .held]' <<<"$output"
	assert_output '[1,2]'
	run -0 conn_lines a
	assert_output ''
	dev q1 wake
	wait_until 10 conn_has a '"id":2'
	run -0 jq -c '[.id, .code, .value]' "$BATS_TEST_TMPDIR/a.lines"
	assert_output $'[1,"2.04",null]\n[2,"2.05",7]'
	# (it may fall asleep again after its second of awake time)
	run -0 sh -c "jq -c 'select(.ep == \"q1\") | .event' '$OUT' | head -n 4"
	assert_output $'"register"\n"sleep"\n"update"\n"wake"'
}

@test "lwm2m-listen: queue mode: held requests expire with queue-expired, and the bound answers queue-full" {
	start_listen -a 0.5 -T 1 -Q 2
	start_device q1 --ep q1 --lwm2m 1.0 --binding UQ
	dev q1 sleep
	wait_until 10 grep -q '"event":"sleep","ep":"q1"' "$OUT"
	run -0 ctl '{"id":1,"op":"read","ep":"q1","path":"/3/0/9"}' '{"id":2,"op":"read","ep":"q1","path":"/3/0/9"}' '{"id":3,"op":"read","ep":"q1","path":"/3/0/9"}'
	run -0 jq -c '[.id, .code]' <<<"$output"
	assert_line --index 0 '[3,"queue-full"]'
	assert_line --index 1 '[1,"queue-expired"]'
	assert_line --index 2 '[2,"queue-expired"]'
}

@test "lwm2m-listen: Send (POST /dp) from a registered device is printed as a send event" {
	start_listen
	cport=$(free_port)
	run -0 coap-client-gnutls -B 5 -p "$cport" -m post -t 40 -e '</3303/0>' "coap://127.0.0.1:$PORT/rd?ep=sender&lwm2m=1.1"
	wait_until 5 grep -q '"sender"' "$OUT"
	run -0 coap-client-gnutls -B 5 -p "$cport" -m post -t 110 -e '[{"n":"/3303/0/5700","v":21.5}]' "coap://127.0.0.1:$PORT/dp"
	wait_until 5 grep -q '"event":"send"' "$OUT"
	run -0 jq -c 'select(.event == "send") | [.ep, .values]' "$OUT"
	assert_output '["sender",{"/3303/0/5700":21.5}]'
	# from an address nobody registered from
	run coap-client-gnutls -B 5 -m post -t 110 -e '[{"n":"/3303/0/5700","v":1}]' "coap://127.0.0.1:$PORT/dp"
	assert_output --partial "4.04"
}

@test "lwm2m-listen: read-composite and write-composite, SenML JSON and CBOR, end to end" {
	start_listen
	start_device d11 --ep d11 --lwm2m 1.1
	run -0 ctl '{"id":1,"op":"read-composite","ep":"d11","paths":["/3/0/9","/3303/0/5700","/3/0/7"]}' \
		'{"id":2,"op":"read-composite","ep":"d11","format":"senml-cbor","paths":["/3/0/9","/3303/0/5700","/3/0/7"]}'
	run -0 jq -sc 'sort_by(.id)[] | [.id, .code, .ct, .paths, .values]' <<<"$output"
	assert_line --index 0 '[1,"2.05",110,["/3/0/9","/3303/0/5700","/3/0/7"],{"/3/0/9":100,"/3303/0/5700":21.5,"/3/0/7/0":3800,"/3/0/7/1":5000}]'
	assert_line --index 1 '[2,"2.05",112,["/3/0/9","/3303/0/5700","/3/0/7"],{"/3/0/9":100,"/3303/0/5700":21.5,"/3/0/7/0":3800,"/3/0/7/1":5000}]'
	# the device got one FETCH each, the paths in the asked format
	wait_until 5 dev_saw d11 '"event":"read-composite","paths":\["/3/0/9","/3303/0/5700","/3/0/7"\],"format":"senml-json","request_format":"senml-json","code":"2.05"'
	dev_saw d11 '"event":"read-composite","paths":\["/3/0/9","/3303/0/5700","/3/0/7"\],"format":"senml-cbor","request_format":"senml-cbor","code":"2.05"'

	run -0 ctl '{"id":3,"op":"write-composite","ep":"d11","values":{"/3311/0/5850":true,"/3311/0/5851":42}}'
	assert_output '{"id":3,"op":"write-composite","ep":"d11","code":"2.04"}'
	run -0 ctl '{"id":4,"op":"write-composite","ep":"d11","format":"senml-cbor","values":{"/3311/0/5706":"red","/3303/0/5750":"hall"}}'
	assert_output '{"id":4,"op":"write-composite","ep":"d11","code":"2.04"}'
	run -0 jq -c 'select(.event == "write-composite") | [.path, .format, .code, .value]' "$BATS_TEST_TMPDIR/d11.out"
	assert_output '["/3311/0/5850","senml-json","2.04",true]
["/3311/0/5851","senml-json","2.04",42]
["/3303/0/5750","senml-cbor","2.04","hall"]
["/3311/0/5706","senml-cbor","2.04","red"]'
	run -0 ctl '{"id":5,"op":"read-composite","ep":"d11","format":"senml-cbor","paths":["/3311/0","/3303/0/5750"]}'
	run -0 jq -c '[.code, .values["/3311/0/5850"], .values["/3311/0/5851"], .values["/3311/0/5706"], .values["/3303/0/5750"]]' <<<"$output"
	assert_output '["2.05",true,42,"red","hall"]'
}

@test "lwm2m-listen: composite bad input: missing paths, refused writes, malformed commands, a 1.0 device" {
	start_listen
	start_device d11 --ep d11 --lwm2m 1.1 --objects /3/0,/3311/0
	start_device d10 --ep d10 --lwm2m 1.0
	# Read-Composite is best effort (LwM2M core TS 1.1): what the device lacks is left out; if it
	# lacks everything, 4.04
	run -0 ctl '{"id":1,"op":"read-composite","ep":"d11","paths":["/3/0/9","/3303/0/5700","/3311/0/9999"]}' \
		'{"id":2,"op":"read-composite","ep":"d11","paths":["/3303/0/5700","/9/0"]}'
	run -0 jq -sc 'sort_by(.id)[] | [.id, .code, .values]' <<<"$output"
	assert_line --index 0 '[1,"2.05",{"/3/0/9":100}]'
	assert_line --index 1 '[2,"4.04",null]'
	# Write-Composite applies whole or not at all
	run -0 ctl '{"id":3,"op":"write-composite","ep":"d11","values":{"/3311/0/5851":7,"/3/0/9":1}}' \
		'{"id":4,"op":"write-composite","ep":"d11","values":{"/3311/0/5851":7,"/3311/1/5850":true}}' \
		'{"id":5,"op":"write-composite","ep":"d11","values":{"/3311/0/5851":"seven"}}'
	run -0 jq -sc 'sort_by(.id)[] | [.id, .code]' <<<"$output"
	assert_output '[3,"4.05"]
[4,"4.04"]
[5,"bad-command"]'
	run -0 ctl '{"id":6,"op":"read-composite","ep":"d11","paths":["/3311/0/5851"]}'
	run -0 jq -c '.values' <<<"$output"
	assert_output '{"/3311/0/5851":80}'
	# malformed commands: a clear line each, and lwm2m-listen carries on
	run -0 ctl '{"id":7,"op":"read-composite","ep":"d11","paths":["/3/x"]}' \
		'{"id":8,"op":"read-composite","ep":"d11","paths":[]}' \
		'{"id":9,"op":"observe-composite","ep":"d11","paths":"/3/0/9"}' \
		'{"id":10,"op":"read-composite","ep":"d11","format":"tlv","paths":["/3/0/9"]}' \
		'{"id":11,"op":"write-composite","ep":"d11","values":{}}' \
		'{"id":12,"op":"cancel-observe-composite","ep":"d11"}' \
		'{"id":13,"op":"read-composite","ep":"d11","paths":["/3/0/9"]}'
	run -0 jq -sc 'sort_by(.id)[] | [.id, .code, .error]' <<<"$output"
	assert_line --index 0 '[7,"bad-command","line 1: paths[0] is not an LwM2M path"]'
	assert_line --index 1 '[8,"bad-command","line 2: read-composite needs \"paths\" (a non-empty array)"]'
	assert_line --index 2 '[9,"bad-command","line 3: observe-composite needs \"paths\" (a non-empty array)"]'
	assert_line --index 3 '[10,"bad-command","line 4: read-composite uses format senml-json or senml-cbor"]'
	assert_line --index 4 '[11,"bad-command","line 5: write-composite needs \"values\" (a non-empty object)"]'
	assert_line --index 5 '[12,"bad-command","line 6: cancel-observe-composite needs \"paths\" (an array)"]'
	assert_line --index 6 '[13,"2.05",null]'
	# a 1.0 device has no composite operations: refused here, nothing sent
	run -0 ctl '{"id":14,"op":"read-composite","ep":"d10","paths":["/3/0/9"]}' \
		'{"id":15,"op":"write-composite","ep":"d10","values":{"/3311/0/5850":true}}' \
		'{"id":16,"op":"observe-composite","ep":"d10","paths":["/3/0/9"]}'
	run -0 jq -sc 'sort_by(.id)[] | [.id, .code, .error]' <<<"$output"
	assert_output '[14,"not-supported","d10 registered with LwM2M 1.0, which has no composite operations"]
[15,"not-supported","d10 registered with LwM2M 1.0, which has no composite operations"]
[16,"not-supported","d10 registered with LwM2M 1.0, which has no composite operations"]'
	run dev_saw d10 'FETCH\|iPATCH'
	assert_failure
	run -0 ctl '{"op":"stats"}'
	run -0 jq -c '.observations' <<<"$output"
	assert_output '0'
}

@test "lwm2m-listen: observe-composite notifies all its paths together until cancelled (JSON), or its connection closes (CBOR)" {
	start_listen
	start_device d11 --ep d11 --lwm2m 1.1
	conn_open a
	conn_send a '{"id":"oc","op":"observe-composite","ep":"d11","paths":["/3303/0/5700","/3/0/9"]}'
	wait_until 5 conn_has a '"id":"oc","op":"observe-composite"'
	dev d11 "set /3303/0/5700 22.5"
	wait_until 5 conn_has a '"op":"notify".*22.5'
	dev d11 "set /3/0/9 80"
	wait_until 5 conn_has a '"op":"notify".*"/3/0/9":80'
	# a change outside the paths notifies nothing
	dev d11 "set /3311/0/5851 3"
	run -0 jq -c '[.id, .op, .code, .ct, .paths, .values]' "$BATS_TEST_TMPDIR/a.lines"
	assert_line --index 0 '["oc","observe-composite","2.05",110,["/3303/0/5700","/3/0/9"],{"/3303/0/5700":21.5,"/3/0/9":100}]'
	assert_line --index 1 '["oc","notify","2.05",110,["/3303/0/5700","/3/0/9"],{"/3303/0/5700":22.5,"/3/0/9":100}]'
	assert_line --index 2 '["oc","notify","2.05",110,["/3303/0/5700","/3/0/9"],{"/3303/0/5700":22.5,"/3/0/9":80}]'
	wait_until 5 dev_saw d11 '"event":"observe-composite","paths":\["/3303/0/5700","/3/0/9"\],"format":"senml-json"'
	# cancelled with a FETCH carrying Observe 1 and the same paths
	conn_send a '{"id":"cc","op":"cancel-observe-composite","ep":"d11","paths":["/3303/0/5700","/3/0/9"]}'
	wait_until 5 conn_has a '"id":"cc","op":"cancel-observe-composite".*"code":"2.05"'
	wait_until 5 dev_saw d11 '"event":"cancel-observe","path":"/"'
	dev_saw d11 '"event":"cancel-observe-composite","paths":\["/3303/0/5700","/3/0/9"\],"format":"senml-json"'
	dev d11 "set /3303/0/5700 30"
	wait_until 5 dev_saw d11 '"event":"set".*"value":30'
	run -0 ctl '{"id":"s","op":"stats"}'
	run -0 jq -c '.observations' <<<"$output"
	assert_output '0'
	# the cancel's answer carries the values; the observation's end is one last notify line
	run -0 jq -c 'select(.op != "observe-composite") | [.id, .op, .code, .values["/3/0/9"]]' "$BATS_TEST_TMPDIR/a.lines"
	assert_output '["oc","notify","2.05",100]
["oc","notify","2.05",80]
["cc","cancel-observe-composite","2.05",80]
["oc","notify","cancelled",null]'

	# SenML CBOR; the connection that made it goes away: the device is told
	conn_open b
	conn_send b '{"id":"ob","op":"observe-composite","ep":"d11","format":"senml-cbor","paths":["/3311/0/5851","/3303/0"]}'
	wait_until 5 conn_has b '"id":"ob","op":"observe-composite"'
	dev d11 "set /3311/0/5851 9"
	wait_until 5 conn_has b '"op":"notify"'
	run -0 jq -c 'select(.op == "notify") | [.ct, .values["/3311/0/5851"], .values["/3303/0/5700"], .values["/3303/0/5701"]]' "$BATS_TEST_TMPDIR/b.lines"
	assert_output '[112,9,30,"Cel"]'
	stop_bg b
	wait_until 5 dev_saw d11 '"event":"cancel-observe-composite","paths":\["/3311/0/5851","/3303/0"\],"format":"senml-cbor"'
	run -0 ctl '{"id":"s","op":"stats"}'
	run -0 jq -c '.observations' <<<"$output"
	assert_output '0'
}

@test "lwm2m-listen: a confirmable notification is acknowledged only once its line is written to its client" {
	start_listen
	# eight simulated devices sending CON notifications, each once its previous one is acknowledged
	start_bg loadgen "$UNIT/lwm2m-loadgen" -s "127.0.0.1:$PORT" -n 8 -o '</1/0>,</3303/0>' -E 1 \
		--settle-max 20 -N 4000 -c 4000 -D 3 -C -T 20
	wait_until 10 sh -c "[ \$(grep -c '\"event\":\"register\"' '$BATS_TEST_TMPDIR/listen.out') -ge 8 ]"
	# a client that observes, then reads nothing for 5 s, then everything
	python3 - "$SOCK" >"$BATS_TEST_TMPDIR/client.out" <<-'PY' &
	import socket, sys, time
	s = socket.socket(socket.AF_UNIX)
	s.connect(sys.argv[1])
	for i in range(8):
	    s.sendall(b'{"id":%d,"op":"observe","ep":"bench-%06d","path":"/3303/0/5700"}\n' % (i, i))
	buf = b""
	while buf.count(b"\n") < 8:
	    buf += s.recv(4096)
	time.sleep(5)
	s.settimeout(1)
	try:
	    while True:
	        c = s.recv(65536)
	        if not c:
	            break
	        buf += c
	except socket.timeout:
	    pass
	sys.stdout.write(buf.decode())
	PY
	client=$!
	wait_until 20 test -s "$BATS_TEST_TMPDIR/loadgen.out"
	wait "$client"
	# while the client read nothing, the devices waited for their ACKs once its socket was full
	# (a few hundred lines): far fewer than the 4000 notifications went out, and every one
	# acknowledged reached the client
	run -0 jq -r '"\(.notify_sent < 2000) \(.notify_acked)"' "$BATS_TEST_TMPDIR/loadgen.out"
	acked=${output#* }
	assert_output "true $acked"
	run -0 jq -s '[.[] | select(.op == "notify")] | length' "$BATS_TEST_TMPDIR/client.out"
	[ "$output" -ge "$acked" ]
}

@test "lwm2m-listen: on stop, a control client that reads slowly gets every queued line whole" {
	start_listen
	# 3000 answers of ~1 KiB queued for a client that has read only the first one when
	# lwm2m-listen is told to stop: a single last write would hand over part of them and cut
	# a line; it waits (bounded) for the reader instead
	python3 - "$SOCK" "$(bg_pid listen)" >"$BATS_TEST_TMPDIR/client.out" <<-'PY'
	import json, os, signal, socket, sys, time
	s = socket.socket(socket.AF_UNIX)
	s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
	s.connect(sys.argv[1])
	pad = "x" * 1000
	n = 3000
	s.sendall(b"".join(b'{"id":"%d-%s","op":"subscribe"}\n' % (i, pad.encode()) for i in range(n)))
	buf = b""
	while b"\n" not in buf:
	    buf += s.recv(4096)
	# time for lwm2m-listen to read and answer the other commands (3 MB: milliseconds)
	time.sleep(1)
	os.kill(int(sys.argv[2]), signal.SIGTERM)
	while True:
	    c = s.recv(65536)
	    if not c:
	        break
	    buf += c
	lines = buf.split(b"\n")
	whole = 0
	for l in lines[:-1]:
	    json.loads(l)
	    whole += 1
	print(whole, len(lines[-1]))
	PY
	wait_until 10 sh -c "! kill -0 $(bg_pid listen)"
	run -0 cat "$BATS_TEST_TMPDIR/client.out"
	assert_output "3000 0"
}
