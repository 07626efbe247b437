-- wrk script: POST one 2026-07-28 stateless `tools/call` per request (no session: the
-- protocol version, method and tool name travel as headers and in `_meta`).
--
-- Environment (set by perf/fleet.sh):
--   MCP_TOOL   tool name (default `demo__echo`)
--   MCP_CHECK=1  also read every body and count replies that are not a complete result
--
-- At the end it prints the RESULT line of perf/mcp_result.lua, as perf/mcp_post.lua does.

local tool = os.getenv("MCP_TOOL") or "demo__echo"
local check = os.getenv("MCP_CHECK") == "1"

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2026-07-28"
wrk.headers["Mcp-Method"] = "tools/call"
wrk.headers["Mcp-Name"] = tool
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"' .. tool
  .. '","arguments":{"message":"hi"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",'
  .. '"io.modelcontextprotocol/clientCapabilities":{}}}}'

dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "mcp_result.lua")

function init(args)
  reset_counts()
end

if check then
  function response(status, headers, body)
    count_reply(not (status ~= 200 or not string.find(body, '"resultType":"complete"', 1, true)
        or not string.find(body, '"text":"hi"', 1, true)), status, body)
  end
end
