-- stamped.lua -- wrk script: a body that never repeats, to /v2/scan-chunked (64 KiB chunks).
--
-- BENCH_FILE names the payload, or @LIST a file naming one payload per line (sent in turn).
-- BENCH_STAMP: head (the first 16 bytes replaced by a stamp) or tail (a 16-byte stamp appended, for
-- formats whose first bytes must stay). The stamp is BENCH_NONCE (8 hex digits, new per row and
-- run), the thread and a request counter: libclamav's and clamrest's clean-file caches never
-- answer. BENCH_EXPECT: the text every answer must contain ('"malware":' accepts either verdict).
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local STAMP = 16

common.verify(os.getenv("BENCH_EXPECT") or '"malware":false')

local pieces = {}       -- per payload: {before, after}: the request is before .. stamp .. after
local id, n = 0, 0
local nonce = os.getenv("BENCH_NONCE") or "00000000"

local function read(path)
   local f = assert(io.open(path, "rb"))
   local data = f:read("*a")
   f:close()
   return data
end

local function prepare(data, mode)
   local head = common.chunked_head("/v2/scan-chunked")
   if mode == "tail" then
      local body = common.chunked(data, common.chunk_size)
      body = body:sub(1, #body - #"0\r\n\r\n")
      return {head .. body .. string.format("%x\r\n", STAMP), "\r\n0\r\n\r\n"}
   end
   assert(#data >= STAMP, "a head stamp needs 16 bytes")
   local body = common.chunked(data, common.chunk_size)
   local first = string.format("%x\r\n", math.min(#data, common.chunk_size))
   return {head .. first, body:sub(#first + STAMP + 1)}
end

function init(args)
   local spec = assert(os.getenv("BENCH_FILE"), "BENCH_FILE must name the payload")
   local mode = os.getenv("BENCH_STAMP") or "head"
   local paths = {}
   if spec:sub(1, 1) == "@" then
      for line in io.lines(spec:sub(2)) do
         if line ~= "" then paths[#paths + 1] = line end
      end
   else
      paths[1] = spec
   end
   for _, p in ipairs(paths) do
      pieces[#pieces + 1] = prepare(read(p), mode)
   end
   id = tid or 0
end

local setup_verify = setup
local next_tid = 0

function setup(thread)
   thread:set("tid", next_tid)
   next_tid = next_tid + 1
   setup_verify(thread)
end

function request()
   local p = pieces[(n + id) % #pieces + 1]
   n = n + 1
   return p[1] .. string.format("%s%02x%06x", nonce, id % 256, n % 16777216) .. p[2]
end
