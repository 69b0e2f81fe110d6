#!/usr/bin/env bats
# ljs-join: Backend Interfaces Join Server. Join-requests are built, and join-accepts decrypted and
# verified, by npm lora-packet (tests/node/lora-join.js), an implementation written elsewhere.
bats_require_minimum_version 1.5.0
load test_helper

APPKEY=2B7E151628AED2A6ABF7158809CF4F3C
NWKKEY=000102030405060708090A0B0C0D0E0F
APPKEY11=F0E0D0C0B0A090807060504030201000
LORA="$BATS_TEST_DIRNAME/node/lora-join.js"

setup() {
	cd "$BATS_TEST_TMPDIR"
	cat >devices.jsonl <<EOF
# a 1.0.3 device, a 1.0.4 device and a 1.1 device
{"dev_eui":"0004A30B001C0530","join_eui":"70B3D57ED0000001","mac_version":"1.0.3","app_key":"$APPKEY","home_net_id":"000013","as_ids":["as.example.net"]}
{"dev_eui":"0004A30B001C0532","join_eui":"70B3D57ED0000001","mac_version":"1.0.4","app_key":"$APPKEY","home_net_id":"000013","net_ids":["000013","C00053"]}
{"dev_eui":"0004A30B001C0531","join_eui":"70B3D57ED0000002","mac_version":"1.1","app_key":"$APPKEY11","nwk_key":"$NWKKEY","home_net_id":"000013","home_ns_id":"ns1.example.net","ns_ids":["ns1.example.net"]}
EOF
}

teardown() {
	stop_all
}

jr() { node "$LORA" jr "$@"; }

# joinreq PV DEVEUI JOINEUI PHY [extra json fields]
joinreq() {
	local pv=$1 dev=$2 join=$3 phy=$4 extra=${5:-}
	local mac=1.0.3 nsid=
	[ "$pv" = 1.1 ] && { mac=1.1; nsid=',"SenderNSID":"ns1.example.net"'; }
	printf '{"ProtocolVersion":"%s","SenderID":"000013","ReceiverID":"%s","TransactionID":42,"MessageType":"JoinReq","SenderToken":"0A0B","MACVersion":"%s","PHYPayload":"%s","DevEUI":"%s","DevAddr":"26011234","DLSettings":"00","RxDelay":1%s%s}\n' \
		"$pv" "$join" "$mac" "$phy" "$dev" "$nsid" "$extra"
}

@test "ljs-join: LoRaWAN crypto and frame unit checks pass (RFC 4493, TTS and ChirpStack vectors)" {
	run "$UNIT/test_lorawan"
	assert_success
}

@test "ljs-join: -h, -V and bad usage" {
	run -0 ljs-join -h
	assert_output --partial "--devices"
	run -0 ljs-join --version
	assert_output --regexp '^ljs-join '
	run -100 --separate-stderr ljs-join --bogus
	run -100 --separate-stderr ljs-join --tls mutual -l 127.0.0.1:1
}

@test "ljs-join: a missing or broken registry is a configuration error" {
	run -100 --separate-stderr ljs-join -D nonexistent.jsonl -S st </dev/null
	echo '{"dev_eui":"zz"}' >bad.jsonl
	run -100 --separate-stderr ljs-join -D bad.jsonl -S st </dev/null
	[[ "$stderr" == *"bad.jsonl:1: dev_eui"* ]]
}

@test "ljs-join: echoed header fields are written as jq writes them (numbers, escapes, nested tokens)" {
	# a plain JoinReq is read and answered without jq objects; one with escapes or nested values
	# goes through jq: both answers must begin with jq's own text of the swapped header
	p1=$(jr $APPKEY 70B3D57ED0000001 0004A30B001C0530 0001)
	p2=$(jr $APPKEY 70B3D57ED0000001 0004A30B001C0530 0002)
	p3=$(jr $APPKEY 70B3D57ED0000001 0004A30B001C0530 0003)
	{
		joinreq 1.0 0004A30B001C0530 70B3D57ED0000001 "$p1" | sed 's/"TransactionID":42/"TransactionID":1.50e3/'
		joinreq 1.0 0004A30B001C0530 70B3D57ED0000001 "$p2" ',"ReceiverToken":{"b":[1,"x\u00e9\"y"],"a":null}' |
			sed 's/"TransactionID":42/"TransactionID":12345678901234567890/'
		joinreq 1.0 0004A30B001C0530 70B3D57ED0000001 "${p3%????????}00000000" ',"ReceiverToken":"\u0041\t"'
	} >req
	run -1 --separate-stderr sh -c 'ljs-join -D devices.jsonl -S st <req'
	[ "${#lines[@]}" -eq 3 ]
	n=0
	while IFS= read -r r; do
		exp=$(jq -c '{ProtocolVersion, SenderID: .ReceiverID, ReceiverID: .SenderID, TransactionID,
			MessageType: "JoinAns", ReceiverToken: .SenderToken, SenderToken: .ReceiverToken} | with_entries(select(.value != null))' <<<"$r")
		ans=${lines[$n]}
		echo "answer:   $ans"
		echo "expected: ${exp%\}},..."
		[[ "$ans" == "${exp%\}},"* ]]
		n=$((n + 1))
	done <req
	[ "$(jq -r .Result.ResultCode <<<"${lines[0]}")" = Success ]
	[ "$(jq -r .Result.ResultCode <<<"${lines[1]}")" = Success ]
	[ "$(jq -r .Result.ResultCode <<<"${lines[2]}")" = MICFailed ]
}

@test "ljs-join: LoRaWAN 1.0.3 join on stdin, join-accept verified and decrypted by lora-packet" {
	phy=$(jr $APPKEY 70B3D57ED0000001 0004A30B001C0530 0001)
	joinreq 1.0 0004A30B001C0530 70B3D57ED0000001 "$phy" >req
	run -0 --separate-stderr sh -c 'ljs-join -D devices.jsonl -S st <req'
	ans=$output
	[ "$(jq -r .Result.ResultCode <<<"$ans")" = Success ]
	[ "$(jq -r .MessageType <<<"$ans")" = JoinAns ]
	# header echo and swap
	[ "$(jq -r .SenderID <<<"$ans")" = 70B3D57ED0000001 ]
	[ "$(jq -r .ReceiverID <<<"$ans")" = 000013 ]
	[ "$(jq -r .TransactionID <<<"$ans")" = 42 ]
	[ "$(jq -r .ReceiverToken <<<"$ans")" = 0A0B ]
	[ "$(jq -r 'has("ReceiverNSID")' <<<"$ans")" = false ]
	run -0 node "$LORA" ja10 $APPKEY 0001 "$(jq -r .PHYPayload <<<"$ans")"
	[ "$(jq -r .mic <<<"$output")" = true ]
	[ "$(jq -r .DevAddr <<<"$output")" = 26011234 ]
	[ "$(jq -r .NetID <<<"$output")" = 000013 ]
	[ "$(jq -r .OptNeg <<<"$output")" = false ]
	[ "$(jq -r .NwkSKey <<<"$output")" = "$(jq -r .NwkSKey.AESKey <<<"$ans")" ]
	[ "$(jq -r .AppSKey <<<"$output")" = "$(jq -r .AppSKey.AESKey <<<"$ans")" ]
	[ "$(jq -r .NwkSKey.KEKLabel <<<"$ans")" = "" ]
	[ "$(jq -r .SessionKeyID <<<"$ans" | wc -c)" -eq 33 ]
}

@test "ljs-join: LoRaWAN 1.1 join with OptNeg, CFList and JSIntKey MIC, verified by lora-packet" {
	phy=$(jr $NWKKEY 70B3D57ED0000002 0004A30B001C0531 0005)
	joinreq 1.1 0004A30B001C0531 70B3D57ED0000002 "$phy" ',"CFList":"184f84e85684b85e84886684586e8400"' >req
	run -0 --separate-stderr sh -c 'ljs-join -D devices.jsonl -S st <req'
	ans=$output
	[ "$(jq -r .Result.ResultCode <<<"$ans")" = Success ]
	[ "$(jq -r .ReceiverNSID <<<"$ans")" = ns1.example.net ]
	[ "$(jq -r 'has("NwkSKey")' <<<"$ans")" = false ]
	run -0 node "$LORA" ja11 $NWKKEY $APPKEY11 70B3D57ED0000002 0004A30B001C0531 0005 "$(jq -r .PHYPayload <<<"$ans")"
	[ "$(jq -r .mic <<<"$output")" = true ]
	[ "$(jq -r .OptNeg <<<"$output")" = true ]
	for k in FNwkSIntKey SNwkSIntKey NwkSEncKey AppSKey; do
		[ "$(jq -r .$k <<<"$output")" = "$(jq -r .$k.AESKey <<<"$ans")" ]
	done
}

@test "ljs-join: a 1.1 device behind a 1.0 network gets a 1.0 join-accept from its NwkKey" {
	phy=$(jr $NWKKEY 70B3D57ED0000002 0004A30B001C0531 0007)
	joinreq 1.0 0004A30B001C0531 70B3D57ED0000002 "$phy" >req
	run -0 --separate-stderr sh -c 'ljs-join -D devices.jsonl -S st <req'
	ans=$output
	[ "$(jq -r .Result.ResultCode <<<"$ans")" = Success ]
	run -0 node "$LORA" ja10 $NWKKEY 0007 "$(jq -r .PHYPayload <<<"$ans")"
	[ "$(jq -r .mic <<<"$output")" = true ]
	[ "$(jq -r .OptNeg <<<"$output")" = false ]
	[ "$(jq -r .NwkSKey <<<"$output")" = "$(jq -r .NwkSKey.AESKey <<<"$ans")" ]
}

@test "ljs-join: a 1.1 JoinReq without SenderNSID is a MalformedMessage" {
	phy=$(jr $NWKKEY 70B3D57ED0000002 0004A30B001C0531 0005)
	joinreq 1.1 0004A30B001C0531 70B3D57ED0000002 "$phy" | jq -c 'del(.SenderNSID)' >req
	run -1 --separate-stderr sh -c 'ljs-join -D devices.jsonl -S st <req'
	[ "$(jq -r .Result.ResultCode <<<"$output")" = MalformedMessage ]
}

@test "ljs-join: forged MIC, replayed DevNonce and a NetID mismatch change nothing stored" {
	phy=$(jr $APPKEY 70B3D57ED0000001 0004A30B001C0530 0010)
	forged=${phy:0:38}00000000
	{
		joinreq 1.0 0004A30B001C0530 70B3D57ED0000001 "$forged"
		joinreq 1.0 0004A30B001C0530 70B3D57ED0000001 "$phy"
		joinreq 1.0 0004A30B001C0530 70B3D57ED0000001 "$phy"
		joinreq 1.0 0004A30B001C0530 70B3D57ED0000001 "$phy" | sed 's/"SenderID":"000013"/"SenderID":"00001F"/'
	} >req
	run -1 --separate-stderr sh -c 'ljs-join -D devices.jsonl -S st <req'
	[ "${#lines[@]}" -eq 4 ]
	[ "$(jq -r .Result.ResultCode <<<"${lines[0]}")" = MICFailed ]
	[ "$(jq -r .Result.ResultCode <<<"${lines[1]}")" = Success ]
	[ "$(jq -r .Result.ResultCode <<<"${lines[2]}")" = JoinReqFailed ]
	[ "$(jq -r .Result.ResultCode <<<"${lines[3]}")" = ActivationDisallowed ]
	# only the one good join was stored: JoinNonce 0 handed out, DevNonce 0x10 remembered
	run -0 sh -c "tr -d '\\000' <st/joins.log"
	[ "${#lines[@]}" -eq 1 ]
	[ "$(jq -r .jn <<<"$output")" = 0 ]
	[ "$(jq -r .dn <<<"$output")" = 16 ]
	# and a restart folds it into the snapshot
	run -0 sh -c 'ljs-join -q -D devices.jsonl -S st </dev/null; grep "\"d\"" st/state.jsonl'
	[ "$(jq -c .dns <<<"$output")" = "[16]" ]
}

@test "ljs-join: DevNonce rules: 1.0.4 strictly greater, 1.0.3 not among the recent ones" {
	{
		for n in 0005 0003 0009; do
			joinreq 1.0 0004A30B001C0530 70B3D57ED0000001 "$(jr $APPKEY 70B3D57ED0000001 0004A30B001C0530 $n)"
		done
		for n in 0005 0003 0009; do
			joinreq 1.0 0004A30B001C0532 70B3D57ED0000001 "$(jr $APPKEY 70B3D57ED0000001 0004A30B001C0532 $n)"
		done
	} >req
	run -0 --separate-stderr sh -c 'ljs-join -D devices.jsonl -S st <req | jq -r .Result.ResultCode'
	assert_output "$(printf 'Success\nSuccess\nSuccess\nSuccess\nJoinReqFailed\nSuccess')"
}

@test "ljs-join: malformed JSON, bad hex and short PHYPayloads get MalformedRequest, one answer per line" {
	phy=$(jr $APPKEY 70B3D57ED0000001 0004A30B001C0530 0001)
	{
		echo '{"ProtocolVersion":"1.0",'
		joinreq 1.0 0004A30B001C0530 70B3D57ED0000001 "${phy:0:30}"
		joinreq 1.0 0004A30B001C0530 70B3D57ED0000001 "ZZ${phy:2}"
		joinreq 1.0 0004A30B001C0530 70B3D57ED0000001 "$phy" | sed 's/"DevAddr":"26011234"/"DevAddr":"2601"/'
		joinreq 1.0 0004A30B001C0530 70B3D57ED0000001 "0x$(tr A-F a-f <<<"$phy")" | sed 's/"DevEUI":"0004A30B001C0530"/"DevEUI":"0x0004a30b001c0530"/'
		echo '{"ProtocolVersion":"1.0","MessageType":"HomeNSReq","SenderID":"000013","DevEUI":"0004A30B001C0530"}'
		echo '{"ProtocolVersion":"1.0","MessageType":"HomeNSReq","SenderID":"000013","DevEUI":"0004A30B001C05FF"}'
	} >req
	run -1 --separate-stderr sh -c 'ljs-join -D devices.jsonl -S st <req'
	[ "${#lines[@]}" -eq 7 ]
	[ "$(jq -r .Result.ResultCode <<<"${lines[0]}")" = MalformedRequest ]
	[[ "$(jq -r .Result.Description <<<"${lines[0]}")" == "line 1: malformed JSON"* ]]
	[[ "$stderr" == *"line 1: malformed JSON"* ]]
	[ "$(jq -r .Result.ResultCode <<<"${lines[1]}")" = MalformedRequest ]
	[[ "$(jq -r .Result.Description <<<"${lines[1]}")" == *"23 bytes"* ]]
	[ "$(jq -r .Result.ResultCode <<<"${lines[2]}")" = MalformedRequest ]
	[ "$(jq -r .Result.ResultCode <<<"${lines[3]}")" = MalformedRequest ]
	# lower case hex with 0x is fine
	[ "$(jq -r .Result.ResultCode <<<"${lines[4]}")" = Success ]
	[ "$(jq -r .HNetID <<<"${lines[5]}")" = 000013 ]
	[ "$(jq -r .Result.ResultCode <<<"${lines[6]}")" = UnknownDevEUI ]
}

@test "ljs-join: AppSKeyReq gives the session's AppSKey to an allowed AS only, after a restart too" {
	phy=$(jr $APPKEY 70B3D57ED0000001 0004A30B001C0530 0001)
	joinreq 1.0 0004A30B001C0530 70B3D57ED0000001 "$phy" >req
	run -0 --separate-stderr sh -c 'ljs-join -D devices.jsonl -S st <req'
	sid=$(jq -r .SessionKeyID <<<"$output")
	key=$(jq -r .AppSKey.AESKey <<<"$output")
	{
		printf '{"ProtocolVersion":"1.0","SenderID":"as.example.net","ReceiverID":"70B3D57ED0000001","TransactionID":5,"MessageType":"AppSKeyReq","DevEUI":"0004A30B001C0530","SessionKeyID":"%s"}\n' "$sid"
		printf '{"ProtocolVersion":"1.0","SenderID":"other.example.net","ReceiverID":"70B3D57ED0000001","TransactionID":6,"MessageType":"AppSKeyReq","DevEUI":"0004A30B001C0530","SessionKeyID":"%s"}\n' "$sid"
	} >req2
	run -1 --separate-stderr sh -c 'ljs-join -D devices.jsonl -S st <req2'
	[ "$(jq -r .MessageType <<<"${lines[0]}")" = AppSKeyAns ]
	[ "$(jq -r .Result.ResultCode <<<"${lines[0]}")" = Success ]
	[ "$(jq -r .AppSKey.AESKey <<<"${lines[0]}")" = "$key" ]
	[ "$(jq -r .ReceiverID <<<"${lines[0]}")" = as.example.net ]
	[ "$(jq -r .Result.ResultCode <<<"${lines[1]}")" = UnknownSender ]
}

@test "ljs-join: KEK-wrapped root keys, and KeyEnvelopes wrapped for the NS and AS labels" {
	cat >keks.yml <<'EOF'
ns-000013: 000102030405060708090A0B0C0D0E0F
as-1: 0F0E0D0C0B0A09080706050403020100
root: 00112233445566778899AABBCCDDEEFF
EOF
	wrapped=$(echo "{\"k\":\"$APPKEY\"}" | kms-wrap wrap -j keks.yml -l root -f k | jq -c .k)
	cat >devices.jsonl <<EOF
{"dev_eui":"0004A30B001C0530","join_eui":"70B3D57ED0000001","mac_version":"1.0.3","app_key":$wrapped,"home_net_id":"000013","ns_kek_label":"ns-000013","as_kek_label":"as-1"}
EOF
	phy=$(jr $APPKEY 70B3D57ED0000001 0004A30B001C0530 0001)
	joinreq 1.0 0004A30B001C0530 70B3D57ED0000001 "$phy" >req
	run -0 --separate-stderr sh -c 'ljs-join -D devices.jsonl -K keks.yml -S st <req'
	ans=$output
	[ "$(jq -r .NwkSKey.KEKLabel <<<"$ans")" = ns-000013 ]
	[ "$(jq -r .AppSKey.KEKLabel <<<"$ans")" = as-1 ]
	[ "$(jq -r .NwkSKey.AESKey <<<"$ans" | wc -c)" -eq 49 ]
	run -0 node "$LORA" ja10 $APPKEY 0001 "$(jq -r .PHYPayload <<<"$ans")"
	[ "$(jq -r .mic <<<"$output")" = true ]
	want_n=$(jq -r .NwkSKey <<<"$output")
	want_a=$(jq -r .AppSKey <<<"$output")
	got=$(jq -c '{n:.NwkSKey,a:.AppSKey}' <<<"$ans" | kms-wrap unwrap -j keks.yml -f n -f a)
	[ "$(jq -r .n <<<"$got")" = "$want_n" ]
	[ "$(jq -r .a <<<"$got")" = "$want_a" ]
	# without the keyring the wrapped root key cannot be read: a configuration error
	run -100 --separate-stderr sh -c 'ljs-join -D devices.jsonl -S st2 </dev/null'
}

@test "ljs-join: KMS-encrypted root keys (kms-wrap encrypt) decrypt with the keyring, not without" {
	kms-wrap genkey -k kms.yml roots 2>/dev/null
	grep -v '^#' devices.jsonl | head -1 | kms-wrap encrypt -k kms.yml -K roots -f app_key -C dev_eui >enc.jsonl
	run -0 grep -c app_key_encrypted enc.jsonl
	run -1 grep -c "$APPKEY" enc.jsonl
	# the encryption context names the device: keep it with the record
	jq -c '. + {kms_context: {dev_eui: .dev_eui}}' enc.jsonl >devices.jsonl
	phy=$(jr $APPKEY 70B3D57ED0000001 0004A30B001C0530 0001)
	joinreq 1.0 0004A30B001C0530 70B3D57ED0000001 "$phy" >req
	run -0 --separate-stderr sh -c 'ljs-join -D devices.jsonl -M kms.yml -S st <req'
	run -0 node "$LORA" ja10 $APPKEY 0001 "$(jq -r .PHYPayload <<<"$output")"
	[ "$(jq -r .mic <<<"$output")" = true ]
	run -100 --separate-stderr sh -c 'ljs-join -D devices.jsonl -S st2 </dev/null'
	[[ "$stderr" == *"no KMS keyring"* ]]
	# a wrong context does not decrypt
	jq -c '.kms_context.dev_eui = "0004A30B001C05FF"' enc.jsonl >devices.jsonl
	run -100 --separate-stderr sh -c 'ljs-join -D devices.jsonl -M kms.yml -S st3 </dev/null'
}

@test "ljs-join: --crypto: root keys only in kms-wrap serve, which is started again after it dies" {
	# ljs-join's registry has no keys; the co-process's has them
	cp devices.jsonl keys.jsonl
	jq -c 'del(.app_key, .nwk_key)' <(grep -v '^#' keys.jsonl) >devices.jsonl
	port=$(free_port tcp)
	start_bg js ljs-join -D devices.jsonl -S st -l 127.0.0.1:$port -c "exec kms-wrap serve -D keys.jsonl" -d 3 3>ready
	wait_until 5 test -s ready
	joinreq 1.0 0004A30B001C0530 70B3D57ED0000001 "$(jr $APPKEY 70B3D57ED0000001 0004A30B001C0530 0001)" >req
	run -0 curl -s --data-binary @req http://127.0.0.1:$port/
	[ "$(jq -r .Result.ResultCode <<<"$output")" = Success ]
	run -0 node "$LORA" ja10 $APPKEY 0001 "$(jq -r .PHYPayload <<<"$output")"
	[ "$(jq -r .mic <<<"$output")" = true ]
	# a forged MIC is refused by the co-process
	phy=$(jr $APPKEY 70B3D57ED0000001 0004A30B001C0530 0002)
	joinreq 1.0 0004A30B001C0530 70B3D57ED0000001 "${phy:0:38}00000000" >req
	run -0 curl -s --data-binary @req http://127.0.0.1:$port/
	[ "$(jq -r .Result.ResultCode <<<"$output")" = MICFailed ]
	# kill the co-process: the next join starts a new one
	child=$(pgrep -P "$(bg_pid js)" kms-wrap)
	[ -n "$child" ]
	kill "$child"
	joinreq 1.1 0004A30B001C0531 70B3D57ED0000002 "$(jr $NWKKEY 70B3D57ED0000002 0004A30B001C0531 0003)" >req
	run -0 curl -s --data-binary @req http://127.0.0.1:$port/
	[ "$(jq -r .Result.ResultCode <<<"$output")" = Success ]
	run -0 node "$LORA" ja11 $NWKKEY $APPKEY11 70B3D57ED0000002 0004A30B001C0531 0003 "$(jq -r .PHYPayload <<<"$output")"
	[ "$(jq -r .mic <<<"$output")" = true ]
	new=$(pgrep -P "$(bg_pid js)" kms-wrap)
	[ -n "$new" ] && [ "$new" != "$child" ]
}

@test "ljs-join: HTTP without TLS: 200 for answers, 400 for an unreadable body, 413 past 64 KiB" {
	port=$(free_port tcp)
	start_bg js ljs-join -D devices.jsonl -S st -l 127.0.0.1:$port -d 3 3>ready
	wait_until 5 test -s ready
	phy=$(jr $APPKEY 70B3D57ED0000001 0004A30B001C0530 0001)
	joinreq 1.0 0004A30B001C0530 70B3D57ED0000001 "$phy" >req
	run -0 curl -s -w '\n%{http_code}' --data-binary @req http://127.0.0.1:$port/
	[ "${lines[1]}" = 200 ]
	[ "$(jq -r .Result.ResultCode <<<"${lines[0]}")" = Success ]
	run -0 curl -s -o /dev/null -w '%{http_code}' --data-binary '{"Protocol' http://127.0.0.1:$port/
	[ "$output" = 400 ]
	run -0 curl -s -w '\n%{http_code}' --data-binary '{"ProtocolVersion":"1.1","MessageType":"JoinReq"}' http://127.0.0.1:$port/
	[ "${lines[1]}" = 200 ]
	[ "$(jq -r .Result.ResultCode <<<"${lines[0]}")" = MalformedMessage ]
	# a body past 64 KiB is not kept: 413, and the server answers the next request
	python3 -c 'print("{\"ProtocolVersion\":\"1.0\",\"x\":\"" + "a" * 70000 + "\"}")' >big
	run -0 curl -s -w '\n%{http_code}' --data-binary @big http://127.0.0.1:$port/
	[ "${lines[0]}" = "body too large" ]
	[ "${lines[1]}" = 413 ]
	joinreq 1.0 0004A30B001C0530 70B3D57ED0000001 "$(jr $APPKEY 70B3D57ED0000001 0004A30B001C0530 0002)" >req
	run -0 curl -s --data-binary @req http://127.0.0.1:$port/
	[ "$(jq -r .Result.ResultCode <<<"$output")" = Success ]
}

@test "ljs-join: kill -9 after answers never reuses a JoinNonce nor accepts a used DevNonce" {
	port=$(free_port tcp)
	start_bg js ljs-join -D devices.jsonl -S st -l 127.0.0.1:$port -d 3 3>ready
	wait_until 5 test -s ready
	for n in 0001 0002 0003; do
		joinreq 1.0 0004A30B001C0532 70B3D57ED0000001 "$(jr $APPKEY 70B3D57ED0000001 0004A30B001C0532 $n)" >req
		curl -s --data-binary @req http://127.0.0.1:$port/ >>answers
		echo >>answers
	done
	kill -9 "$(bg_pid js)"
	wait "$(bg_pid js)" 2>/dev/null || true
	rm -f ready
	start_bg js2 ljs-join -D devices.jsonl -S st -l 127.0.0.1:$port -d 3 3>ready
	wait_until 5 test -s ready
	joinreq 1.0 0004A30B001C0532 70B3D57ED0000001 "$(jr $APPKEY 70B3D57ED0000001 0004A30B001C0532 0003)" >req
	run -0 curl -s --data-binary @req http://127.0.0.1:$port/
	[ "$(jq -r .Result.ResultCode <<<"$output")" = JoinReqFailed ]
	joinreq 1.0 0004A30B001C0532 70B3D57ED0000001 "$(jr $APPKEY 70B3D57ED0000001 0004A30B001C0532 0004)" >req
	curl -s --data-binary @req http://127.0.0.1:$port/ >>answers
	echo >>answers
	run -0 sh -c "jq -r .PHYPayload answers | while read p; do node '$LORA' ja10 $APPKEY 0000 \$p | jq -r .JoinNonce; done"
	assert_output "$(printf '000000\n000001\n000002\n000003')"
}

@test "ljs-join: a small log: thousands of joins across many switches of its halves, then kill -9 loses none" {
	# 50 LoRaWAN 1.0.4 devices (DevNonces must grow); the log is 64 KiB: two halves of 32 KiB,
	# each a new generation with its snapshot written meanwhile
	awk 'BEGIN { for (i = 0; i < 50; i++) printf "{\"dev_eui\":\"70B3D5FFFE%06X\",\"join_eui\":\"70B3D57ED0000000\",\"mac_version\":\"1.0.4\",\"app_key\":\"%032X\",\"home_net_id\":\"000013\"}\n", i, i + 1 }' >many.jsonl
	port=$(free_port tcp)
	LJS_LOG_SIZE=64k start_bg js ljs-join -D many.jsonl -S st -l 127.0.0.1:$port -d 3 3>ready
	wait_until 5 test -s ready
	run -0 --separate-stderr "$UNIT/bench-http" -a 127.0.0.1:$port -D many.jsonl -c 4 -n 2000 -t 60 -S 1
	[ "$(jq -r '"\(.requests) \(.ok)"' <<<"$output")" = "2000 2000" ]
	# the log went round: generation 1 at start, one more per half filled
	[ "$(head -n 1 st/state.jsonl | jq .gen)" -ge 5 ]
	kill -9 "$(bg_pid js)"
	wait "$(bg_pid js)" 2>/dev/null || true
	# every answered join is stored: per device, the last DevNonce is its number of joins (they
	# counted from 1) and its JoinNonce one less (from 0); nothing in the log is taken for torn
	run -0 --separate-stderr sh -c 'ljs-join -D many.jsonl -S st </dev/null'
	[[ "$stderr" != *unreadable* ]]
	run -0 jq -s -c '[.[1:][] | select(.jn != .last - 1)] | length' st/state.jsonl
	assert_output 0
	run -0 jq -s '[.[1:][] | .last] | add' st/state.jsonl
	assert_output 2000
	# and the used DevNonces stay used
	start_bg js2 ljs-join -D many.jsonl -S st -l 127.0.0.1:$port -d 3 3>ready2
	wait_until 5 test -s ready2
	run -1 --separate-stderr "$UNIT/bench-http" -a 127.0.0.1:$port -D many.jsonl -c 2 -n 50 -t 60 -S 1
	[ "$(jq -r '"\(.requests) \(.ok)"' <<<"$output")" = "50 0" ]
}

@test "ljs-join: LJS_LOG_SIZE below 64k is a configuration error" {
	run -100 --separate-stderr env LJS_LOG_SIZE=1000 ljs-join -D devices.jsonl -S st </dev/null
	[[ "$stderr" == *LJS_LOG_SIZE* ]]
}

@test "ljs-join: Identity Server mode answers HomeNSReq only" {
	phy=$(jr $APPKEY 70B3D57ED0000001 0004A30B001C0530 0001)
	{
		joinreq 1.0 0004A30B001C0530 70B3D57ED0000001 "$phy"
		echo '{"ProtocolVersion":"1.1","MessageType":"HomeNSReq","SenderID":"000013","ReceiverID":"70B3D57ED0000002","DevEUI":"0004A30B001C0531"}'
	} >req
	run -1 --separate-stderr sh -c 'ljs-join -I -D devices.jsonl -S st <req'
	[ "$(jq -r .Result.ResultCode <<<"${lines[0]}")" = Other ]
	[ "$(jq -r .HNetID <<<"${lines[1]}")" = 000013 ]
	[ "$(jq -r .HNSID <<<"${lines[1]}")" = ns1.example.net ]
}

# Certificates for the TLS tests, made here with certtool: a server CA, client CAs per NetID and
# for an AS, and a rogue CA nobody trusts.
mk_ca() {
	certtool --generate-privkey --key-type=ecdsa --outfile "$1.key" 2>/dev/null
	printf 'cn = "%s"\nca\ncert_signing_key\nexpiration_days = 30\n' "$1" >"$1.tmpl"
	certtool --generate-self-signed --load-privkey "$1.key" --template "$1.tmpl" --outfile "$1.pem" 2>/dev/null
}
mk_cert() {
	certtool --generate-privkey --key-type=ecdsa --outfile "$1.key" 2>/dev/null
	printf 'cn = "%s"\n%s\nsigning_key\nencryption_key\nexpiration_days = 30\n' "$1" "$3" >"$1.tmpl"
	certtool --generate-certificate --load-privkey "$1.key" --load-ca-certificate "$2.pem" \
		--load-ca-privkey "$2.key" --template "$1.tmpl" --outfile "$1.pem" 2>/dev/null
}
make_pki() {
	mkdir -p pki
	(
		cd pki
		mk_ca srvca
		mk_ca ca13
		mk_ca ca53
		mk_ca caas
		mk_ca rogue
		mk_cert server srvca $'tls_www_server\ndns_name = "localhost"\nip_address = "127.0.0.1"'
		mk_cert ns13 ca13 tls_www_client
		mk_cert ns53 ca53 tls_www_client
		mk_cert as1 caas tls_www_client
		mk_cert nsrogue rogue tls_www_client
	)
	mkdir -p interop/cas
	cp pki/ca13.pem pki/caas.pem interop/cas/
	printf '000013: cas/ca13.pem\nas.example.net: cas/caas.pem\n' >interop/interop.yml
}

# tcurl CLIENT URL DATA: POST over TLS with the client certificate CLIENT (or none)
tcurl() {
	local c=$1
	shift
	if [ "$c" = none ]; then
		curl -s --cacert pki/srvca.pem --data-binary "$2" "$1"
	else
		curl -s --cacert pki/srvca.pem --cert "pki/$c.pem" --key "pki/$c.key" --data-binary "$2" "$1"
	fi
}

homens() { printf '{"ProtocolVersion":"1.0","MessageType":"HomeNSReq","SenderID":"%s","ReceiverID":"70B3D57ED0000001","DevEUI":"0004A30B001C0532"}' "$1"; }

@test "ljs-join: TLS server-only: HTTPS with the server certificate, no client certificate needed" {
	make_pki
	port=$(free_port tcp)
	start_bg js ljs-join -D devices.jsonl -S st -l 127.0.0.1:$port -t server-only -e pki/server.pem -k pki/server.key -d 3 3>ready
	wait_until 5 test -s ready
	run -0 tcurl none https://127.0.0.1:$port/ "$(homens 000013)"
	[ "$(jq -r .HNetID <<<"$output")" = 000013 ]
	# plain HTTP on a TLS port gets nothing
	run curl -s --max-time 5 --data-binary "$(homens 000013)" http://127.0.0.1:$port/
	[ -z "$output" ]
}

@test "ljs-join: TLS mutual: the client certificate must chain to the CA of the SenderID" {
	make_pki
	port=$(free_port tcp)
	start_bg js ljs-join -D devices.jsonl -S st -l 127.0.0.1:$port -t mutual -e pki/server.pem -k pki/server.key -A interop/interop.yml -d 3 3>ready
	wait_until 5 test -s ready
	url=https://127.0.0.1:$port/
	run -0 tcurl ns13 $url "$(homens 000013)"
	[ "$(jq -r .Result.ResultCode <<<"$output")" = Success ]
	# a certificate of another NetID's CA, a rogue CA, none at all, a NetID without a CA
	run -0 tcurl ns53 $url "$(homens 000013)"
	[ "$(jq -r .Result.ResultCode <<<"$output")" = UnknownSender ]
	run -0 tcurl nsrogue $url "$(homens 000013)"
	[ "$(jq -r .Result.ResultCode <<<"$output")" = UnknownSender ]
	run -0 tcurl none $url "$(homens 000013)"
	[ "$(jq -r .Result.ResultCode <<<"$output")" = UnknownSender ]
	[[ "$(jq -r .Result.Description <<<"$output")" == *"no client certificate"* ]]
	run -0 tcurl ns53 $url "$(homens C00053)"
	[ "$(jq -r .Result.ResultCode <<<"$output")" = UnknownSender ]
	# a JoinReq through the right CA for a device of another NetID: ActivationDisallowed
	phy=$(jr $NWKKEY 70B3D57ED0000002 0004A30B001C0531 0001)
	cat >>devices.jsonl <<EOF
{"dev_eui":"0004A30B001C0533","join_eui":"70B3D57ED0000001","mac_version":"1.0.2","app_key":"$APPKEY","home_net_id":"C00053"}
EOF
	kill -HUP "$(bg_pid js)"
	wait_until 5 grep -q "4 devices" "$BATS_TEST_TMPDIR/js.err"
	req=$(joinreq 1.0 0004A30B001C0533 70B3D57ED0000001 "$(jr $APPKEY 70B3D57ED0000001 0004A30B001C0533 0001)")
	run -0 tcurl ns13 $url "$req"
	[ "$(jq -r .Result.ResultCode <<<"$output")" = ActivationDisallowed ]
	req=$(joinreq 1.0 0004A30B001C0530 70B3D57ED0000001 "$(jr $APPKEY 70B3D57ED0000001 0004A30B001C0530 0001)")
	run -0 tcurl ns13 $url "$req"
	[ "$(jq -r .Result.ResultCode <<<"$output")" = Success ]
	sid=$(jq -r .SessionKeyID <<<"$output")
	# AppSKeyReq: the AS-ID's CA
	asreq=$(printf '{"ProtocolVersion":"1.0","SenderID":"as.example.net","ReceiverID":"70B3D57ED0000001","MessageType":"AppSKeyReq","DevEUI":"0004A30B001C0530","SessionKeyID":"%s"}' "$sid")
	run -0 tcurl as1 $url "$asreq"
	[ "$(jq -r .Result.ResultCode <<<"$output")" = Success ]
	run -0 tcurl ns13 $url "$asreq"
	[ "$(jq -r .Result.ResultCode <<<"$output")" = UnknownSender ]
}

# gnutls-cli -r: a full handshake, then a second connection resuming its session with the ticket
# it got, over which the message goes
resumed() {
	local c=$1 port=$2 body=$3
	printf 'POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' "${#body}" "$body" |
		timeout 20 gnutls-cli --x509cafile pki/srvca.pem --x509certfile "pki/$c.pem" --x509keyfile "pki/$c.key" -r -p "$port" 127.0.0.1 2>&1
}

@test "ljs-join: TLS mutual: a client resumes its session with a ticket, and still speaks only for its CA's sender" {
	make_pki
	port=$(free_port tcp)
	start_bg js ljs-join -D devices.jsonl -S st -l 127.0.0.1:$port -t mutual -e pki/server.pem -k pki/server.key -A interop/interop.yml -d 3 3>ready
	wait_until 5 test -s ready
	run resumed ns13 $port "$(homens 000013)"
	assert_output --partial "This is a resumed session"
	assert_output --partial '"ResultCode":"Success"'
	run resumed ns13 $port "$(homens C00053)"
	assert_output --partial "This is a resumed session"
	assert_output --partial '"ResultCode":"UnknownSender"'
	run resumed nsrogue $port "$(homens 000013)"
	assert_output --partial "This is a resumed session"
	assert_output --partial '"ResultCode":"UnknownSender"'
}

@test "ljs-join: SIGHUP reloads the client-CA map; a broken map keeps the old one" {
	make_pki
	port=$(free_port tcp)
	start_bg js ljs-join -D devices.jsonl -S st -l 127.0.0.1:$port -t mutual -e pki/server.pem -k pki/server.key -A interop/interop.yml -d 3 3>ready
	wait_until 5 test -s ready
	url=https://127.0.0.1:$port/
	run -0 tcurl ns53 $url "$(homens C00053)"
	[ "$(jq -r .Result.ResultCode <<<"$output")" = UnknownSender ]
	cp pki/ca53.pem interop/cas/
	echo 'C00053: cas/ca53.pem' >>interop/interop.yml
	kill -HUP "$(bg_pid js)"
	wait_until 5 grep -q "SIGHUP" "$BATS_TEST_TMPDIR/js.err"
	wait_until 5 sh -c "curl -s --cacert pki/srvca.pem --cert pki/ns53.pem --key pki/ns53.key --data-binary '$(homens C00053)' $url | grep -q Success"
	run -0 tcurl ns13 $url "$(homens 000013)"
	[ "$(jq -r .Result.ResultCode <<<"$output")" = Success ]
	echo 'C00054: cas/missing.pem' >>interop/interop.yml
	kill -HUP "$(bg_pid js)"
	wait_until 5 grep -q "missing.pem" "$BATS_TEST_TMPDIR/js.err"
	run -0 tcurl ns53 $url "$(homens C00053)"
	[ "$(jq -r .Result.ResultCode <<<"$output")" = Success ]
}

@test "ljs-join: Packet Broker bearer tokens (ES256, RS256, EdDSA) speak for NetID 000000" {
	make_pki
	mkdir jwt
	node "$BATS_TEST_DIRNAME/node/jwt.js" keygen jwt
	cat >>devices.jsonl <<EOF
{"dev_eui":"0004A30B001C0534","join_eui":"70B3D57ED0000001","mac_version":"1.0.3","app_key":"$APPKEY","home_net_id":"000013","net_ids":["000013","000000"]}
EOF
	port=$(free_port tcp)
	start_bg js ljs-join -D devices.jsonl -S st -l 127.0.0.1:$port -t mutual -e pki/server.pem -k pki/server.key -A interop/interop.yml -i https://iam.packetbroker.test -a ljs -J jwt/jwks.json -d 3 3>ready
	wait_until 5 test -s ready
	url=https://127.0.0.1:$port/
	n=1
	for alg in ES256 RS256 EdDSA; do
		tok=$(node "$BATS_TEST_DIRNAME/node/jwt.js" sign jwt $alg https://iam.packetbroker.test ljs 600 -10)
		req=$(joinreq 1.0 0004A30B001C0534 70B3D57ED0000001 "$(jr $APPKEY 70B3D57ED0000001 0004A30B001C0534 000$n)" | sed 's/"SenderID":"000013"/"SenderID":"000000"/')
		run -0 curl -s --cacert pki/srvca.pem -H "Authorization: Bearer $tok" --data-binary "$req" $url
		[ "$(jq -r .Result.ResultCode <<<"$output")" = Success ]
		n=$((n + 1))
	done
	req=$(joinreq 1.0 0004A30B001C0534 70B3D57ED0000001 "$(jr $APPKEY 70B3D57ED0000001 0004A30B001C0534 0009)" | sed 's/"SenderID":"000013"/"SenderID":"000000"/')
	# expired, not yet valid, another issuer, another audience, a tampered signature
	for args in "ES256 https://iam.packetbroker.test ljs -600 -1200" "ES256 https://iam.packetbroker.test ljs 1200 600" \
		"ES256 https://evil.test ljs 600 -10" "RS256 https://iam.packetbroker.test other 600 -10"; do
		tok=$(node "$BATS_TEST_DIRNAME/node/jwt.js" sign jwt $args)
		run -0 curl -s --cacert pki/srvca.pem -H "Authorization: Bearer $tok" --data-binary "$req" $url
		[ "$(jq -r .Result.ResultCode <<<"$output")" = UnknownSender ]
	done
	tok=$(node "$BATS_TEST_DIRNAME/node/jwt.js" sign jwt ES256 https://iam.packetbroker.test ljs 600 -10)
	run -0 curl -s --cacert pki/srvca.pem -H "Authorization: Bearer ${tok%?????}AAAAA" --data-binary "$req" $url
	[ "$(jq -r .Result.ResultCode <<<"$output")" = UnknownSender ]
	# a valid token cannot speak for another NetID
	run -0 curl -s --cacert pki/srvca.pem -H "Authorization: Bearer $tok" --data-binary "$(homens 000013)" $url
	[ "$(jq -r .Result.ResultCode <<<"$output")" = UnknownSender ]
}
