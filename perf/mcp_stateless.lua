-- wrk script: POST one 2026-07-28 stateless `tools/call` per request (no session: the
-- protocol version, method and tool name travel as headers and in `_meta`).
--
-- Environment (set by perf/fleet.sh):
--   MCP_TOOL   tool name (default `demo__echo`)
--   MCP_CHECK=1  also read every body and count replies that are not a complete result
--
-- At the end it prints the same RESULT line as perf/mcp_post.lua:
--   RESULT requests=N duration_us=N rps=X p50_us=N p99_us=N max_us=N err_connect=N
--          err_read=N err_write=N err_status=N err_timeout=N bad=N checked=N

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

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  bad = 0
  checked = 0
  first_bad = nil
end

if check then
  function response(status, headers, body)
    checked = checked + 1
    if status ~= 200 or not string.find(body, '"resultType":"complete"', 1, true)
        or not string.find(body, '"text":"hi"', 1, true) then
      bad = bad + 1
      if first_bad == nil then
        first_bad = tostring(status) .. " " .. string.sub(body, 1, 300)
      end
    end
  end
end

function done(summary, latency, requests)
  local nbad, nchecked, sample = 0, 0, nil
  for _, t in ipairs(threads) do
    nbad = nbad + (t:get("bad") or 0)
    nchecked = nchecked + (t:get("checked") or 0)
    sample = sample or t:get("first_bad")
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d max_us=%d "
      .. "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d bad=%d checked=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout, nbad, nchecked))
  if sample ~= nil then
    io.write("FIRST_BAD " .. sample .. "\n")
  end
end
