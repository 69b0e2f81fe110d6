#!/usr/bin/env bats
# The benchmark's load generators work against the real tools (tiny counts; no timing
# assertions: `make bench` measures, these only prove the generators speak the protocols).
load test_helper
bats_require_minimum_version 1.5.0

teardown() {
	[ "$BATS_TEST_COMPLETED" = 1 ] || dump_logs
	stop_all
}

# join_two_devices MAC_VERSION: ljs-join on a fresh TCP port ($port) with two devices of that
# LoRaWAN version in $BATS_TEST_TMPDIR/devices.jsonl, ready for bench-http.
join_two_devices() {
	[ -x "$BIN/ljs-join" ] || skip "ljs-join not built yet"
	cat >"$BATS_TEST_TMPDIR/devices.jsonl" <<-EOF
	{"dev_eui":"70B3D5FFFE000001","join_eui":"70B3D57ED0000000","mac_version":"$1","app_key":"B6B53F4A168A7A88BDF7EA135CE9CFCA","home_net_id":"000013","net_ids":["000013"]}
	{"dev_eui":"70B3D5FFFE000002","join_eui":"70B3D57ED0000000","mac_version":"$1","app_key":"00112233445566778899AABBCCDDEEFF","home_net_id":"000013","net_ids":["000013"]}
	EOF
	port=$(free_port tcp)
	start_bg join ljs-join -l "127.0.0.1:$port" -D "$BATS_TEST_TMPDIR/devices.jsonl" -S "$BATS_TEST_TMPDIR/js"
	wait_until 10 python3 -c "import socket; socket.create_connection(('127.0.0.1', $port))"
}

# ctl_client SOCKET SECONDS NOTIFICATIONS: send stdin's command lines, print every line that
# comes back until each command is answered and NOTIFICATIONS notify lines came, or SECONDS pass.
ctl_client() {
	cat >"$BATS_TEST_TMPDIR/ctl.in"
	python3 - "$@" "$BATS_TEST_TMPDIR/ctl.in" <<'PY'
import json, socket, sys, time
path, bound = sys.argv[1], float(sys.argv[2])
want_notify = int(sys.argv[3])
cmds = open(sys.argv[4]).read()
s = socket.socket(socket.AF_UNIX)
s.connect(path)
s.sendall(cmds.encode())
ids = {json.loads(l)["id"] for l in cmds.splitlines() if l.strip()}
answered, notified, buf = set(), 0, b""
end = time.time() + bound
s.settimeout(0.2)
while time.time() < end and (answered != ids or notified < want_notify):
    try:
        chunk = s.recv(65536)
    except socket.timeout:
        continue
    if not chunk:
        break
    buf += chunk
    while b"\n" in buf:
        line, buf = buf.split(b"\n", 1)
        print(line.decode(), flush=True)
        r = json.loads(line)
        if r.get("op") == "notify":
            notified += 1
        elif r.get("id") in ids:
            answered.add(r["id"])
PY
}

@test "bench: lwm2m-loadgen registers, answers observe, read and write, notifies and de-registers against lwm2m-listen" {
	[ -x "$BIN/lwm2m-listen" ] || skip "lwm2m-listen not built yet"
	port=$(free_port udp)
	start_bg listen lwm2m-listen -l "127.0.0.1:$port" -S "$BATS_TEST_TMPDIR/state" -C "$BATS_TEST_TMPDIR/ctl.sock"
	wait_until 5 test -S "$BATS_TEST_TMPDIR/ctl.sock"
	# ready once each device has one observation; then 40 confirmable notifications at 20/s
	start_bg loadgen "$UNIT/lwm2m-loadgen" -s "127.0.0.1:$port" -n 3 -o '</1/0>,</3303/0>' -E 1 \
		--settle-max 20 -N 20 -c 40 -D 10 -C -x -T 40
	wait_until 10 sh -c "[ \$(grep -c '\"event\":\"register\"' '$BATS_TEST_TMPDIR/listen.out') -ge 3 ]"
	run -0 grep -c '"ep":"bench-00000[0-2]"' "$BATS_TEST_TMPDIR/listen.out"
	assert_output 3

	ctl_client "$BATS_TEST_TMPDIR/ctl.sock" 30 40 >"$BATS_TEST_TMPDIR/ctl.out" <<-'EOF'
	{"id":1,"op":"observe","ep":"bench-000000","path":"/3303/0/5700"}
	{"id":2,"op":"observe","ep":"bench-000001","path":"/3303/0/5700"}
	{"id":3,"op":"observe","ep":"bench-000002","path":"/3303/0/5700"}
	{"id":4,"op":"read","ep":"bench-000001","path":"/3303/0/5700"}
	{"id":5,"op":"write","ep":"bench-000002","path":"/3303/0/5750","value":"bench"}
	{"id":6,"op":"read","ep":"bench-000000","path":"/9/0/1"}
	EOF
	# the observes and the read got the device's value, the write was acknowledged, the read of
	# an object the device lacks got 4.04, and notifications came back on this connection
	run -0 jq -rs 'map(select(.id == 1 or .id == 2 or .id == 3 or .id == 4) | select(.op != "notify"))
		| map("\(.code) \(.value > 1e15)") | unique | join(",")' "$BATS_TEST_TMPDIR/ctl.out"
	assert_output "2.05 true"
	run -0 jq -r 'select(.id == 5) | .code' "$BATS_TEST_TMPDIR/ctl.out"
	assert_output "2.04"
	run -0 jq -r 'select(.id == 6) | .code' "$BATS_TEST_TMPDIR/ctl.out"
	assert_output "4.04"
	run -0 jq -s '[.[] | select(.op == "notify" and .value > 1e15)] | length' "$BATS_TEST_TMPDIR/ctl.out"
	assert_output 40

	# the generator ends by itself after its 40 notifications (all acknowledged) and de-registers
	# every device
	wait_until 30 sh -c "! kill -0 $(bg_pid loadgen) 2>/dev/null"
	lg="$BATS_TEST_TMPDIR/loadgen.out"
	run -0 jq -r '[.registered, .register_failed, .observations, .notify_sent, .notify_acked,
		.reads, .writes, .refused, .deregistered, .errors] | map(tostring) | join(" ")' "$lg"
	assert_output "3 0 3 40 40 1 1 1 3 0"
	run -0 grep -c '"event":"deregister"' "$BATS_TEST_TMPDIR/listen.out"
	assert_output 3
}

@test "bench: lwm2m-loadgen -U sends Updates that lwm2m-listen answers 2.04, each an update event" {
	[ -x "$BIN/lwm2m-listen" ] || skip "lwm2m-listen not built yet"
	port=$(free_port udp)
	start_bg listen lwm2m-listen -l "127.0.0.1:$port" -S "$BATS_TEST_TMPDIR/state"
	wait_until 5 grep -q listening "$BATS_TEST_TMPDIR/listen.err"
	run -0 --separate-stderr "$UNIT/lwm2m-loadgen" -s "127.0.0.1:$port" -n 4 -w 2 -U 3 -x --settle 0 \
		--settle-max 0 -T 30 -q
	run -0 jq -r '[.registered, .updates, .update_failed, .deregistered, .errors] | map(tostring) | join(" ")' <<<"$output"
	assert_output "4 12 0 4 0"
	wait_until 5 sh -c "[ \$(grep -c '\"event\":\"deregister\"' '$BATS_TEST_TMPDIR/listen.out') -eq 4 ]"
	run -0 jq -sr '[.[] | select(.event == "update")] | "\(length) \(map(.changed == []) | all) \(map(.ep) | unique | length)"' \
		"$BATS_TEST_TMPDIR/listen.out"
	assert_output "12 true 4"
}

@test "bench: the return path: bench-feed's desired lines reach lwm2m-loadgen devices as writes, each logged (-W) to pair with its line" {
	[ -x "$BIN/lwm2m-write" ] || skip "lwm2m-write not built yet"
	port=$(free_port udp)
	start_bg listen lwm2m-listen -l "127.0.0.1:$port" -S "$BATS_TEST_TMPDIR/state" -C "$BATS_TEST_TMPDIR/ctl.sock"
	wait_until 5 test -S "$BATS_TEST_TMPDIR/ctl.sock"
	start_bg loadgen "$UNIT/lwm2m-loadgen" -s "127.0.0.1:$port" -n 3 -o '</1/0>,</3311/0>' -N 0 -H 30 \
		-W "$BATS_TEST_TMPDIR/writes" -T 60 -q
	wait_until 10 counted -eq 3 grep -c '"event":"register"' "$BATS_TEST_TMPDIR/listen.out"
	mkdir "$BATS_TEST_TMPDIR/store"
	# shadow-watch | lwm2m-write through a fifo, each its own process for stop_all
	mkfifo "$BATS_TEST_TMPDIR/deltas"
	start_bg write sh -c 'exec lwm2m-write -C "$1" <"$2"' sh "$BATS_TEST_TMPDIR/ctl.sock" "$BATS_TEST_TMPDIR/deltas"
	start_bg watch sh -c 'exec shadow-watch -s "$1" >"$2"' sh "$BATS_TEST_TMPDIR/store" "$BATS_TEST_TMPDIR/deltas"
	sleep 0.5 # shadow-watch's first look at the store: it reports only what comes after
	"$UNIT/bench-feed" -n 3 -r 20 -D 0.3 -l "$BATS_TEST_TMPDIR/feed" | shadow-put -s "$BATS_TEST_TMPDIR/store" -q
	# six lines: each thing's light on, then off
	run -0 cut -d' ' -f1 "$BATS_TEST_TMPDIR/feed"
	assert_output "$(printf 'bench-%06d\n' 0 1 2 0 1 2)"
	# six writes, two per device, each after its line, logged as they come
	wait_until 10 counted -eq 6 awk 'END { print NR }' "$BATS_TEST_TMPDIR/writes"
	stop_bg loadgen
	run -0 awk '{ print $1, $2 }' "$BATS_TEST_TMPDIR/writes"
	assert_output "$(printf 'bench-%06d /3311/0\n' 0 1 2 0 1 2)"
	run -0 awk 'FNR == NR { n[$1]++; t[$1, n[$1]] = $2; next } { m[$1]++; if ($3 < t[$1, m[$1]]) bad++ } END { print NR, bad + 0 }' \
		"$BATS_TEST_TMPDIR/feed" "$BATS_TEST_TMPDIR/writes"
	assert_output "12 0"
	# bad usage is refused
	run -100 "$UNIT/bench-feed" -n 3
	[[ $output == *"Usage: bench-feed"* ]]
}

@test "bench: lwm2m-loadgen retransmits an unanswered Register and reports the failure" {
	# a UDP socket that reads nothing: every Register goes unanswered; with 1 device the first
	# retransmission comes after 2-3 s (RFC 7252 ACK_TIMEOUT), so a 5 s bound sees at least one
	port=$(free_port udp)
	start_bg sink python3 -c 'import socket, time; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", '"$port"')); time.sleep(60)'
	run -1 --separate-stderr "$UNIT/lwm2m-loadgen" -s "127.0.0.1:$port" -n 1 -T 5 -q
	run -0 jq -r '"\(.registered) \(.retransmissions >= 1)"' <<<"$output"
	assert_output "0 true"
}

@test "bench: lwm2m-loadgen --psk devices handshake with their own PSK and register; a wrong key registers none" {
	port=$(free_port udp)
	dport=$(free_port udp)
	for i in 0 1 2 3 4; do
		printf '{"ep":"psk-%06d","psk_identity":"psk-%06d","psk_key":"00112233445566778899aabbccddeeff"}\n' "$i" "$i"
	done >"$BATS_TEST_TMPDIR/creds.jsonl"
	start_bg listen lwm2m-listen -l "127.0.0.1:$port" -D "127.0.0.1:$dport" -k "$BATS_TEST_TMPDIR/creds.jsonl" -S ""
	wait_until 5 grep -q listening "$BATS_TEST_TMPDIR/listen.err"
	run -0 --separate-stderr "$UNIT/lwm2m-loadgen" -s "127.0.0.1:$dport" -n 5 -w 2 -e psk- \
		-k 00112233445566778899aabbccddeeff -T 30 -q
	run -0 jq -r '"\(.sec) \(.registered) \(.register_failed)"' <<<"$output"
	assert_output "psk 5 0"
	wait_until 5 counted -eq 5 grep -c '"sec":"psk"' "$BATS_TEST_TMPDIR/listen.out"
	run -0 jq -r 'select(.event == "register") | .identity' "$BATS_TEST_TMPDIR/listen.out"
	assert_line psk-000004
	run -1 --separate-stderr "$UNIT/lwm2m-loadgen" -s "127.0.0.1:$dport" -n 2 -e psk- -k 0011 -T 10 -q
	run -0 jq -r '"\(.registered) \(.register_failed)"' <<<"$output"
	assert_output "0 2"
}

@test "bench: bench-http JoinReqs are accepted by ljs-join (MIC, DevNonce, keep-alive)" {
	join_two_devices 1.0.3
	run -0 --separate-stderr "$UNIT/bench-http" -a "127.0.0.1:$port" -D "$BATS_TEST_TMPDIR/devices.jsonl" -c 2 -n 10 -t 20 -S 1
	run -0 jq -r '"\(.requests) \(.ok) \(.failed) \(.io_errors)"' <<<"$output"
	assert_output "10 10 0 0"
	# the same nonces again are replays: answered, but never a Success
	run -1 --separate-stderr "$UNIT/bench-http" -a "127.0.0.1:$port" -D "$BATS_TEST_TMPDIR/devices.jsonl" -c 2 -n 4 -t 20 -S 1
	run -0 jq -r '"\(.requests) \(.ok) \(.failed)"' <<<"$output"
	assert_output "4 0 4"
}

@test "bench: bench-http -r offers JoinReqs to ljs-join at a fixed rate (open loop)" {
	join_two_devices 1.0.4
	# 1.0.4 devices: a DevNonce must be greater than the last one, so every Success also shows
	# that one device's requests never overtook each other on the 4 connections
	run -0 --separate-stderr "$UNIT/bench-http" -a "127.0.0.1:$port" -D "$BATS_TEST_TMPDIR/devices.jsonl" -r 200 -t 1 -w 0.5 -c 4 -S 1
	run -0 jq -r '"\(.mode) \(.due) \(.requests) \(.ok) \(.failed) \(.io_errors) \(.unsent) \(.unanswered) \(.ok_all)"' <<<"$output"
	assert_output "open 200 200 200 0 0 0 0 300"
	run -100 --separate-stderr "$UNIT/bench-http" -a "127.0.0.1:$port" -D "$BATS_TEST_TMPDIR/devices.jsonl" -r 100 -t 20 -N
}

@test "bench: bench-http -r counts a server stall against every request due during it" {
	# one connection to a server that stops for 0.6 s at its 20th request: in a closed loop that
	# is one slow request; open loop, the ~60 requests due meanwhile wait for it and count so
	cat >"$BATS_TEST_TMPDIR/stall.py" <<-'EOF'
	import http.server, sys, time
	class H(http.server.BaseHTTPRequestHandler):
	    protocol_version = "HTTP/1.1"
	    n = 0
	    def do_POST(self):
	        self.rfile.read(int(self.headers["Content-Length"]))
	        H.n += 1
	        if H.n == 20:
	            time.sleep(0.6)
	        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
	    def log_message(self, *a):
	        pass
	http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
	EOF
	echo '{}' >"$BATS_TEST_TMPDIR/body.json"
	port=$(free_port tcp)
	start_bg stall python3 "$BATS_TEST_TMPDIR/stall.py" "$port"
	wait_until 10 python3 -c "import socket; socket.create_connection(('127.0.0.1', $port))"
	run -0 --separate-stderr "$UNIT/bench-http" -a "127.0.0.1:$port" -b "$BATS_TEST_TMPDIR/body.json" -r 100 -t 2 -c 1
	fig=$output
	run -0 jq -r '"\(.due) \(.ok) \(.unsent) \(.unanswered)"' <<<"$fig"
	assert_output "200 200 0 0"
	# at least the 30 requests due in the stall's first 0.3 s waited 0.3 s or more for the
	# connection: over 10% of the 200
	echo "$fig"
	jq -en 'input | .max_queue >= 30 and .p50_ms < .p99_ms and .p99_ms >= 300 and .late_p99_ms >= 300' <<<"$fig"
}

@test "bench: bench-http -N -T -R resumes mutual-TLS sessions with ljs-join (new connection, ticket)" {
	[ -x "$BIN/ljs-join" ] || skip "ljs-join not built yet"
	cd "$BATS_TEST_TMPDIR"
	certtool --generate-privkey --key-type=ecdsa --outfile ca.key 2>/dev/null
	printf 'cn = test CA 000013\nca\ncert_signing_key\nexpiration_days = 2\n' >ca.tmpl
	certtool --generate-self-signed --load-privkey ca.key --template ca.tmpl --outfile ca.pem 2>/dev/null
	for w in server client; do
		certtool --generate-privkey --key-type=ecdsa --outfile $w.key 2>/dev/null
		printf 'cn = 127.0.0.1\nip_address = 127.0.0.1\ntls_www_%s\nexpiration_days = 2\n' $w >$w.tmpl
		certtool --generate-certificate --load-privkey $w.key --load-ca-certificate ca.pem \
			--load-ca-privkey ca.key --template $w.tmpl --outfile $w.pem 2>/dev/null
	done
	printf '000013: ca.pem\n' >cas.yml
	echo '{"dev_eui":"70B3D5FFFE000001","join_eui":"70B3D57ED0000000","mac_version":"1.0.3","app_key":"B6B53F4A168A7A88BDF7EA135CE9CFCA","home_net_id":"000013","net_ids":["000013"]}' >devices.jsonl
	port=$(free_port tcp)
	start_bg join ljs-join -l "127.0.0.1:$port" -D devices.jsonl -S js -t mutual -e server.pem -k server.key -A cas.yml
	wait_until 10 python3 -c "import socket; socket.create_connection(('127.0.0.1', $port))"
	run -0 --separate-stderr "$UNIT/bench-http" -a "127.0.0.1:$port" -D devices.jsonl -c 1 -n 6 -t 20 -S 1 -N -T \
		-A ca.pem -C client.pem -K client.key -R
	# the first handshake is full, every later one resumes the session before it
	run -0 jq -r '"\(.requests) \(.ok) \(.handshakes) \(.resumed)"' <<<"$output"
	assert_output "6 6 6 5"
	run -0 --separate-stderr "$UNIT/bench-http" -a "127.0.0.1:$port" -D devices.jsonl -c 1 -n 3 -t 20 -S 10 -N -T \
		-A ca.pem -C client.pem -K client.key
	run -0 jq -r '"\(.ok) \(.handshakes) \(.resumed)"' <<<"$output"
	assert_output "3 3 0"
}

@test "bench: bench-lag counts stamped values and skips the warm-up" {
	now=$(date +%s%6N)
	run -0 --separate-stderr "$UNIT/bench-lag" -k 5700 -S 1 <<-EOF
	{"thing":"a","state":{"reported":{"3303":{"0":{"5700":$now}}}}}
	{"thing":"a","state":{"reported":{"3303":{"0":{"5700":$now}}}},"metadata":{"reported":{"3303":{"0":{"5700":{"timestamp":1}}}}}}
	{"thing":"b","result":"rejected","code":400,"message":"x"}
	{"thing":"c","state":{"reported":{"3303":{"0":{"5700":$now}}}}}
	EOF
	run -0 jq -r '"\(.lines) \(.stamped) \(.rejected)"' <<<"$output"
	assert_output "3 2 1"
}

@test "bench: bench-lag -t writes a timeline of every line read, warm-up included" {
	now=$(date +%s%6N)
	run -0 --separate-stderr "$UNIT/bench-lag" -k 5700 -S 1 -t "$BATS_TEST_TMPDIR/tl" <<-EOF
	{"thing":"a","state":{"reported":{"3303":{"0":{"5700":$now}}}}}
	{"thing":"b","result":"rejected","code":400,"message":"x"}
	{"thing":"c","state":{"reported":{"3303":{"0":{"5700":$((now - 2000000))}}}}}
	EOF
	run -0 jq -s -c 'map(.lines) | add' "$BATS_TEST_TMPDIR/tl"
	assert_output 3
	run -0 jq -s -e 'map(.lag_max_ms) | max >= 2000' "$BATS_TEST_TMPDIR/tl"
}
