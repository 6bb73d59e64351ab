#!/usr/bin/env bash
# Token-endpoint benchmark: starts the release server on a fresh SQLite file with
# examples/quickstart.toml and drives client_credentials (client_secret_basic, ES256
# JWT access tokens) with wrk. Prints requests/s, p50/p99 latency, errors and the
# server's peak RSS.
#
#   bench/run.sh                       # 32 connections, 10 s
#   CONNECTIONS=64 DURATION=30 bench/run.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CONNECTIONS="${CONNECTIONS:-32}"
DURATION="${DURATION:-10}"
THREADS="${THREADS:-1}"
PORT="${PORT:-38500}"

command -v wrk >/dev/null || { echo "installing wrk"; apt-get install -y wrk >/dev/null; }
cargo build --release --locked -p tessera >&2

work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
TESSERA__ISSUER="http://127.0.0.1:$PORT" TESSERA__SERVER__LISTEN="127.0.0.1:$PORT" \
TESSERA__STORAGE__URL="sqlite://$work/bench.db" RUST_LOG="${RUST_LOG:-warn}" \
  target/release/tessera serve --config examples/quickstart.toml 2>"$work/server.log" &
server=$!

url="http://127.0.0.1:$PORT/token"
export BENCH_AUTH="$(printf 'service-a:service-a-secret' | base64 -w0)"
export BENCH_BODY="grant_type=client_credentials&scope=api1.read"
for _ in $(seq 1 100); do
  curl -sf -o /dev/null -H "Authorization: Basic $BENCH_AUTH" -d "$BENCH_BODY" "$url" && break
  sleep 0.1
done
curl -sf -H "Authorization: Basic $BENCH_AUTH" -d "$BENCH_BODY" "$url" | grep -q access_token \
  || { echo "server did not come up:"; cat "$work/server.log"; exit 1; }

wrk -t"$THREADS" -c"$CONNECTIONS" -d3s -s bench/cc.lua "$url" >/dev/null  # warm-up
echo "client_credentials, client_secret_basic, ES256 JWT: $CONNECTIONS connections, ${DURATION}s"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s bench/cc.lua "$url" | tail -n 1
echo "server peak RSS: $(awk '/^VmHWM:/{printf "%.1f MiB", $2/1024}' "/proc/$server/status")"
