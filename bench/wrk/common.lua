-- common.lua -- what the clamrest wrk scripts share: credentials, payloads, HTTP framing, the result line.
--
-- Loaded by each script with dofile (wrk runs a script once per thread and once for setup/done).

local common = {}

-- Basic base64("app1:letmein"), the demo user of scripts/demo.env.
common.auth = "Basic YXBwMTpsZXRtZWlu"

common.eicar = [[X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*]]

common.chunk_size = 65536 -- bytes per chunk of a chunked body, as a streaming client sends

-- The whole file named by environment variable var; the script fails without it.
function common.read_env_file(var)
   local path = os.getenv(var)
   assert(path, var .. " must name the payload file")
   local f = assert(io.open(path, "rb"))
   local data = f:read("*a")
   f:close()
   assert(#data > 0, path .. " is empty")
   return data
end

-- data framed as Transfer-Encoding: chunked, chunks of at most size bytes, then the last chunk.
function common.chunked(data, size)
   local out = {}
   for i = 1, #data, size do
      local part = data:sub(i, i + size - 1)
      out[#out + 1] = string.format("%x\r\n", #part) .. part .. "\r\n"
   end
   out[#out + 1] = "0\r\n\r\n"
   return table.concat(out)
end

-- The head of a POST with chunked framing: wrk.format always adds Content-Length, which a
-- server must refuse next to Transfer-Encoding, so chunked requests are written out here.
function common.chunked_head(path)
   local host = wrk.headers["Host"] or (wrk.host .. ":" .. wrk.port)
   return "POST " .. path .. " HTTP/1.1\r\n" ..
      "Host: " .. host .. "\r\n" ..
      "Authorization: " .. common.auth .. "\r\n" ..
      "Content-Type: application/octet-stream\r\n" ..
      "Transfer-Encoding: chunked\r\n\r\n"
end

-- Checks every answer contains want; the threads' misses are summed in done.
local threads = {}

function common.verify(want)
   bad = 0
   setup = function(thread)
      threads[#threads + 1] = thread
   end
   response = function(status, headers, body)
      if status ~= 200 or not body:find(want, 1, true) then
         bad = bad + 1
      end
   end
end

-- One line for the driver: counts, the run's length, latency percentiles in microseconds. A
-- request failed on a socket error or timeout, or on a wrong answer (verified scripts) or a non-2xx
-- status (the others); ok requests are the rest.
function done(summary, latency, requests)
   local e = summary.errors
   local wrong = e.status
   if #threads > 0 then
      wrong = 0
      for _, t in ipairs(threads) do
         wrong = wrong + (t:get("bad") or 0)
      end
   end
   local seconds = summary.duration / 1e6
   io.write(string.format("BENCH requests=%d ok=%d seconds=%.3f rps=%.4f p50_us=%d p99_us=%d " ..
      "failed=%d\n", summary.requests, summary.requests - wrong, seconds,
      (summary.requests - wrong) / seconds, latency:percentile(50), latency:percentile(99),
      e.connect + e.read + e.write + e.timeout + wrong))
end

return common
