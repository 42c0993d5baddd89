GO ?= go

.PHONY: all tools test vet demo pushsim-demo pushsim bench bench-check bench-go bench-pushsim

all: test

# vet plus every test, race detector on; integration tests included (they
# need Redis and PostgreSQL: scripts/ensure-redis.sh and ensure-postgres.sh
# install and start them on a fresh machine).
test: tools vet
	bash scripts/ensure-redis.sh
	bash scripts/ensure-postgres.sh
	$(GO) test -race -count=1 ./...

# gcc for the race detector, git; checks that Go is new enough.
tools:
	bash scripts/ensure-tools.sh

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }

# pushd against the provider simulators: Redis (installed and started when
# missing), pushsim and pushd serve on SQLite, devices, mutes and a message,
# and what became of each recipient.
demo: tools
	bash scripts/ensure-redis.sh
	$(GO) run ./scripts/demo

# The simulators alone answering the real APNs and FCM clients.
pushsim-demo:
	$(GO) run ./cmd/pushsim demo

# The simulators, standalone, until Ctrl-C.
pushsim:
	$(GO) run ./cmd/pushsim serve

# The harness: pushsim, Redis and pushd serve as separate processes, on
# SQLite and on PostgreSQL, a seeded registry of 100 000 clients, the dm,
# group, mega, mixed and latency workloads through the HTTP API, and the
# bare apns2 client and h2load as references in the same run; one JSON line
# per reference and workload. Flags: go run ./scripts/bench -h.
bench: tools
	bash scripts/ensure-redis.sh
	bash scripts/ensure-postgres.sh
	$(GO) run ./scripts/bench $(BENCHFLAGS)

# The harness at small sizes, through the API and the Go enqueuer: fails
# when a push is lost, duplicated or counted wrong (CI runs it).
bench-check: tools
	bash scripts/ensure-redis.sh
	bash scripts/ensure-postgres.sh
	$(GO) run ./scripts/bench -small -enqueue api,go -h2load=false

# Every package's Go benchmarks; cmd/pushd's run pushd against Redis and
# pushsim, so the services are made sure of first.
bench-go: tools
	bash scripts/ensure-redis.sh
	bash scripts/ensure-postgres.sh
	$(GO) test -run '^$$' -bench . -benchmem ./...

# The APNs listener under h2load (installs nghttp2-client when missing).
bench-pushsim:
	bash scripts/bench-pushsim.sh
