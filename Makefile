GO ?= go

.PHONY: all tools test vet demo pushsim-demo pushsim bench bench-pushsim

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

# Every package's benchmarks; cmd/pushd's run pushd against Redis and
# pushsim, so the services are made sure of first.
bench: tools
	bash scripts/ensure-redis.sh
	bash scripts/ensure-postgres.sh
	$(GO) test -run '^$$' -bench . -benchmem ./...

# The APNs listener under h2load (installs nghttp2-client when missing).
bench-pushsim:
	bash scripts/bench-pushsim.sh
