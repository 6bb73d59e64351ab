#!/usr/bin/env bash
# DPoP cost benchmark: client_credentials with a fresh DPoP proof per request against
# plain client_credentials, interleaved in one run through the same Rust load
# generator (`tessera-bench load`; wrk cannot sign a proof per request). The load
# generator signs every proof with a cached aws-lc-rs key pair, and signs them
# before each timed run (`--presign`, a unique jti each, iat = signing time): the
# timed run measures the server, as wrk measures it for plain requests without
# doing any crypto of its own. The presigned proofs are used within seconds, well
# inside the server's five-minute iat window; past PRESIGN proofs, the generator
# signs on the spot (on the same cores, which then lowers the figure).
#
#   bench/dpop.sh                 # 3 rounds, 32 connections, 10 s each
#   ROUNDS=5 DURATION=20 bench/dpop.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROUNDS="${ROUNDS:-3}"
CONNECTIONS="${CONNECTIONS:-32}"
DURATION="${DURATION:-10}"
PORT="${PORT:-38501}"
# Proofs signed before each DPoP run: enough for the fastest rate seen here with room to spare.
PRESIGN="${PRESIGN:-$((DURATION * 30000))}"
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --locked -p tessera -p tessera-bench >&2

work="$(mktemp -d)"
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
TESSERA__ISSUER="http://127.0.0.1:$PORT" TESSERA__SERVER__LISTEN="127.0.0.1:$PORT" \
TESSERA__STORAGE__URL="sqlite://$work/bench.db" RUST_LOG="${RUST_LOG:-warn}" \
  target/release/tessera serve --config examples/quickstart.toml 2>"$work/server.log" &
server=$!
url="http://127.0.0.1:$PORT/token"
for _ in $(seq 1 100); do curl -sf -o /dev/null -u service-a:service-a-secret -d grant_type=client_credentials "$url" && break; sleep 0.1; done

load() { target/release/tessera-bench load --url "$url" --connections "$CONNECTIONS" "$@"; }
load --duration 3 >/dev/null; load --duration 3 --dpop --presign 60000 >/dev/null   # warm-up
echo "# $(date -u +%FT%TZ) $CONNECTIONS connections, ${DURATION}s per run, $ROUNDS rounds, nproc $(nproc)"
for round in $(seq 1 "$ROUNDS"); do
  plain="$(load --duration "$DURATION")"; dpop="$(load --duration "$DURATION" --dpop --presign "$PRESIGN")"
  echo "round $round plain: $plain"
  echo "round $round dpop:  $dpop"
  p="$(echo "$plain" | awk '{print $2}')"; d="$(echo "$dpop" | awk '{print $2}')"
  echo "round $round dpop/plain: $(awk -v d="$d" -v p="$p" 'BEGIN { printf "%.2f", d / p }')"
done
