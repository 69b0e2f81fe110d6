#!/usr/bin/env bats
# make install: binaries, man pages and examples under DESTDIR/PREFIX, and each of them works
# from there.
bats_require_minimum_version 1.5.0
load test_helper

TOOLS="kms-wrap ljs-join lwm2m-listen lwm2m-observe lwm2m-write shadow-put shadow-watch"

setup_file() {
	export DEST=$BATS_FILE_TMPDIR/dest
	make -s -C "$TOP" install DESTDIR="$DEST" PREFIX=/usr >"$BATS_FILE_TMPDIR/install.log" 2>&1
}

@test "install: DESTDIR=\$tmp PREFIX=/usr puts bin, man1/5/7 and the examples in place" {
	local t m
	for t in $TOOLS; do
		[ -x "$DEST/usr/bin/$t" ]
		[ -f "$DEST/usr/share/man/man1/$t.1" ]
	done
	[ "$(ls "$DEST/usr/bin" | wc -l)" -eq 7 ]
	for m in lwm2m-gw-records.5 shadow-store.5; do [ -f "$DEST/usr/share/man/man5/$m" ]; done
	[ -f "$DEST/usr/share/man/man7/lwm2m-gw.7" ]
	# nothing lands outside DESTDIR/usr
	[ "$(ls "$DEST")" = usr ]
	local ex=$DEST/usr/share/doc/lwm2m-gw/examples
	[ -f "$ex/README.md" ] && [ -x "$ex/gateway.sh" ]
	for t in lwm2m-listen lwm2m-reported lwm2m-desired ljs-join; do
		[ -x "$ex/s6/$t/run" ] && [ -x "$ex/s6/$t/finish" ] && [ -x "$ex/s6/$t/log/run" ]
		[ -f "$ex/s6/$t/notification-fd" ]
		[ -x "$ex/runit/$t/run" ] && [ -x "$ex/runit/$t/log/run" ]
	done
	[ -f "$ex/etc/lwm2m-gw/observe.yml" ] && [ -f "$ex/etc/lwm2m-gw/ljs-join/devices.jsonl" ]
	# the keyring and the PSKs stay readable by their owner only
	[ "$(stat -c %a "$ex/etc/lwm2m-gw/kms/keyring.yml")" = 600 ]
	[ "$(stat -c %a "$ex/etc/lwm2m-gw/credentials.yml")" = 600 ]
}

@test "install: every installed man page renders with man -l" {
	local f
	for f in "$DEST"/usr/share/man/man*/*; do
		run -0 env MANWIDTH=80 man -l -P cat "$f"
		assert_output --partial "NAME"
		assert_output --partial "DESCRIPTION"
		[ "${#lines[@]}" -gt 20 ]
	done
	# the overview page names every tool
	run -0 env MANWIDTH=80 man -l -P cat "$DEST/usr/share/man/man7/lwm2m-gw.7"
	for t in $TOOLS; do assert_output --partial "$t"; done
}

@test "install: each installed binary runs --version and -h from there" {
	local t
	for t in $TOOLS; do
		run -0 env PATH=/usr/bin:/bin "$DEST/usr/bin/$t" --version
		assert_output --partial "$t"
		run -0 env PATH=/usr/bin:/bin "$DEST/usr/bin/$t" -h
	done
}
