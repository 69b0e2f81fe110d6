#!/usr/bin/env bats
# Smoke run of the libFuzzer targets (tests/fuzz/*.c, `make fuzz` for long runs): each builds
# with clang, ASan and UBSan, replays its seeds (tests/fuzz/corpus/<target>, which hold every
# crash found so far) and then fuzzes for 3 seconds; any crash, leak or UB report fails.
load test_helper

FUZZ=$TOP/build-fuzz

setup_file() {
	local probe=$BATS_FILE_TMPDIR/probe
	printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' >"$probe.c"
	if ! command -v clang >/dev/null || ! clang -fsanitize=fuzzer,address,undefined -o "$probe" "$probe.c" 2>"$probe.err"; then
		echo "clang with libFuzzer (apt-get install clang libclang-rt-14-dev) is missing: $(head -c 300 "$probe.err" 2>/dev/null)" >"$BATS_FILE_TMPDIR/skip"
		return 0
	fi
	make -C "$TOP" -j2 fuzz-build >"$BATS_FILE_TMPDIR/build.log" 2>&1 || cp "$BATS_FILE_TMPDIR/build.log" "$BATS_FILE_TMPDIR/build.failed"
}

setup() {
	[ ! -f "$BATS_FILE_TMPDIR/skip" ] || skip "$(cat "$BATS_FILE_TMPDIR/skip")"
	if [ -f "$BATS_FILE_TMPDIR/build.failed" ]; then
		tail -n 30 "$BATS_FILE_TMPDIR/build.failed"
		return 1
	fi
}

teardown() {
	[ -z "${FUZZ_SCRATCH:-}" ] || rm -rf "$FUZZ_SCRATCH"
}

smoke() {
	local t=$1
	[ -d "$TOP/tests/fuzz/corpus/$t" ] && [ -n "$(ls "$TOP/tests/fuzz/corpus/$t")" ]
	mkdir "$BATS_TEST_TMPDIR/new"
	# the targets' scratch directories (tmpfs when there is one), removed by teardown even after a crash
	FUZZ_SCRATCH=$(mktemp -d /dev/shm/lwm2m-fuzz.XXXXXX 2>/dev/null || mktemp -d "$BATS_TEST_TMPDIR/scratch.XXXXXX")
	export FUZZ_SCRATCH
	local dict=()
	[ ! -f "$TOP/tests/fuzz/$t.dict" ] || dict=("-dict=$TOP/tests/fuzz/$t.dict")
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	run "$FUZZ/$t" -max_total_time=3 -print_final_stats=1 -artifact_prefix="$BATS_TEST_TMPDIR/" "${dict[@]}" \
	  "$BATS_TEST_TMPDIR/new" "$TOP/tests/fuzz/corpus/$t"
	[ "$status" -eq 0 ] || { echo "$output" | tail -n 60; ls "$BATS_TEST_TMPDIR"; return 1; }
	[[ $output == *"Done "*" runs in "* ]]
	# a target that ends normally removes its own scratch directory
	[ -z "$(ls -A "$FUZZ_SCRATCH")" ] || { ls -la "$FUZZ_SCRATCH"; return 1; }
	echo "$output" | grep -E '^stat::(number_of_executed_units|average_exec_per_sec)' | sed "s|^|# $t |" >&3 || true
}

@test "fuzz: lwm2m_decode (every content format) and re-encode" { smoke fuzz_codec; }
@test "fuzz: CoRE link format and Register payloads" { smoke fuzz_corelink; }
@test "fuzz: json_fast and json_out agree with libjq's parser and dump" { smoke fuzz_json_diff; }
@test "fuzz: JSON lines and shadow update documents" { smoke fuzz_jsonl; }
@test "fuzz: shadow-put's store trees and quick line parse agree with shadow_apply byte for byte" { smoke fuzz_shadow_tree; }
@test "fuzz: LoRaWAN join-request and join-accept PHYPayloads" { smoke fuzz_lorawan; }
@test "fuzz: Backend Interfaces messages" { smoke fuzz_bi_msg; }
@test "fuzz: JWT bearer tokens" { smoke fuzz_jwt; }
@test "fuzz: YAML KEK keyring" { smoke fuzz_kek_keyring; }
@test "fuzz: YAML configs (lwm2m-observe -c, lwm2m-listen -k, ljs-join interop.yml)" { smoke fuzz_configs; }
@test "fuzz: lwm2m-listen's control commands and device datagrams (registration interface)" { smoke fuzz_listen; }
@test "fuzz: lwm2m-write's desired-state deltas and control lines (writer engine, real control socket)" { smoke fuzz_writer; }
@test "fuzz: lwm2m-observe's registration events and control lines (observer engine, real control socket)" { smoke fuzz_observer; }
@test "fuzz: ljs-join's devices.jsonl (wrapped and KMS-encrypted root keys) and its secure-element devices" { smoke fuzz_js_devices; }
@test "fuzz: kms-wrap serve's secure-element parts table (KMS-decrypted parent keys)" { smoke fuzz_se_parts; }
@test "fuzz: lwm2m-listen's saved registrations and journal, saved and loaded again" { smoke fuzz_registry; }
