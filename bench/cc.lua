-- wrk script: POST a client_credentials request with client_secret_basic.
-- Environment: BENCH_AUTH (base64 of id:secret), BENCH_BODY (form body).
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. os.getenv("BENCH_AUTH")

done = function(summary, latency, requests)
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.timeout + e.status
  io.write(string.format("requests/s %.1f  p50 %.3f ms  p99 %.3f ms  errors %d  (requests %d, non-2xx %d)\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, errors, summary.requests, e.status))
end
