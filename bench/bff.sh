#!/usr/bin/env bash
# BFF benchmark (issue 17): proxied API calls per second through `tessera bff` against
# direct calls to the same echo API, in one run. Starts the release token service with a
# `spa-bff` client, an echo API (`tessera-bench echo`, axum) and the BFF; signs alice in through
# the real pages (python3 urllib), then drives wrk at /api/echo through the BFF (cookie
# and X-CSRF: 1) and at the echo API directly. Target: proxied >= 0.5x direct, p99 < 10 ms.
# Uses target/release/tessera and tessera-bench; it does not build them.
#
#   bench/bff.sh
#   CONNECTIONS=64 DURATION=20 bench/bff.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CONNECTIONS="${CONNECTIONS:-32}"
DURATION="${DURATION:-10}"
PORT="${PORT:-38520}"
BFF_PORT="${BFF_PORT:-38521}"
ECHO_PORT="${ECHO_PORT:-38522}"
BIN="${BIN:-target/release/tessera}"
BENCH="${BENCH:-target/release/tessera-bench}"
for b in "$BIN" "$BENCH"; do
  [ -x "$b" ] || { echo "no $b: build it with cargo build --release -p tessera -p tessera-bench" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "installing wrk"; apt-get install -y wrk >/dev/null; }

work="$(mktemp -d)"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"' EXIT

"$BENCH" echo --listen "127.0.0.1:$ECHO_PORT" & pids+=($!)

cat >"$work/tessera.toml" <<TOML
issuer = "http://127.0.0.1:$PORT"
[server]
listen = "127.0.0.1:$PORT"
[storage]
url = "sqlite://tessera.db"
[signing]
encryption_key = "bench-encryption-key-bench-encryption-key"
[[api_scopes]]
name = "api1.read"
[[api_resources]]
name = "api1"
scopes = ["api1.read"]
[[identity_resources]]
name = "openid"
[[identity_resources]]
name = "profile"
[[users]]
username = "alice"
password = "alice-password-1"
subject = "alice-sub"
[[clients]]
client_id = "spa-bff"
allowed_grant_types = ["authorization_code"]
client_secrets = [{ value = "spa-bff-secret" }]
redirect_uris = ["http://127.0.0.1:$BFF_PORT/bff/callback"]
post_logout_redirect_uris = ["http://127.0.0.1:$BFF_PORT/"]
allowed_scopes = ["openid", "profile", "api1.read"]
allow_offline_access = true
require_consent = false
TOML
cat >"$work/bff.toml" <<TOML
[bff]
listen = "127.0.0.1:$BFF_PORT"
public_url = "http://127.0.0.1:$BFF_PORT"
issuer = "http://127.0.0.1:$PORT"
client_id = "spa-bff"
client_secret = "spa-bff-secret"
scopes = ["openid", "profile", "api1.read"]
storage = "sqlite://bff.db"
[[bff.apis]]
path = "/api"
upstream = "http://127.0.0.1:$ECHO_PORT"
TOML
RUST_LOG=warn "$BIN" serve --config "$work/tessera.toml" & pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/.well-known/openid-configuration" >/dev/null && break; sleep 0.1; done
env ${BFF_WORKERS:+TOKIO_WORKER_THREADS=$BFF_WORKERS} RUST_LOG=warn "$BIN" bff --config "$work/bff.toml" & pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$BFF_PORT/bff/login" && break; sleep 0.1; done

# Sign in through the real pages; prints the session cookie value.
session="$(python3 - "$PORT" "$BFF_PORT" <<'PY'
import re, sys, urllib.request, urllib.parse, http.cookiejar
port, bff = sys.argv[1], sys.argv[2]
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k): return None
jar = http.cookiejar.CookieJar()
op = urllib.request.build_opener(NoRedirect, urllib.request.HTTPCookieProcessor(jar))
def go(url, data=None, headers={}):
    req = urllib.request.Request(url, data=urllib.parse.urlencode(data).encode() if data else None, headers=headers)
    try: r = op.open(req)
    except urllib.error.HTTPError as e: r = e
    return r.status, r.headers, r.read().decode()
_, h, _ = go(f"http://127.0.0.1:{bff}/bff/login")
state = re.search(r"__Host-bff-state=([^;]+)", h["set-cookie"]).group(1)
url = h["location"]
while True:
    status, h, body = go(url if url.startswith("http") else f"http://127.0.0.1:{port}{url}")
    if "location" in h:
        url = h["location"]
        if url.startswith(f"http://127.0.0.1:{bff}"): break
        continue
    field = lambda n: (re.search(f'name="{n}" value="([^"]*)"', body) or [None, None])[1]
    form = {k: field(k) for k in ("csrf_token", "interaction", "return_to") if field(k) is not None}
    if 'name="password"' in body:
        form.update(username="alice", password="alice-password-1"); target = "/login"
    else:
        form.update(decision="allow"); target = "/consent"
    form = {k: v.replace("&#x2f;", "/").replace("&amp;", "&") for k, v in form.items()}
    status, h, body = go(f"http://127.0.0.1:{port}{target}", form)
    url = h["location"]
    if url.startswith(f"http://127.0.0.1:{bff}"): break
_, h, _ = go(url, headers={"cookie": f"__Host-bff-state={state}"})
print(re.search(r"__Host-bff=([^;]+)", h["set-cookie"]).group(1))
PY
)"

run() {
    local label="$1"; shift
    local out
    out="$(wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@")"
    printf '%-8s %10s req/s  p50 %8s  p99 %8s  errors %s\n' "$label" \
        "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
        "$(awk '$1 == "50%" {print $2}' <<<"$out")" \
        "$(awk '$1 == "99%" {print $2}' <<<"$out")" \
        "$(awk '/Non-2xx|Socket errors/ {printf "%s ", $0}' <<<"$out")"
}
run direct "http://127.0.0.1:$ECHO_PORT/echo"
run proxied -H "cookie: __Host-bff=$session" -H "x-csrf: 1" "http://127.0.0.1:$BFF_PORT/api/echo"
