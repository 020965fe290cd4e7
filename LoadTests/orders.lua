-- wrk script: every request is a valid seckill order from a distinct user.
-- Tokens come from $TOKENS (default /tmp/flashsale-tokens.txt), made by mint-tokens.py.
local path = os.getenv("TOKENS") or "/tmp/flashsale-tokens.txt"
local event = os.getenv("EVENT") or "perf"
local sku = os.getenv("SKU") or "P1"
local tokens = {}
for line in io.lines(path) do tokens[#tokens + 1] = line end
local counter = 0
local threads = 0
setup = function(thread) thread:set("offset", threads); threads = threads + 1 end
init = function(args) counter = offset * math.floor(#tokens / 2) end
request = function()
  counter = counter + 1
  local token = tokens[(counter % #tokens) + 1]
  return wrk.format("POST", "/v1/events/" .. event .. "/orders",
    {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"},
    '{"sku":"' .. sku .. '","qty":1}')
end
done = function(summary, latency, requests)
  io.write(string.format("p50=%.2fms p99=%.2fms\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
