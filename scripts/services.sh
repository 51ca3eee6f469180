#!/usr/bin/env bash
# Make sure Redis, RabbitMQ and PostgreSQL answer on their default local ports.
# On the project's CI machine they already run; elsewhere (Debian/Ubuntu) this
# installs the packages if missing and starts them. Idempotent.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
wait_port() {
  for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 1; done
  echo "services: $2 did not come up on 127.0.0.1:$1" >&2; return 1
}
ensure_pkg() {
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "services: installing $2 (Debian package)"
  sudo_ env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}

if ! port_open 6379; then
  ensure_pkg redis-server redis-server
  mkdir -p /tmp/stemtrace-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp/stemtrace-redis --logfile /tmp/stemtrace-redis/redis.log
  wait_port 6379 Redis
fi

if ! port_open 5672; then
  ensure_pkg rabbitmq-server rabbitmq-server
  sudo_ rabbitmq-server -detached || true
  wait_port 5672 RabbitMQ
fi

if ! port_open 5432; then
  if ! ls /etc/postgresql >/dev/null 2>&1; then ensure_pkg pg_ctlcluster postgresql; fi
  sudo_ pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  wait_port 5432 PostgreSQL
fi
# The tests connect as the current OS user or "postgres" to database "test" with trust auth;
# create the database where we are allowed to.
if command -v psql >/dev/null 2>&1 && ! psql -h 127.0.0.1 -U postgres -d test -Atc 'select 1' >/dev/null 2>&1; then
  (sudo_ -u postgres psql -Atc "create database test" >/dev/null 2>&1 || true)
fi
echo "services: redis 6379, rabbitmq 5672, postgresql 5432 reachable"
