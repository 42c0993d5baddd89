#!/usr/bin/env bash
# Installs what the project's commands need on a fresh Debian machine.
# Source it (". scripts/ensure-tools.sh") so a Go found in /usr/local/go
# lands on the caller's PATH too.
set -euo pipefail

[ -x /usr/local/go/bin/go ] && case ":$PATH:" in *:/usr/local/go/bin:*) ;; *) export PATH="/usr/local/go/bin:$PATH" ;; esac

need_apt=()
command -v make >/dev/null || need_apt+=(make)
command -v gcc >/dev/null || need_apt+=(gcc) # the race detector needs cgo
command -v git >/dev/null || need_apt+=(git)
command -v openssl >/dev/null || need_apt+=(openssl) # an independent encoder of test keys
if [ ${#need_apt[@]} -gt 0 ]; then
	echo "installing: ${need_apt[*]}"
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

# go.mod asks for Go 1.26; any Go from 1.21 on fetches that toolchain
# through the module proxy by itself (GOTOOLCHAIN=auto).
if ! command -v go >/dev/null; then
	echo "ensure-tools: Go is not installed; install Go 1.21 or later (https://go.dev/doc/install)" >&2
	exit 1
fi
minor=$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')
if [ "${minor:-0}" -lt 21 ] 2>/dev/null; then
	echo "ensure-tools: $(go env GOVERSION) is too old to fetch the Go 1.26 toolchain; install Go 1.21 or later" >&2
	exit 1
fi
