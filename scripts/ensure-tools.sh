#!/usr/bin/env bash
# Installs what the project's commands need on a fresh Debian machine.
set -euo pipefail

need_apt=()
command -v make >/dev/null || need_apt+=(make)
command -v gcc >/dev/null || need_apt+=(gcc) # the race detector needs cgo
if ! command -v go >/dev/null && [ ! -x /usr/local/go/bin/go ]; then
	need_apt+=(golang-go)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
	echo "installing: ${need_apt[*]}"
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi
