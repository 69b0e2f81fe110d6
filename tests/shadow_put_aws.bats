#!/usr/bin/env bats
# shadow-put --aws: UpdateThingShadow over HTTPS, signed with SigV4 (checked by botocore in a
# capture server, and by moto_server) or with an X.509 client certificate; retries, rejections,
# bad credentials, keep-alive.
bats_require_minimum_version 1.5.0
load test_helper
load aws_pki

IMEI=urn:imei:352656100000000

setup() {
	export AWS_REGION=eu-west-1 AWS_ACCESS_KEY_ID=AKIDEXAMPLE
	export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
	unset AWS_SESSION_TOKEN AWS_IOT_ENDPOINT AWS_DEFAULT_REGION
	LOG=$BATS_TEST_TMPDIR/requests.jsonl
	PLAN=$BATS_TEST_TMPDIR/plan.json
}
teardown() { stop_all; }

# start_capture [extra aws_capture.py options]: the SigV4-checking stand-in on a free port.
start_capture() {
	python3 -c 'import botocore' 2>/dev/null || skip "botocore is not installed in python3"
	PORT=$(free_port tcp)
	rm -f "$BATS_TEST_TMPDIR/cap.ready"
	start_bg capture python3 "$PEERS/aws_capture.py" --port "$PORT" --log "$LOG" --plan "$PLAN" \
		--ready "$BATS_TEST_TMPDIR/cap.ready" "$@"
	wait_until 30 test -e "$BATS_TEST_TMPDIR/cap.ready"
}

# requests FILTER: the logged requests through jq -c.
requests() { jq -c "$1" "$LOG"; }

@test "shadow-put --aws: every request carries a SigV4 signature botocore agrees with (urn:imei thing, named shadow)" {
	start_capture
	run -0 --separate-stderr shadow-put --aws -e "http://127.0.0.1:$PORT" -r 0 <<-EOF
	{"thing":"$IMEI","state":{"reported":{"3303":{"0":{"5700":21.5}}}},"clientToken":"t-1"}
	{"thing":"$IMEI","shadow":"temp:1","state":{"desired":{"3311":{"0":{"5850":true}}}}}
	{"thing":"dev_2-x","state":{"reported":{"3":{"0":{"9":55}}}}}
	EOF
	assert_line --index 0 --partial "{\"thing\":\"$IMEI\",\"result\":\"accepted\",\"state\":{\"reported\":{\"3303\":{\"0\":{\"5700\":21.5}}}}"
	assert_line --index 0 --partial '"clientToken":"t-1"'
	assert_line --index 1 --partial "{\"thing\":\"$IMEI\",\"shadow\":\"temp:1\",\"result\":\"accepted\""
	assert_line --index 2 --partial '{"thing":"dev_2-x","result":"accepted"'
	[ "${#lines[@]}" -eq 3 ]
	run requests '[.path, .query, .auth, .op]'
	assert_line --index 0 '["/things/urn%3Aimei%3A352656100000000/shadow","","ok","UpdateThingShadow"]'
	assert_line --index 1 '["/things/urn%3Aimei%3A352656100000000/shadow","name=temp%3A1","ok","UpdateThingShadow"]'
	assert_line --index 2 '["/things/dev_2-x/shadow","","ok","UpdateThingShadow"]'
	# the body AWS gets is the update without the pipeline's own fields
	run requests 'select(.n == 2) | .body | fromjson'
	assert_output '{"state":{"desired":{"3311":{"0":{"5850":true}}}}}'
}

@test "shadow-put --aws: a session token is sent and signed; --create-thing signs CreateThing for service iot" {
	start_capture
	export AWS_SESSION_TOKEN="FwoGZXIvYXdzEXAMPLE/token+=="
	run -0 --separate-stderr shadow-put -a -e "http://127.0.0.1:$PORT" -T -I "http://127.0.0.1:$PORT" -r 0 <<-EOF
	{"thing":"$IMEI","state":{"reported":{"a":1}}}
	{"thing":"$IMEI","state":{"reported":{"a":2}}}
	EOF
	[ "${#lines[@]}" -eq 2 ]
	run requests '[.op, .path, .auth]'
	assert_output - <<-EOF
	["CreateThing","/things/urn%3Aimei%3A352656100000000","ok"]
	["UpdateThingShadow","/things/urn%3Aimei%3A352656100000000/shadow","ok"]
	["UpdateThingShadow","/things/urn%3Aimei%3A352656100000000/shadow","ok"]
	EOF
}

@test "shadow-put --aws: 429, 500 and a dropped connection are retried until accepted, in order per thing" {
	start_capture
	echo '{"dev-a":[429,500,"close"],"dev-b":[503]}' >"$PLAN"
	run -0 --separate-stderr shadow-put --aws -e "http://127.0.0.1:$PORT" -B 0.2 <<-EOF
	{"thing":"dev-a","state":{"reported":{"seq":1}}}
	{"thing":"dev-b","state":{"reported":{"seq":1}}}
	{"thing":"dev-a","state":{"reported":{"seq":2}}}
	{"thing":"dev-b","state":{"reported":{"seq":2}}}
	{"thing":"dev-a","state":{"reported":{"seq":3}}}
	EOF
	[ "${#lines[@]}" -eq 5 ]
	for i in 0 1 2 3 4; do assert_line --index $i --partial '"result":"accepted"'; done
	assert_line --index 0 --partial '"thing":"dev-a","result":"accepted","state":{"reported":{"seq":1}}'
	assert_line --index 4 --partial '"thing":"dev-a","result":"accepted","state":{"reported":{"seq":3}}'
	# dev-a's first update took four attempts, and no later update overtook it
	run requests 'select(.thing == "dev-a") | [(.body | fromjson | .state.reported.seq), .answer]'
	assert_output - <<-EOF
	[1,429]
	[1,500]
	[1,"close"]
	[1,200]
	[2,200]
	[3,200]
	EOF
	run requests 'select(.thing == "dev-b") | (.body | fromjson | .state.reported.seq)'
	assert_output $'1\n1\n2'
}

@test "shadow-put --aws: 409 and 413 are printed as rejected with AWS's code and message; the rest carries on" {
	start_capture
	echo '{"dev-c":[409],"dev-d":[413]}' >"$PLAN"
	run -1 --separate-stderr shadow-put --aws -e "http://127.0.0.1:$PORT" -r 3 <<-EOF
	{"thing":"dev-c","state":{"reported":{"a":1}},"version":3,"clientToken":"c-9"}
	{"thing":"dev-d","state":{"reported":{"a":1}}}
	{"thing":"dev-e","state":{"reported":{"a":1}}}
	EOF
	assert_line --index 0 --partial '{"thing":"dev-c","result":"rejected","code":409,"message":"Version conflict"'
	assert_line --index 0 --partial '"clientToken":"c-9","line":1,"error_type":"ConflictException"'
	assert_line --index 1 --partial '{"thing":"dev-d","result":"rejected","code":413,"message":"The payload exceeds the maximum size allowed"'
	assert_line --index 1 --partial '"line":2'
	assert_line --index 2 --partial '{"thing":"dev-e","result":"accepted"'
	# rejected once, not retried
	run requests 'select(.thing == "dev-c" or .thing == "dev-d") | .answer'
	assert_output $'409\n413'
}

@test "shadow-put --aws: a throttled update past --retries is rejected with 429, not dropped" {
	start_capture
	echo '{"dev-f":[429,429,429,429]}' >"$PLAN"
	run -1 --separate-stderr shadow-put --aws -e "http://127.0.0.1:$PORT" -r 2 -B 0.1 <<-EOF
	{"thing":"dev-f","state":{"reported":{"a":1}}}
	{"thing":"dev-g","state":{"reported":{"a":1}}}
	EOF
	assert_line --index 0 --partial '{"thing":"dev-f","result":"rejected","code":429,"message":"Rate exceeded"'
	assert_line --index 1 --partial '{"thing":"dev-g","result":"accepted"'
	run requests 'select(.thing == "dev-f") | .answer'
	assert_output $'429\n429\n429'
}

@test "shadow-put --aws: a wrong secret key or an unknown key id is refused: rejected line, exit 100" {
	start_capture
	AWS_SECRET_ACCESS_KEY=not-the-secret run -100 --separate-stderr shadow-put --aws -e "http://127.0.0.1:$PORT" <<-EOF
	{"thing":"dev-h","state":{"reported":{"a":1}}}
	EOF
	assert_line --index 0 --partial '{"thing":"dev-h","result":"rejected","code":403,"message":"The request signature we calculated does not match'
	assert_line --index 0 --partial '"error_type":"InvalidSignatureException"'
	[ "${#lines[@]}" -eq 1 ]
	[[ "$stderr" == *"refused the credentials"* ]]
	run requests '.auth'
	assert_output '"bad-signature"'
	AWS_ACCESS_KEY_ID=AKIDUNKNOWN run -100 --separate-stderr shadow-put --aws -e "http://127.0.0.1:$PORT" <<-EOF
	{"thing":"dev-h","state":{"reported":{"a":1}}}
	EOF
	assert_output --partial '"code":403,"message":"The security token included in the request is invalid."'
}

@test "shadow-put --aws: one kept-alive connection carries many updates" {
	start_capture
	for i in $(seq 1 40); do echo "{\"thing\":\"dev-$((i % 4))\",\"state\":{\"reported\":{\"n\":$i}}}"; done >"$BATS_TEST_TMPDIR/in"
	run -0 --separate-stderr shadow-put --aws -e "http://127.0.0.1:$PORT" -r 0 <"$BATS_TEST_TMPDIR/in"
	[ "${#lines[@]}" -eq 40 ]
	run sh -c "jq -r .conn '$LOG' | sort -u | wc -l"
	assert_output 1
}

@test "shadow-put --aws: X.509 client certificate instead of SigV4 (TLS, require a client certificate)" {
	make_pki "$BATS_TEST_TMPDIR/pki"
	P=$BATS_TEST_TMPDIR/pki
	start_capture --tls "$P/server.pem" "$P/server.key" --client-ca "$P/ca.pem"
	unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
	run -0 --separate-stderr shadow-put --aws -e "https://localhost:$PORT" -c "$P/client.pem" -k "$P/client.key" \
		-A "$P/ca.pem" -r 0 <<-EOF
	{"thing":"$IMEI","state":{"reported":{"a":1}}}
	EOF
	assert_output --partial "{\"thing\":\"$IMEI\",\"result\":\"accepted\""
	run requests '[.auth, .path]'
	assert_output '["x509","/things/urn%3Aimei%3A352656100000000/shadow"]'
	# a certificate the server does not trust gets no answer: reported, not applied, exit 111
	run -111 --separate-stderr shadow-put --aws -e "https://localhost:$PORT" -c "$P/other.pem" -k "$P/other.key" \
		-A "$P/ca.pem" -r 1 -B 0.1 <<-EOF
	{"thing":"$IMEI","state":{"reported":{"a":2}}}
	EOF
	assert_output --partial '"result":"rejected","code":500,"message":"Internal service failure"'
	# and a server we do not trust is never sent anything
	run -111 --separate-stderr shadow-put --aws -e "https://localhost:$PORT" -c "$P/client.pem" -k "$P/client.key" -r 0 <<-EOF
	{"thing":"$IMEI","state":{"reported":{"a":3}}}
	EOF
	[[ "$stderr" == *"certificate"* ]]
}

@test "shadow-put --aws: missing settings are usage errors (exit 100) with a clear message" {
	run -100 --separate-stderr shadow-put --aws </dev/null
	[[ "$stderr" == *"AWS_IOT_ENDPOINT"* ]]
	unset AWS_REGION
	run -100 --separate-stderr shadow-put --aws -e https://example.invalid </dev/null
	[[ "$stderr" == *"AWS_REGION"* ]]
	run -100 --separate-stderr shadow-put --aws -e https://example.invalid -c only-a-cert.pem </dev/null
	[[ "$stderr" == *"certificate and its key"* ]]
	run -100 --separate-stderr shadow-put --aws -e "ftp://example.invalid" -R eu-west-1 </dev/null
	[[ "$stderr" == *"https://"* ]]
}

@test "shadow-put --aws: SIGTERM ends a wait on an unavailable AWS at once; the update is reported as not applied" {
	start_capture
	echo '{"dev-j":[503,503,503,503,503,503,503,503,503,503,503,503,503,503,503,503,503,503,503,503]}' >"$PLAN"
	mkfifo "$BATS_TEST_TMPDIR/in"
	# (start_bg would give it /dev/null for stdin)
	shadow-put --aws -e "http://127.0.0.1:$PORT" -B 5 <"$BATS_TEST_TMPDIR/in" \
		>"$BATS_TEST_TMPDIR/put.out" 2>"$BATS_TEST_TMPDIR/put.err" &
	echo $! >"$BATS_TEST_TMPDIR/put.pid"
	echo put >>"$BATS_TEST_TMPDIR/bg.list"
	exec 7>"$BATS_TEST_TMPDIR/in"
	echo '{"thing":"dev-j","state":{"reported":{"a":1}}}' >&7
	wait_until 30 grep -q dev-j "$LOG"
	kill -TERM "$(bg_pid put)"
	wait_until 10 sh -c "! kill -0 $(bg_pid put)"
	exec 7>&-
	run cat "$BATS_TEST_TMPDIR/put.out"
	assert_output --partial '{"thing":"dev-j","result":"rejected","code":500,"message":"Internal service failure"'
}

@test "shadow-put --aws against moto_server: CreateThing, UpdateThingShadow, named shadow, version conflict" {
	command -v moto_server >/dev/null || skip "moto_server (python3 moto) is not installed"
	python3 -c 'import boto3' 2>/dev/null || skip "boto3 is not installed in python3"
	MPORT=$(free_port tcp)
	start_bg moto moto_server -p "$MPORT"
	wait_until 60 python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$MPORT/moto-api/')"
	# moto, like a strict account, has no shadow for a thing that does not exist
	run -1 --separate-stderr shadow-put --aws -e "http://127.0.0.1:$MPORT" -r 0 <<-EOF
	{"thing":"$IMEI","state":{"reported":{"a":1}}}
	EOF
	assert_output --partial '"result":"rejected","code":404'
	run -1 --separate-stderr shadow-put --aws -e "http://127.0.0.1:$MPORT" -T -I "http://127.0.0.1:$MPORT" -r 0 <<-EOF
	{"thing":"$IMEI","state":{"reported":{"3303":{"0":{"5700":21.5}}}},"clientToken":"m-1"}
	{"thing":"$IMEI","shadow":"temp","state":{"desired":{"3311":{"0":{"5850":true}}}}}
	{"thing":"$IMEI","state":{"reported":{"3303":{"0":{"5700":22}}}},"version":1}
	{"thing":"$IMEI","state":{"reported":{"3303":{"0":{"5700":23}}}},"version":1}
	EOF
	assert_line --index 0 --partial "{\"thing\":\"$IMEI\",\"result\":\"accepted\",\"state\":{\"reported\":{\"3303\":{\"0\":{\"5700\":21.5}}}}"
	assert_line --index 0 --partial '"version":1'
	assert_line --index 1 --partial "{\"thing\":\"$IMEI\",\"shadow\":\"temp\",\"result\":\"accepted\""
	assert_line --index 2 --partial '"version":2'
	assert_line --index 3 --partial '"result":"rejected","code":409,"message":"Version conflict"'
	# what moto stored, read back with boto3
	run python3 - "$MPORT" "$IMEI" <<-'PY'
	import boto3, json, sys
	d = boto3.client("iot-data", endpoint_url="http://127.0.0.1:" + sys.argv[1], region_name="eu-west-1",
	                 aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="x")
	c = json.load(d.get_thing_shadow(thingName=sys.argv[2])["payload"])
	n = json.load(d.get_thing_shadow(thingName=sys.argv[2], shadowName="temp")["payload"])
	print(json.dumps([c["state"]["reported"], c["version"], n["state"]["desired"]], sort_keys=True))
	PY
	assert_output '[{"3303": {"0": {"5700": 22}}}, 2, {"3311": {"0": {"5850": true}}}]'
}

@test "shadow-put, shadow-watch: the man pages document exactly the options --help lists" {
	for t in shadow-put shadow-watch; do
		help=$("$t" -h | grep -o -- '--[a-z][a-z-]*' | sort -u)
		man=$(grep -o '^\.It Fl [a-zA-Z] , Fl -[a-z-]*' "$TOP/man/$t.1" | sed 's/.*Fl -/--/' | sort -u)
		[ "$help" = "$man" ] || { echo "$t: --help and $t.1 differ:"; diff <(echo "$help") <(echo "$man"); return 1; }
	done
}
