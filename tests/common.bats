#!/usr/bin/env bats
# lib/ basics: line reading, hex, JSON lines.
load test_helper

@test "lib: line reader, hex and JSON-lines unit checks pass" {
	run "$UNIT/test_common"
	assert_success
}
