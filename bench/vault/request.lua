-- One wrk request shape for every server and operation, configured by environment variables
-- (wrk gives each thread its own Lua state, so nothing is shared between threads):
--   BENCH_METHOD  GET | PUT | POST
--   BENCH_PATH    path; "%d" is replaced by a random object index in 1..BENCH_KEYS
--   BENCH_BODY    request body (optional); "%d" is replaced by a per-thread counter
--   BENCH_KEYS    how many objects the path picks from (default 1)
--   BENCH_AUTH    "Header-Name: value" (Authorization: Bearer ..., X-Vault-Token: ...)
local method = os.getenv("BENCH_METHOD") or "GET"
local path = os.getenv("BENCH_PATH") or "/"
local body = os.getenv("BENCH_BODY")
local keys = tonumber(os.getenv("BENCH_KEYS") or "1")
local auth = os.getenv("BENCH_AUTH")

wrk.method = method
wrk.headers["Host"] = "127.0.0.1"
if body ~= nil and body ~= "" then
  wrk.headers["Content-Type"] = "application/json"
end
if auth ~= nil and auth ~= "" then
  local name, value = auth:match("^([^:]+):%s*(.*)$")
  wrk.headers[name] = value
end

local counter = 0
math.randomseed(os.time() + math.floor(os.clock() * 1000000))

request = function()
  counter = counter + 1
  local p = string.format(path, math.random(keys))
  if body ~= nil and body ~= "" then
    return wrk.format(nil, p, nil, string.format(body, counter))
  end
  return wrk.format(nil, p)
end
