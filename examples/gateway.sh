#!/bin/sh
# The lwm2m-gw gateway on one machine: what `make run` starts.
#
#   device -> shadow:  lwm2m-listen | lwm2m-observe | shadow-put
#   shadow -> device:  shadow-watch | lwm2m-write  | shadow-put
#
# The stages are joined by named pipes rather than shell pipes so that this script knows every
# process and can stop them all, in order, on Ctrl-C or SIGTERM. Settings from the environment:
#   LWM2M_LISTEN   CoAP address (default 127.0.0.1:5683)
#   LWM2M_VAR      state directory (default ./var): lwm2m.sock, lwm2m/ (registrations), shadows/
#   SHADOW_STORE   the shadow store (default $LWM2M_VAR/shadows)
#   OBSERVE_PATHS  paths lwm2m-observe observes (default: its built-in list)
#   OBSERVE_CONFIG a YAML file for lwm2m-observe -c
#   OBSERVE_ARGS   more options for lwm2m-observe (e.g. "-O": Observe-Composite for 1.1 devices)
#   LISTEN_ARGS    more options for lwm2m-listen (e.g. "-a 30 -t 1")
# Shadow-put's results (one JSON line per update) go to standard output, logs to standard error.
set -eu

listen=${LWM2M_LISTEN:-127.0.0.1:5683}
var=${LWM2M_VAR:-./var}
store=${SHADOW_STORE:-$var/shadows}
sock=$var/lwm2m.sock
paths=${OBSERVE_PATHS:-}
config=${OBSERVE_CONFIG:-}
listen_args=${LISTEN_ARGS:-}

say() { echo "gateway: $*" >&2; }

for t in lwm2m-listen lwm2m-observe lwm2m-write shadow-put shadow-watch; do
	command -v "$t" >/dev/null || { say "$t is not on PATH (run make first)"; exit 100; }
done
mkdir -p "$var/lwm2m" "$store" || exit 111
run=$(mktemp -d "${TMPDIR:-/tmp}/lwm2m-gw.XXXXXX") || exit 111
mkfifo "$run/events" "$run/reported" "$run/deltas" "$run/writes" || exit 111

pids=
stopping=
stop() {
	[ -n "$stopping" ] && return
	stopping=1
	say "stopping"
	# sources first; the stages after them see the end of their input, finish and exit
	for p in $pids; do kill -TERM "$p" 2>/dev/null || :; done
	for p in $pids; do wait "$p" 2>/dev/null || :; done
	rm -rf "$run"
	say "stopped"
}
trap 'stop; exit 0' INT TERM HUP
trap 'stop' EXIT

obs_args=${OBSERVE_ARGS:-}
[ -n "$config" ] && obs_args="$obs_args -c $config"
say "device -> shadow: lwm2m-listen -l $listen -C $sock -S $var/lwm2m $listen_args | lwm2m-observe -C $sock $obs_args $paths | shadow-put -s $store"
# shellcheck disable=SC2086
lwm2m-listen -l "$listen" -C "$sock" -S "$var/lwm2m" $listen_args >"$run/events" &
pids="$pids $!"
# shellcheck disable=SC2086
lwm2m-observe -C "$sock" $obs_args $paths <"$run/events" >"$run/reported" &
pids="$pids $!"
shadow-put -s "$store" <"$run/reported" &
pids="$pids $!"

say "shadow -> device: shadow-watch -s $store | lwm2m-write -C $sock | shadow-put -s $store"
shadow-watch -s "$store" >"$run/deltas" &
pids="$pids $!"
lwm2m-write -C "$sock" <"$run/deltas" >"$run/writes" &
pids="$pids $!"
shadow-put -s "$store" <"$run/writes" &
pids="$pids $!"

say "ready: point an LwM2M client at coap://$listen (e.g. lwm2mclient -4 -h ${listen%:*} -p ${listen##*:} -n dev1);"
say "shadows in $store; set a desired state with:"
say "  echo '{\"thing\":\"dev1\",\"state\":{\"desired\":{\"3311\":{\"0\":{\"5850\":true}}}}}' | shadow-put -s $store"
say "Ctrl-C stops"

# Stop everything when any stage ends on its own.
while :; do
	for p in $pids; do
		if ! kill -0 "$p" 2>/dev/null; then
			say "a stage (pid $p) ended; stopping the others"
			stop
			exit 111
		fi
	done
	sleep 1 &
	wait $! || :
done
