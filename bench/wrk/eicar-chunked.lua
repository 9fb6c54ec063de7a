-- eicar-chunked.lua -- wrk script: the EICAR test file to /v2/scan-chunked, chunked framing, two chunks.
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

common.verify('"malware":true')

-- wrk builds its one static request through wrk.format after init; ours is written out in full
-- so it carries Transfer-Encoding: chunked and no Content-Length. Two chunks, as a streaming
-- client would split it.
wrk.format = function()
   return common.chunked_head("/v2/scan-chunked") .. common.chunked(common.eicar, 40)
end
