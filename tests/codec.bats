#!/usr/bin/env bats
# lib/ LwM2M object model and content formats: TLV, text, opaque, SenML JSON/CBOR, LwM2M CBOR,
# the old LwM2M JSON, with the OMA specification examples as vectors.
load test_helper

@test "codec: object model, content formats and coercion unit checks pass" {
	run "$UNIT/test_codec"
	assert_success
}
