"""Transports: ``websocket`` and ``rawsocket`` listening transports (serializers, options,
cookies) and the connecting transports of container components.  ``web`` and ``universal``
transports are in ``web``."""

from __future__ import annotations

from ..protocol.rawsocket import MAX_FRAME_LENGTH
from . import defaults
from .auth import check_auth
from .base import ConfigError, check_dict, check_type
from .endpoints import check_connecting_endpoint, check_listening_endpoint


SERIALIZERS = ("json", "msgpack", "cbor", "ubjson", "flatbuffers")
SUPPORTED_SERIALIZERS = ("json", "msgpack", "cbor")


def check_serializers(value, path: str) -> None:
    check_type(value, list, path)
    if not value:
        raise ConfigError(path, "must name at least one serializer")
    for i, s in enumerate(value):
        check_type(s, str, f"{path}[{i}]")
        if s not in SUPPORTED_SERIALIZERS:
            raise ConfigError(f"{path}[{i}]", f"unsupported serializer '{s}' (supported: {', '.join(SUPPORTED_SERIALIZERS)})")


WEBSOCKET_OPTIONS = {
    "allowed_origins": list, "allow_null_origin": bool, "enable_webstatus": bool, "max_frame_size": int,
    "max_message_size": int, "auto_fragment_size": int, "fail_by_drop": bool, "open_handshake_timeout": int,
    "close_handshake_timeout": int, "auto_ping_interval": int, "auto_ping_timeout": int, "auto_ping_size": int,
    "auto_ping_restart_on_any_traffic": bool, "compression": dict, "require_websocket_subprotocol": bool,
    "enable_flash_policy": bool, "flash_policy": str, "echo_close_codereason": bool, "tcp_nodelay": bool,
    "utf8validate_incoming": bool, "mask_server_frames": bool, "require_masking": bool, "apply_mask": bool,
    "max_outgoing_buffer": int, "show_server_version": bool, "enable_hybi10": bool, "enable_rfc6455": bool,
    "server": str, "external_port": int, "allowed_origins_pattern": list, "trust_x_forwarded_for": bool,
    "per_message_compression": dict, "hello_timeout": int,
}


def check_websocket_options(opts, path: str) -> None:
    check_dict(opts, path, {}, WEBSOCKET_OPTIONS)
    for key in ("max_frame_size", "max_message_size", "auto_ping_interval", "auto_ping_timeout",
                "max_outgoing_buffer", "open_handshake_timeout", "close_handshake_timeout", "hello_timeout"):
        if key in opts and opts[key] < 0:
            raise ConfigError(f"{path}.{key}", "must not be negative")
    for i, o in enumerate(opts.get("allowed_origins", [])):
        check_type(o, str, f"{path}.allowed_origins[{i}]")


def check_cookie(cfg, path: str) -> None:
    check_dict(cfg, path, {}, {"name": str, "length": int, "max_age": int, "store": dict})
    if "store" in cfg:
        store = check_dict(cfg["store"], f"{path}.store", {"type": str}, {"filename": str})
        if store["type"] not in ("memory", "file"):
            raise ConfigError(f"{path}.store.type", f"invalid cookie store type '{store['type']}' (memory, file)")
    if not 8 <= cfg.get("length", defaults.COOKIE_LENGTH) <= 64:
        raise ConfigError(f"{path}.length", "must be 8..64")


def check_websocket_settings(cfg, path: str, extra_required=None) -> None:
    """Attributes shared by a ``websocket`` transport and a ``websocket`` web service."""
    if "cookie" in cfg:
        check_cookie(cfg["cookie"], f"{path}.cookie")
    if "serializers" in cfg:
        check_serializers(cfg["serializers"], f"{path}.serializers")
    if "options" in cfg:
        check_websocket_options(cfg["options"], f"{path}.options")
    if "auth" in cfg:
        check_auth(cfg["auth"], f"{path}.auth")


def check_listening_transport_websocket(cfg, path: str, personality) -> None:
    check_dict(cfg, path, {"type": str, "endpoint": dict},
               {"id": str, "serializers": list, "options": dict, "auth": dict, "url": str, "debug": bool,
                "cookie": dict})
    check_listening_endpoint(cfg["endpoint"], f"{path}.endpoint")
    check_websocket_settings(cfg, path)


def check_listening_transport_rawsocket(cfg, path: str, personality) -> None:
    check_dict(cfg, path, {"type": str, "endpoint": dict},
               {"id": str, "serializers": list, "options": dict, "auth": dict, "debug": bool,
                "max_message_size": int})
    check_listening_endpoint(cfg["endpoint"], f"{path}.endpoint")
    if "serializers" in cfg:
        check_serializers(cfg["serializers"], f"{path}.serializers")
    if "options" in cfg:
        opts = check_dict(cfg["options"], f"{path}.options", {},
                          {"max_message_size": int, "max_outgoing_buffer": int, "hello_timeout": int})
        for key in ("max_outgoing_buffer", "hello_timeout"):
            if key in opts and opts[key] < 0:
                raise ConfigError(f"{path}.options.{key}", "must not be negative")
        mms = opts.get("max_message_size")
        if mms is not None and not 512 <= mms <= MAX_FRAME_LENGTH:
            raise ConfigError(f"{path}.options.max_message_size",
                              f"must be 512..{MAX_FRAME_LENGTH} (RawSocket limit), not {mms}")
    if "max_message_size" in cfg:
        # legacy spelling: move it into options
        cfg.setdefault("options", {}).setdefault("max_message_size", cfg["max_message_size"])
    if "auth" in cfg:
        check_auth(cfg["auth"], f"{path}.auth")


def check_connecting_transport(tr, path: str) -> None:
    check_type(tr, dict, path)
    kind = tr.get("type")
    if kind == "websocket":
        check_dict(tr, path, {"type": str, "endpoint": dict}, {"url": str, "serializers": list, "options": dict,
                                                                "id": str})
    elif kind == "rawsocket":
        check_dict(tr, path, {"type": str, "endpoint": dict}, {"serializer": str, "serializers": list,
                                                                "options": dict, "id": str})
        if "serializer" in tr:
            check_serializers([tr["serializer"]], f"{path}.serializer")
    elif kind is None:
        raise ConfigError(path, "missing mandatory attribute 'type' (one of: websocket, rawsocket)")
    else:
        raise ConfigError(f"{path}.type", f"invalid transport type '{kind}' (one of: websocket, rawsocket)")
    check_connecting_endpoint(tr["endpoint"], f"{path}.endpoint")
    if "serializers" in tr:
        check_serializers(tr["serializers"], f"{path}.serializers")
