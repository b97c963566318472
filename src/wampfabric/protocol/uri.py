"""WAMP URI validation (spec: Basic Profile, "Building Blocks" / "URIs").

Rules implemented
-----------------
* **loose** URIs: components (split at ``.``) MUST NOT be empty and MUST NOT
  contain ``.``, ``#`` or whitespace.
* **strict** URIs: components SHOULD only contain ``[0-9a-z_]``.
* **empty components** are allowed only for pattern-based subscriptions /
  registrations (Advanced Profile):

  - ``match == "wildcard"``: any component may be empty, an empty component
    is the wildcard (``com.myapp..userevent``).
  - ``match == "prefix"``: the pattern is a plain string prefix of the URI
    ("Prefix Matching": ``com.myapp.topic.emergency`` matches
    ``com.myapp.topic.emergency-low``), so only the *last* component may be
    empty, i.e. the pattern may end with ``.`` or be the empty string (which
    matches every URI).  Inner empty components make no sense there.

All regexes are precompiled and applied with ``fullmatch``: the spec's sample
regexes end with ``$``, which also matches before a trailing newline, so
``"com.example\\n"`` would wrongly pass a strict check with ``re.match``.
The character classes exclude ``.``, so the patterns cannot backtrack
catastrophically.

The router calls :func:`check_uri` for every PUBLISH / CALL, so it is kept to
one type check plus one C-level regex match.

Which rule applies
------------------
A realm checks with the loose rule unless its config says
``"options": {"uri_check": "strict"}``, as Crossbar.io does (its router factory
defaults to loose): real applications use ``com.myapp.getUser`` or
``com.myapp.on-update``.  One deliberate difference: Crossbar.io matches with
``re.match`` and ``$``, so it accepts a URI ending in a newline
(``"com.myapp.topic\n"``); here whitespace is refused everywhere, as the spec says.

Length
------
A URI longer than a realm's ``max_uri_length`` (default
:data:`MAX_URI_LENGTH` characters) is invalid, so a client cannot make the
router keep huge strings in its caches and maps (issue 11).  Error texts quote
URIs through :func:`quote_uri`, which shortens long ones.
"""

import re

from .messages import short_repr

__all__ = ["check_uri", "check_pattern", "quote_uri", "MATCH_EXACT", "MATCH_PREFIX", "MATCH_WILDCARD",
           "MAX_URI_LENGTH"]

# The default limit of a URI's length in characters (a realm's option "max_uri_length").
# Long-but-legit URIs seen in practice (reverse domain + UUIDs + a path or a device name)
# stay well below 1,000 characters; 4,096 leaves room and bounds what caches keep.
MAX_URI_LENGTH = 4096

# characters of a URI quoted in an error text or a log line before it is cut
QUOTED_URI_LENGTH = 120

MATCH_EXACT = "exact"
MATCH_PREFIX = "prefix"
MATCH_WILDCARD = "wildcard"

_LOOSE_C = r"[^\s.#]"
_STRICT_C = r"[0-9a-z_]"


def _compile(c: str):
    # Written as "first component, then (dot component)*": this form is faster
    # than the spec's "(component dot)* component" because the
    # regex engine does not have to back out of the last repetition.
    return (
        # non-empty components:           a, a.b
        re.compile(rf"{c}+(?:\.{c}+)*").fullmatch,
        # any component may be empty:     "", ".", a..b, .a
        re.compile(rf"{c}*(?:\.{c}*)*").fullmatch,
        # only the last may be empty:     "", a, a., a.b.
        re.compile(rf"(?:{c}+(?:\.{c}+)*\.?)?").fullmatch,
    )


_LOOSE, _LOOSE_EMPTY, _LOOSE_PREFIX = _compile(_LOOSE_C)
_STRICT, _STRICT_EMPTY, _STRICT_PREFIX = _compile(_STRICT_C)


def check_uri(uri: str, strict: bool, allow_empty: bool = False) -> bool:
    """Return True when *uri* is a valid WAMP URI.

    :param strict: apply the strict rule (components ``[0-9a-z_]+``) instead
        of the loose one.
    :param allow_empty: allow empty components anywhere (wildcard patterns);
        note ``""`` then is valid too (a single, empty component).
    """
    if type(uri) is not str:
        return False
    if allow_empty:
        fn = _STRICT_EMPTY if strict else _LOOSE_EMPTY
    else:
        fn = _STRICT if strict else _LOOSE
    return fn(uri) is not None


def check_pattern(uri: str, match: str, strict: bool) -> bool:
    """Validate the URI of a SUBSCRIBE / REGISTER for the given match policy.

    ``match`` is ``"exact"``, ``"prefix"`` or ``"wildcard"``; any other value
    returns False (the caller should already have rejected it).
    """
    if type(uri) is not str:
        return False
    if match == MATCH_EXACT:
        fn = _STRICT if strict else _LOOSE
    elif match == MATCH_PREFIX:
        fn = _STRICT_PREFIX if strict else _LOOSE_PREFIX
    elif match == MATCH_WILDCARD:
        fn = _STRICT_EMPTY if strict else _LOOSE_EMPTY
    else:
        return False
    return fn(uri) is not None


def quote_uri(uri, limit: int = QUOTED_URI_LENGTH, max_length: int | None = None) -> str:
    """``uri`` quoted for an error text or a log line: a long one is cut (and its length
    given, and that it exceeds the realm's ``max_length`` if it does), so a router never
    echoes a huge string back or into its log."""
    if type(uri) is not str:
        return short_repr(uri, limit)  # any depth, any size (repr() is not safe for either)
    n = len(uri)
    if n <= limit:
        return f"'{uri}'"
    if max_length is not None and n > max_length:
        return f"'{uri[:limit]}...' ({n} characters, longer than the realm's max_uri_length {max_length})"
    return f"'{uri[:limit]}...' ({n} characters)"
