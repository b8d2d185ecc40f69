-- wrk script: POST /v1/embed with one of 200 distinct staffing texts per request, in turn.
local roles = {"forklift operator", "certified welder", "CNC machinist", "warehouse associate",
               "registered nurse", "CDL-A truck driver", "medical assistant", "line cook"}
local places = {"Houston, TX", "Dallas", "Phoenix", "Atlanta", "Newark, NJ"}
local bodies = {}
for i = 0, 199 do
  bodies[i + 1] = string.format('{"text": "%s with %d years of experience near %s (profile %d)"}',
    roles[i % #roles + 1], i % 25 + 1, places[i % #places + 1], i)
end
local n = 0
local headers = {["Content-Type"] = "application/json"}

function setup(thread)
  thread:set("offset", math.random(0, 199))
end

request = function()
  n = n + 1
  return wrk.format("POST", "/v1/embed", headers, bodies[(n + (offset or 0)) % 200 + 1])
end

-- One line a script can read: requests/s, p50 and p99 in ms, errors (socket errors and non-2xx answers).
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
                 + summary.errors.timeout + summary.errors.status
  io.write(string.format("RESULT rps=%.0f p50_ms=%.2f p99_ms=%.2f errors=%d requests=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, errors, summary.requests))
end
