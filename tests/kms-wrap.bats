#!/usr/bin/env bats
# kms-wrap: RFC 3394 key wrap and KeyEnvelopes, local keyring and AWS KMS encryption, secure
# element parts, and the crypto co-process.
load test_helper
bats_require_minimum_version 1.5.0

teardown() { stop_all; }

@test "keywrap: RFC 3394 vectors, KeyEnvelopes and YAML KEK keyrings (unit)" {
	run "$UNIT/test_keywrap"
	assert_success
}

@test "kms: local keyring, AES-256-GCM and encryption contexts (unit)" {
	run "$UNIT/test_kms"
	assert_success
}

ROOTKEY=000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F

keyring() {
	kms-wrap genkey -k "$BATS_TEST_TMPDIR/ring.yml" parts
	kms-wrap genkey -k "$BATS_TEST_TMPDIR/ring.yml" other
}

@test "kms-wrap genkey: a 0600 keyring of named 256-bit keys; a name is not given twice" {
	run -0 --separate-stderr kms-wrap genkey -k "$BATS_TEST_TMPDIR/ring.yml" parts
	run -0 stat -c %a "$BATS_TEST_TMPDIR/ring.yml"
	assert_output 600
	run -0 grep -cE '^parts: [0-9A-F]{64}$' "$BATS_TEST_TMPDIR/ring.yml"
	run -100 --separate-stderr kms-wrap genkey -k "$BATS_TEST_TMPDIR/ring.yml" parts
	[[ $stderr == *'a key named "parts" exists already'* ]]
	run -100 --separate-stderr kms-wrap genkey -k "$BATS_TEST_TMPDIR/ring.yml" 'bad name'
	run -0 grep -c . "$BATS_TEST_TMPDIR/ring.yml"
	assert_output 1
}

@test "kms-wrap encrypt/decrypt: round trip through the local keyring, context bound, plaintext never logged" {
	keyring
	cd "$BATS_TEST_TMPDIR"
	printf '%s\n' "{\"part_number\":\"ATECC608B-TNGLORA\",\"psk_root_keys\":\"$ROOTKEY\",\"n\":1}" \
		'{"part_number":"no-key-here"}' >parts.jsonl
	run -0 --separate-stderr sh -c 'kms-wrap encrypt -v -k ring.yml -K parts -C part_number <parts.jsonl >enc.jsonl'
	[[ $stderr != *"$ROOTKEY"* ]]
	run -0 jq -r 'has("psk_root_keys"), (.psk_root_keys_encrypted // "-" | length > 40), .n' enc.jsonl
	assert_output $'false\ntrue\n1\nfalse\nfalse\nnull'
	run -0 grep -c "$ROOTKEY" enc.jsonl || true
	run -0 --separate-stderr sh -c 'kms-wrap decrypt -v -k ring.yml -C part_number <enc.jsonl >dec.jsonl'
	[[ $stderr != *"$ROOTKEY"* ]]
	run -0 jq -cS . dec.jsonl
	assert_output "$(jq -cS . parts.jsonl)"
	# each encryption uses a fresh nonce
	run -0 sh -c 'kms-wrap encrypt -k ring.yml -K parts <parts.jsonl | head -1 | jq -r .psk_root_keys_encrypted'
	a=$output
	run -0 sh -c 'kms-wrap encrypt -k ring.yml -K parts <parts.jsonl | head -1 | jq -r .psk_root_keys_encrypted'
	[ "$a" != "$output" ]
}

@test "kms-wrap decrypt: wrong context, wrong key, truncated ciphertext, bad base64 are refused; other lines carry on" {
	keyring
	cd "$BATS_TEST_TMPDIR"
	echo "{\"part_number\":\"A\",\"psk_root_keys\":\"$ROOTKEY\"}" |
		kms-wrap encrypt -k ring.yml -K parts -C part_number >good.jsonl
	ct=$(jq -r .psk_root_keys_encrypted good.jsonl)
	{
		jq -c '.part_number = "B"' good.jsonl                                  # wrong context
		jq -c --arg c "${ct:0:40}" '.psk_root_keys_encrypted = $c' good.jsonl  # truncated
		jq -c '.psk_root_keys_encrypted = "not*base64!"' good.jsonl            # bad base64
		echo '{"part_number":"A",'                                             # malformed JSON
		cat good.jsonl
	} >mixed.jsonl
	run -1 --separate-stderr sh -c 'kms-wrap decrypt -k ring.yml -C part_number <mixed.jsonl'
	assert_output "{\"part_number\":\"A\",\"psk_root_keys\":\"$ROOTKEY\"}"
	[[ $stderr == *'line 1: field "psk_root_keys_encrypted": ciphertext does not authenticate under key "parts" (wrong encryption context'* ]]
	[[ $stderr == *'line 2: field "psk_root_keys_encrypted": ciphertext is truncated'* ]]
	[[ $stderr == *'line 3: field "psk_root_keys_encrypted": ciphertext is not base64'* ]]
	[[ $stderr == *'line 4: malformed JSON'* ]]
	# no context at all where one was bound (the record carries it as kms_context: take it away)
	run -1 --separate-stderr sh -c 'jq -c "del(.kms_context)" good.jsonl | kms-wrap decrypt -k ring.yml'
	[[ $stderr == *'does not authenticate'* ]]
	# the wrong key: asked for by name, and a keyring where "parts" is another key
	run -1 --separate-stderr sh -c 'kms-wrap decrypt -k ring.yml -K other -C part_number <good.jsonl'
	[[ $stderr == *'ciphertext is under key "parts", not "other"'* ]]
	kms-wrap genkey -k ring2.yml parts
	run -1 --separate-stderr sh -c 'kms-wrap decrypt -k ring2.yml -C part_number <good.jsonl'
	[[ $stderr == *'does not authenticate under key "parts"'* ]]
	kms-wrap genkey -k ring3.yml x
	run -1 --separate-stderr sh -c 'kms-wrap decrypt -k ring3.yml -C part_number <good.jsonl'
	[[ $stderr == *'which is not in the keyring'* ]]
	# a context field missing from the record
	run -1 --separate-stderr sh -c 'jq -c "del(.part_number)" good.jsonl | kms-wrap decrypt -k ring.yml -C part_number'
	[[ $stderr == *'context field "part_number" is missing'* ]]
}

@test "kms-wrap encrypt: fixed contexts, several fields, base64 and text encodings" {
	keyring
	cd "$BATS_TEST_TMPDIR"
	echo '{"a":"c2VjcmV0","b":"AABB"}' >in.jsonl
	run -0 sh -c 'kms-wrap encrypt -k ring.yml -K other -f a -e base64 -c tenant=t1 -x .enc <in.jsonl >e.jsonl'
	run -0 jq -c 'keys, .kms_context' e.jsonl
	assert_output $'["a.enc","b","kms_context"]\n{"tenant":"t1"}'
	run -1 --separate-stderr sh -c 'kms-wrap decrypt -k ring.yml -f a -e base64 -c tenant=t2 -x .enc <e.jsonl'
	run -0 sh -c 'kms-wrap decrypt -k ring.yml -f a -e text -c tenant=t1 -x .enc <e.jsonl'
	assert_output '{"b":"AABB","a":"secret"}'
	run -100 --separate-stderr kms-wrap encrypt -k ring.yml -f a
	[[ $stderr == *'-K/--key-id is required'* ]]
	run -100 --separate-stderr kms-wrap encrypt -k ring.yml -K parts "$ROOTKEY"
	[[ $stderr == *'never from arguments'* ]]
	run -100 --separate-stderr kms-wrap decrypt -k "$BATS_TEST_TMPDIR/missing.yml"
	[[ $stderr == *'unable to read'* ]]
}

@test "kms-wrap wrap/unwrap: KeyEnvelopes with KEKs by label (RFC 3394 4.1 vector), clear envelopes, wrong KEK" {
	cd "$BATS_TEST_TMPDIR"
	printf 'ns-000013: 000102030405060708090A0B0C0D0E0F\nwrong: 0F0E0D0C0B0A09080706050403020100\n' >keks.yml
	echo '{"AppSKey":"00112233445566778899AABBCCDDEEFF","DevEUI":"0102030405060708"}' >in.jsonl
	run -0 sh -c 'kms-wrap wrap -j keks.yml -l ns-000013 -f AppSKey <in.jsonl'
	assert_output '{"AppSKey":{"KEKLabel":"ns-000013","AESKey":"1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"},"DevEUI":"0102030405060708"}'
	echo "$output" >w.jsonl
	run -0 sh -c 'kms-wrap unwrap -j keks.yml -f AppSKey <w.jsonl'
	assert_output "$(cat in.jsonl)"
	run -0 sh -c 'kms-wrap wrap -f AppSKey <in.jsonl'
	assert_output '{"AppSKey":{"KEKLabel":"","AESKey":"00112233445566778899AABBCCDDEEFF"},"DevEUI":"0102030405060708"}'
	sed 's/ns-000013/wrong/' w.jsonl >bad.jsonl
	echo '{"AppSKey":"0011"}' >>bad.jsonl
	run -1 --separate-stderr sh -c 'kms-wrap unwrap -j keks.yml -f AppSKey <bad.jsonl'
	[[ $stderr == *'line 1: field "AppSKey": KeyEnvelope does not unwrap with KEK "wrong"'* ]]
	run -1 --separate-stderr sh -c 'kms-wrap wrap -j keks.yml -l ns-000013 -f AppSKey <bad.jsonl'
	[[ $stderr == *'line 2: field "AppSKey": not a 16-byte key in hex'* ]]
	run -100 --separate-stderr kms-wrap wrap -j keks.yml -l nope -f AppSKey </dev/null
	[[ $stderr == *'no KEK labelled "nope"'* ]]
}

@test "kms-wrap encrypt: the local ciphertext format decrypts with an independent AES-GCM (python cryptography)" {
	python3 -c 'from cryptography.hazmat.primitives.ciphers.aead import AESGCM' 2>/dev/null ||
		skip "python3 cryptography is not installed"
	keyring
	cd "$BATS_TEST_TMPDIR"
	echo "{\"part_number\":\"P-1\",\"psk_root_keys\":\"$ROOTKEY\"}" |
		kms-wrap encrypt -k ring.yml -K parts -C part_number -c site=lab >enc.jsonl
	run -0 python3 - ring.yml enc.jsonl <<'PY'
import base64, json, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
keys = dict(l.split(": ") for l in open(sys.argv[1]).read().split("\n") if l)
rec = json.loads(open(sys.argv[2]).read())
blob = base64.b64decode(rec["psk_root_keys_encrypted"], validate=True)
assert blob[0] == 0xC1
n = blob[1]; name = blob[2:2 + n].decode(); hdr = blob[:2 + n]
nonce, ct = blob[2 + n:14 + n], blob[14 + n:]
ctx = json.dumps({"part_number": rec["part_number"], "site": "lab"}, sort_keys=True, separators=(",", ":"))
pt = AESGCM(bytes.fromhex(keys[name])).decrypt(nonce, ct, hdr + ctx.encode())
print(name, pt.hex().upper())
PY
	assert_output "parts $ROOTKEY"
}

# moto_server on a free port with signature checking: the first three actions (unsigned) make
# an IAM user and its key; every later request must be signed with that key.
start_moto() {
	command -v moto_server >/dev/null || skip "moto_server is not installed (pip install 'moto[server]')"
	command -v aws >/dev/null || skip "the AWS CLI is not installed"
	MOTO_PORT=$(free_port tcp)
	EP=http://127.0.0.1:$MOTO_PORT
	export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE \
		AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY AWS_PAGER= AWS_CONFIG_FILE=/dev/null \
		AWS_SHARED_CREDENTIALS_FILE=/dev/null
	INITIAL_NO_AUTH_ACTION_COUNT=3 start_bg moto moto_server -p "$MOTO_PORT"
	wait_until 30 curl -s "$EP/moto-api/"
	aws --endpoint-url "$EP" iam create-user --user-name kms-wrap >/dev/null
	aws --endpoint-url "$EP" iam create-access-key --user-name kms-wrap >"$BATS_TEST_TMPDIR/ak.json"
	aws --endpoint-url "$EP" iam put-user-policy --user-name kms-wrap --policy-name all \
		--policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
	AWS_ACCESS_KEY_ID=$(jq -r .AccessKey.AccessKeyId "$BATS_TEST_TMPDIR/ak.json")
	AWS_SECRET_ACCESS_KEY=$(jq -r .AccessKey.SecretAccessKey "$BATS_TEST_TMPDIR/ak.json")
	KEY_ID=$(aws --endpoint-url "$EP" kms create-key --query KeyMetadata.KeyId --output text)
	KEY_ARN=$(aws --endpoint-url "$EP" kms describe-key --key-id "$KEY_ID" --query KeyMetadata.Arn --output text)
	aws --endpoint-url "$EP" kms create-alias --alias-name alias/parts --target-key-id "$KEY_ID"
	OTHER_KEY=$(aws --endpoint-url "$EP" kms create-key --query KeyMetadata.KeyId --output text)
}

@test "kms-wrap --aws: ciphertexts of aws kms encrypt decrypt, ours decrypt with aws kms decrypt (moto, signed)" {
	start_moto
	cd "$BATS_TEST_TMPDIR"
	python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.argv[1]))' "$ROOTKEY" >root.bin
	# AWS CLI -> kms-wrap, bound to the part number, under the alias
	aws --endpoint-url "$EP" kms encrypt --key-id alias/parts --plaintext fileb://root.bin \
		--encryption-context part_number=ATECC608B --query CiphertextBlob --output text >ct.b64
	jq -nc --rawfile c ct.b64 '{part_number:"ATECC608B",psk_root_keys_encrypted:($c|rtrimstr("\n"))}' >aws.jsonl
	run -0 --separate-stderr sh -c "kms-wrap decrypt --aws --endpoint-url $EP -C part_number <aws.jsonl"
	assert_output "{\"part_number\":\"ATECC608B\",\"psk_root_keys\":\"$ROOTKEY\"}"
	# kms-wrap -> AWS CLI, by key id, key ARN and alias
	for k in "$KEY_ID" "$KEY_ARN" alias/parts; do
		echo "{\"part_number\":\"P9\",\"psk_root_keys\":\"$ROOTKEY\"}" |
			kms-wrap encrypt -a -E "$EP" -K "$k" -C part_number >ours.jsonl
		jq -r .psk_root_keys_encrypted ours.jsonl | base64 -d >ours.bin
		run -0 sh -c "aws --endpoint-url $EP kms decrypt --ciphertext-blob fileb://ours.bin \
			--encryption-context part_number=P9 --query Plaintext --output text | base64 -d | od -An -tx1 | tr -d ' \\n'"
		assert_output "$(echo "$ROOTKEY" | tr A-F a-f)"
	done
	# the environment names the endpoint as well
	run -0 sh -c "AWS_ENDPOINT_URL_KMS=$EP kms-wrap decrypt -a -C part_number <aws.jsonl"
	assert_output "{\"part_number\":\"ATECC608B\",\"psk_root_keys\":\"$ROOTKEY\"}"
}

@test "kms-wrap --aws: wrong context, wrong key, truncated, bad base64, bad signature, unreachable KMS" {
	start_moto
	cd "$BATS_TEST_TMPDIR"
	echo "{\"part_number\":\"A\",\"psk_root_keys\":\"$ROOTKEY\"}" |
		kms-wrap encrypt -a -E "$EP" -K alias/parts -C part_number >good.jsonl
	ct=$(jq -r .psk_root_keys_encrypted good.jsonl)
	{
		jq -c '.part_number = "B"' good.jsonl
		jq -c --arg c "${ct:0:40}" '.psk_root_keys_encrypted = $c' good.jsonl
		jq -c '.psk_root_keys_encrypted = "not*base64!"' good.jsonl
		cat good.jsonl
	} >mixed.jsonl
	run -1 --separate-stderr sh -c "kms-wrap decrypt -a -E $EP -C part_number <mixed.jsonl"
	assert_output "{\"part_number\":\"A\",\"psk_root_keys\":\"$ROOTKEY\"}"
	[[ $stderr == *'line 1: field "psk_root_keys_encrypted": AWS KMS Decrypt: HTTP 400 InvalidCiphertextException'* ]]
	[[ $stderr == *'line 2: field "psk_root_keys_encrypted": AWS KMS Decrypt: HTTP 400'* ]]
	[[ $stderr == *'line 3: field "psk_root_keys_encrypted": ciphertext is not base64'* ]]
	# asking for another key than the ciphertext's
	run -1 --separate-stderr sh -c "kms-wrap decrypt -a -E $EP -K $OTHER_KEY -C part_number <good.jsonl"
	[[ $stderr == *'line 1: field "psk_root_keys_encrypted": AWS KMS Decrypt: HTTP 400'* ]]
	# a wrong secret: the server checks the signature
	run -1 --separate-stderr sh -c "AWS_SECRET_ACCESS_KEY=wrong kms-wrap decrypt -a -E $EP -C part_number <good.jsonl"
	[[ $stderr == *'HTTP 403 SignatureDoesNotMatch'* ]]
	echo "{\"psk_root_keys\":\"$ROOTKEY\"}" >plain.jsonl
	run -1 --separate-stderr sh -c "kms-wrap encrypt -a -E $EP -K alias/nope <plain.jsonl"
	[[ $stderr == *'HTTP 400 NotFoundException'* ]]
	# unreachable: a temporary failure, exit 111
	port=$(free_port tcp)
	run -111 --separate-stderr sh -c "kms-wrap decrypt -a -E http://127.0.0.1:$port -C part_number <good.jsonl"
	[[ $stderr == *"AWS KMS Decrypt at http://127.0.0.1:$port/"* ]]
	# missing credentials: a usage error
	run -100 --separate-stderr sh -c "unset AWS_ACCESS_KEY_ID; kms-wrap decrypt -a -E $EP </dev/null"
}

# The root keys of a secure-element device, derived with Python's hashlib (independently of
# lib/se_parts.c): se_keys PARENT SERIAL -> "NWKKEY APPKEY"
se_keys() {
	python3 - "$1" "$2" <<'PY'
import hashlib, sys
p, sn = bytes.fromhex(sys.argv[1]), bytes.fromhex(sys.argv[2])
k = hashlib.sha256(p + bytes([0x1C, 0x04, 0, 0]) + sn[8:9] + sn[0:2] + bytes(25) + sn + bytes(23)).hexdigest().upper()
print(k[:32], k[32:])
PY
}

SN10=0123A1B2C3D4E5F6EE
SN11=0123A1B2C3D4E5F7EE

se_setup() {
	cd "$BATS_TEST_TMPDIR"
	keyring
	echo "{\"part_number\":\"ATECC608B\",\"psk_root_keys\":\"$ROOTKEY\"}" |
		kms-wrap encrypt -k ring.yml -K parts -C part_number >parts.jsonl
	cat >devices.jsonl <<EOT
{"dev_eui":"0004A30B001C0540","join_eui":"70B3D57ED0000001","mac_version":"1.0.3","part_number":"ATECC608B","serial_number":"$SN10","home_net_id":"000013"}
{"dev_eui":"0004A30B001C0541","join_eui":"70B3D57ED0000002","mac_version":"1.1","part_number":"ATECC608B","serial_number":"$SN11","home_net_id":"000013","home_ns_id":"ns1.example.net","ns_ids":["ns1.example.net"]}
{"dev_eui":"0004A30B001C0542","join_eui":"70B3D57ED0000001","mac_version":"1.0.3","part_number":"OTHER","serial_number":"$SN10","home_net_id":"000013"}
{"dev_eui":"0004A30B001C0530","join_eui":"70B3D57ED0000001","mac_version":"1.0.3","app_key":"2B7E151628AED2A6ABF7158809CF4F3C","home_net_id":"000013"}
EOT
	read -r NWK10 APP10 <<<"$(se_keys $ROOTKEY $SN10)"
	read -r NWK11 APP11 <<<"$(se_keys $ROOTKEY $SN11)"
}

LORA="$BATS_TEST_DIRNAME/node/lora-join.js"

@test "kms-wrap serve: derived secure-element keys answer check-mic; root keys are refused unless exposed" {
	se_setup
	jr=$(node "$LORA" jr "$APP10" 70B3D57ED0000001 0004A30B001C0540 0001)
	bad=$(node "$LORA" jr "$NWK11" 70B3D57ED0000001 0004A30B001C0540 0001)
	{
		echo "{\"id\":1,\"op\":\"check-mic\",\"DevEUI\":\"0004A30B001C0540\",\"JoinEUI\":\"70B3D57ED0000001\",\"MACVersion\":\"1.0.3\",\"PHYPayload\":\"$jr\"}"
		echo "{\"id\":2,\"op\":\"check-mic\",\"DevEUI\":\"0004A30B001C0540\",\"JoinEUI\":\"70B3D57ED0000001\",\"MACVersion\":\"1.0.3\",\"PHYPayload\":\"$bad\"}"
		echo '{"id":3,"op":"root-keys","DevEUI":"0004A30B001C0541","JoinEUI":"70B3D57ED0000002"}'
		echo '{"id":4,"op":"check-mic","DevEUI":"0004A30B001C0599","JoinEUI":"70B3D57ED0000001","MACVersion":"1.0.3","PHYPayload":"'"$jr"'"}'
		echo '{"id":5,"op":"root-keys"'
	} >req.jsonl
	run -0 --separate-stderr sh -c 'kms-wrap serve -D devices.jsonl -p parts.jsonl -k ring.yml -C part_number <req.jsonl'
	[ "${#lines[@]}" -eq 5 ]
	[ "$(jq -c '[.id, .ok]' <<<"${lines[0]}")" = '[1,true]' ]
	[ "$(jq -c '[.id, .ok, .code]' <<<"${lines[1]}")" = '[2,false,"MICFailed"]' ]
	[ "$(jq -c '[.id, .ok, .code]' <<<"${lines[2]}")" = '[3,false,"Refused"]' ]
	[ "$(jq -c '[.id, .ok, .code]' <<<"${lines[3]}")" = '[4,false,"UnknownDevEUI"]' ]
	[ "$(jq -c '[.ok, .code]' <<<"${lines[4]}")" = '[false,"MalformedRequest"]' ]
	# no root key, parent key or derived key appears in any answer or log line
	for k in $ROOTKEY $NWK10 $APP10 $NWK11 $APP11; do
		[[ $output != *"$k"* && $stderr != *"$k"* ]]
	done
	# a part that is not in the table gives no keys
	echo '{"id":6,"op":"check-mic","DevEUI":"0004A30B001C0542","JoinEUI":"70B3D57ED0000001","MACVersion":"1.0.3","PHYPayload":"'"$jr"'"}' >r6
	run -0 --separate-stderr sh -c 'kms-wrap serve -D devices.jsonl -p parts.jsonl -k ring.yml -C part_number <r6'
	[ "$(jq -r .ok <<<"$output")" = false ]
	# --expose-root-keys: the derived keys, as Python derives them
	run -0 --separate-stderr sh -c 'sed -n 3p req.jsonl | kms-wrap serve -X -D devices.jsonl -p parts.jsonl -k ring.yml -C part_number'
	[ "$(jq -r .ok <<<"$output")" = true ]
	[[ $output == *"$NWK11"* && $output == *"$APP11"* ]]
}

@test "kms-wrap serve: a parts table that does not decrypt leaves those parts out; bad configuration exits 100" {
	se_setup
	jq -c '.part_number = "MOVED"' parts.jsonl >moved.jsonl
	run -0 --separate-stderr sh -c 'kms-wrap serve -D devices.jsonl -p moved.jsonl -k ring.yml -C part_number </dev/null'
	[[ $stderr == *'part "MOVED": psk_root_keys_encrypted: ciphertext does not authenticate'* ]]
	run -100 --separate-stderr kms-wrap serve -p parts.jsonl -k ring.yml </dev/null
	[[ $stderr == *'-D/--devices is required'* ]]
	run -100 --separate-stderr sh -c 'kms-wrap serve -D nope.jsonl -k ring.yml </dev/null'
	run -100 --separate-stderr sh -c 'kms-wrap serve -D devices.jsonl -p parts.jsonl -k nope.yml </dev/null'
	run -111 --separate-stderr sh -c 'kms-wrap serve -D devices.jsonl -p nope.jsonl -k ring.yml </dev/null'
}

@test "kms-wrap serve: SIGHUP reloads the parts table and the registry; -d readiness" {
	se_setup
	mkfifo in
	: >parts2.jsonl
	start_bg serve sh -c 'exec kms-wrap serve -d 3 -D devices.jsonl -p parts2.jsonl -k ring.yml -C part_number <in 3>ready'
	exec 4>in
	wait_until 10 test -s ready
	jr=$(node "$LORA" jr "$APP10" 70B3D57ED0000001 0004A30B001C0540 0003)
	req="{\"id\":1,\"op\":\"check-mic\",\"DevEUI\":\"0004A30B001C0540\",\"JoinEUI\":\"70B3D57ED0000001\",\"MACVersion\":\"1.0.3\",\"PHYPayload\":\"$jr\"}"
	echo "$req" >&4
	wait_until 10 grep -q '"id":1' "$BATS_TEST_TMPDIR/serve.out"
	run -0 jq -r .ok "$BATS_TEST_TMPDIR/serve.out"
	assert_output false
	cp parts.jsonl parts2.jsonl
	kill -HUP "$(bg_pid serve)"
	echo "${req/\"id\":1/\"id\":2}" >&4
	wait_until 10 grep -q '"id":2' "$BATS_TEST_TMPDIR/serve.out"
	run -0 jq -r 'select(.id == 2) | .ok' "$BATS_TEST_TMPDIR/serve.out"
	assert_output true
	exec 4>&-
	grep -q 'reloaded on SIGHUP' "$BATS_TEST_TMPDIR/serve.err"
}

@test "kms-wrap serve on stdin: SIGTERM ends it cleanly (exit 0) after the answers to what it read" {
	se_setup
	mkfifo in
	start_bg serve sh -c 'exec kms-wrap serve -d 3 -D devices.jsonl -p parts.jsonl -k ring.yml -C part_number <in 3>ready'
	exec 4>in
	wait_until 10 test -s ready
	jr=$(node "$LORA" jr "$APP10" 70B3D57ED0000001 0004A30B001C0540 0004)
	echo "{\"id\":1,\"op\":\"check-mic\",\"DevEUI\":\"0004A30B001C0540\",\"JoinEUI\":\"70B3D57ED0000001\",\"MACVersion\":\"1.0.3\",\"PHYPayload\":\"$jr\"}" >&4
	wait_until 10 grep -q '"id":1' "$BATS_TEST_TMPDIR/serve.out"
	# its input stays open: only the signal ends it
	local pid rc=0
	pid=$(bg_pid serve)
	kill -TERM "$pid"
	wait "$pid" || rc=$?
	exec 4>&-
	[ "$rc" -eq 0 ]
	run -0 jq -c '[.id, .ok]' "$BATS_TEST_TMPDIR/serve.out"
	assert_output '[1,true]'
}

@test "kms-wrap encrypt -c/-C: the context goes with the record as kms_context; the registry and parts loaders and decrypt use it" {
	se_setup
	# a registry line with its root key encrypted under a context naming the device
	grep 0004A30B001C0530 devices.jsonl | kms-wrap encrypt -k ring.yml -K parts -f app_key -C dev_eui -c tenant=t1 >enc.jsonl
	run -0 jq -cS '[has("app_key"), .kms_context]' enc.jsonl
	assert_output '[false,{"dev_eui":"0004A30B001C0530","tenant":"t1"}]'
	# decrypt needs no -c/-C: the record says; the result is the line that went in
	run -0 sh -c 'kms-wrap decrypt -k ring.yml -f app_key <enc.jsonl | jq -cS .'
	assert_output "$(grep 0004A30B001C0530 devices.jsonl | jq -cS .)"
	# kms-wrap serve (lib/js_devices.c) loads the key and answers with it
	grep -v 0004A30B001C0530 devices.jsonl >reg.jsonl
	cat enc.jsonl >>reg.jsonl
	jr=$(node "$LORA" jr 2B7E151628AED2A6ABF7158809CF4F3C 70B3D57ED0000001 0004A30B001C0530 0005)
	echo "{\"id\":1,\"op\":\"check-mic\",\"DevEUI\":\"0004A30B001C0530\",\"JoinEUI\":\"70B3D57ED0000001\",\"MACVersion\":\"1.0.3\",\"PHYPayload\":\"$jr\"}" >req
	# the parts table of se_setup was encrypted with -C part_number: serve needs no -C now
	run -0 --separate-stderr sh -c 'kms-wrap serve -D reg.jsonl -p parts.jsonl -k ring.yml <req'
	[ "$(jq -c '[.id, .ok]' <<<"$output")" = '[1,true]' ]
	[[ $stderr == *"1 parts"* ]]
	# a context moved to another device does not decrypt
	sed -i 's/"tenant":"t1"/"tenant":"t2"/' reg.jsonl
	run -100 --separate-stderr sh -c 'kms-wrap serve -D reg.jsonl -k ring.yml </dev/null'
	run -1 --separate-stderr sh -c 'jq -c ".kms_context = 1" enc.jsonl | kms-wrap decrypt -k ring.yml -f app_key'
	[[ $stderr == *"kms_context"* ]]
}

@test "ljs-join --crypto 'kms-wrap serve': joins of secure-element devices whose keys ljs-join never sees" {
	se_setup
	crypto="kms-wrap serve -D devices.jsonl -p parts.jsonl -k ring.yml -C part_number"
	# LoRaWAN 1.0.3: AppKey = K[16:32]
	phy=$(node "$LORA" jr "$APP10" 70B3D57ED0000001 0004A30B001C0540 0001)
	printf '{"ProtocolVersion":"1.0","SenderID":"000013","ReceiverID":"70B3D57ED0000001","TransactionID":7,"MessageType":"JoinReq","MACVersion":"1.0.3","PHYPayload":"%s","DevEUI":"0004A30B001C0540","DevAddr":"26011234","DLSettings":"00","RxDelay":1}\n' "$phy" >req
	run -0 --separate-stderr ljs-join -D devices.jsonl -S st --crypto "$crypto" <req
	ans=$output
	[ "$(jq -r .Result.ResultCode <<<"$ans")" = Success ]
	run -0 node "$LORA" ja10 "$APP10" 0001 "$(jq -r .PHYPayload <<<"$ans")"
	[ "$(jq -r .mic <<<"$output")" = true ]
	[ "$(jq -r .AppSKey <<<"$output")" = "$(jq -r .AppSKey.AESKey <<<"$ans")" ]
	[ "$(jq -r .NwkSKey <<<"$output")" = "$(jq -r .NwkSKey.AESKey <<<"$ans")" ]
	# LoRaWAN 1.1: NwkKey = K[0:16], AppKey = K[16:32]
	phy=$(node "$LORA" jr "$NWK11" 70B3D57ED0000002 0004A30B001C0541 0005)
	printf '{"ProtocolVersion":"1.1","SenderID":"000013","ReceiverID":"70B3D57ED0000002","TransactionID":8,"MessageType":"JoinReq","MACVersion":"1.1","PHYPayload":"%s","DevEUI":"0004A30B001C0541","DevAddr":"26011235","DLSettings":"80","RxDelay":1,"SenderNSID":"ns1.example.net"}\n' "$phy" >req
	run -0 --separate-stderr ljs-join -D devices.jsonl -S st --crypto "$crypto" <req
	ans=$output
	[ "$(jq -r .Result.ResultCode <<<"$ans")" = Success ]
	run -0 node "$LORA" ja11 "$NWK11" "$APP11" 70B3D57ED0000002 0004A30B001C0541 0005 "$(jq -r .PHYPayload <<<"$ans")"
	[ "$(jq -r .mic <<<"$output")" = true ]
	for k in FNwkSIntKey SNwkSIntKey NwkSEncKey AppSKey; do
		[ "$(jq -r .$k <<<"$output")" = "$(jq -r .$k.AESKey <<<"$ans")" ]
	done
	# the keys exist nowhere in ljs-join's files; without the crypto process it cannot answer
	for k in $ROOTKEY $NWK10 $APP10 $NWK11 $APP11; do
		! grep -rqi "$k" devices.jsonl parts.jsonl st
	done
	phy=$(node "$LORA" jr "$APP10" 70B3D57ED0000001 0004A30B001C0540 0009)
	printf '{"ProtocolVersion":"1.0","SenderID":"000013","ReceiverID":"70B3D57ED0000001","TransactionID":9,"MessageType":"JoinReq","MACVersion":"1.0.3","PHYPayload":"%s","DevEUI":"0004A30B001C0540","DevAddr":"26011234","DLSettings":"00","RxDelay":1}\n' "$phy" >req
	run --separate-stderr ljs-join -D devices.jsonl -S st <req
	[ "$(jq -r .Result.ResultCode <<<"$output")" != Success ]
	# a forged MIC through the crypto process
	phy=$(node "$LORA" jr "$NWK11" 70B3D57ED0000001 0004A30B001C0540 000A)
	printf '{"ProtocolVersion":"1.0","SenderID":"000013","ReceiverID":"70B3D57ED0000001","TransactionID":10,"MessageType":"JoinReq","MACVersion":"1.0.3","PHYPayload":"%s","DevEUI":"0004A30B001C0540","DevAddr":"26011234","DLSettings":"00","RxDelay":1}\n' "$phy" >req
	run -1 --separate-stderr ljs-join -D devices.jsonl -S st --crypto "$crypto" <req
	[ "$(jq -r .Result.ResultCode <<<"$output")" = MICFailed ]
}

@test "examples/kms-wrap/step6.sh: encrypts a part's key from a file; the parts table loads in serve" {
	cd "$BATS_TEST_TMPDIR"
	run -0 --separate-stderr sh "$TOP/examples/kms-wrap/step6.sh" "$BATS_TEST_TMPDIR/s6"
	cd s6
	run -0 stat -c %a keyring.yml part.key
	assert_output $'600\n600'
	key=$(tr -d '\n' <part.key)
	! grep -q "$key" parts.jsonl devices.jsonl
	run -0 sh -c 'kms-wrap decrypt -k keyring.yml -C part_number <parts.jsonl | jq -r .psk_root_keys'
	assert_output "$key"
	echo '{"id":1,"op":"root-keys","DevEUI":"0004A30B001C0531","JoinEUI":"70B3D57ED0000000"}' >req
	run -0 --separate-stderr sh -c 'kms-wrap serve -X -D devices.jsonl -p parts.jsonl -k keyring.yml -C part_number <req'
	read -r nwk app <<<"$(se_keys "$key" 0123A1B2C3D4E5F7EE)"
	[[ $output == *"$nwk"* && $output == *"$app"* ]]
}

@test "kms-wrap serve -L: ljs-join --crypto unix:PATH over an owner-only socket, SIGHUP reload, SIGTERM removes it" {
	se_setup
	: >parts2.jsonl
	start_bg serve kms-wrap serve -L "$BATS_TEST_TMPDIR/cry.sock" -d 3 -D devices.jsonl -p parts2.jsonl -k ring.yml \
		-C part_number 3>"$BATS_TEST_TMPDIR/ready"
	wait_until 10 test -s "$BATS_TEST_TMPDIR/ready"
	run -0 stat -c %a cry.sock
	assert_output 700
	phy=$(node "$LORA" jr "$APP10" 70B3D57ED0000001 0004A30B001C0540 0001)
	printf '{"ProtocolVersion":"1.0","SenderID":"000013","ReceiverID":"70B3D57ED0000001","TransactionID":7,"MessageType":"JoinReq","MACVersion":"1.0.3","PHYPayload":"%s","DevEUI":"0004A30B001C0540","DevAddr":"26011234","DLSettings":"00","RxDelay":1}\n' "$phy" >req
	# the part is not loaded yet: no keys
	run --separate-stderr ljs-join -D devices.jsonl -S st --crypto "unix:$BATS_TEST_TMPDIR/cry.sock" <req
	[ "$(jq -r .Result.ResultCode <<<"$output")" != Success ]
	cp parts.jsonl parts2.jsonl
	kill -HUP "$(bg_pid serve)"
	wait_until 10 grep -q 'reloaded on SIGHUP' "$BATS_TEST_TMPDIR/serve.err"
	# two clients at once, each its own connection
	phy2=$(node "$LORA" jr "$APP10" 70B3D57ED0000001 0004A30B001C0540 0002)
	sed "s/$phy/$phy2/; s/\"TransactionID\":7/\"TransactionID\":8/" req >req2
	ljs-join -D devices.jsonl -S st2 --crypto "unix:$BATS_TEST_TMPDIR/cry.sock" <req2 >ans2 2>err2 &
	run -0 --separate-stderr ljs-join -D devices.jsonl -S st --crypto "unix:$BATS_TEST_TMPDIR/cry.sock" <req
	wait $!
	[ "$(jq -r .Result.ResultCode <<<"$output")" = Success ]
	run -0 node "$LORA" ja10 "$APP10" 0001 "$(jq -r .PHYPayload <<<"$output")"
	[ "$(jq -r .mic <<<"$output")" = true ]
	[ "$(jq -r .Result.ResultCode ans2)" = Success ]
	kill -TERM "$(bg_pid serve)"
	wait_until 10 test ! -e cry.sock
	wait_until 10 sh -c "! kill -0 $(bg_pid serve) 2>/dev/null"
}
