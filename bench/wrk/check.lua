-- check.lua -- wrk script: GET /check, the health check every load balancer sends.
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

wrk.method = "GET"
wrk.path = "/check"
