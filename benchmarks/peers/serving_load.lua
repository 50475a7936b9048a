-- Load for benchmarks/serving.py through wrk: POST one JSON body over and over, with the
-- headers benchmarks/peers/serving_load.py sends (Content-Type, and the bearer token when
-- there is one), and print one machine-readable line at the end.
--
--     OPSLOOP_BENCH_TOKEN=olp_... wrk -t T -c C -d Ns -s serving_load.lua URL -- BODY.json
--
-- The token comes from the environment, not the command line, where any user of the
-- machine could read it.

-- Each of wrk's threads runs this before it builds its request (a static one: no
-- request() function, so wrk formats it once per thread and does not parse answers).
function init(args)
   local file = assert(io.open(args[1], "rb"))
   wrk.method = "POST"
   wrk.body = file:read("*a")
   file:close()
   wrk.headers["Content-Type"] = "application/json"
   local token = os.getenv("OPSLOOP_BENCH_TOKEN")
   if token and token ~= "" then
      wrk.headers["Authorization"] = "Bearer " .. token
   end
end

-- After the run: the responses completed (2xx to 5xx), those with a status over 399 (wrk's
-- count), the socket errors and timeouts, the run's length and the latency quantiles, all
-- times in microseconds, on one line that starts with "opsloop-load ".
function done(summary, latency, requests)
   local errors = summary.errors
   io.write(string.format(
      'opsloop-load {"completed": %d, "status_errors": %d, "socket_errors": %d, '
         .. '"duration_us": %d, "p50_us": %d, "p99_us": %d}\n',
      summary.requests,
      errors.status,
      errors.connect + errors.read + errors.write + errors.timeout,
      summary.duration,
      latency:percentile(50.0),
      latency:percentile(99.0)
   ))
end
