#!/usr/bin/env bash
# Web-lab benchmarks: engine -> SignalR latency, throughput with 0 vs 100 viewers, PostgreSQL ingest (COPY vs EF),
# cross-node relay latency through PostgreSQL, child-process vs in-process training throughput, paper-scale loading
# (run page in Chromium and runs list with 10,000 runs) on SQLite and PostgreSQL.
# Starts a throwaway PostgreSQL from Debian's binaries for the ingest figure (as the tests do).
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build bench/IdentityInit.Bench -c Release -v q -nologo >/dev/null
BENCH=bench/IdentityInit.Bench/bin/Release/net10.0/linux-x64/IdentityInit.Bench
"$BENCH" latency --steps 600
"$BENCH" viewers --viewers 100 --pairs 2

PG=$(ls -d /usr/lib/postgresql/*/bin | sort | tail -1)
DIR=$(mktemp -d); PORT=$((20000 + RANDOM % 10000))
chown postgres:postgres "$DIR"
runuser -u postgres -- "$PG/initdb" -D "$DIR/data" -U postgres -A trust --no-sync >/dev/null
runuser -u postgres -- "$PG/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1" start >/dev/null
trap 'runuser -u postgres -- "$PG/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null; rm -rf "$DIR"' EXIT
runuser -u postgres -- psql -h 127.0.0.1 -p "$PORT" -U postgres -c "CREATE DATABASE bench" >/dev/null
"$BENCH" ingest --pg "Host=127.0.0.1;Port=$PORT;Username=postgres;Database=bench" --rows 100000
runuser -u postgres -- psql -h 127.0.0.1 -p "$PORT" -U postgres -c "CREATE DATABASE relay" >/dev/null
"$BENCH" relay --pg "Host=127.0.0.1;Port=$PORT;Username=postgres;Database=relay" --steps 600
runuser -u postgres -- psql -h 127.0.0.1 -p "$PORT" -U postgres -c "CREATE DATABASE relay20" >/dev/null
"$BENCH" relay --pg "Host=127.0.0.1;Port=$PORT;Username=postgres;Database=relay20" --steps 600 --runs 20
runuser -u postgres -- psql -h 127.0.0.1 -p "$PORT" -U postgres -c "CREATE DATABASE webcpu" >/dev/null
"$BENCH" webcpu --pg "Host=127.0.0.1;Port=$PORT;Username=postgres;Database=webcpu" --runs 10 --seconds 30
"$BENCH" child --steps 300 --pairs 2
"$BENCH" loading
runuser -u postgres -- psql -h 127.0.0.1 -p "$PORT" -U postgres -c "CREATE DATABASE loading" >/dev/null
"$BENCH" loading --pg "Host=127.0.0.1;Port=$PORT;Username=postgres;Database=loading"
