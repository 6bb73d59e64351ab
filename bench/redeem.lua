-- wrk script: redeem pre-issued single-use values (authorization codes or refresh
-- tokens), each exactly once. Environment: BENCH_AUTH (base64 of id:secret),
-- BENCH_VALUES (file, one value per line), BENCH_KIND (code | refresh),
-- BENCH_VERIFIER and BENCH_REDIRECT_URI (for codes).
local threads = {}
local requests, next_index = {}, 1
local exhausted

function setup(thread)
  thread:set("thread_number", #threads)
  threads[#threads + 1] = thread
  thread:set("thread_count", 0)
end

local function urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

function init(args)
  local auth = "Basic " .. os.getenv("BENCH_AUTH")
  local kind = os.getenv("BENCH_KIND")
  local verifier = os.getenv("BENCH_VERIFIER") or ""
  local redirect = urlencode(os.getenv("BENCH_REDIRECT_URI") or "")
  local headers = { ["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = auth }
  local total = tonumber(os.getenv("BENCH_THREADS") or "1")
  local n = 0
  -- Every request is formatted here, before wrk starts its clock: a client_credentials
  -- run sends one static request, so formatting each one inside the timed run would
  -- charge this run alone for the load generator's string building (on the same cores).
  for line in io.lines(os.getenv("BENCH_VALUES")) do
    -- Each wrk thread takes every total-th value, so no value is sent twice.
    if n % total == thread_number then
      local body
      if kind == "code" then
        body = "grant_type=authorization_code&code=" .. line .. "&code_verifier=" .. verifier
          .. "&redirect_uri=" .. redirect
      else
        body = "grant_type=refresh_token&refresh_token=" .. line
      end
      requests[#requests + 1] = wrk.format("POST", nil, headers, body)
    end
    n = n + 1
  end
  exhausted = wrk.format("POST", nil, headers, "grant_type=exhausted")
end

function request()
  local r = requests[next_index] or exhausted
  next_index = next_index + 1
  return r
end

done = function(summary, latency, requests)
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.timeout + e.status
  io.write(string.format("requests/s %.1f  p50 %.3f ms  p99 %.3f ms  errors %d  (requests %d, non-2xx %d)\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, errors, summary.requests, e.status))
end
