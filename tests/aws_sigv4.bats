#!/usr/bin/env bats
# lib/aws_sigv4: AWS's published SigV4 suite, and the same signatures as botocore's SigV4Auth.
load test_helper

@test "aws sigv4: AWS's published Signature Version 4 test suite vectors match" {
	run "$UNIT/test_aws_sigv4"
	assert_success
	assert_output --partial "published SigV4 vectors match"
}

@test "aws sigv4: signatures equal botocore's (urn:imei thing, named shadow, token, IoT, KMS)" {
	python3 -c 'import botocore' 2>/dev/null || skip "botocore is not installed in python3"
	run python3 "$PEERS/sigv4_compare.py" "$UNIT/test_aws_sigv4"
	assert_success
	assert_output --partial ", 0 differences"
}

@test "aws sigv4: a thing name with ':' is encoded once on the wire and twice in the signature" {
	run sh -c 'echo "{\"name\":\"t\",\"method\":\"POST\",\"host\":\"h\",\"segments\":[\"things\",\"urn:imei:352656100000000\",\"shadow\"],\"params\":[[\"name\",\"a b\"]],\"region\":\"eu-west-1\",\"service\":\"iotdata\",\"access_key\":\"AK\",\"secret_key\":\"SK\",\"time\":0}" | "$1" -' sh "$UNIT/test_aws_sigv4"
	assert_success
	assert_output --partial '"path":"/things/urn%3Aimei%3A352656100000000/shadow"'
	assert_output --partial '"query":"name=a%20b"'
	assert_output --partial 'POST\n/things/urn%253Aimei%253A352656100000000/shadow\nname=a%20b\n'
}
