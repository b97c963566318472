"""Where a request's path splits into the service's mount point and the rest, for the services
that hand requests on (``wsgi``, ``asgi``, ``reverseproxy``): WSGI's SCRIPT_NAME/PATH_INFO,
ASGI's root_path, the upstream path of a proxied request.

The front routes by the percent-decoded path with empty and '.' segments dropped
(transport/web.py ``WebPaths.resolve``) and gives the service the rest (``subpath``); the mount
point is what comes before it.  The raw rest (still percent-encoded, as received) is found by
walking the raw segments, so an encoded '/' (``%2F``) or '?' reaches an upstream unchanged.
"""

from __future__ import annotations

from urllib.parse import unquote


def _segments(path: str) -> list:
    return [s for s in path.split("/") if s and s != "."]


def split_mount(request, subpath: str) -> tuple[str, str]:
    """``(mount, rest)``: the mount point ('' for the root, else '/seg/...') and the decoded rest
    of the path ('' or '/...', a trailing '/' kept)."""
    segs = _segments(request.path)
    n_sub = len(_segments(subpath)) if subpath else 0
    mount_segs = segs[:len(segs) - n_sub]
    mount = "/" + "/".join(mount_segs) if mount_segs else ""
    if subpath:
        rest = "/" + subpath
    elif request.path.endswith("/") or not mount:
        rest = "/"
    else:
        rest = ""
    return mount, rest


def raw_rest(request, mount: str) -> bytes:
    """The raw (percent-encoded) rest of the request path below ``mount`` ('' or b'/...')."""
    n_mount = len(_segments(mount))
    raw = request.raw_path
    if n_mount == 0:
        return raw if raw.startswith(b"/") else b"/" + raw
    parts = raw.split(b"/")
    seen = 0
    for i, part in enumerate(parts):
        if not part:
            continue
        decoded = unquote(part.decode("latin-1"), errors="replace")
        seen += len(_segments(decoded))
        if seen >= n_mount:
            rest = b"/".join(parts[i + 1:])
            if not rest:
                return b"/" if raw.endswith(b"/") else b""
            return b"/" + rest
    return b""
