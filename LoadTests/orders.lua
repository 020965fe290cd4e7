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

-- The request is built in one concatenation, led by a header that numbers it.
--
-- wrk's LuaJIT (OpenResty's branch, Debian's libluajit2) interns every string it makes, and
-- hashes a string of 128 bytes or more from its first and last 8 bytes and 8-byte samples at
-- offsets drawn at random per process, all within roughly its first 140 bytes. With
-- wrk.format the header order follows a Lua table's, different from process to process: when
-- Authorization came after Host, Content-Type and Content-Length, the token's varying bytes
-- lay past every sample, every request hashed alike, and each new request was compared byte
-- by byte with every request not yet collected. wrk then spent ~130 µs of CPU per request
-- (perf: 46 % of it in memcmp), the server waited on it, and about one run in three measured
-- wrk. Samples fall every 16 bytes of the first ~140, so 16 varying bytes right after the
-- request line (X-Seq, the request's number) are always sampled.
local head, tail
init = function(args)
  counter = offset * math.floor(#tokens / 2)
  local body = '{"sku":"' .. sku .. '","qty":1}'
  head = "POST /v1/events/" .. event .. "/orders HTTP/1.1\r\nX-Seq: "
  tail = "\r\nHost: " .. wrk.host .. ":" .. wrk.port .. "\r\nContent-Type: application/json\r\nContent-Length: "
    .. #body .. "\r\n\r\n" .. body
end
request = function()
  counter = counter + 1
  return head .. string.format("%016d", counter) .. "\r\nAuthorization: Bearer " .. tokens[(counter % #tokens) + 1] .. tail
end
done = function(summary, latency, requests)
  io.write(string.format("p50=%.2fms p99=%.2fms\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
