-- wrk script: POST /v1/matrix/search with one of 200 distinct searches per request, in turn: recruiter
-- queries with filters (state, rating, certifications, availability), every tenth from a job order.
local roles = {"forklift operator", "certified welder", "CNC machinist", "warehouse associate",
               "registered nurse", "CDL-A truck driver", "nursing assistant", "line cook",
               "electrician", "HVAC technician"}
local filters = {
  '{"state": "TX"}',
  '{"rating": {"gte": 4}}',
  '{"certifications": {"contains_all": ["OSHA 10"]}}',
  '{"state": {"in": ["CA", "WA", "NV"]}}',
  '{"available_from": {"lte": "2025-01-20"}, "rating": {"gte": 3.5}}',
}
local bodies = {}
for i = 0, 199 do
  if i % 10 == 9 then
    bodies[i + 1] = string.format('{"order_id": "JO-%05d", "k": 10}', i + 1)
  else
    bodies[i + 1] = string.format(
      '{"query": "%s with %d years of experience, reliable", "k": 10, "filters": %s}',
      roles[i % #roles + 1], i % 20 + 1, filters[i % #filters + 1])
  end
end
local n = 0
local headers = {["Content-Type"] = "application/json"}

function setup(thread)
  thread:set("offset", math.random(0, 199))
end

request = function()
  n = n + 1
  return wrk.format("POST", "/v1/matrix/search", headers, bodies[(n + (offset or 0)) % 200 + 1])
end

-- One line a script can read: requests/s, p50 and p99 in ms, errors (socket errors and non-2xx answers).
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
                 + summary.errors.timeout + summary.errors.status
  io.write(string.format("RESULT rps=%.0f p50_ms=%.2f p99_ms=%.2f errors=%d requests=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, errors, summary.requests))
end
