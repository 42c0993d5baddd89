#!/usr/bin/env bash
# Measures pushsim's APNs production listener with h2load (nghttp2-client):
# token-authenticated POSTs of a 200-byte payload to 1000 distinct valid
# device tokens, from another process. Usage:
#   scripts/bench-pushsim.sh [requests] [clients] [streams-per-client]
set -euo pipefail
cd "$(dirname "$0")/.."

requests=${1:-400000}
clients=${2:-4}
streams=${3:-100}

if ! command -v h2load >/dev/null; then
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nghttp2-client
fi

work=$(mktemp -d)
trap 'kill "${pid:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/pushsim" ./cmd/pushsim

port_prod=$((20000 + RANDOM % 20000))
"$work/pushsim" serve --dir "$work/state" \
	--apns-production "127.0.0.1:$port_prod" \
	--apns-development "127.0.0.1:0" --fcm "127.0.0.1:0" --control "127.0.0.1:0" \
	--seed bench >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
	grep -q ready "$work/serve.log" && break
	sleep 0.1
done
grep -q ready "$work/serve.log" || { cat "$work/serve.log"; exit 1; }

topic=com.example.chat
"$work/pushsim" mint --seed bench --provider apns --fate valid --env production --topic "$topic" -n 1000 |
	sed "s#^#https://127.0.0.1:$port_prod/3/device/#" >"$work/uris"
bearer=$("$work/pushsim" bearer --dir "$work/state")
printf '%s' '{"aps":{"alert":{"title":"Ada Lovelace","body":"Are we still on for the engine demo tomorrow? I have the punch cards ready."},"thread-id":"conv-1","sound":"default"},"conv":"conv-1","m":"01234567890"}' >"$work/payload.json"
echo "payload: $(wc -c <"$work/payload.json") bytes; $requests requests, $clients connections x $streams streams"

h2load -n "$requests" -c "$clients" -m "$streams" -t 1 \
	-H "authorization: bearer $bearer" -H "apns-topic: $topic" -H "apns-push-type: alert" \
	-d "$work/payload.json" -i "$work/uris" | tee "$work/h2load.out"

# Every request must have been accepted, or the figure measures errors.
grep -Eq '^status codes: [0-9]+ 2xx, 0 3xx, 0 4xx, 0 5xx' "$work/h2load.out" || {
	echo "bench-pushsim: some requests were refused; see above" >&2
	exit 1
}

# The same listener driven by the real Go client, from another process.
"$work/pushsim" load --dir "$work/state" --seed bench --url "https://127.0.0.1:$port_prod" \
	--bearer "$bearer" --requests "$requests" --inflight 1000 --connections 1
"$work/pushsim" load --dir "$work/state" --seed bench --url "https://127.0.0.1:$port_prod" \
	--bearer "$bearer" --requests "$requests" --inflight 1000 --connections 4
