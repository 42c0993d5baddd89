GO ?= go

.PHONY: all test vet demo pushsim bench bench-pushsim

all: test

# vet plus every test, race detector on; integration tests included.
test: vet
	$(GO) test -race -count=1 ./...

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }

# The demo of what exists today: the provider simulators answering the real
# APNs and FCM clients.
demo:
	$(GO) run ./cmd/pushsim demo

# The simulators, standalone, until Ctrl-C.
pushsim:
	$(GO) run ./cmd/pushsim serve

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# The APNs listener under h2load (installs nghttp2-client when missing).
bench-pushsim:
	bash scripts/bench-pushsim.sh
