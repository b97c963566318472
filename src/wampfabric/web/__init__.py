"""Web services of ``web`` and ``universal`` transports (issue 17): the services behind the HTTP
front (transport/http.py), each a ``transport.web.WebService`` registered in the personality's
``WEB_SERVICE_FACTORIES`` with its config checker in ``WEB_SERVICE_CHECKERS``.

- ``static``: files of a directory or a Python package resource (web/static.py);
- ``archive``: files of a local ZIP or tar archive (web/archive.py);
- ``redirect``, ``json``, ``resource``, ``nodeinfo``, ``path`` (web/simple.py);
- the HTTP bridge, long-poll, WSGI/ASGI and the reverse proxy in their own modules.

How to write one: docs/web.md ("Writing a service").
"""
