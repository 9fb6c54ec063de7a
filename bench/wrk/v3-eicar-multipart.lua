-- v3-eicar-multipart.lua -- wrk script: the EICAR test file as the one file part of a form to
-- BENCH_PATH (/v2/scan, /v3/scan or /v3/scan?all_matches=true): the v3-against-v2 rows.
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local boundary = "----clamrest-bench-7d1f3a"

common.verify('"malware":true')

wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH") or "/v3/scan"
wrk.headers["Authorization"] = common.auth
wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary
wrk.body = "--" .. boundary .. "\r\n" ..
   'Content-Disposition: form-data; name="file"; filename="eicar.com"\r\n' ..
   "Content-Type: application/octet-stream\r\n\r\n" ..
   common.eicar .. "\r\n" ..
   "--" .. boundary .. "--\r\n"
