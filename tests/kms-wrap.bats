#!/usr/bin/env bats
# kms-wrap: RFC 3394 key wrap and KeyEnvelopes, local keyring and AWS KMS encryption, secure
# element parts, and the crypto co-process.
load test_helper

teardown() { stop_all; }

@test "keywrap: RFC 3394 vectors, KeyEnvelopes and YAML KEK keyrings (unit)" {
	run "$UNIT/test_keywrap"
	assert_success
}
