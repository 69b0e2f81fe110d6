#!/usr/bin/env bats
# Block-wise transfers (RFC 7959) between lwm2m-listen's own UDP socket and NoSec devices: a
# large Write goes out in Block1 parts, a large Read answer comes back in Block2 parts (the
# simulated device's npm coap stack does both), and what a hostile device can do with blocks
# (tests/peers/block_device.py): every broken transfer ends the request with bad-response and
# a log line, and memory stays bounded.
bats_require_minimum_version 1.5.0
load test_helper
load gw_helper

teardown() {
	[ -n "${BATS_TEST_COMPLETED:-}" ] || dump_logs
	stop_all
}

# wire JQ-FILTER: how many datagrams the relay saw that make the filter true
wire() { jq -s "map(select($1)) | length" "$BATS_TEST_TMPDIR/relay.out"; }

@test "block-wise: a 20000-byte Write goes out in Block1 parts, the Read answer comes back in Block2 parts" {
	start_listen
	local rport
	rport=$(free_port)
	start_bg relay python3 "$PEERS/coap_relay.py" "$rport" "$PORT"
	: >"$BATS_TEST_TMPDIR/d11.cmd"
	start_bg d11 node "$PEERS/lwm2m-device.js" --server "127.0.0.1:$rport" --ep dev1 --commands "$BATS_TEST_TMPDIR/d11.cmd"
	wait_for 20 listen.out '.event == "register" and .ep == "dev1"'
	big=$(python3 -c 'import string; s = string.ascii_letters + string.digits; print((s * 400)[:20000])')
	run -0 ctl "{\"id\":1,\"op\":\"write\",\"ep\":\"dev1\",\"path\":\"/3311/0/5706\",\"value\":\"$big\",\"format\":\"text\"}"
	run -0 jq -c '[.id, .code]' <<<"$output"
	assert_output '[1,"2.04"]'
	wait_for 5 d11.out '.event == "write" and .path == "/3311/0/5706"'
	# 20 parts of 1024 bytes (the last 544), Size1 in the first, each but the last 2.31 Continue
	[ "$(wire '.dir == "down" and .code == "0.03" and .block1 != null')" -eq 20 ]
	[ "$(wire '.dir == "down" and .block1 == [0,1,6] and .size1 == 20000 and .len == 1024')" -eq 1 ]
	[ "$(wire '.dir == "down" and .block1 == [19,0,6] and .len == 544')" -eq 1 ]
	[ "$(wire '.dir == "up" and .code == "2.31"')" -eq 19 ]
	[ "$(wire '.dir == "up" and .code == "2.04" and .block1 == null')" -eq 1 ]
	run -0 ctl '{"id":2,"op":"read","ep":"dev1","path":"/3311/0/5706","format":"text"}'
	run -0 jq -r --arg big "$big" '.code, (.value | length), (.value == $big)' <<<"$output"
	assert_output $'2.05\n20000\ntrue'
	[ "$(wire '.dir == "up" and .code == "2.05" and .block2 != null')" -eq 20 ]
	[ "$(wire '.dir == "down" and .code == "0.01" and .block2 == [19,0,6]')" -eq 1 ]
	[ "$(wire '.dir == "up" and .block2 == [19,0,6] and .len == 544')" -eq 1 ]
	run -0 ctl '{"op":"stats"}'
	[ "$(jq .errors <<<"$output")" -eq 0 ]
}

# start_evil MODE: lwm2m-listen and block_device.py in MODE, registered as "evil"
start_evil() {
	start_listen -w 5
	start_bg evil python3 "$PEERS/block_device.py" "$PORT" evil "$1"
	wait_for 10 evil.out '.event == "registered"'
}

@test "block-wise abuse: a device that sends Block2 parts without end is cut off at 1 MiB with bad-response" {
	start_evil endless
	run -0 ctl '{"id":1,"op":"read","ep":"evil","path":"/3311/0/5706","format":"text"}'
	run -0 jq -c '[.id, .code, .error]' <<<"$output"
	assert_output '[1,"bad-response","Block2 body larger than 1 MiB"]'
	# 1024 parts taken, the 1025th refused; nothing asked after it
	[ "$(count evil.out '.event == "get"')" -eq 1025 ]
	grep -q 'block-wise answer from evil (127.0.0.1:[0-9]*) abandoned: Block2 body larger than 1 MiB' "$BATS_TEST_TMPDIR/listen.err"
	bounded listen
	run -0 ctl '{"op":"stats"}'
	[ "$(jq .errors <<<"$output")" -eq 1 ]
	# it carries on: the same device is asked again, and refused the same way
	run -0 ctl '{"id":2,"op":"read","ep":"evil","path":"/3311/0/5706","format":"text"}'
	assert_output --partial '"code":"bad-response"'
}

@test "block-wise abuse: a Block2 part out of order, or a short part before the last, ends the request at once" {
	start_evil gap
	run -0 ctl '{"id":1,"op":"read","ep":"evil","path":"/3311/0/5706","format":"text"}'
	run -0 jq -c '[.code, .error]' <<<"$output"
	assert_output '["bad-response","Block2 part at byte 3072 when 1024 bytes came before it"]'
	grep -q 'abandoned: Block2 part at byte 3072' "$BATS_TEST_TMPDIR/listen.err"
	stop_all
	rm -rf "$BATS_TEST_TMPDIR/state" "$BATS_TEST_TMPDIR/ctl"
	start_evil short
	run -0 ctl '{"id":1,"op":"read","ep":"evil","path":"/3311/0/5706","format":"text"}'
	run -0 jq -c '[.code, .error]' <<<"$output"
	assert_output '["bad-response","Block2 part of 1000 bytes, not 1024, and not the last"]'
}

@test "block-wise: smaller Block2 parts than asked for and retransmitted parts make the body once" {
	start_evil small
	run -0 ctl '{"id":1,"op":"read","ep":"evil","path":"/3311/0/5706","format":"text"}'
	run -0 jq -r '.code, .value' <<<"$output"
	want=$(python3 -c 'print("".join(chr(97 + i % 26) for i in range(3000)))')
	assert_output "2.05
$want"
	# parts 0-5 of 512 bytes asked for once each
	run -0 jq -sc '[.[] | select(.event == "get") | [.num, .szx]]' "$BATS_TEST_TMPDIR/evil.out"
	assert_output '[[0,6],[1,5],[2,5],[3,5],[4,5],[5,5]]'
}

@test "block-wise: a retransmitted 2.31 Continue does not skip a Block1 part" {
	start_evil dup
	big=$(python3 -c 'print("q" * 5000)')
	run -0 ctl "{\"id\":1,\"op\":\"write\",\"ep\":\"evil\",\"path\":\"/3311/0/5706\",\"value\":\"$big\",\"format\":\"text\"}"
	run -0 jq -c '[.id, .code]' <<<"$output"
	assert_output '[1,"2.04"]'
	run -0 jq -sc '[.[] | select(.event == "block1") | .num]' "$BATS_TEST_TMPDIR/evil.out"
	assert_output '[0,1,2,3,4]'
	want=$(printf '%s' "$big" | sha256sum | cut -d' ' -f1)
	[ "$(count evil.out ".event == \"body\" and .len == 5000 and .sha256 == \"$want\"")" -eq 1 ]
}

@test "block-wise: a device that takes 64-byte bodies answers 4.13 with its Block1 size; the Write goes again in parts of that size" {
	# Wakaama's client with -S 64 does this (RFC 7959 2.9.3); so do devices with small buffers
	start_evil tiny
	small=$(python3 -c 'print("s" * 300)')
	run -0 ctl "{\"id\":1,\"op\":\"write\",\"ep\":\"evil\",\"path\":\"/3311/0/5706\",\"value\":\"$small\",\"format\":\"text\"}"
	run -0 jq -c '[.id, .code]' <<<"$output"
	assert_output '[1,"2.04"]'
	run -0 jq -sc '[.[] | select(.event == "block1") | [.num, .len, .szx]]' "$BATS_TEST_TMPDIR/evil.out"
	assert_output '[[0,64,2],[1,64,2],[2,64,2],[3,64,2],[4,44,2]]'
	want=$(printf '%s' "$small" | sha256sum | cut -d' ' -f1)
	[ "$(count evil.out ".event == \"body\" and .len == 300 and .sha256 == \"$want\"")" -eq 1 ]
	[ "$(count evil.out '.event == "too-large"')" -eq 1 ]
	# a body we send in Block1 parts anyway (over 1024 bytes) starts again at the smaller size
	big=$(python3 -c 'import string; print((string.ascii_letters * 100)[:3000])')
	run -0 ctl "{\"id\":2,\"op\":\"write\",\"ep\":\"evil\",\"path\":\"/3311/0/5706\",\"value\":\"$big\",\"format\":\"text\"}"
	run -0 jq -c '[.id, .code]' <<<"$output"
	assert_output '[2,"2.04"]'
	want=$(printf '%s' "$big" | sha256sum | cut -d' ' -f1)
	[ "$(count evil.out ".event == \"body\" and .len == 3000 and .sha256 == \"$want\"")" -eq 1 ]
	[ "$(count evil.out '.event == "too-large" and .block1')" -eq 1 ]
	run -0 ctl '{"op":"stats"}'
	[ "$(jq .errors <<<"$output")" -eq 0 ]
}

@test "block-wise: a device that asks for smaller Block1 parts in its 2.31 Continue gets the rest in parts of that size" {
	start_evil shrink
	big=$(python3 -c 'import string; print((string.ascii_letters * 100)[:3000])')
	run -0 ctl "{\"id\":1,\"op\":\"write\",\"ep\":\"evil\",\"path\":\"/3311/0/5706\",\"value\":\"$big\",\"format\":\"text\"}"
	run -0 jq -c '[.id, .code]' <<<"$output"
	assert_output '[1,"2.04"]'
	# 1024 bytes as part 0 of 1024, then from offset 1024 in parts of 64: numbers 16 to 46
	run -0 jq -sc '[.[] | select(.event == "block1") | [.num, .szx]] | [.[0], .[1], .[-1], length]' "$BATS_TEST_TMPDIR/evil.out"
	assert_output '[[0,6],[16,2],[46,2],32]'
	want=$(printf '%s' "$big" | sha256sum | cut -d' ' -f1)
	[ "$(count evil.out ".event == \"body\" and .len == 3000 and .sha256 == \"$want\"")" -eq 1 ]
	[ "$(count evil.out '.event == "too-large" or .event == "block1-gap"')" -eq 0 ]
}

@test "block-wise abuse: a notification whose Block2 body never ends cancels the observation" {
	start_evil observe
	start_bg obs python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"{\"id\":\"o\",\"op\":\"observe\",\"ep\":\"evil\",\"path\":\"/3311/0/5706\",\"format\":\"text\"}\n")
for line in s.makefile():
    print(line, end="", flush=True)
' "$SOCK"
	wait_until 60 grep -q '"op":"notify"' "$BATS_TEST_TMPDIR/obs.out"
	run -0 jq -c '[.id, .op, .code, .value // .error]' "$BATS_TEST_TMPDIR/obs.out"
	assert_output '["o","observe","2.05","first"]
["o","notify","cancelled","Block2 body larger than 1 MiB"]'
	# the device is told (a GET with Observe 1)
	wait_for 5 evil.out '.event == "cancel"'
	grep -q 'abandoned: Block2 body larger than 1 MiB' "$BATS_TEST_TMPDIR/listen.err"
	run -0 ctl '{"op":"stats"}'
	[ "$(jq .observations <<<"$output")" -eq 0 ]
	bounded listen
}
