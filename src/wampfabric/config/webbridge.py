"""The HTTP bridge's web services (``publisher``, ``caller``, ``webhook``) and WAMP over HTTP
long-poll (``longpoll``): their config checkers, in Crossbar.io's shapes (registered in the
personality's ``WEB_SERVICE_CHECKERS``), and their defaults."""

from __future__ import annotations

import ipaddress

from ..protocol.uri import check_uri
from .base import ConfigError, check_dict, check_type

# the largest post_body_limit and timestamp_delta_limit Crossbar.io accepts
MAX_POST_BODY_LIMIT = 1 << 20
MAX_TIMESTAMP_DELTA_LIMIT = 86400
# without post_body_limit (or with 0, "no limit" in Crossbar.io) a bridge request body may
# have up to this many octets: the HTTP front's own bound
DEFAULT_POST_BODY_LIMIT = MAX_POST_BODY_LIMIT
# seconds a signed request's timestamp may be off the router's clock (Crossbar.io's default)
DEFAULT_TIMESTAMP_DELTA_LIMIT = 300

# long-poll defaults (Crossbar.io's): seconds a receive request is held open, seconds without
# requests after which a transport is closed, the outgoing queue's bounds
LONGPOLL_REQUEST_TIMEOUT = 10
LONGPOLL_SESSION_TIMEOUT = 30
LONGPOLL_QUEUE_LIMIT_BYTES = 128 * 1024
LONGPOLL_QUEUE_LIMIT_MESSAGES = 100

_SIGNED_OPTIONS = {"debug": bool, "key": str, "secret": str, "require_tls": bool, "require_ip": list,
                   "post_body_limit": int, "timestamp_delta_limit": int}


def _check_session(cfg, path: str) -> None:
    """``realm`` and ``role`` of the service's WAMP session."""
    if not check_uri(cfg["realm"], False):
        raise ConfigError(f"{path}.realm", f"invalid realm name '{cfg['realm']}'")
    if not cfg["role"]:
        raise ConfigError(f"{path}.role", "must not be empty")


def _check_post_body_limit(options: dict, path: str) -> None:
    if "post_body_limit" in options:
        limit = options["post_body_limit"]
        if not 0 <= limit <= MAX_POST_BODY_LIMIT:
            raise ConfigError(f"{path}.post_body_limit",
                              f"must be between 0 (no limit of its own) and {MAX_POST_BODY_LIMIT}, not {limit}")


def _check_signed_options(options: dict, path: str) -> None:
    _check_post_body_limit(options, path)
    if "timestamp_delta_limit" in options:
        limit = options["timestamp_delta_limit"]
        if not 0 <= limit <= MAX_TIMESTAMP_DELTA_LIMIT:
            raise ConfigError(f"{path}.timestamp_delta_limit",
                              f"must be between 0 (no limit) and {MAX_TIMESTAMP_DELTA_LIMIT} seconds, not {limit}")
    if ("key" in options) != ("secret" in options):
        given, missing = ("key", "secret") if "key" in options else ("secret", "key")
        raise ConfigError(path, f"'{given}' is given without '{missing}': signed requests need both")
    for name in ("key", "secret"):
        if name in options and not options[name]:
            raise ConfigError(f"{path}.{name}", "must not be empty")
    for i, net in enumerate(options.get("require_ip", [])):
        check_type(net, str, f"{path}.require_ip[{i}]")
        try:
            ipaddress.ip_network(net)
        except ValueError as e:
            raise ConfigError(f"{path}.require_ip[{i}]", f"invalid IP network '{net}': {e}") from None


def _check_signed_service(cfg, path: str) -> None:
    check_dict(cfg, path, {"type": str, "realm": str, "role": str}, {"id": str, "options": dict})
    _check_session(cfg, path)
    if "options" in cfg:
        check_dict(cfg["options"], f"{path}.options", {}, _SIGNED_OPTIONS)
        _check_signed_options(cfg["options"], f"{path}.options")


def check_web_path_service_publisher(cfg, path: str, personality) -> None:
    """``publisher``: HTTP POST -> WAMP publish on ``realm`` as ``role``."""
    _check_signed_service(cfg, path)


def check_web_path_service_caller(cfg, path: str, personality) -> None:
    """``caller``: HTTP POST -> WAMP call on ``realm`` as ``role`` -> the result as JSON."""
    _check_signed_service(cfg, path)


def check_web_path_service_webhook(cfg, path: str, personality) -> None:
    """``webhook``: any HTTP POST -> a WAMP event on ``options.topic`` with its headers and body."""
    check_dict(cfg, path, {"type": str, "realm": str, "role": str, "options": dict}, {"id": str})
    _check_session(cfg, path)
    opath = f"{path}.options"
    options = check_dict(cfg["options"], opath, {}, {"debug": bool, "post_body_limit": int, "topic": str,
                                                     "success_response": str, "error_response": str,
                                                     "github_secret": str})
    # Crossbar.io's checker lets 'topic' out, then fails every request without it
    if "topic" not in options:
        raise ConfigError(opath, "missing mandatory attribute 'topic' (the topic the webhook publishes to)")
    if not check_uri(options["topic"], False):
        raise ConfigError(f"{opath}.topic", f"invalid topic URI '{options['topic']}'")
    _check_post_body_limit(options, opath)


def check_web_path_service_longpoll(cfg, path: str, personality) -> None:
    """``longpoll``: WAMP over HTTP long-poll."""
    check_dict(cfg, path, {"type": str}, {"id": str, "options": dict})
    if "options" in cfg:
        opath = f"{path}.options"
        options = check_dict(cfg["options"], opath, {},
                             {"debug": bool, "debug_transport_id": str, "request_timeout": int,
                              "session_timeout": int, "queue_limit_bytes": int, "queue_limit_messages": int})
        # all positive: a held receive request ends, a transport nobody polls is closed and the
        # outgoing queue is bounded (Crossbar.io takes 0 for "never" and enforces none of them)
        for name in ("request_timeout", "session_timeout", "queue_limit_bytes", "queue_limit_messages"):
            if name in options and options[name] <= 0:
                raise ConfigError(f"{opath}.{name}", f"must be positive, not {options[name]}")
        tid = options.get("debug_transport_id")
        if tid is not None and (not tid or not tid.isascii() or not tid.isalnum()):
            raise ConfigError(f"{opath}.debug_transport_id", "must be a non-empty string of ASCII letters and digits")
