-- bench/web/run.py appends this to every wrk script: at the end, one JSON line with what wrk
-- counted (summary: requests, bytes, duration in us, errors; latency in us), prefixed by
-- "WRK-JSON " so run.py finds it among wrk's own output.
function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRK-JSON {"requests": %d, "bytes": %d, "duration_us": %d, "errors": {"connect": %d, "read": %d, ' ..
      '"write": %d, "status": %d, "timeout": %d}, "latency_us": {"mean": %.1f, "p50": %d, "p90": %d, ' ..
      '"p99": %d, "max": %d}}\n',
      summary.requests, summary.bytes, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
      latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
