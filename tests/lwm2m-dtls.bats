#!/usr/bin/env bats
# lwm2m-listen over DTLS (coaps) with PSK on loopback, driven by Debian's coap-client built
# against gnutls and against OpenSSL (libcoap3-bin): handshakes, the identity/endpoint binding,
# requests over the device's session, SIGHUP reloading the credentials.
bats_require_minimum_version 1.5.0
load test_helper

teardown() {
	[ -n "${BATS_TEST_COMPLETED:-}" ] || dump_logs
	stop_all
}

# psk EP IDENTITY KEY: a JSON line of the credentials file (coap-client takes the key as text)
psk() {
	printf '{"ep":"%s","psk_identity":"%s","psk_key":"%s"}\n' "$1" "$2" "$(printf %s "$3" | xxd -p | tr -d '\n')"
}

start_listen() {
	PORT=$(free_port)
	DPORT=$(free_port)
	SOCK=$BATS_TEST_TMPDIR/ctl
	OUT=$BATS_TEST_TMPDIR/listen.out
	CREDS=$BATS_TEST_TMPDIR/creds.jsonl
	[ -f "$CREDS" ] || { psk dev1 dev1-id secret-one; psk dev2 dev2-id secret-two; } >"$CREDS"
	start_bg listen lwm2m-listen -l "127.0.0.1:$PORT" -D "127.0.0.1:$DPORT" -k "$CREDS" -C "$SOCK" -S "" \
		-t 0.5 -r 2 "$@"
	wait_until 5 test -S "$SOCK"
}

# dtls_register CLIENT IDENTITY KEY EP [SECONDS]: a Register over coaps; prints what coap-client
# prints (errors such as "4.03 ..."; nothing for 2.01).
dtls_register() {
	timeout 30 "coap-client-$1" -B "${5:-3}" -m post -u "$2" -k "$3" -e '</1/0>,</3/0>' \
		"coaps://127.0.0.1:$DPORT/rd?ep=$4&lt=300" 2>&1 || true
}

ctl() {
	python3 - "$SOCK" "$@" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(20)
for line in sys.argv[2:]:
    s.sendall(line.encode() + b"\n")
f = s.makefile()
for _ in sys.argv[2:]:
    print(f.readline(), end="")
PY
}

registered() {
	jq -e --arg ep "$1" 'select(.event == "register" and .ep == $ep)' "$OUT" >/dev/null
}

@test "lwm2m-dtls: a good PSK registers (gnutls and OpenSSL clients), the event says sec psk and the identity" {
	start_listen
	run dtls_register gnutls dev1-id secret-one dev1
	refute_output --partial "4.0"
	wait_until 5 registered dev1
	run -0 jq -c 'select(.event == "register") | [.ep, .sec, .identity]' "$OUT"
	assert_output '["dev1","psk","dev1-id"]'
	run dtls_register openssl dev2-id secret-two dev2
	refute_output --partial "4.0"
	wait_until 5 registered dev2
	run -0 jq -c 'select(.event == "register" and .ep == "dev2") | [.sec, .identity]' "$OUT"
	assert_output '["psk","dev2-id"]'
}

@test "lwm2m-dtls: a wrong key or an unknown identity fails the handshake, nothing registers" {
	start_listen
	run dtls_register openssl dev1-id not-the-key dev1 2
	run dtls_register gnutls nobody secret-one dev1 2
	wait_until 5 grep -q 'unknown PSK identity "nobody"' "$BATS_TEST_TMPDIR/listen.err"
	run -0 ctl '{"id":1,"op":"list"}'
	assert_output '{"id":1,"op":"list","code":"2.05","registrations":[]}'
	[ ! -s "$OUT" ]
	# the server is still fine for a good device
	run dtls_register gnutls dev1-id secret-one dev1
	wait_until 5 registered dev1
}

@test "lwm2m-dtls: identity A registering as endpoint B gets 4.03 and a log line" {
	start_listen
	run dtls_register openssl dev1-id secret-one dev2
	assert_output --partial "4.03"
	run dtls_register gnutls dev1-id secret-one stranger
	assert_output --partial "4.03"
	grep -q 'register of dev2 from .* as dev1-id refused: PSK identity is bound to another endpoint' \
		"$BATS_TEST_TMPDIR/listen.err"
	[ ! -s "$OUT" ]
}

@test "lwm2m-dtls: NoSec Register of an endpoint with credentials gets 4.03; one without registers" {
	start_listen
	run coap-client-notls -B 3 -m post -e '</3/0>' "coap://127.0.0.1:$PORT/rd?ep=dev1"
	assert_output --partial "4.03"
	run coap-client-notls -B 3 -m post -e '</3/0>' "coap://127.0.0.1:$PORT/rd?ep=plain"
	refute_output --partial "4.0"
	wait_until 5 registered plain
	run -0 jq -r 'select(.event == "register") | "\(.ep) \(.sec) \(.identity)"' "$OUT"
	assert_output "plain nosec null"
}

@test "lwm2m-dtls: Update and De-register only from the bound identity" {
	start_listen
	run dtls_register gnutls dev1-id secret-one dev1
	wait_until 5 registered dev1
	reg=$(jq -r 'select(.event == "register") | .reg' "$OUT")
	run timeout 30 coap-client-openssl -B 3 -m post -u dev2-id -k secret-two "coaps://127.0.0.1:$DPORT/rd/$reg"
	assert_output --partial "4.03"
	run timeout 30 coap-client-notls -B 3 -m delete "coap://127.0.0.1:$PORT/rd/$reg"
	assert_output --partial "4.03"
	run timeout 30 coap-client-openssl -B 3 -m post -u dev1-id -k secret-one "coaps://127.0.0.1:$DPORT/rd/$reg"
	refute_output --partial "4.0"
	wait_until 5 jq -e 'select(.event == "update")' "$OUT"
	run timeout 30 coap-client-gnutls -B 3 -m delete -u dev1-id -k secret-one "coaps://127.0.0.1:$DPORT/rd/$reg"
	refute_output --partial "4.0"
	wait_until 5 jq -e 'select(.event == "deregister")' "$OUT"
}

@test "lwm2m-dtls: a read goes to the device over its DTLS session" {
	start_listen
	# coap-client repeats its Register once a second on one session (-G) and answers what it
	# does not serve with 4.04: that answer can only come back through the session's keys
	start_bg device timeout 30 coap-client-gnutls -B 10 -G 8 -m post -u dev1-id -k secret-one -e '</3/0>' \
		"coaps://127.0.0.1:$DPORT/rd?ep=dev1"
	wait_until 10 registered dev1
	run -0 ctl '{"id":1,"op":"read","ep":"dev1","path":"/3/0/0"}'
	assert_output --partial '"code":"4.04"'
}

@test "lwm2m-dtls: SIGHUP rereads the credentials: a new device gets in, the registered one stays" {
	start_listen
	run dtls_register gnutls dev1-id secret-one dev1
	wait_until 5 registered dev1
	run dtls_register openssl dev3-id secret-three dev3 2
	run -0 ctl '{"id":1,"op":"list"}'
	refute_output --partial '"dev3"'
	psk dev3 dev3-id secret-three >>"$CREDS"
	kill -HUP "$(bg_pid listen)"
	wait_until 5 grep -q "SIGHUP: 3 DTLS credentials" "$BATS_TEST_TMPDIR/listen.err"
	run dtls_register openssl dev3-id secret-three dev3
	wait_until 5 registered dev3
	run -0 ctl '{"id":1,"op":"list"}'
	assert_output --partial '"dev1"'
	assert_output --partial '"dev3"'
	# a broken file is refused and the credentials in use are kept
	echo '{"ep":"dev4","psk_identity":"dev4-id","psk_key":"zz"}' >>"$CREDS"
	kill -HUP "$(bg_pid listen)"
	wait_until 5 grep -q "keeping the credentials in use" "$BATS_TEST_TMPDIR/listen.err"
	grep -q "creds.jsonl:4: endpoint dev4: psk_key is not" "$BATS_TEST_TMPDIR/listen.err"
	kill -0 "$(bg_pid listen)"
}

@test "lwm2m-dtls: YAML credentials; bad files and options are usage errors" {
	cat >"$BATS_TEST_TMPDIR/creds.yaml" <<'Y'
# devices
- ep: dev1
  psk_identity: dev1-id
  psk_key: "7365637265742d6f6e65"
Y
	CREDS=$BATS_TEST_TMPDIR/creds.yaml
	cp "$CREDS" "$BATS_TEST_TMPDIR/creds.jsonl"
	start_listen
	run dtls_register openssl dev1-id secret-one dev1
	wait_until 5 registered dev1
	printf '%s\n' '{"ep":"a","psk_identity":"x","psk_key":"00"}' '{"ep":"b","psk_identity":"x","psk_key":"01"}' \
		>"$BATS_TEST_TMPDIR/dup.jsonl"
	run -100 --separate-stderr lwm2m-listen -D 127.0.0.1 -k "$BATS_TEST_TMPDIR/dup.jsonl" -S ""
	[[ $stderr == *"dup.jsonl:2: PSK identity x listed twice"* ]]
	run -100 --separate-stderr lwm2m-listen -k "$BATS_TEST_TMPDIR/dup.jsonl" -S ""
	[[ $stderr == *"-k needs -D"* ]]
	run -100 --separate-stderr lwm2m-listen -D 127.0.0.1 -k "$BATS_TEST_TMPDIR/nonexistent" -S ""
	[[ $stderr == *"unable to open"* ]]
	run -100 --separate-stderr lwm2m-listen -l "" -S ""
	[[ $stderr == *"nothing to listen on"* ]]
}
