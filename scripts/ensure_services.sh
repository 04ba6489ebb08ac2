#!/usr/bin/env bash
# Make sure the services the tests talk to are there: PostgreSQL on 127.0.0.1:5432.
# Tests never skip for a missing service; this starts (or installs) what they need.
set -euo pipefail

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }

if ! command -v pg_isready >/dev/null 2>&1 || ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  echo "ensure_services: installing postgresql with apt"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
if ! pg_up; then
  echo "ensure_services: starting the PostgreSQL cluster"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
pg_up || { echo "ensure_services: PostgreSQL did not come up on 127.0.0.1:5432" >&2; exit 1; }
