#!/usr/bin/env bash
# Outage drill (issue 12): two release instances on one throwaway PostgreSQL cluster,
# steady client_credentials and refresh load on both, PostgreSQL stopped for
# OUTAGE seconds and started again. Prints per-second status counts, the longest
# request, the time to full recovery and the refresh families revoked.
# Targets: no request over 3 s, no 500, recovery within 2 s, no family revoked.
#
#   bench/outage.sh                         # 10 s steady, 15 s outage, 10 s after
#   OUTAGE=30 FAMILIES=64 bench/outage.sh
#
# Uses target/release/tessera and tessera-bench (built unless SKIP_BUILD is set) and
# the PostgreSQL server binaries under /usr/lib/postgresql (run as `postgres` when
# this runs as root). Never touches any other PostgreSQL server.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BEFORE="${BEFORE:-10}"
OUTAGE="${OUTAGE:-15}"
AFTER="${AFTER:-10}"
FAMILIES="${FAMILIES:-32}"        # refresh clients, each rotating its own family
CC_WORKERS="${CC_WORKERS:-8}"     # client_credentials clients
PG_PORT="${PG_PORT:-55431}"
PORT_A="${PORT_A:-38601}"
PORT_B="${PORT_B:-38602}"

[ -n "${SKIP_BUILD:-}" ] || cargo build --release --locked -p tessera -p tessera-bench >&2
bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
[ -x "$bin/pg_ctl" ] || { echo "no PostgreSQL server binaries under /usr/lib/postgresql" >&2; exit 1; }

work="$(mktemp -d)"
chmod 755 "$work"
pids=()
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  as_pg "$bin/pg_ctl" -D "$work/pg" -m immediate -w stop >/dev/null 2>&1 || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir "$work/pg"
[ "$(id -u)" = 0 ] && chown postgres:postgres "$work/pg"
as_pg "$bin/initdb" -D "$work/pg" -A trust -U postgres --no-sync -E UTF8 >/dev/null
pg_start() {
  as_pg "$bin/pg_ctl" -D "$work/pg" -l "$work/pg/log" -w -t 30 \
    -o "-p $PG_PORT -k $work/pg -c listen_addresses=127.0.0.1" start >/dev/null
}
pg_start
store="postgres://postgres@127.0.0.1:$PG_PORT/postgres?sslmode=disable"

issuer="http://127.0.0.1:$PORT_A"
for port in "$PORT_A" "$PORT_B"; do
  TESSERA__ISSUER="$issuer" TESSERA__SERVER__LISTEN="127.0.0.1:$port" \
  TESSERA__STORAGE__URL="$store" RUST_LOG="${RUST_LOG:-warn}" \
    target/release/tessera serve --config examples/quickstart.toml 2>"$work/server-$port.log" &
  pids+=($!)
  for _ in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && break; sleep 0.1; done
  curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" \
    || { echo "instance on $port did not come up:"; cat "$work/server-$port.log"; exit 1; }
done
target/release/tessera-bench seed refresh-tokens --store "$store" --count "$FAMILIES" \
  --scope "openid api1.read offline_access" >"$work/families"

echo "# $(date -u +%FT%TZ) two instances, $CC_WORKERS cc + $FAMILIES refresh clients; PostgreSQL down ${OUTAGE}s after ${BEFORE}s"
# The load: each client alternates between the instances; a refresh client keeps its
# token across failures (a 5xx or a timeout means: retry the same token), as a real
# client must, and stops when its family is refused (invalid_grant).
python3 - "$work/families" "$PORT_A" "$PORT_B" "$BEFORE" "$OUTAGE" "$AFTER" "$CC_WORKERS" "$work/control" <<'PY' &
import base64, json, sys, threading, time, urllib.error, urllib.parse, urllib.request
families_path, port_a, port_b, before, outage, after, cc_workers, control = sys.argv[1:]
before, outage, after, cc_workers = int(before), int(outage), int(after), int(cc_workers)
ports = [port_a, port_b]
start = time.monotonic()
end = start + before + outage + after
log, lock = [], threading.Lock()
revoked = []

def post(port, auth, form):
    body = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/token", data=body, method="POST")
    request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    began = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, payload = response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        status = error.code
        try:
            payload = json.loads(error.read() or b"{}")
        except ValueError:
            payload = {}
    except Exception:
        status, payload = 0, {}
    took = time.monotonic() - began
    with lock:
        log.append((began - start, took, status))
    return status, payload, took

def cc(n):
    i = n
    while time.monotonic() < end:
        post(ports[i % 2], "service-a:service-a-secret", {"grant_type": "client_credentials", "scope": "api1.read"})
        i += 1
        time.sleep(0.05)

def refresh(n, token):
    i = n
    while time.monotonic() < end:
        status, payload, _ = post(ports[i % 2], "web-app:web-app-secret",
                                  {"grant_type": "refresh_token", "refresh_token": token})
        i += 1
        if status == 200:
            token = payload["refresh_token"]
        elif status == 400 and payload.get("error") == "invalid_grant":
            with lock:
                revoked.append(n)
            return
        else:
            time.sleep(0.2)
        time.sleep(0.1)

threads = [threading.Thread(target=cc, args=(n,)) for n in range(cc_workers)]
with open(families_path) as f:
    threads += [threading.Thread(target=refresh, args=(n, line.strip())) for n, line in enumerate(f) if line.strip()]
for t in threads:
    t.start()
for t in threads:
    t.join()
with open(control + ".result", "w") as out:
    json.dump({"log": log, "revoked": revoked, "families": len(threads) - cc_workers}, out)
PY
load=$!
sleep "$BEFORE"
as_pg "$bin/pg_ctl" -D "$work/pg" -m fast -w stop >/dev/null
echo "# PostgreSQL stopped"
sleep "$OUTAGE"
pg_start
echo "# PostgreSQL started again"
wait "$load"
python3 - "$work/control.result" "$BEFORE" "$OUTAGE" <<'PY'
import collections, json, sys
result = json.load(open(sys.argv[1]))
before, outage = int(sys.argv[2]), int(sys.argv[3])
log = result["log"]
per_second = collections.defaultdict(collections.Counter)
for began, took, status in log:
    per_second[int(began)][status] += 1
statuses = sorted({status for _, _, status in log})
print("second " + " ".join(f"{s:>6}" for s in statuses) + "   (0 = no answer)")
for second in sorted(per_second):
    mark = " <- down" if before <= second < before + outage else ""
    print(f"{second:>6} " + " ".join(f"{per_second[second][s]:>6}" for s in statuses) + mark)
longest = max(log, key=lambda entry: entry[1])
print(f"requests {len(log)}, 500s {sum(1 for _, _, s in log if s == 500)}, "
      f"longest {longest[1]:.2f} s (status {longest[2]} at {longest[0]:.1f} s)")
# Recovery: from PostgreSQL's return to the start of the last request that failed.
back = before + outage
failed_after = [began for began, _, status in log if began >= back and status != 200]
recovery = (max(failed_after) - back) if failed_after else 0.0
print(f"time to full recovery after PostgreSQL returned: {max(recovery, 0):.2f} s (approximate: its start is within ~0.5 s)")
print(f"families revoked: {len(result['revoked'])} of {result['families']}")
PY
