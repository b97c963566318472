-- POST to the HTTP bridge's publisher service: one WAMP publish per request (keep-alive).
-- The topic is the one the benchmark's WebSocket subscriber listens on (bench/web/run.py).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"topic": "com.bench.web.topic", "args": [1, "hello from the HTTP bridge"]}'
