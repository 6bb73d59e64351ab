#!/usr/bin/env bash
# Token-endpoint benchmark. Starts the release server on a fresh SQLite file with
# examples/quickstart.toml and drives, with wrk:
#   cc       client_credentials (client_secret_basic, ES256 JWT access tokens)
#   codes    redemption of pre-issued authorization codes (PKCE S256, ID token + access token)
#   refresh  rotation of pre-issued refresh tokens (new refresh, access and ID token)
# Prints requests/s, p50/p99 latency and errors per run, and the server's peak RSS.
#
#   bench/run.sh                        # all three, 32 connections, 10 s each
#   ROUNDS=5 RUNS="cc codes" bench/run.sh  # cc and codes interleaved five times: each round's
#                                       # codes/cc ratio and the median (the machine's speed drifts
#                                       # between runs, so a ratio is taken within a round)
#   RUNS="cc" CONNECTIONS=64 DURATION=30 bench/run.sh
#   STORE=postgres bench/run.sh         # on a fresh database of the local PostgreSQL
#                                       # (127.0.0.1:5432, user postgres; PG_URL to change)
#   STORE=postgres INSTANCES=2 bench/run.sh  # two servers on that database, each driven by
#                                       # its own wrk with half the connections (and half
#                                       # the seeded values); the line is their sum
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS="${RUNS:-cc codes refresh}"
CONNECTIONS="${CONNECTIONS:-32}"
DURATION="${DURATION:-10}"
THREADS="${THREADS:-1}"
ROUNDS="${ROUNDS:-1}"
PORT="${PORT:-38500}"
STORE="${STORE:-sqlite}"
INSTANCES="${INSTANCES:-1}"
PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432}"
# Single-use values to seed: enough for the fastest rate seen here with room to spare
# (PostgreSQL redeems fewer a second, and seeding it takes longer).
if [ "${STORE:-sqlite}" = postgres ]; then SEED="${SEED:-$((DURATION * 15000))}"; fi
SEED="${SEED:-$((DURATION * 40000))}"

command -v wrk >/dev/null || { echo "installing wrk"; apt-get install -y wrk >/dev/null; }
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --locked -p tessera -p tessera-bench >&2

work="$(mktemp -d)"
servers=()
database=""
cleanup() {
  for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "$database" ] && psql -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS $database" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
case "$STORE" in
  sqlite) store="sqlite://$work/bench.db" ;;
  postgres)
    database="tessera_bench_$$"
    psql -q "$PG_URL/postgres" -c "CREATE DATABASE $database" >/dev/null
    store="$PG_URL/$database" ;;
  *) echo "STORE is sqlite or postgres" >&2; exit 2 ;;
esac
[ "$INSTANCES" = 1 ] || [ "$INSTANCES" = 2 ] || { echo "INSTANCES is 1 or 2" >&2; exit 2; }
[ "$INSTANCES" = 1 ] || [ "$STORE" = postgres ] || { echo "two instances share PostgreSQL: STORE=postgres" >&2; exit 2; }
url="http://127.0.0.1:$PORT/token"
urls=()
for i in $(seq 0 $((INSTANCES - 1))); do
  port=$((PORT + i))
  urls+=("http://127.0.0.1:$port/token")
  TESSERA__ISSUER="http://127.0.0.1:$PORT" TESSERA__SERVER__LISTEN="127.0.0.1:$port" \
  TESSERA__STORAGE__URL="$store" RUST_LOG="${RUST_LOG:-warn}" \
    target/release/tessera serve --config examples/quickstart.toml 2>"$work/server$i.log" &
  servers+=($!)
  [ "$i" = 0 ] && sleep 1   # the first creates the schema and keys; the second finds them
done
server="${servers[0]}"
cc_auth="$(printf 'service-a:service-a-secret' | base64 -w0)"
for _ in $(seq 1 100); do
  curl -sf -o /dev/null -H "Authorization: Basic $cc_auth" -d grant_type=client_credentials "$url" && break
  sleep 0.1
done
for u in "${urls[@]}"; do
  for _ in $(seq 1 100); do
    curl -sf -o /dev/null -H "Authorization: Basic $cc_auth" -d grant_type=client_credentials "$u" && break
    sleep 0.1
  done
  curl -sf -H "Authorization: Basic $cc_auth" -d grant_type=client_credentials "$u" | grep -q access_token \
    || { echo "server did not come up:"; cat "$work"/server*.log; exit 1; }
done

echo "# $(date -u +%FT%TZ) $CONNECTIONS connections, ${DURATION}s per run, wrk threads $THREADS, nproc $(nproc), store $STORE, instances $INSTANCES"
rates="$work/rates"
: >"$rates"
# wrk's last line (from bench/*.lua) starts "requests/s N": print it, and note N for the ratio.
# With two instances, one wrk per instance with half the connections (each redeeming its
# own half of the values, BENCH_VALUES.i), run together; their requests/s are added,
# their p50 averaged, the worse p99 kept, errors added.
measure() {
  local name="$1" line
  shift
  if [ "$INSTANCES" = 1 ]; then
    line="$(wrk "$@" "$url" | tail -n 1)"
  else
    local args=("$@") i pids=()
    args=("${args[@]/#-c$CONNECTIONS/-c$((CONNECTIONS / 2))}")
    for i in 0 1; do
      BENCH_VALUES="${BENCH_VALUES:-}${BENCH_VALUES:+.$i}" wrk "${args[@]}" "${urls[$i]}" | tail -n 1 >"$work/wrk$i" &
      pids+=($!)
    done
    wait "${pids[@]}"
    line="$(cat "$work/wrk0" "$work/wrk1" | awk '{ r += $2; p50 += $4; if ($7 > p99) p99 = $7; e += $10 }
      END { printf "requests/s %.1f  p50 %.3f ms  p99 %.3f ms  errors %d  (two instances)\n", r, p50 / 2, p99, e }')"
  fi
  printf '%s\n' "$line"
  printf '%s %s %s\n' "$round" "$name" "$(awk '{print $2}' <<<"$line")" >>"$rates"
}
for round in $(seq 1 "$ROUNDS"); do
  [ "$ROUNDS" -gt 1 ] && echo "## round $round"
  for run in $RUNS; do
    case "$run" in
      cc)
        export BENCH_AUTH="$cc_auth" BENCH_BODY="grant_type=client_credentials&scope=api1.read"
        for u in "${urls[@]}"; do wrk -t"$THREADS" -c"$CONNECTIONS" -d3s -s bench/cc.lua "$u" >/dev/null; done
        printf 'client_credentials  '
        measure cc -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s bench/cc.lua ;;
      codes|refresh)
        kind=code; what="codes"; scope="openid profile api1.read"
        if [ "$run" = refresh ]; then kind=refresh; what="refresh-tokens"; scope="openid api1.read offline_access"; fi
        target/release/tessera-bench seed "$what" --store "$store" --count "$SEED" --scope "$scope" >"$work/values"
        awk '{ print > ("'"$work"'/values." (NR % 2)) }' "$work/values"
        export BENCH_AUTH="$(printf 'web-app:web-app-secret' | base64 -w0)" BENCH_VALUES="$work/values" \
          BENCH_KIND="$kind" BENCH_THREADS="$THREADS" BENCH_REDIRECT_URI="https://webapp.example.com/signin-oidc" \
          BENCH_VERIFIER="bench-verifier-0123456789-abcdefghijklmnopqrstuvwxyz"
        if [ "$run" = codes ]; then printf 'authorization_code   '; else printf 'refresh_token        '; fi
        measure "$run" -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s bench/redeem.lua ;;
      *) echo "unknown run $run (cc, codes, refresh)" >&2; exit 2 ;;
    esac
  done
done
# Issue 3's target: code redemption at least half the client_credentials rate.
awk '
  { rate[$1, $2] = $3; if ($1 > last) last = $1 }
  END {
    n = 0
    for (r = 1; r <= last; r++) if (((r, "cc") in rate) && ((r, "codes") in rate) && rate[r, "cc"] > 0) {
      ratio = rate[r, "codes"] / rate[r, "cc"]; ratios[++n] = ratio; list = list sprintf(" %.3f", ratio)
    }
    if (n == 0) exit
    for (i = 2; i <= n; i++) for (j = i; j > 1 && ratios[j - 1] > ratios[j]; j--) { t = ratios[j]; ratios[j] = ratios[j - 1]; ratios[j - 1] = t }
    median = (n % 2) ? ratios[(n + 1) / 2] : (ratios[n / 2] + ratios[n / 2 + 1]) / 2
    printf "codes/cc per round:%s  median %.3f\n", list, median
  }' "$rates"
for pid in "${servers[@]}"; do
  echo "server peak RSS: $(awk '/^VmHWM:/{printf "%.1f MiB", $2/1024}' "/proc/$pid/status")"
done
