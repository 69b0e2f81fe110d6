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

registered() {
	jq_some '.event == "register" and .ep == $ep' --arg ep "$1" "$OUT"
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
	wait_until 5 jq_some '.event == "update"' "$OUT"
	run timeout 30 coap-client-gnutls -B 3 -m delete -u dev1-id -k secret-one "coaps://127.0.0.1:$DPORT/rd/$reg"
	refute_output --partial "4.0"
	wait_until 5 jq_some '.event == "deregister"' "$OUT"
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

# ---- certificates (X.509) and raw public keys, made here with certtool ----

# mkca NAME: a self-signed CA in $BATS_TEST_TMPDIR/NAME.{key,pem}
mkca() {
	local d=$BATS_TEST_TMPDIR
	certtool --generate-privkey --key-type ecdsa --no-text --outfile "$d/$1.key" 2>/dev/null
	printf 'cn = "%s"\nca\ncert_signing_key\nexpiration_days = 30\n' "test CA $1" >"$d/$1.tmpl"
	certtool --generate-self-signed --load-privkey "$d/$1.key" --template "$d/$1.tmpl" \
		--outfile "$d/$1.pem" >/dev/null 2>&1
}

# mkcert NAME CN CA [TEMPLATE LINE...]: a key and a certificate signed by CA (30 days unless the
# lines say otherwise)
mkcert() {
	local d=$BATS_TEST_TMPDIR n=$1 cn=$2 ca=$3
	shift 3
	certtool --generate-privkey --key-type ecdsa --no-text --outfile "$d/$n.key" 2>/dev/null
	{
		printf 'cn = "%s"\ntls_www_client\ntls_www_server\nsigning_key\n' "$cn"
		if [ $# -gt 0 ]; then printf '%s\n' "$@"; else echo 'expiration_days = 30'; fi
	} >"$d/$n.tmpl"
	certtool --generate-certificate --load-privkey "$d/$n.key" --load-ca-certificate "$d/$ca.pem" \
		--load-ca-privkey "$d/$ca.key" --template "$d/$n.tmpl" --outfile "$d/$n.pem" >/dev/null 2>&1
}

# mkpki: CA "ca" (trusted) and "other" (not), our certificate, devices dev1 and rogue (CN dev1,
# from the other CA); the credentials give dev2 a PSK
mkpki() {
	psk dev2 dev2-id secret-two >"$BATS_TEST_TMPDIR/creds.jsonl"
	mkca ca
	mkca other
	mkcert server lwm2m-listen ca
	mkcert dev1 dev1 ca
	mkcert rogue dev1 other
}

# x509_register CLIENT NAME EP [-G N]: a Register over coaps with certificate NAME
x509_register() {
	local d=$BATS_TEST_TMPDIR
	timeout 30 "coap-client-$1" -B 3 -m post -c "$d/$2.pem" -j "$d/$2.key" -C "$d/ca.pem" -e '</1/0>,</3/0>' \
		"coaps://127.0.0.1:$DPORT/rd?ep=$3&lt=300" 2>&1 || true
}

start_pki() {
	start_listen -c "$BATS_TEST_TMPDIR/server.pem" -j "$BATS_TEST_TMPDIR/server.key" -A "$BATS_TEST_TMPDIR/ca.pem" "$@"
}

@test "lwm2m-dtls: X.509: a certificate chaining to -A registers as its CN (gnutls and OpenSSL clients), PSK still works" {
	mkpki
	start_pki
	run x509_register gnutls dev1 dev1
	refute_output --partial "4.0"
	wait_until 5 registered dev1
	run -0 jq -c 'select(.event == "register") | [.ep, .sec, .identity]' "$OUT"
	assert_output '["dev1","x509","dev1"]'
	mkcert dev5 dev5 ca
	run x509_register openssl dev5 dev5
	refute_output --partial "4.0"
	wait_until 5 registered dev5
	run dtls_register gnutls dev2-id secret-two dev2
	wait_until 5 registered dev2
	run -0 jq -c 'select(.event == "register") | [.ep, .sec, .identity]' "$OUT"
	assert_line '["dev5","x509","dev5"]'
	assert_line '["dev2","psk","dev2-id"]'
}

@test "lwm2m-dtls: X.509: an observe reaches the device over its certificate session" {
	mkpki
	start_pki
	local d=$BATS_TEST_TMPDIR
	# coap-client repeats its Register on one session (-G) and answers what it does not serve
	# with 4.04: the answer to our observe can only come back through that session's keys
	start_bg device timeout 30 coap-client-gnutls -B 10 -G 8 -m post -c "$d/dev1.pem" -j "$d/dev1.key" \
		-C "$d/ca.pem" -e '</3/0>' "coaps://127.0.0.1:$DPORT/rd?ep=dev1"
	wait_until 10 registered dev1
	run -0 ctl '{"id":1,"op":"observe","ep":"dev1","path":"/3/0/0"}'
	assert_output --partial '"code":"4.04"'
}

@test "lwm2m-dtls: X.509: another CA's certificate or an expired one fails the handshake with a log line" {
	mkpki
	mkcert old dev1 ca 'activation_date = "2020-01-01 00:00:00"' 'expiration_date = "2021-01-01 00:00:00"'
	start_pki
	run x509_register gnutls rogue dev1
	wait_until 5 grep -q "The peer certificate's CA is unknown: 'dev1'" "$BATS_TEST_TMPDIR/listen.err"
	run x509_register openssl old dev1
	wait_until 5 grep -q "The certificate has an invalid usage date: 'dev1'" "$BATS_TEST_TMPDIR/listen.err"
	[ ! -s "$OUT" ]
	run -0 ctl '{"id":1,"op":"list"}'
	assert_output '{"id":1,"op":"list","code":"2.05","registrations":[]}'
}

@test "lwm2m-dtls: X.509: registering as another endpoint than the certificate's gets 4.03 and a log line" {
	mkpki
	start_pki
	run x509_register gnutls dev1 dev9
	assert_output --partial "4.03"
	grep -q 'register of dev9 from .* as dev1 refused: certificate is bound to another endpoint' \
		"$BATS_TEST_TMPDIR/listen.err"
	# a CN naming an endpoint that has a PSK fails already in the handshake
	mkcert dev2x dev2 ca
	run x509_register openssl dev2x dev2
	wait_until 5 grep -q 'certificate CN "dev2": the endpoint of that name has a PSK' "$BATS_TEST_TMPDIR/listen.err"
	[ ! -s "$OUT" ]
}

@test "lwm2m-dtls: X.509: the credentials map a CN or a certificate fingerprint to an endpoint" {
	mkpki
	mkcert serial7 "SN-0007" ca
	mkcert any dev1 ca
	local fp
	fp=$(certtool -i --infile "$BATS_TEST_TMPDIR/any.pem" | grep -A2 Fingerprint: | grep -o 'sha256:[0-9a-f]*')
	{
		psk dev2 dev2-id secret-two
		echo '{"ep":"meter-7","x509_cn":"SN-0007"}'
		printf '{"ep":"pinned","x509_sha256":"%s"}\n' "$fp"
	} >"$BATS_TEST_TMPDIR/creds.jsonl"
	start_pki
	run x509_register gnutls serial7 meter-7
	refute_output --partial "4.0"
	wait_until 5 registered meter-7
	run x509_register gnutls any pinned
	refute_output --partial "4.0"
	wait_until 5 registered pinned
	# mapped CNs no longer name themselves; NoSec is refused for mapped endpoints
	run x509_register gnutls serial7 SN-0007
	assert_output --partial "4.03"
	run coap-client-notls -B 3 -m post -e '</3/0>' "coap://127.0.0.1:$PORT/rd?ep=meter-7"
	assert_output --partial "4.03"
	run -0 jq -c 'select(.event == "register") | [.ep, .sec, .identity]' "$OUT"
	assert_output "$(printf '%s\n' '["meter-7","x509","SN-0007"]' '["pinned","x509","dev1"]')"
}

# spki KEYFILE: the public key's SubjectPublicKeyInfo (DER) in hex
spki() {
	certtool --pubkey-info --load-privkey "$1" --outder 2>/dev/null | xxd -p | tr -d '\n'
}

@test "lwm2m-dtls: RPK: a listed raw public key registers as its endpoint, others are refused" {
	local d=$BATS_TEST_TMPDIR k
	for k in srv rpk1 rpk2 rpk3; do
		certtool --generate-privkey --key-type ecdsa --no-text --outfile "$d/$k.key" 2>/dev/null
	done
	local h2
	h2=$(spki "$d/rpk2.key")
	{
		psk dev2 dev2-id secret-two
		printf '{"ep":"rpk-a","rpk":"%s"}\n' "$(spki "$d/rpk1.key")"
		# the same form as x and y: the last 64 bytes of a P-256 SubjectPublicKeyInfo
		printf '{"ep":"rpk-b","rpk_x":"%s","rpk_y":"%s"}\n' "${h2:54:64}" "${h2:118:64}"
	} >"$d/creds.jsonl"
	start_listen -j "$d/srv.key"
	run timeout 30 coap-client-gnutls -B 3 -m post -M "$d/rpk1.key" -e '</3/0>' "coaps://127.0.0.1:$DPORT/rd?ep=rpk-a"
	refute_output --partial "4.0"
	wait_until 5 registered rpk-a
	run timeout 30 coap-client-gnutls -B 3 -m post -M "$d/rpk2.key" -e '</3/0>' "coaps://127.0.0.1:$DPORT/rd?ep=rpk-b"
	refute_output --partial "4.0"
	wait_until 5 registered rpk-b
	local id
	id=sha256:$(certtool --pubkey-info --load-privkey "$d/rpk1.key" 2>/dev/null | grep -o 'sha256:[0-9a-f]*' | head -1 | cut -d: -f2)
	run -0 jq -c 'select(.event == "register" and .ep == "rpk-a") | [.sec, .identity]' "$OUT"
	assert_output "[\"rpk\",\"$id\"]"
	# key A as endpoint B: 4.03; an unknown key: no handshake
	run timeout 30 coap-client-gnutls -B 3 -m post -M "$d/rpk1.key" -e '</3/0>' "coaps://127.0.0.1:$DPORT/rd?ep=rpk-b"
	assert_output --partial "4.03"
	grep -q "register of rpk-b from .* as $id refused: public key is bound to another endpoint" "$d/listen.err"
	run timeout 30 coap-client-gnutls -B 3 -m post -M "$d/rpk3.key" -e '</3/0>' "coaps://127.0.0.1:$DPORT/rd?ep=rpk-a"
	wait_until 5 grep -q "refused: unknown raw public key sha256:" "$d/listen.err"
	# PSK devices are still served beside raw public keys
	run dtls_register openssl dev2-id secret-two dev2
	wait_until 5 registered dev2
	run -0 jq -r 'select(.event == "register") | .ep' "$OUT"
	assert_output "$(printf '%s\n' rpk-a rpk-b dev2)"
}

@test "lwm2m-dtls: certificate options and credential entries are checked at start" {
	mkpki
	local d=$BATS_TEST_TMPDIR
	run -100 --separate-stderr lwm2m-listen -D 127.0.0.1 -c "$d/server.pem" -S ""
	[[ $stderr == *"-c and -A need our private key (-j)"* ]]
	run -100 --separate-stderr lwm2m-listen -D 127.0.0.1 -c "$d/server.pem" -j "$d/dev1.key" -S ""
	[[ $stderr == *"unable to use certificate"* ]]
	run -100 --separate-stderr lwm2m-listen -D 127.0.0.1 -j "$d/server.key" -A "$d/nonexistent" -S ""
	[[ $stderr == *"unable to read"*"nonexistent"* ]]
	run -100 --separate-stderr lwm2m-listen -c "$d/server.pem" -j "$d/server.key" -S ""
	[[ $stderr == *"-c, -j and -A need -D"* ]]
	echo '{"ep":"a","rpk":"3059"}' >"$d/bad.jsonl"
	run -100 --separate-stderr lwm2m-listen -D 127.0.0.1 -j "$d/server.key" -k "$d/bad.jsonl" -S ""
	[[ $stderr == *"bad.jsonl:1: endpoint a: rpk is not a SubjectPublicKeyInfo in hex"* ]]
	echo '{"ep":"a","rpk":"'"$(spki "$d/dev1.key")"'"}' >"$d/rpk.jsonl"
	run -100 --separate-stderr lwm2m-listen -D 127.0.0.1 -k "$d/rpk.jsonl" -S ""
	[[ $stderr == *"lists raw public keys: give our private key (-j)"* ]]
	echo '{"ep":"a","x509_cn":"x","psk_identity":"i","psk_key":"00"}' >"$d/two.jsonl"
	run -100 --separate-stderr lwm2m-listen -D 127.0.0.1 -k "$d/two.jsonl" -S ""
	[[ $stderr == *"two.jsonl:1: endpoint a: want one of psk_identity + psk_key, rpk, rpk_x + rpk_y, x509_cn, x509_sha256"* ]]
}

@test "lwm2m-dtls: limits: handshakes that never finish hit -H and log a line; a registered device is not disturbed" {
	start_listen -H 3
	# a registered device first: its session is no longer a handshake in progress
	start_bg device timeout 60 coap-client-gnutls -B 40 -G 30 -m post -u dev1-id -k secret-one -e '</3/0>' \
		"coaps://127.0.0.1:$DPORT/rd?ep=dev1"
	wait_until 10 registered dev1
	# three more peers that finish their handshakes and stay: more sessions than -H, none in a
	# handshake, so no limit
	local i
	for i in 1 2 3; do
		start_bg "peer$i" timeout 30 coap-client-gnutls -B 20 -G 15 -m get -u dev2-id -k secret-two \
			"coaps://127.0.0.1:$DPORT/rd"
		wait_until 10 grep -q . "$BATS_TEST_TMPDIR/peer$i.err"
	done
	run grep -c 'limit reached' "$BATS_TEST_TMPDIR/listen.err"
	assert_output 0
	# ClientHellos from six ports that never go on: libcoap keeps each as a handshake in progress
	python3 - "$DPORT" <<'PY'
import socket, sys
hello = bytes([22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 60, 1]) + bytes(60)
socks = []
for i in range(6):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(hello, ("127.0.0.1", int(sys.argv[1])))
    socks.append(s)
PY
	wait_until 5 grep -q 'DTLS handshake limit reached (-H 3): 4 in progress' "$BATS_TEST_TMPDIR/listen.err"
	[ "$(grep -c 'DTLS handshake limit reached' "$BATS_TEST_TMPDIR/listen.err")" -eq 1 ]
	run -0 ctl '{"id":1,"op":"read","ep":"dev1","path":"/3/0/0"}'
	assert_output --partial '"code":"4.04"'
}

@test "lwm2m-dtls: limits: sessions of unregistered peers past -I push out the oldest and log a line" {
	start_listen -I 3
	start_bg device timeout 60 coap-client-gnutls -B 40 -G 30 -m post -u dev1-id -k secret-one -e '</3/0>' \
		"coaps://127.0.0.1:$DPORT/rd?ep=dev1"
	wait_until 10 registered dev1
	# NoSec requests go to lwm2m-listen's own socket: no libcoap session, nothing counted
	for i in 1 2 3 4 5; do
		run -0 coap-client-notls -B 2 -m get "coap://127.0.0.1:$PORT/rd"
		assert_output --partial '4.05'
	done
	run ! grep -q 'session limit reached' "$BATS_TEST_TMPDIR/listen.err"
	# five peers that handshake and then only ask for /rd over and over: idle sessions, not
	# registrations; past three the least recently used goes
	local i
	for i in 1 2 3 4 5; do
		start_bg "peer$i" timeout 30 coap-client-gnutls -B 20 -G 15 -m get -u dev2-id -k secret-two \
			"coaps://127.0.0.1:$DPORT/rd"
		wait_until 10 grep -q . "$BATS_TEST_TMPDIR/peer$i.err"
	done
	wait_until 10 grep -q 'session limit reached (-I 3): dropped the least recently used session' \
		"$BATS_TEST_TMPDIR/listen.err"
	# the registered device keeps its session through all of it
	run -0 ctl '{"id":1,"op":"read","ep":"dev1","path":"/3/0/0"}'
	assert_output --partial '"code":"4.04"'
}

@test "lwm2m-dtls: a device that comes back from another port re-handshakes, Updates, and requests follow it" {
	start_listen
	local p1 p2
	p1=$(free_port)
	p2=$(free_port)
	start_bg dev-a timeout 30 coap-client-gnutls -p "$p1" -B 8 -G 6 -m post -u dev1-id -k secret-one \
		-e '</3/0>' "coaps://127.0.0.1:$DPORT/rd?ep=dev1"
	wait_until 10 registered dev1
	run -0 ctl '{"id":1,"op":"read","ep":"dev1","path":"/3/0/0"}'
	assert_output --partial '"code":"4.04"'
	stop_bg dev-a
	# coap-client repeats its Register (-G): the last one is the registration
	run -0 jq -r 'select(.event == "register") | .addr' "$OUT"
	[ "$(sort -u <<<"$output")" = "127.0.0.1:$p1" ]
	reg=$(jq -r 'select(.event == "register") | .reg' "$OUT" | tail -n 1)
	# the same device from a new port (a NAT rebinding): a new handshake, then an Update
	start_bg dev-b timeout 30 coap-client-gnutls -p "$p2" -B 8 -G 6 -m post -u dev1-id -k secret-one \
		"coaps://127.0.0.1:$DPORT/rd/$reg"
	wait_until 10 jq_some '.event == "update"' "$OUT"
	run -0 jq -c 'select(.event == "update") | [.reg, .addr, .changed]' "$OUT"
	assert_line "[\"$reg\",\"127.0.0.1:$p2\",[\"addr\"]]"
	run -0 ctl '{"id":2,"op":"read","ep":"dev1","path":"/3/0/0"}'
	assert_output --partial '"code":"4.04"'
	run -0 ctl '{"id":3,"op":"list"}'
	assert_output --partial "127.0.0.1:$p2"
	# and another identity cannot take it over from a third port
	run timeout 30 coap-client-openssl -B 3 -m post -u dev2-id -k secret-two "coaps://127.0.0.1:$DPORT/rd/$reg"
	assert_output --partial "4.03"
}

@test "lwm2m-dtls: X.509: SIGHUP rereads the trust anchors; a broken file keeps the ones in use" {
	mkpki
	local d=$BATS_TEST_TMPDIR
	cp "$d/ca.pem" "$d/trust.pem"
	start_listen -c "$d/server.pem" -j "$d/server.key" -A "$d/trust.pem"
	run x509_register gnutls rogue dev1
	wait_until 5 grep -q "The peer certificate's CA is unknown: 'dev1'" "$d/listen.err"
	cat "$d/other.pem" >>"$d/trust.pem"
	kill -HUP "$(bg_pid listen)"
	wait_until 5 grep -q "SIGHUP: 1 DTLS credentials" "$d/listen.err"
	run x509_register gnutls rogue dev1
	refute_output --partial "4.0"
	wait_until 5 registered dev1
	echo "not a certificate" >"$d/trust.pem"
	kill -HUP "$(bg_pid listen)"
	wait_until 5 grep -q "keeping our certificate, key and trust anchors" "$d/listen.err"
	mkcert dev6 dev6 ca
	run x509_register openssl dev6 dev6
	refute_output --partial "4.0"
	wait_until 5 registered dev6
}

@test "lwm2m-dtls: X.509: a device certificate from an intermediate CA registers when the device sends the chain" {
	mkpki
	local d=$BATS_TEST_TMPDIR
	certtool --generate-privkey --key-type ecdsa --no-text --outfile "$d/int.key" 2>/dev/null
	printf 'cn = "intermediate"\nca\ncert_signing_key\nexpiration_days = 30\n' >"$d/int.tmpl"
	certtool --generate-certificate --load-privkey "$d/int.key" --load-ca-certificate "$d/ca.pem" \
		--load-ca-privkey "$d/ca.key" --template "$d/int.tmpl" --outfile "$d/int.pem" >/dev/null 2>&1
	mkcert leaf leaf9 int
	cp "$d/leaf.pem" "$d/alone.pem"
	cp "$d/leaf.key" "$d/alone.key"
	cat "$d/int.pem" >>"$d/leaf.pem"
	start_pki
	# the leaf alone does not chain to -A's root
	run x509_register gnutls alone leaf9
	wait_until 5 grep -q "The peer certificate's CA is unknown: 'leaf9'" "$d/listen.err"
	run x509_register gnutls leaf leaf9
	refute_output --partial "4.0"
	wait_until 5 registered leaf9
	run -0 jq -c 'select(.event == "register") | [.ep, .sec, .identity]' "$OUT"
	assert_output '["leaf9","x509","leaf9"]'
}

# dtls_device NAME EP IDENTITY KEY [ARGS...]: tests/peers/dtls-device.js (npm node-dtls-client) as
# device EP; commands to NAME.cmd (append), events in NAME.out.
dtls_device() {
	local name=$1 ep=$2 id=$3 key=$4
	shift 4
	: >"$BATS_TEST_TMPDIR/$name.cmd"
	start_bg "$name" node "$PEERS/dtls-device.js" --port "$DPORT" --identity "$id" --key "$key" --ep "$ep" \
		--commands "$BATS_TEST_TMPDIR/$name.cmd" "$@"
}

# ev NAME FILTER: some event of NAME.out makes the jq FILTER true
ev() { jq_some "$2" "$BATS_TEST_TMPDIR/$1.out"; }

@test "lwm2m-dtls: Block1: a Register in parts registers; past 64 KiB it is refused 4.13 with Size1 at the part that passes it" {
	start_listen
	# coap-client sends 30 parts of 1024 bytes, Size1 in the first
	python3 -c 'import sys; sys.stdout.write(("</3303/0>," * 3000)[:29999])' >"$BATS_TEST_TMPDIR/links"
	run -0 timeout 30 coap-client-gnutls -B 10 -m post -b 1024 -u dev1-id -k secret-one -f "$BATS_TEST_TMPDIR/links" \
		"coaps://127.0.0.1:$DPORT/rd?ep=dev1&lt=300"
	refute_output --partial "4."
	wait_until 5 jq_some '.event == "register" and .ep == "dev1" and .objects == ["/3303/0"]' "$OUT"
	# a device whose Size1 says 1 KiB and that goes on: the part that passes 64 KiB gets 4.13
	run -0 timeout 60 node "$PEERS/dtls-device.js" --port "$DPORT" --identity dev2-id --key secret-two --ep dev2 \
		--block1 100 --size1 1024 </dev/null
	run -0 jq -c 'select(.event == "block1") | [.codes, .last, .size1, .diagnostic]' <<<"$output"
	assert_output '[{"2.31":64,"4.13":1},"4.13",65536,"request body too large"]'
	grep -q 'DTLS refused: request body too large: its Block1 part at byte 65536 goes past the 65536 bytes taken (4.13)' \
		"$BATS_TEST_TMPDIR/listen.err"
	! jq_some '.event == "register" and .ep == "dev2"' "$OUT"
	# and 20 parts that stay under it register
	run -0 timeout 60 node "$PEERS/dtls-device.js" --port "$DPORT" --identity dev2-id --key secret-two --ep dev2 \
		--block1 20 --size1 20479 </dev/null
	run -0 jq -c 'select(.event == "block1") | [.codes, .last]' <<<"$output"
	assert_output '[{"2.31":19,"2.01":1},"2.01"]'
	wait_until 5 jq_some '.event == "register" and .ep == "dev2"' "$OUT"
}

@test "lwm2m-dtls: Block1 without Size1 (optional in RFC 7959): a Register in parts registers; past 64 KiB it is refused 4.13 with Size1 65536" {
	start_listen
	run -0 timeout 60 node "$PEERS/dtls-device.js" --port "$DPORT" --identity dev2-id --key secret-two --ep dev2 \
		--block1 20 </dev/null
	run -0 jq -c 'select(.event == "block1") | [.codes, .last]' <<<"$output"
	assert_output '[{"2.31":19,"2.01":1},"2.01"]'
	wait_until 5 jq_some '.event == "register" and .ep == "dev2" and .objects == ["/3303/0"]' "$OUT"
	run -0 timeout 60 node "$PEERS/dtls-device.js" --port "$DPORT" --identity dev1-id --key secret-one --ep dev1 \
		--block1 100 </dev/null
	run -0 jq -c 'select(.event == "block1") | [.codes, .last, .size1, .diagnostic]' <<<"$output"
	assert_output '[{"2.31":64,"4.13":1},"4.13",65536,"request body too large"]'
	grep -q 'DTLS refused: request body too large: its Block1 part at byte 65536 goes past the 65536 bytes taken (4.13)' \
		"$BATS_TEST_TMPDIR/listen.err"
	! jq_some '.event == "register" and .ep == "dev1"' "$OUT"
	kill -0 "$(bg_pid listen)"
}

@test "lwm2m-dtls: Block2: a read answered in parts comes back whole; past 1 MiB it ends with bad-response and a log line; notifications in parts too" {
	start_listen
	DPORT2=$(free_port)
	dtls_device dev1 dev1 dev1-id secret-one --big 5000
	dtls_device dev2 dev2 dev2-id secret-two --big 1200000
	wait_until 10 registered dev1
	wait_until 10 registered dev2
	run -0 ctl '{"id":1,"op":"read","ep":"dev1","path":"/3/0/0","format":"text"}'
	run -0 jq -c '[.code, (.value | length), (.value | test("^x+$"))]' <<<"$output"
	assert_output '["2.05",5000,true]'
	# the device was asked for each of its 5 parts
	run -0 jq -c 'select(.event == "get") | .block2' "$BATS_TEST_TMPDIR/dev1.out"
	assert_output $'null\n22\n38\n54\n70'
	run -0 ctl '{"id":2,"op":"read","ep":"dev2","path":"/3/0/0","format":"text"}'
	run -0 jq -c '[.code, .error]' <<<"$output"
	assert_output '["bad-response","Block2 body larger than 1 MiB"]'
	grep -q 'block-wise answer from dev2 (.* DTLS) abandoned: Block2 body larger than 1 MiB' "$BATS_TEST_TMPDIR/listen.err"
	# the other device is served on
	run -0 ctl '{"id":3,"op":"read","ep":"dev1","path":"/3/0/0","format":"text"}'
	run -0 jq -c '[.code, (.value | length)]' <<<"$output"
	assert_output '["2.05",5000]'
	# an observation whose first answer and notifications come in parts, from standard input
	mkfifo "$BATS_TEST_TMPDIR/in"
	start_bg listen2 sh -c "exec lwm2m-listen -l 127.0.0.1:$(free_port) -D 127.0.0.1:$DPORT2 -k '$CREDS' -C '$SOCK.2' -S '' <'$BATS_TEST_TMPDIR/in'"
	exec {infd}>"$BATS_TEST_TMPDIR/in"
	wait_until 5 test -S "$SOCK.2"
	DPORT=$DPORT2 dtls_device dev3 dev1 dev1-id secret-one --big 3000
	wait_until 10 jq_some '.event == "register"' "$BATS_TEST_TMPDIR/listen2.out"
	echo '{"id":"o","op":"observe","ep":"dev1","path":"/3/0/0","format":"text"}' >&"$infd"
	wait_until 10 jq_some '.id == "o"' "$BATS_TEST_TMPDIR/listen2.out"
	echo "notify 1" >>"$BATS_TEST_TMPDIR/dev3.cmd"
	wait_until 10 jq_some '.op == "notify"' "$BATS_TEST_TMPDIR/listen2.out"
	run -0 jq -c 'select(.id == "o") | [.op, .code, (.value | length)]' "$BATS_TEST_TMPDIR/listen2.out"
	assert_output '["observe","2.05",3000]
["notify","2.05",3000]'
	exec {infd}>&-
}

@test "lwm2m-dtls: a CON notification is acknowledged only once its line is written: a control reader that stalls makes the device retransmit" {
	start_listen
	dtls_device dev1 dev1 dev1-id secret-one --ack-timeout 300 --retransmit 100
	wait_until 10 registered dev1
	# a control client asks for 3000 stats (1.4 MB of answers), then observes, then reads nothing
	# until ./go: its socket is full and the observe's answer waits behind the rest when the
	# device is asked (commands are taken in order)
	start_bg reader python3 -c '
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"{\"op\":\"stats\"}\n" * 3000)
s.sendall(b"{\"id\":\"o\",\"op\":\"observe\",\"ep\":\"dev1\",\"path\":\"/3/0/0\",\"format\":\"text\"}\n")
while not os.path.exists(sys.argv[2]):
    time.sleep(0.05)
for line in s.makefile("rb"):
    if b"\"id\":\"o\"" in line:
        sys.stdout.buffer.write(line)
        sys.stdout.flush()
' "$SOCK" "$BATS_TEST_TMPDIR/go"
	wait_until 20 ev dev1 '.event == "get" and .observe == 0'
	echo "notify 42" >>"$BATS_TEST_TMPDIR/dev1.cmd"
	# no ACK while the line waits: the device sends it again and again
	wait_until 20 ev dev1 '.event == "notify-sent" and .attempt >= 4'
	! ev dev1 '.event == "notify-acked"'
	touch "$BATS_TEST_TMPDIR/go"
	wait_until 30 ev dev1 '.event == "notify-acked"'
	wait_until 10 jq_some '.op == "notify"' "$BATS_TEST_TMPDIR/reader.out"
	# the line came once, after the observe's answer
	run -0 jq -c '[.op, .code, .value]' "$BATS_TEST_TMPDIR/reader.out"
	assert_output '["observe","2.05","0"]
["notify","2.05","42"]'
	# a reader that keeps up: acknowledged at the first try
	run -0 ctl '{"op":"stats"}'
	echo "notify 43" >>"$BATS_TEST_TMPDIR/dev1.cmd"
	wait_until 10 ev dev1 '.event == "notify-acked" and .attempt == 1'
}

@test "lwm2m-dtls: cancel-observe after the device came back from another port goes to its new session" {
	start_listen
	local p1 p2
	p1=$(free_port)
	p2=$(free_port)
	dtls_device dev-a dev1 dev1-id secret-one --listen-port "$p1"
	wait_until 10 registered dev1
	reg=$(jq -r 'select(.event == "register") | .reg' "$OUT")
	# one control connection observes, and later cancels
	: >"$BATS_TEST_TMPDIR/ctlc.cmd"
	start_bg ctlc python3 -c '
import socket, sys, time, threading
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
def read():
    for line in s.makefile("rb"):
        sys.stdout.buffer.write(line)
        sys.stdout.flush()
threading.Thread(target=read, daemon=True).start()
off = 0
while True:
    with open(sys.argv[2], "rb") as f:
        f.seek(off)
        b = f.read()
    off += len(b)
    if b:
        s.sendall(b)
    time.sleep(0.05)
' "$SOCK" "$BATS_TEST_TMPDIR/ctlc.cmd"
	echo '{"id":"o","op":"observe","ep":"dev1","path":"/3/0/0","format":"text"}' >>"$BATS_TEST_TMPDIR/ctlc.cmd"
	wait_until 10 jq_some '.id == "o" and .code == "2.05"' "$BATS_TEST_TMPDIR/ctlc.out"
	# the device comes back from another port: a new handshake and an Update
	stop_bg dev-a
	dtls_device dev-b dev1 dev1-id secret-one --listen-port "$p2" --update "/rd/$reg"
	wait_until 10 ev dev-b '.event == "updated" and .code == "2.04"'
	wait_until 5 jq_some '.event == "update" and .addr == "127.0.0.1:'"$p2"'"' "$OUT"
	echo '{"id":"c","op":"cancel-observe","ep":"dev1","path":"/3/0/0"}' >>"$BATS_TEST_TMPDIR/ctlc.cmd"
	# the cancelling GET reaches the device where it is now, and its answer comes back
	wait_until 10 ev dev-b '.event == "get" and .path == "/3/0/0" and .observe == 1'
	wait_until 10 jq_some '.id == "c"' "$BATS_TEST_TMPDIR/ctlc.out"
	run -0 jq -c 'select(.id == "c") | [.op, .code]' "$BATS_TEST_TMPDIR/ctlc.out"
	assert_output '["cancel-observe","2.05"]'
	wait_until 5 jq_some '.id == "o" and .code == "cancelled"' "$BATS_TEST_TMPDIR/ctlc.out"
}
