-- POST to the HTTP bridge's caller service: one WAMP call per request (keep-alive) to the
-- benchmark's WebSocket callee, which echoes the args back (bench/web/run.py).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"procedure": "com.bench.web.echo", "args": [1, "hello from the HTTP bridge"]}'
