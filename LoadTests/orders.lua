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

-- The request is built in one concatenation, its token right after the request line.
--
-- wrk's LuaJIT (OpenResty's branch, Debian's libluajit2) interns every string it makes, and
-- hashes a string of 128 bytes or more from its first 8 and last 8 bytes and samples that all
-- lie in roughly its first 60 %. With wrk.format the header order follows a Lua table's, which
-- differs from process to process: when Authorization came after Host, Content-Type and
-- Content-Length, the token's varying bytes fell past the sampled part, every request hashed
-- alike, and each new request was compared byte by byte with every request not yet collected.
-- wrk then spent ~130 µs of CPU per request (perf: 46 % of it in memcmp), the servers waited
-- on it, and about one run in three measured wrk instead of the server.
local head, tail
init = function(args)
  counter = offset * math.floor(#tokens / 2)
  local body = '{"sku":"' .. sku .. '","qty":1}'
  head = "POST /v1/events/" .. event .. "/orders HTTP/1.1\r\nAuthorization: Bearer "
  tail = "\r\nHost: " .. wrk.host .. ":" .. wrk.port .. "\r\nContent-Type: application/json\r\nContent-Length: "
    .. #body .. "\r\n\r\n" .. body
end
request = function()
  counter = counter + 1
  return head .. tokens[(counter % #tokens) + 1] .. tail
end
done = function(summary, latency, requests)
  io.write(string.format("p50=%.2fms p99=%.2fms\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
