#!/bin/sh
# The /get side of the AWS IoT Device Shadow service on a test MQTT broker: a request on
# $aws/things/<thing>/shadow[/name/<shadow>]/get is answered on .../get/accepted with the
# document in DOCS/<thing>.json (DOCS/<thing>.<shadow>.json), or on .../get/rejected with
# AWS's 404 when there is none.
#   aws_shadow_get.sh DOCS <mosquitto_sub/pub connection options...>
docs=$1
shift
mosquitto_sub "$@" -v -t '$aws/things/+/shadow/get' -t '$aws/things/+/shadow/name/+/get' |
while read -r topic _; do
	rest=${topic#\$aws/things/}
	thing=${rest%%/*}
	case $rest in
	*/shadow/name/*)
		shadow=${rest#*/shadow/name/}
		shadow=${shadow%/get}
		f=$docs/$thing.$shadow.json
		;;
	*)
		shadow=Classic
		f=$docs/$thing.json
		;;
	esac
	if [ -f "$f" ]; then
		mosquitto_pub "$@" -t "$topic/accepted" -f "$f"
	else
		mosquitto_pub "$@" -t "$topic/rejected" -m "{\"code\":404,\"message\":\"No shadow exists with name: '$shadow'\"}"
	fi
	echo "answered $topic" >&2
done
