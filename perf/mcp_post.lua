-- wrk script: POST one MCP `tools/call` per request on an initialized session.
--
-- Environment (set by perf/load.sh and perf/compare.sh):
--   MCP_SESSION_ID        the Mcp-Session-Id returned by initialize (required unless
--                         MCP_SESSION_IDS is set)
--   MCP_SESSION_IDS       several initialized sessions, space-separated: the requests cycle
--                         through them (compare.sh: one session per connection, so that
--                         no single session carries all the load; costs wrk a Lua call per
--                         request, the same for every target)
--   MCP_METHOD            `tools/call` (default) or `tools/list`
--   MCP_PROTOCOL_VERSION  the negotiated version, sent as MCP-Protocol-Version (optional)
--   MCP_TOOL              tool name: `echo` direct, `demo__echo` through the gateway
--   MCP_AUTHORIZATION     sent as the Authorization header when set (AUTH=jwt|api_key)
--   MCP_CHECK=1           also read every body and count replies that are not a successful
--                         JSON-RPC result (costs load-generator CPU; off for measured runs)
--   MCP_EXPECT            with MCP_CHECK=1: a string every good reply contains (default
--                         `"text":"hi"` for tools/call, `"tools"` for tools/list)
--
-- At the end it prints the RESULT line that load.sh parses (perf/mcp_result.lua).

local sids = {}
for s in string.gmatch(os.getenv("MCP_SESSION_IDS") or "", "%S+") do
  table.insert(sids, s)
end
local sid = os.getenv("MCP_SESSION_ID")
if sid == nil or sid == "" then
  sid = sids[1]
end
if sid == nil then
  error("MCP_SESSION_ID (or MCP_SESSION_IDS) is not set")
end
local version = os.getenv("MCP_PROTOCOL_VERSION")
local tool = os.getenv("MCP_TOOL") or "echo"
local method = os.getenv("MCP_METHOD") or "tools/call"
local check = os.getenv("MCP_CHECK") == "1"
local expect = os.getenv("MCP_EXPECT")
if expect == nil or expect == "" then
  expect = (method == "tools/list") and '"tools"' or '"text":"hi"'
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["Mcp-Session-Id"] = sid
if version ~= nil and version ~= "" then
  wrk.headers["MCP-Protocol-Version"] = version
end
local authorization = os.getenv("MCP_AUTHORIZATION")
if authorization ~= nil and authorization ~= "" then
  wrk.headers["Authorization"] = authorization
end
if method == "tools/list" then
  wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/list"}'
elseif method == "tools/call" then
  wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"' .. tool
    .. '","arguments":{"message":"hi"}}}'
else
  error("MCP_METHOD must be tools/call or tools/list")
end

-- Several sessions: one pre-formatted request per session, cycled through (formatted in
-- init(), once wrk has set the Host header).
local reqs = {}
local n = 0
if #sids > 1 then
  function request()
    n = n % #reqs + 1
    return reqs[n]
  end
end

dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "mcp_result.lua")

function init(args)
  reset_counts()
  if #sids > 1 then
    for i, s in ipairs(sids) do
      wrk.headers["Mcp-Session-Id"] = s
      reqs[i] = wrk.format()
    end
  end
end

if check then
  function response(status, headers, body)
    count_reply(not (status ~= 200 or not string.find(body, '"result"', 1, true)
        or string.find(body, '"isError":true', 1, true)
        or not string.find(body, expect, 1, true)), status, body)
  end
end
