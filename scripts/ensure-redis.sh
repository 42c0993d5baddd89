#!/usr/bin/env bash
# Makes sure a Redis answers on ${PUSHD_REDIS_ADDR:-127.0.0.1:6379}:
# installs Debian's redis-server when it is missing and starts it when it
# is not running. Used by make demo and CI on fresh machines.
set -euo pipefail

addr=${PUSHD_REDIS_ADDR:-127.0.0.1:6379}
host=${addr%:*}
port=${addr##*:}

answers() {
	if command -v redis-cli >/dev/null; then
		[ "$(redis-cli -h "$host" -p "$port" ping 2>/dev/null)" = "PONG" ]
	else
		# Bash's /dev/tcp speaks enough RESP for a PING.
		exec 3<>"/dev/tcp/$host/$port" 2>/dev/null || return 1
		printf 'PING\r\n' >&3
		local reply
		read -r -t 2 reply <&3 || true
		exec 3>&-
		[ "${reply%$'\r'}" = "+PONG" ]
	fi
}

answers && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
if ! command -v redis-server >/dev/null; then
	echo "ensure-redis: installing redis-server"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server
fi
if ! answers; then
	echo "ensure-redis: starting redis-server on $host:$port"
	mkdir -p /tmp/pushd-redis
	redis-server --daemonize yes --bind "$host" --port "$port" --save "" --appendonly no \
		--dir /tmp/pushd-redis --logfile /tmp/pushd-redis/redis.log
fi
for _ in $(seq 50); do
	answers && exit 0
	sleep 0.1
done
echo "ensure-redis: Redis on $host:$port does not answer; see /tmp/pushd-redis/redis.log" >&2
exit 1
