#!/usr/bin/env bash
# Abuse checks of issue 11 against the release binary, each printing the server's peak
# RSS (VmHWM of /proc/PID/status). Target: under 128 MiB.
#
# Part 1, sign-in: 80 parallel sign-ins with unknown usernames. The server runs on a
# temporary copy of examples/quickstart.toml that trusts a proxy on loopback, and each
# request names its own address in X-Forwarded-For: the worst case (a botnet), where the
# per-address limit does not help and only the bound on password checks keeps memory
# down (argon2id holds ~19 MiB per check). Prints the answers by status: 401 (checked),
# 503 (queue full, with Retry-After), 429 (throttled).
#
#   bench/abuse.sh                                   # uses target/release/tessera
#   TESSERA_BIN=target/debug/tessera bench/abuse.sh  # any other build
#   PARALLEL=200 bench/abuse.sh
#
# The binary is not built here: build it first (cargo build --release -p tessera).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN="${TESSERA_BIN:-target/release/tessera}"
PARALLEL="${PARALLEL:-80}"
PORT="${PORT:-38510}"
LIMIT_KIB=$((128 * 1024))
[ -x "$BIN" ] || { echo "no $BIN: build it first (cargo build --release -p tessera) or set TESSERA_BIN" >&2; exit 1; }

work="$(mktemp -d)"
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

# ---- Part 1: sign-in -------------------------------------------------------------
cp examples/quickstart.toml "$work/tessera.toml"
printf '\n[server.proxy]\ntrusted_addresses = ["127.0.0.0/8"]\n' >>"$work/tessera.toml"
base="http://127.0.0.1:$PORT"
TESSERA__ISSUER="$base" TESSERA__SERVER__LISTEN="127.0.0.1:$PORT" \
TESSERA__STORAGE__URL="sqlite://$work/abuse.db" RUST_LOG="${RUST_LOG:-warn}" \
  "$BIN" serve --config "$work/tessera.toml" 2>"$work/server.log" &
server=$!
for _ in $(seq 1 100); do
  curl -sf -o /dev/null "$base/healthz" && break
  sleep 0.1
done
curl -sf -o /dev/null "$base/healthz" || { echo "server did not come up:"; cat "$work/server.log"; exit 1; }

peak_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$server/status"; }
# The sign-in form: its CSRF cookie (double submit) and the token rendered beside it.
curl -s -c "$work/jar" -o "$work/login.html" "$base/login"
csrf="$(sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' "$work/login.html" | head -n 1)"
[ -n "$csrf" ] || { echo "no CSRF token on /login"; exit 1; }
before="$(peak_kib)"

echo "# $(date -u +%FT%TZ) $BIN, nproc $(nproc)"
echo "## sign-in: $PARALLEL parallel sign-ins, unknown usernames, one address each"
pids=()
for i in $(seq 1 "$PARALLEL"); do
  curl -s -o /dev/null -w '%{http_code}\n' -b "$work/jar" \
    -H "X-Forwarded-For: 10.$((i / 65536 % 256)).$((i / 256 % 256)).$((i % 256))" \
    --data-urlencode "csrf_token=$csrf" --data-urlencode "username=nobody-$i-$RANDOM" \
    --data-urlencode "password=guess-$i" "$base/login" >>"$work/statuses" &
  pids+=($!)
done
wait "${pids[@]}" || true
# The last checks finish before the peak is read.
sleep 1
after="$(peak_kib)"
echo "answers: $(sort "$work/statuses" | uniq -c | awk '{printf "%s x%s  ", $2, $1}')"
echo "peak RSS (VmHWM): before $((before / 1024)) MiB, after $((after / 1024)) MiB (target < 128 MiB)"
[ "$after" -lt "$LIMIT_KIB" ] && echo "sign-in: PASS" || echo "sign-in: FAIL"
kill "$server" 2>/dev/null || true
wait "$server" 2>/dev/null || true
server=""

# ---- Part 2: a jwks_uri host streaming a 400 MB body --------------------------------
# bench/abuse-jwks.sh starts its own server and prints its own peak RSS.
echo "## jwks_uri: bench/abuse-jwks.sh"
TESSERA_BIN="$BIN" bash bench/abuse-jwks.sh
