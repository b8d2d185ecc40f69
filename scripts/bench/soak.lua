-- wrk script for scripts/bench/soak.sh: a mixed valid load (SQL, embed, vector search, matrix search, storage,
-- small appends) interleaved with malformed requests against every route. Counts answers by status; at the
-- end prints one SOAK line per status class and the 5xx answers that were not 503 with Retry-After.
local json = {["Content-Type"] = "application/json"}
local csv = {["Content-Type"] = "text/csv"}
local none = {}

local requests = {
  -- valid
  {"POST", "/v1/matrix/search", json, '{"query": "forklift operator with OSHA 10", "k": 10, "filters": {"state": "TX"}}'},
  {"POST", "/v1/matrix/search", json, '{"order_id": "JO-00012", "k": 10}'},
  {"POST", "/v1/matrix/search", json, '{"query": "registered nurse", "k": 5, "mode": "keyword"}'},
  {"POST", "/v1/sql", json, '{"sql": "SELECT state, count(*) FROM workers GROUP BY state ORDER BY 2 DESC LIMIT 5"}'},
  {"POST", "/v1/sql", json, '{"sql": "SELECT worker_id, rating FROM workers WHERE rating >= 4.5 LIMIT 20"}'},
  {"POST", "/v1/embed", json, '{"texts": ["warehouse associate, day shift", "CNC machinist"]}'},
  {"POST", "/v1/vectors/index/matrix-workers/search", json, '{"text": "welder", "k": 5, "metadata": false}'},
  {"GET", "/v1/catalog/datasets", none, nil},
  {"GET", "/v1/matrix/corpora", none, nil},
  {"PUT", "/v1/storage/objects/soak/blob.txt", none, "soak"},
  {"GET", "/v1/storage/objects/soak/blob.txt", none, nil},
  {"GET", "/health", none, nil},
  -- malformed
  {"POST", "/v1/sql", json, '{"sql": "SELECT repeat(\'a\', 1000000000)"}'},
  {"POST", "/v1/sql", json, '{"sql": "SELECT array_repeat(1, 2000000000)"}'},
  {"POST", "/v1/sql", json, '{"sql": "DROP TABLE workers"}'},
  {"POST", "/v1/sql", json, '{"sql": "SELEC 1"}'},
  {"POST", "/v1/sql", json, '{"sql": "SELECT 1", "max_rows": 99999999999}'},
  {"POST", "/v1/sql", json, '{"sql": '},
  {"POST", "/v1/sql", json, string.rep("[", 5000) .. string.rep("]", 5000)},
  {"POST", "/v1/sql", csv, 'sql=SELECT 1'},
  {"POST", "/v1/embed", json, '{"texts": []}'},
  {"POST", "/v1/embed", json, '{"texts": "not a list"}'},
  {"POST", "/v1/embed", json, '{"text": "' .. string.rep("x", 100000) .. '"}'},
  {"POST", "/v1/vectors/index/matrix-workers/search", json, '{"vector": [1, 2, 3], "k": 5}'},
  {"POST", "/v1/vectors/index/matrix-workers/search", json, '{"text": "a", "k": 1000000000}'},
  {"POST", "/v1/vectors/index/matrix-workers/search", json, '{"text": "a", "filter": {"rating": {"gte": "soon"}}}'},
  {"POST", "/v1/vectors/index/nope/search", json, '{"text": "a"}'},
  {"POST", "/v1/matrix/search", json, '{"query": "", "k": 10}'},
  {"POST", "/v1/matrix/search", json, '{"query": "a", "k": 0}'},
  {"POST", "/v1/matrix/search", json, '{"query": "a", "k": 100000000000000000000}'},
  {"POST", "/v1/matrix/search", json, '{"query": "a", "corpora": ["nope"]}'},
  {"POST", "/v1/matrix/search", json, '{"query": "a", "filters": {"$and": [{"$and": [{"$and": [{"$and": [{"$and": [{}]}]}]}]}]}}'},
  {"POST", "/v1/matrix/search", json, '{"query": "a", "filters": {"state": {"between": [1, 2]}}}'},
  {"POST", "/v1/matrix/search", json, '{"order_id": "JO-99999999"}'},
  {"POST", "/v1/matrix/corpora", json, '{"name": "bad name!", "dataset": "workers", "id_column": "worker_id", "text": "x"}'},
  {"POST", "/v1/matrix/corpora", json, '{"name": "b", "dataset": "workers", "id_column": "worker_id", "text": "{missing}"}'},
  {"POST", "/v1/ingest/soak_bad?mode=create", csv, 'a,b\n1,2,3\n"unterminated\n'},
  {"POST", "/v1/ingest/soak_bad?mode=sideways", csv, 'a\n1\n'},
  {"POST", "/v1/ingest/..?mode=create", csv, 'a\n1\n'},
  {"PUT", "/v1/storage/objects/../etc/passwd", none, "x"},
  {"PUT", "/v1/storage/objects/datasets/workers/_delta_log/x.json", none, "x"},
  {"GET", "/v1/storage/objects/" .. string.rep("k", 2000), none, nil},
  {"GET", "/v1/storage/objects/soak/missing", none, nil},
  {"GET", "/v1/catalog/datasets/nope", none, nil},
  {"DELETE", "/v1/sql", none, nil},
  {"GET", "/v1/nowhere", none, nil},
  {"POST", "/v1/mcp", json, '{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}'},
  {"POST", "/v1/mcp", json, '{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "query_sql"}}'},
  {"DELETE", "/v1/mcp", none, nil},
  -- Lists one past their caps (bodies of millions of tiny values are in the limits test: here they would
  -- measure wrk's string building).
  {"POST", "/v1/vectors/index/matrix-workers/add", json, '{"items": [' .. string.rep("{},", 100000) .. '{}]}'},
  {"POST", "/v1/embed", json, '{"texts": [' .. string.rep('"a",', 256) .. '"a"]}'},
  {"POST", "/v1/matrix/search", json, '{"query": "a", "filters": {"state": {"in": [' .. string.rep("0,", 1024) .. '0]}}}'},
}

-- Appends, one in every 500 requests: a table that grows for the whole run.
local append = {"POST", "/v1/ingest/soak?mode=append", csv, "id,note\n1,soak\n"}

local n = 0

function init(args)
  counts = {}
  unexpected = 0
end

request = function()
  n = n + 1
  local r
  if n % 500 == 0 then
    r = append
  else
    r = requests[(n + (offset or 0)) % #requests + 1]
  end
  return wrk.format(r[1], r[2], r[3], r[4])
end

response = function(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
  if status >= 500 and not (status == 503 and (headers["Retry-After"] or headers["retry-after"]) ~= nil) then
    unexpected = unexpected + 1
  end
end

local threads = {}
function setup(thread)
  thread:set("offset", math.random(0, #requests - 1))
  table.insert(threads, thread)
end

done = function(summary, latency, requests_done)
  local total = {}
  local bad = 0
  for _, t in ipairs(threads) do
    for status, count in pairs(t:get("counts")) do
      total[status] = (total[status] or 0) + count
    end
    bad = bad + t:get("unexpected")
  end
  local statuses = {}
  for status, _ in pairs(total) do table.insert(statuses, status) end
  table.sort(statuses)
  local parts = {}
  for _, status in ipairs(statuses) do
    table.insert(parts, string.format("%d:%d", status, total[status]))
  end
  io.write(string.format("SOAK requests=%d rps=%.0f p99_ms=%.2f socket_errors=%d unexpected_5xx=%d statuses=%s\n",
    summary.requests, summary.requests / (summary.duration / 1e6), latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    bad, table.concat(parts, ",")))
end
