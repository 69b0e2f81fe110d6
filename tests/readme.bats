#!/usr/bin/env bats
# README.md's walkthrough, run: the command blocks marked <!-- readme-test --> in order, in one
# bash, with free ports for 5683, 8443 and 8081, a scratch $HOME, this tree's tools and examples,
# and the simulated device (tests/peers/lwm2m-device.js, npm coap) where the README starts a
# real one (<!-- readme-test: device -->). Blocks marked "wait" are retried until they succeed
# (bounded): they check for something that arrives.
bats_require_minimum_version 1.5.0
load test_helper

setup() {
	cd "$BATS_TEST_TMPDIR"
	PORT=$(free_port)
	JPORT=$(free_port tcp)
	APORT=$(free_port tcp)
	mkdir -p home
}

teardown() {
	[ -n "${BATS_TEST_COMPLETED:-}" ] || {
		cat "$BATS_TEST_TMPDIR/script.out"
		tail -n 20 "$BATS_TEST_TMPDIR"/home/demo/gateway.log "$BATS_TEST_TMPDIR"/home/join/ljs-join.log 2>/dev/null
	}
	[ -s "$BATS_TEST_TMPDIR/pgid" ] && kill -TERM -- "-$(cat "$BATS_TEST_TMPDIR/pgid")" 2>/dev/null || true
	stop_all
}

# extract README: blocks/NN.sh and their kinds in blocks/list ("NN kind" lines)
extract() {
	mkdir -p blocks
	python3 - "$TOP/README.md" blocks <<'PY'
import re, sys
text = open(sys.argv[1]).read().splitlines()
out, n, i = sys.argv[2], 0, 0
lst = open(out + "/list", "w")
while i < len(text):
    m = re.match(r'<!-- readme-test(?:: (\w+))? -->$', text[i])
    i += 1
    if not m:
        continue
    while i < len(text) and text[i].strip() == "":
        i += 1
    assert text[i] == "```sh", "line %d: a ```sh block must follow the marker" % (i + 1)
    i += 1
    body = []
    while text[i] != "```":
        body.append(text[i])
        i += 1
    n += 1
    open("%s/%02d.sh" % (out, n), "w").write("\n".join(body) + "\n")
    lst.write("%02d %s\n" % (n, m.group(1) or "run"))
PY
}

@test "readme: the walkthrough runs: a temperature in the shadow, the LED from the shadow, a JoinReq over mutual TLS" {
	extract
	[ "$(wc -l <blocks/list)" -ge 7 ]
	grep -q ' device$' blocks/list
	grep -q ' wait$' blocks/list
	{
		echo 'set -e'
		echo 'echo $$ >"$READMETEST/pgid"'
		echo 'readme_wait() { local i; for i in $(seq 1 300); do bash "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "timed out: $(cat "$1")"; bash "$1"; }'
		while read -r n kind; do
			f=$BATS_TEST_TMPDIR/blocks/$n.sh
			sed -i -e "s/5683/$PORT/g; s/8443/$JPORT/g; s/8081/$APORT/g" \
				-e "s#/usr/local/share/doc/lwm2m-gw/examples#$TOP/examples#g" "$f"
			echo "echo '--- block $n ($kind)'"
			case $kind in
			run) cat "$f" ;;
			wait) echo "readme_wait '$f'" ;;
			device) echo "node '$PEERS/lwm2m-device.js' --server 127.0.0.1:$PORT --ep dev1 >\"\$READMETEST/device.out\" 2>&1 &" ;;
			*) echo "unknown block kind $kind" >&2; return 1 ;;
			esac
		done <blocks/list
	} >script.sh
	rc=0
	READMETEST=$BATS_TEST_TMPDIR HOME=$BATS_TEST_TMPDIR/home setsid -w bash script.sh >script.out 2>&1 || rc=$?
	echo "script: $rc"
	[ $rc -eq 0 ]
	# what the README promised, seen from the other side too
	jq -en 'input | .state.reported."3303"."0"."5700" == 21.5' home/demo/shadows/dev1.json
	grep '^{' device.out | jq -e -s 'map(select(.event == "write" and .path == "/3311/0/5850" and .value == true)) | length == 1'
	grep -q 'ljs-join: info: listening on' home/join/ljs-join.log
}
