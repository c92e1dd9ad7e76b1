-- wrk script of bench/run: replays a pool of pre-signed raw HTTP requests round-robin over
-- keep-alive connections, counts answers that are not 2xx, and prints one JSON line at the end
-- for the driver (kmsbench/wrkrun.py) to parse.
--
-- Pool file (written by the driver): for each request, its length in bytes, a newline, then the
-- request bytes exactly as signed. Usage: wrk -s pool.lua URL -- POOL_FILE

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("thread_number", #threads)
end

local function read_pool(path)
   local file = assert(io.open(path, "rb"))
   local data = file:read("*a")
   file:close()
   local pool, position = {}, 1
   while position <= #data do
      local newline = data:find("\n", position, true)
      local length = tonumber(data:sub(position, newline - 1))
      table.insert(pool, data:sub(newline + 1, newline + length))
      position = newline + length + 1
   end
   assert(#pool > 0, "empty request pool " .. path)
   return pool
end

function init(args)
   pool = read_pool(args[1])
   -- Threads start at different places in the pool so they do not send in lockstep.
   cursor = ((thread_number or 1) * 7) % #pool
   failures = 0
   first_failure_status = 0
   first_failure_body = ""
end

function request()
   cursor = cursor % #pool + 1
   return pool[cursor]
end

function response(status, headers, body)
   if status < 200 or status > 299 then
      failures = failures + 1
      if first_failure_status == 0 then
         first_failure_status = status
         first_failure_body = body or ""
      end
   end
end

local function json_string(text)
   return '"' .. text:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end

function done(summary, latency, requests)
   local total_failures, status, body = 0, 0, ""
   for _, thread in ipairs(threads) do
      total_failures = total_failures + (thread:get("failures") or 0)
      local thread_status = thread:get("first_failure_status") or 0
      if status == 0 and thread_status ~= 0 then
         status = thread_status
         body = thread:get("first_failure_body") or ""
      end
   end
   local e = summary.errors
   io.write(string.format(
      'KMSBENCH_RESULT {"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, "timeouts": %d, ' ..
      '"p50_us": %d, "p99_us": %d, "max_us": %d, "first_failure_status": %d, "first_failure_body": %s}\n',
      summary.requests, summary.duration, total_failures, e.connect + e.read + e.write, e.timeout,
      latency:percentile(50), latency:percentile(99), latency.max, status, json_string(body:sub(1, 500))))
end
