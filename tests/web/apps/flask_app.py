"""A Flask application served by the ``wsgi`` web service in tests/web/test_wsgi.py."""

from flask import Flask, Response, jsonify, request, stream_with_context, url_for

app = Flask(__name__)


@app.get("/")
def index():
    return "flask index"


@app.get("/hello/<name>")
def hello(name):
    return jsonify(hello=name, q=request.args.get("q"), link=url_for("hello", name=name, _external=False),
                   script_root=request.script_root)


@app.post("/echo")
def echo():
    return jsonify(json=request.get_json(silent=True), length=request.content_length,
                   ctype=request.content_type)


@app.post("/form")
def form():
    return jsonify(dict(request.form))


@app.get("/stream")
def stream():
    def parts():
        for i in range(5):
            yield f"part{i};"
    return Response(stream_with_context(parts()), mimetype="text/plain")


@app.get("/fail")
def fail():
    raise RuntimeError("a view that fails")
