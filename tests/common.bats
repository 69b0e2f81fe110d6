#!/usr/bin/env bats
# lib/ basics: line reading, hex, JSON lines.
load test_helper

@test "lib: line reader, hex and JSON-lines unit checks pass" {
	run "$UNIT/test_common"
	assert_success
}

@test "tests: no wait_until expands a command substitution once and then waits on a fixed value" {
	# wait_until 5 test "$(count ...)" -eq 2 runs count once, at the call: use counted
	run grep -nE '^[[:space:]]*wait_[a-z_]+ [0-9]+ (test|\[) .*\$\(' "$TOP"/tests/*.bats "$TOP"/tests/*.bash
	[ "$status" -eq 1 ] || { echo "$output"; false; }
}

@test "tests: no jq -e that passes on empty input" {
	# jq 1.6 -e exits 0 when it reads nothing: use jq_some, or jq -en 'input | ...'
	run sh -c "grep -nE '^[^#]*jq -e( |\$)' '$TOP'/tests/*.bats '$TOP'/tests/*.bash | grep -v 'jq -e -s' | grep -v '^[^:]*/common.bats:'"
	[ "$status" -eq 1 ] || { echo "$output"; false; }
}
