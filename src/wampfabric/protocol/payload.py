"""The payload tail of a WAMP message, defined once: what follows Options/Details.

A message that carries application payload (PUBLISH, EVENT, CALL, INVOCATION,
YIELD, RESULT, ERROR, ...) ends with either

* Arguments / ArgumentsKw ("Empty Arguments and Keyword Arguments": an
  empty/None ArgumentsKw is omitted, and an empty/None Arguments list is
  omitted unless ArgumentsKw follows it), or
* a transparent payload ("Payload Passthru Mode", advanced profile): the spec
  layout ``[Payload|binary]`` when the Options/Details carry a non-empty
  ``ppt_scheme``; Autobahn's older layout (``enc_algo``/``enc_serializer``/
  ``enc_key``) puts the bare binary in the Arguments position.

A router forwarding a transparent payload copies the attributes that describe
it (``ppt_*`` for the spec layout, ``enc_*`` for Autobahn's) from the received
Options/Details into the forwarded Details, so the receiver gets the layout
the sender used.

Pure functions; parsing (which accepts both layouts) is in
:mod:`wampfabric.protocol.messages`.
"""

#: passthru attributes, spec naming: copied when ``ppt_scheme`` is set
PPT_KEYS = ("ppt_scheme", "ppt_serializer", "ppt_cipher", "ppt_keyid")
#: passthru attributes, Autobahn naming: copied otherwise
ENC_KEYS = ("enc_algo", "enc_serializer", "enc_key")


def args_tail(args, kwargs) -> list:
    """The Arguments/ArgumentsKw elements ending a message (``[]``, ``[args]`` or
    ``[args or [], kwargs]``)."""
    if kwargs:
        return [args or [], kwargs]
    if args:
        return [args]
    return []


def passthru_tail(payload, meta: dict, details: dict = None) -> list:
    """A transparent payload as the element ending a message whose Options/Details are
    ``meta``: ``[[payload]]`` (spec layout, ``meta`` has ``ppt_scheme``) or ``[payload]``.
    With ``details`` (a message being forwarded), the ``ppt_*`` or ``enc_*`` attributes of
    ``meta`` are copied into it."""
    if meta.get("ppt_scheme"):
        if details is not None:
            for k in PPT_KEYS:
                if k in meta:
                    details[k] = meta[k]
        return [[payload]]
    if details is not None:
        for k in ENC_KEYS:
            if k in meta:
                details[k] = meta[k]
    return [payload]


def payload_tail(args, kwargs, payload, meta: dict, details: dict = None) -> list:
    """The elements ending a message: :func:`passthru_tail` when ``payload`` is not None,
    else :func:`args_tail`."""
    if payload is not None:
        return passthru_tail(payload, meta, details)
    return args_tail(args, kwargs)
