-- v3-random-5mib.lua -- wrk script: as random-5mib.lua, to BENCH_PATH (/v2/scan-chunked or
-- /v3/scan-chunked[?all_matches=true]): 5 MiB, its first 16 bytes a per-request counter so no
-- clean-file cache answers. The v3-against-v2 rows.
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local STAMP = 16 -- bytes rewritten per request

common.verify('"malware":false')

local head, rest
local id, n = 0, 0

-- Built once per thread: the head and first chunk line, and everything after the stamp.
function init(args)
   local data = common.read_env_file("BENCH_FILE")
   local body = common.chunked(data, common.chunk_size)
   local first = string.format("%x\r\n", math.min(#data, common.chunk_size))
   assert(#data >= STAMP)
   head = common.chunked_head(os.getenv("BENCH_PATH") or "/v3/scan-chunked") .. first
   rest = body:sub(#first + STAMP + 1)
   id = tid or 0
end

local setup_verify = setup
local next_tid = 0

function setup(thread)
   thread:set("tid", next_tid)
   next_tid = next_tid + 1
   setup_verify(thread)
end

-- Thread id and request number: no two requests of a run carry the same file.
function request()
   n = n + 1
   return head .. string.format("%04x%012x", id, n) .. rest
end
