-- GET of the static service's small file (the URL given to wrk), keep-alive.
wrk.method = "GET"
wrk.headers["Accept"] = "*/*"
