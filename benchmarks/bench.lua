-- wrk script for every lmsauth and peer scenario (run with -t1: one Lua state holds all counters).
--
-- Environment:
--   BENCH_METHOD        GET or POST (default GET)
--   BENCH_BODY          request body; "{T}" is replaced by the current value from BENCH_VALUES
--   BENCH_CONTENT_TYPE  Content-Type of the body (default application/x-www-form-urlencoded)
--   BENCH_HEADER        one extra header "Name: value"; "{T}" is replaced as in the body
--   BENCH_PATH          request path; "{T}" is replaced as in the body (default: the URL's path)
--   BENCH_AUTH          "id:secret" sent as HTTP Basic
--   BENCH_VALUES        file with one value per line (tokens, codes, session ids); each request
--                       takes the next line. BENCH_CYCLE=1 wraps around at the end, otherwise
--                       running out stops the thread and is reported as "exhausted".
--   BENCH_EXPECT        the expected status (default 200); any other status counts as an error
--   BENCH_DELAY_MS      pause per connection between responses and next requests (rate limiting)
--   BENCH_MAX_REQUESTS  stop after this many responses (0 = no limit)
-- done() prints one line "BENCH_JSON {...}" with counts and latency percentiles (microseconds).

local method = os.getenv("BENCH_METHOD") or "GET"
local body_template = os.getenv("BENCH_BODY") or ""
local content_type = os.getenv("BENCH_CONTENT_TYPE") or "application/x-www-form-urlencoded"
local header_line = os.getenv("BENCH_HEADER") or ""
local path_template = os.getenv("BENCH_PATH") or ""
local auth = os.getenv("BENCH_AUTH") or ""
local values_file = os.getenv("BENCH_VALUES") or ""
local cycle = os.getenv("BENCH_CYCLE") == "1"
local expect = tonumber(os.getenv("BENCH_EXPECT") or "200")
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
local max_requests = tonumber(os.getenv("BENCH_MAX_REQUESTS") or "0")

local function b64(data)
  local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  local out = {}
  for i = 1, #data, 3 do
    local a, b, c = data:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local c1 = math.floor(n / 262144) % 64
    local c2 = math.floor(n / 4096) % 64
    local c3 = math.floor(n / 64) % 64
    local c4 = n % 64
    out[#out + 1] = alphabet:sub(c1 + 1, c1 + 1) .. alphabet:sub(c2 + 1, c2 + 1)
      .. (b and alphabet:sub(c3 + 1, c3 + 1) or "=")
      .. (c and alphabet:sub(c4 + 1, c4 + 1) or "=")
  end
  return table.concat(out)
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

-- per-thread state
local values = {}
local next_index = 1
local header_name, header_value = nil, nil
local base_headers = {}
bad = 0
exhausted = 0
responses = 0
first_bad = ""

function init(args)
  math.randomseed(os.time())
  if #values_file > 0 then
    for line in io.lines(values_file) do
      if #line > 0 then values[#values + 1] = line end
    end
  end
  if #header_line > 0 then
    header_name, header_value = header_line:match("^([^:]+):%s*(.*)$")
  end
  if method == "POST" then base_headers["Content-Type"] = content_type end
  base_headers["Accept"] = "application/json"
  if #auth > 0 then base_headers["Authorization"] = "Basic " .. b64(auth) end
end

local function current_value()
  if #values == 0 then return "" end
  if next_index > #values then
    if cycle then
      next_index = 1
    else
      exhausted = exhausted + 1
      wrk.thread:stop()
      return values[#values]
    end
  end
  local v = values[next_index]
  next_index = next_index + 1
  return v
end

function request()
  local v = current_value()
  local headers = {}
  for k, h in pairs(base_headers) do headers[k] = h end
  if header_name then headers[header_name] = header_value:gsub("{T}", v) end
  local body = nil
  if method == "POST" then body = body_template:gsub("{T}", v) end
  local path = nil
  if #path_template > 0 then path = path_template:gsub("{T}", v) end
  return wrk.format(method, path, headers, body)
end

if delay_ms > 0 then
  -- uniform jitter around the mean pause, so the connections drift apart instead of arriving
  -- in lock-step bursts (a steadier stream at the same mean rate)
  function delay()
    return math.floor(delay_ms * (0.5 + math.random()) + 0.5)
  end
end

function response(status, headers, body)
  responses = responses + 1
  if status ~= expect then
    bad = bad + 1
    if #first_bad == 0 then first_bad = tostring(status) .. " " .. (body or ""):sub(1, 200) end
  end
  if max_requests > 0 and responses >= max_requests then wrk.thread:stop() end
end

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end

function done(summary, latency, requests)
  local total_bad, total_exhausted, total_responses, sample = 0, 0, 0, ""
  for _, t in ipairs(threads) do
    total_bad = total_bad + (t:get("bad") or 0)
    total_exhausted = total_exhausted + (t:get("exhausted") or 0)
    total_responses = total_responses + (t:get("responses") or 0)
    local fb = t:get("first_bad") or ""
    if #sample == 0 then sample = fb end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"responses_seen":%d,' ..
    '"bad_status":%d,"exhausted":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,' ..
    '"status_errors":%d,"timeouts":%d,"lat_p50_us":%d,"lat_p90_us":%d,"lat_p99_us":%d,' ..
    '"lat_max_us":%d,"lat_mean_us":%.1f,"first_bad":%s}\n',
    summary.requests, summary.duration, summary.bytes, total_responses, total_bad, total_exhausted,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, json_string(sample)))
end
