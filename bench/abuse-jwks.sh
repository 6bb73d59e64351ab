#!/usr/bin/env bash
# Abuse check for `jwks_uri` fetching (issue 11.7): a private_key_jwt client whose
# jwks_uri host streams a 400 MB body with no Content-Length. The script starts the
# release server (target/release/tessera; it does not build it) with that client,
# sends junk assertions naming the client (a burst in parallel, then a few one after
# another), and prints how many fetches the host saw, how many bytes it managed to
# send, and the server's peak RSS (VmHWM). Target: under 128 MiB, one fetch per
# refetch interval (30 s), and the body cut off at the cap (256 KiB) rather than read.
#
#   bench/abuse-jwks.sh
#   BURST=80 BODY_MB=400 bench/abuse-jwks.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PORT="${PORT:-38511}"
JWKS_PORT="${JWKS_PORT:-38512}"
BURST="${BURST:-40}"
BODY_MB="${BODY_MB:-400}"
BIN="${BIN:-${TESSERA_BIN:-target/release/tessera}}"
[ -x "$BIN" ] || { echo "no $BIN: build it with cargo build --release -p tessera" >&2; exit 1; }

work="$(mktemp -d)"
server=""
host=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; [ -n "$host" ] && kill "$host" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

# The hostile jwks_uri host: a close-delimited body of BODY_MB MiB, sent in 64 KiB writes.
cat >"$work/host.py" <<'PY'
import http.server, sys, threading
body_mb, log = int(sys.argv[2]), sys.argv[3]
lock, stats = threading.Lock(), {"fetches": 0, "sent": 0}
def record():
    with open(log, "w") as f:
        f.write(f"{stats['fetches']} {stats['sent']}\n")
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    def log_message(self, *args):
        pass
    def do_GET(self):
        with lock:
            stats["fetches"] += 1
            record()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        chunk = b" " * 65536
        try:
            for _ in range(body_mb * 16):
                self.wfile.write(chunk)
                with lock:
                    stats["sent"] += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        with lock:
            record()
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
PY
python3 "$work/host.py" "$JWKS_PORT" "$BODY_MB" "$work/host.log" &
host=$!

cp examples/quickstart.toml "$work/tessera.toml"
cat >>"$work/tessera.toml" <<TOML

[[clients]]
client_id = "abuse"
allowed_grant_types = ["client_credentials"]
client_secrets = [{ jwks_uri = "http://127.0.0.1:$JWKS_PORT/jwks.json" }]
allowed_scopes = ["api1.read"]
TOML

TESSERA__ISSUER="http://127.0.0.1:$PORT" TESSERA__SERVER__LISTEN="127.0.0.1:$PORT" \
TESSERA__STORAGE__URL="sqlite://$work/abuse.db" RUST_LOG="${RUST_LOG:-warn}" \
  "$BIN" serve --config "$work/tessera.toml" 2>"$work/server.log" &
server=$!
url="http://127.0.0.1:$PORT/token"
for _ in $(seq 1 100); do curl -sf -o /dev/null -u service-a:service-a-secret -d grant_type=client_credentials "$url" && break; sleep 0.1; done

# A junk assertion: a well-formed ES256 JWT naming the client, with a bogus signature,
# so the server must look the client's keys up before it can refuse it.
assertion() {
  python3 - "$1" "$url" <<'PY'
import base64, json, sys, time
b64 = lambda v: base64.urlsafe_b64encode(json.dumps(v).encode()).rstrip(b"=").decode()
now = int(time.time())
claims = {"iss": "abuse", "sub": "abuse", "aud": sys.argv[2], "exp": now + 60, "iat": now, "jti": sys.argv[1]}
print(f"{b64({'alg': 'ES256', 'typ': 'JWT'})}.{b64(claims)}.{'A' * 86}")
PY
}
send() {
  curl -s -o /dev/null -w '%{http_code} %{time_total}s\n' "$url" -d grant_type=client_credentials \
    -d client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer \
    -d "client_assertion=$(assertion "$1")"
}

echo "# $(date -u +%FT%TZ) jwks_uri host streaming ${BODY_MB} MiB; burst of $BURST, then 5 in a row"
rss_before="$(awk '/VmRSS/ {print $2}' "/proc/$server/status")"
started="$(date +%s.%N)"
pids=()
for n in $(seq 1 "$BURST"); do send "burst-$n" >>"$work/burst.txt" & pids+=("$!"); done
wait "${pids[@]}"
for n in 1 2 3 4 5; do send "row-$n"; done >"$work/row.txt"
elapsed="$(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.2f", e - s }')"
sleep 1
read -r fetches sent <"$work/host.log"
hwm="$(awk '/VmHWM/ {print $2}' "/proc/$server/status")"
echo "responses: $(cat "$work/burst.txt" "$work/row.txt" | awk '{print $1}' | sort | uniq -c | tr -s ' ' | tr '\n' ';')"
echo "elapsed: ${elapsed}s for $((BURST + 5)) requests"
echo "jwks fetches: $fetches; bytes the host could send: $sent"
echo "server RSS before: $((rss_before / 1024)) MiB; peak RSS (VmHWM): $((hwm / 1024)) MiB (target < 128 MiB)"
