# Sourced by run.sh when ljs-join is built: JoinReq/s over keep-alive HTTP, new mutual-TLS
# handshakes/s, and JoinReq/s with the root keys in kms-wrap serve (--crypto); each JoinReq rate
# measured twice: at saturation (32 client threads sending back to back: the rate the server
# reaches, its latency mostly queueing) and open-loop at a fixed offered rate (BENCH_JOIN_RATE,
# default 10000/s: two event threads, latency from each request's due time).
jdir="$work/join"
mkdir -p "$jdir/state"
ndev=$(n 20000)
jrate=${BENCH_JOIN_RATE:-10000}
jsecs=$(n 8)
# devices of LoRaWAN 1.0.3 with AppKeys in clear, home NetID 000013
awk -v n="$ndev" 'BEGIN { srand(8); for (i = 0; i < n; i++) {
	key = ""; for (j = 0; j < 16; j++) key = key sprintf("%02X", int(rand() * 256))
	printf "{\"dev_eui\":\"70B3D5FFFE%06X\",\"join_eui\":\"70B3D57ED0000000\",\"mac_version\":\"1.0.3\",\"app_key\":\"%s\",\"home_net_id\":\"000013\",\"net_ids\":[\"000013\"]}\n", i, key } }' \
	>"$jdir/devices.jsonl"

# join_start TAG ARGS...: ljs-join on a fresh TCP port; sets JPORT. 1 if it did not get ready.
join_start() {
	jtag=$1; shift
	JPORT=$(free_port tcp)
	JAPORT=$(free_port tcp)
	rm -rf "$jdir/state.$jtag"; mkdir -p "$jdir/state.$jtag"
	: >"$jdir/$jtag.ready"
	start join-$jtag sh -c 'r=$1; shift; exec ljs-join "$@" -d 3 3>"$r"' sh "$jdir/$jtag.ready" \
		--listen "127.0.0.1:$JPORT" --admin "127.0.0.1:$JAPORT" --devices "${JDEV:-$jdir/devices.jsonl}" --state "$jdir/state.$jtag" -q "$@"
	if ! wait_for 15 nonempty "$jdir/$jtag.ready"; then
		log "ljs-join ($jtag) did not get ready"
		tail_err "join-$jtag"
		stop "join-$jtag"
		return 1
	fi
}

# join_open TAG NAME DEVICES WHAT: JoinReqs offered at $jrate/s for $jsecs s (after a 2 s warm-up)
# to the running ljs-join TAG, open loop; a figure with the latency from the due times, and the
# server's own view of the time after the warm-up (GET /stats: the record's wait for the disk, its
# wait for a write to start, the log write, the wake-up of the HTTP thread after it).
join_open() {
	_t=$1 _name=$2 _devs=$3 _what=$4
	c0=$(cpu_tree "$(pid_of join-$_t)")
	bench-http -a "127.0.0.1:$JPORT" -D "$_devs" -c 64 -j 2 -r "$jrate" -w 2 -t "$jsecs" -S 1 \
		>"$jdir/$_t.open.json" 2>"$work/bench-http-$_t-open.err" &
	_bp=$!
	# the server's histograms without the warm-up: bench-http's first request is due 0.2 s after
	# it starts (its connections made), the counted ones 2 s later
	sleep 2.2
	curl -s --max-time 5 -X POST "http://127.0.0.1:$JAPORT/stats/latency/reset" >/dev/null
	wait "$_bp"
	c1=$(cpu_tree "$(pid_of join-$_t)")
	curl -s --max-time 5 "http://127.0.0.1:$JAPORT/stats" >"$jdir/$_t.stats1.json"
	j="$jdir/$_t.open.json"
	if [ -z "$(jget "$j" .p99_ms)" ]; then
		skip "$_name" "p99 < 5 ms" "bench-http -r gave no figures"
		tail_err "bench-http-$_t-open"
		return 0
	fi
	cs=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')
	srv=$(jq -r '.latency_ms | "server side (after the warm-up): record to disk p50 \(.store.p50) / p99 \(.store.p99) / max \(.store.max) ms, waiting for its write to start p99 \(.queue.p99) ms, one log write p99 \(.write.p99) ms, HTTP thread woken p99 \(.wake.p99) ms, received to answered p99 \(.join.p99) ms"' "$jdir/$_t.stats1.json" 2>/dev/null)
	fig "$_name" "p50 $(jget "$j" .p50_ms) / p99 $(jget "$j" .p99_ms) / p99.9 $(jget "$j" .p999_ms)" "ms" "p99 < 5 ms" \
		"$_what offered $jrate/s for $jsecs s (open loop, 2 threads, 64 connections, latency from each request's due time): $(jget "$j" .ok) Success of $(jget "$j" .due) due, $(jget "$j" .unsent) never sent, $(jget "$j" .unanswered) unanswered, $(jget "$j" .io_errors) I/O errors; max $(jget "$j" .max_ms) ms, sent-to-answer p99 $(jget "$j" .service_p99_ms) ms, due-to-sent p99 $(jget "$j" .late_p99_ms) ms (at most $(jget "$j" .max_queue) waiting for a connection); $cs CPU s with the warm-up: $(per_cpu "$(jget "$j" .ok_all)" "$cs") per CPU second; $srv"
	tail_err "bench-http-$_t-open"
}

jname="ljs-join JoinReq/s (HTTP keep-alive)"
if join_start plain --tls none; then
	c0=$(cpu_tree "$(pid_of join-plain)")
	bench-http -a "127.0.0.1:$JPORT" -D "$jdir/devices.jsonl" -c 32 -t 8 -S 1 >"$jdir/plain.json" 2>"$work/bench-http-plain.err"
	c1=$(cpu_tree "$(pid_of join-plain)")
	j="$jdir/plain.json"
	cs=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')
	fig "$jname" "$(jget "$j" .ok_per_s)" "JoinAns/s" ">= 10000/s" \
		"32 connections: $(jget "$j" .ok) Success of $(jget "$j" .requests), $(jget "$j" .io_errors) I/O errors; ljs-join used $cs CPU s: $(per_cpu "$(jget "$j" .ok)" "$cs") per CPU second"
	fig "ljs-join JoinReq latency (HTTP keep-alive, saturated)" "p50 $(jget "$j" .p50_ms) / p99 $(jget "$j" .p99_ms)" "ms" "" \
		"at the rate above, 32 client threads on the same cores: mostly queueing (see the open-loop row); p99.9 $(jget "$j" .p999_ms) ms, max $(jget "$j" .max_ms) ms"
	tail_err bench-http-plain
	stop join-plain
	# open loop on a fresh server (its counters cover only this run; the 2 s warm-up joins every
	# device once, so its tables have grown before the requests that count)
	if join_start plain --tls none; then
		join_open plain "ljs-join JoinReq latency at $jrate/s offered (HTTP keep-alive)" "$jdir/devices.jsonl" "JoinReqs"
		stop join-plain
	fi
else
	skip "$jname" ">= 10000/s, p99 < 5 ms" "ljs-join did not start (see above)"
	skip "ljs-join JoinReq latency at $jrate/s offered (HTTP keep-alive)" "p99 < 5 ms" "ljs-join did not start (see above)"
fi

# mutual TLS: a CA for NetID 000013, a server certificate, a client certificate; a new
# connection (full handshake, no resumption) for every JoinReq
jname="ljs-join new mutual-TLS handshakes/s"
if command -v certtool >/dev/null; then
	(
		cd "$jdir" || exit 1
		certtool --generate-privkey --key-type=ecdsa --outfile ca.key 2>/dev/null
		printf 'cn = bench CA 000013\nca\ncert_signing_key\nexpiration_days = 2\n' >ca.tmpl
		certtool --generate-self-signed --load-privkey ca.key --template ca.tmpl --outfile ca.pem 2>/dev/null
		certtool --generate-privkey --key-type=ecdsa --outfile server.key 2>/dev/null
		printf 'cn = 127.0.0.1\nip_address = 127.0.0.1\ntls_www_server\nexpiration_days = 2\n' >server.tmpl
		certtool --generate-certificate --load-privkey server.key --load-ca-certificate ca.pem \
			--load-ca-privkey ca.key --template server.tmpl --outfile server.pem 2>/dev/null
		certtool --generate-privkey --key-type=ecdsa --outfile client.key 2>/dev/null
		printf 'cn = ns.000013.example\ntls_www_client\nexpiration_days = 2\n' >client.tmpl
		certtool --generate-certificate --load-privkey client.key --load-ca-certificate ca.pem \
			--load-ca-privkey ca.key --template client.tmpl --outfile client.pem 2>/dev/null
		printf '000013: ca.pem\n' >client-cas.yml
	)
	if join_start mtls --tls mutual --cert "$jdir/server.pem" --key "$jdir/server.key" \
		--client-cas "$jdir/client-cas.yml"; then
		c0=$(cpu_tree "$(pid_of join-mtls)")
		bench-http -a "127.0.0.1:$JPORT" -D "$jdir/devices.jsonl" -c 8 -t 5 -N -T -A "$jdir/ca.pem" \
			-C "$jdir/client.pem" -K "$jdir/client.key" -S 1 >"$jdir/mtls.json" 2>"$work/bench-http-mtls.err"
		c1=$(cpu_tree "$(pid_of join-mtls)")
		j="$jdir/mtls.json"
		cs=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')
		fig "$jname" "$(jget "$j" .handshakes_per_s)" "handshakes/s" ">= 1000/s" \
			"ECDSA P-256, 8 clients, one JoinReq each: $(jget "$j" .ok) Success of $(jget "$j" .requests), handshake p50 $(jget "$j" .handshake_p50_ms) ms / p99 $(jget "$j" .handshake_p99_ms) ms; ljs-join used $cs CPU s: $(per_cpu "$(jget "$j" .handshakes)" "$cs") handshakes per CPU second"
		tail_err bench-http-mtls
		# the same with session resumption (TLS 1.3 tickets), as network servers that reconnect do:
		# no certificates, no signatures, one X25519 exchange
		c0=$(cpu_tree "$(pid_of join-mtls)")
		bench-http -a "127.0.0.1:$JPORT" -D "$jdir/devices.jsonl" -c 8 -t 5 -N -T -R -A "$jdir/ca.pem" \
			-C "$jdir/client.pem" -K "$jdir/client.key" -S 100 >"$jdir/mtls-r.json" 2>"$work/bench-http-mtls-r.err"
		c1=$(cpu_tree "$(pid_of join-mtls)")
		j="$jdir/mtls-r.json"
		cs=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')
		fig "ljs-join resumed mutual-TLS handshakes/s" "$(jget "$j" .handshakes_per_s)" "handshakes/s" "" \
			"8 clients, a new connection per JoinReq resuming the last session: $(jget "$j" .resumed) resumed of $(jget "$j" .handshakes), $(jget "$j" .ok) Success of $(jget "$j" .requests), handshake p50 $(jget "$j" .handshake_p50_ms) ms / p99 $(jget "$j" .handshake_p99_ms) ms; ljs-join used $cs CPU s: $(per_cpu "$(jget "$j" .handshakes)" "$cs") handshakes per CPU second"
		tail_err bench-http-mtls-r
		stop join-mtls
	else
		skip "$jname" ">= 1000/s" "ljs-join --tls mutual did not start (see above)"
	fi
else
	skip "$jname" ">= 1000/s" "certtool (gnutls-bin) missing"
fi

jname="ljs-join JoinReq/s with --crypto kms-wrap serve"
if why=$(missing kms-wrap); then
	skip "$jname" ">= 10000/s" "$why"
else
	# secure-element devices: the root keys exist only in kms-wrap serve, derived from a part's
	# KMS-encrypted parent key and each element's serial number; bench-http gets the derived
	# AppKeys (computed here with Python's hashlib as the kms-wrap tests do) to make the MICs
	(
		cd "$jdir" || exit 1
		kms-wrap genkey -k ring.yml parts 2>/dev/null
		root=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n' | tr a-f A-F)
		echo "{\"part_number\":\"BENCH-PART\",\"psk_root_keys\":\"$root\"}" |
			kms-wrap encrypt -k ring.yml -K parts -C part_number >parts.jsonl
		python3 - "$root" "$ndev" <<'PY'
import hashlib, json, sys
p, n = bytes.fromhex(sys.argv[1]), int(sys.argv[2])
with open("devices-se.jsonl", "w") as reg, open("devices-se-keys.jsonl", "w") as keys:
    for i in range(n):
        sn = bytes.fromhex("0123%010X%04XEE" % (0xA1B2C3D4E5, i))[:9]
        k = hashlib.sha256(p + bytes([0x1C, 0x04, 0, 0]) + sn[8:9] + sn[0:2] + bytes(25) + sn + bytes(23)).hexdigest().upper()
        d = {"dev_eui": "70B3D5FFFD%06X" % i, "join_eui": "70B3D57ED0000000", "mac_version": "1.0.3",
             "part_number": "BENCH-PART", "serial_number": sn.hex().upper(), "home_net_id": "000013",
             "net_ids": ["000013"]}
        reg.write(json.dumps(d, separators=(",", ":")) + "\n")
        d["app_key"] = k[32:]
        keys.write(json.dumps(d, separators=(",", ":")) + "\n")
PY
	)
	JDEV="$jdir/devices-se.jsonl"
	if join_start crypto --tls none --crypto "kms-wrap serve -D $jdir/devices-se.jsonl -p $jdir/parts.jsonl -k $jdir/ring.yml -C part_number"; then
		c0=$(cpu_tree "$(pid_of join-crypto)")
		bench-http -a "127.0.0.1:$JPORT" -D "$jdir/devices-se-keys.jsonl" -c 32 -t 8 -S 1 >"$jdir/crypto.json" 2>"$work/bench-http-crypto.err"
		c1=$(cpu_tree "$(pid_of join-crypto)")
		j="$jdir/crypto.json"
		cs=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')
		fig "$jname" "$(jget "$j" .ok_per_s)" "JoinAns/s" ">= 10000/s" \
			"secure-element devices, 32 connections: $(jget "$j" .ok) Success of $(jget "$j" .requests), p50 $(jget "$j" .p50_ms) ms / p99 $(jget "$j" .p99_ms) ms; ljs-join + kms-wrap serve used $cs CPU s: $(per_cpu "$(jget "$j" .ok)" "$cs") per CPU second"
		tail_err bench-http-crypto
		stop join-crypto
		if join_start crypto --tls none --crypto "kms-wrap serve -D $jdir/devices-se.jsonl -p $jdir/parts.jsonl -k $jdir/ring.yml -C part_number"; then
			join_open crypto "ljs-join JoinReq latency at $jrate/s offered with --crypto" "$jdir/devices-se-keys.jsonl" \
				"secure-element JoinReqs (ljs-join + kms-wrap serve)"
			stop join-crypto
		fi
	else
		skip "$jname" ">= 10000/s" "ljs-join --crypto did not start (see above)"
	fi
	JDEV="$jdir/devices.jsonl"
fi
