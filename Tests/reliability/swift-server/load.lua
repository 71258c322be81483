-- wrk script for soak.sh: mixes GET /item/<n> (n in 0..4999) with POST /echo
-- (one request in 10, bodies of 16 B to 8 KiB) and counts every status that is
-- not 200. Prints one summary line: "SOAK ok=N non200=N".
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok = 0
  non200 = 0
  counter = 0
  bodies = {}
  for i = 1, 16 do
    bodies[i] = string.rep(string.char(96 + i), 16 * i * i * 2)
  end
end

function request()
  counter = counter + 1
  if counter % 10 == 0 then
    local b = bodies[(counter / 10) % 16 + 1]
    return wrk.format("POST", "/echo", { ["Content-Type"] = "application/octet-stream" }, b)
  end
  return wrk.format("GET", "/item/" .. ((counter * 7919) % 5000))
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1 else non200 = non200 + 1 end
end

function done(summary, latency, requests)
  local t_ok, t_bad = 0, 0
  for _, t in ipairs(threads) do
    t_ok = t_ok + t:get("ok")
    t_bad = t_bad + t:get("non200")
  end
  io.write(string.format("SOAK ok=%d non200=%d\n", t_ok, t_bad))
end
