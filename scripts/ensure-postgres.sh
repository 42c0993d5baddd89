#!/usr/bin/env bash
# Makes sure PostgreSQL answers on 127.0.0.1:5432 with a database "test"
# that the postgres role reaches without a password (the tests' default
# DSN): installs Debian's postgresql when missing and starts the cluster
# when it is not running.
set -euo pipefail

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

answers() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if ! command -v pg_ctlcluster >/dev/null; then
	echo "ensure-postgres: installing postgresql"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql
fi
if ! answers; then
	v=$(ls /etc/postgresql | sort -V | tail -1)
	echo "ensure-postgres: starting PostgreSQL $v"
	$SUDO pg_ctlcluster --skip-systemctl-redirect "$v" main start || true
fi
for _ in $(seq 100); do
	answers && break
	sleep 0.1
done
answers || { echo "ensure-postgres: PostgreSQL on 127.0.0.1:5432 does not answer" >&2; exit 1; }
reachable() { psql -h 127.0.0.1 -U postgres -d test -Atc 'select 1' >/dev/null 2>&1; }
if ! reachable && [ -z "${PUSHD_TEST_POSTGRES_DSN:-}" ]; then
	# A fresh Debian cluster asks for passwords on TCP and has no "test"
	# database; this is a test machine, so trust loopback and make it.
	v=$(ls /etc/postgresql | sort -V | tail -1)
	hba=/etc/postgresql/$v/main/pg_hba.conf
	if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
		echo "ensure-postgres: trusting 127.0.0.1 in $hba (test machine)"
		$SUDO sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
		$SUDO pg_ctlcluster --skip-systemctl-redirect "$v" main reload
	fi
	$SUDO su postgres -c "psql -Atc \"select 1 from pg_database where datname='test'\" | grep -q 1 || createdb test"
fi
if [ -z "${PUSHD_TEST_POSTGRES_DSN:-}" ] && ! reachable; then
	echo "ensure-postgres: postgres@127.0.0.1/test is still not reachable; set PUSHD_TEST_POSTGRES_DSN" >&2
	exit 1
fi
