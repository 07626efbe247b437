-- Shared by the wrk scripts perf/mcp_post.lua and perf/mcp_stateless.lua (loaded with
-- dofile from the same directory): per-thread counters of checked and bad replies, and the
-- one machine-readable line every perf script parses:
--   RESULT requests=N duration_us=N rps=X p50_us=N p99_us=N max_us=N err_connect=N
--          err_read=N err_write=N err_status=N err_timeout=N bad=N checked=N
-- followed by FIRST_BAD <status> <body prefix> when a reply failed its check.
-- err_status is wrk's "Non-2xx or 3xx responses" count.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

-- Resets this thread's counters (call from the script's init()).
function reset_counts()
  bad = 0
  checked = 0
  first_bad = nil
end

-- Counts one checked reply; `ok` says whether it passed.
function count_reply(ok, status, body)
  checked = checked + 1
  if not ok then
    bad = bad + 1
    if first_bad == nil then
      first_bad = tostring(status) .. " " .. string.sub(body, 1, 300)
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
