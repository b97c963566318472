"""The meta API agent: per realm, the trusted internal session that provides the
WAMP meta API (advanced/meta_api_sessions, meta_api_subscriptions,
meta_api_registrations, pubsub_event_history, pubsub_testament) and makes the
router's own calls (to dynamic authenticators and authorizers).

It is an ordinary (trusted) session of the realm: its procedures are
registrations like any other, so role permissions apply to calling them.
Its transport is the agent itself: messages stay Python lists, and
invocations are answered at the end of the event loop turn, never inside
the dealer's own processing.
"""

from __future__ import annotations

import asyncio
import logging

from ..protocol import errors as E
from ..protocol.codes import CALL, ERROR, INVOCATION, REGISTERED, RESULT, YIELD
from ..protocol.messages import Register, short_repr
from ..protocol.uri import check_uri
from .authorization import TrustedRole
from .linkstate import STATE_TOPIC, LinkStateError
from .session import PASSTHROUGH, RouterSession, session_info

log = logging.getLogger("wampfabric.router.meta")

SCOPES = ("destroyed", "detached")
MAX_TESTAMENTS = 100  # per session and scope: a session cannot make the router hold unbounded data


class MetaError(Exception):
    def __init__(self, error: str, message: str):
        super().__init__(message)
        self.error = error
        self.message = message
        self.args_ = [message]


class MetaApiAgent:
    serializer = PASSTHROUGH
    auth_config = None
    peer = "internal"

    def __init__(self, realm):
        self.realm = realm
        self._queue: list = []
        self.session = RouterSession(realm.router, self, trusted=True)
        self.session.welcome(realm, "routerservice", "trusted", "internal", "static", role=TrustedRole())
        self._procedures = {}
        for name in dir(self):
            if name.startswith("p_"):
                uri = "wamp." + name[2:].replace("__", ".")
                self._procedures[uri] = getattr(self, name)
        # router-to-router links (rlink/, router/linkstate.py)
        self._procedures.update({"wampfabric.rlink.id": self.rlink_id,
                                 "wampfabric.rlink.state.get": self.rlink_state_get,
                                 "wampfabric.rlink.state.put": self.rlink_state_put})
        self._reg_uris = {}
        for i, uri in enumerate(self._procedures, 1):
            self.realm.dealer.register(self.session, Register(i, uri, {}))
        # calls the router makes (dynamic authenticators/authorizers): request -> (on_result, on_error)
        self._calls: dict = {}
        self._call_seq = 1 << 40

    def call(self, procedure: str, args: list, on_result, on_error) -> None:
        """Call ``procedure`` as the router; exactly one of the callbacks runs, later."""
        self._call_seq += 1
        request = self._call_seq
        self._calls[request] = (on_result, on_error)
        asyncio.get_running_loop().call_soon(self.session.on_message, [CALL, request, {}, procedure, args])

    # -- transport side -------------------------------------------------------------

    def send(self, msg: list) -> None:
        code = msg[0]
        if code == REGISTERED:  # remember which registration is which procedure
            self._reg_uris[msg[2]] = list(self._procedures)[msg[1] - 1]
        elif code == INVOCATION:
            if not self._queue:
                asyncio.get_running_loop().call_soon(self._run)
            self._queue.append(msg)
        elif code == RESULT or (code == ERROR and msg[1] == CALL):  # of a call we made
            cbs = self._calls.pop(msg[1] if code == RESULT else msg[2], None)
            if cbs is not None:
                asyncio.get_running_loop().call_soon(self._answer, cbs, msg)

    def close(self) -> None:
        pass

    @staticmethod
    def _answer(cbs, msg: list) -> None:
        on_result, on_error = cbs
        if msg[0] == RESULT:
            args = msg[3] if len(msg) > 3 else []
            on_result(args[0] if args else None)
        else:
            on_error(MetaError(msg[4], (msg[5][0] if len(msg) > 5 and msg[5] else "")))

    def _run(self) -> None:
        queue, self._queue = self._queue, []
        for msg in queue:
            self._invoke(msg)

    def _invoke(self, msg: list) -> None:
        request, registration, details = msg[1], msg[2], msg[3]
        args = msg[4] if len(msg) > 4 else []
        kwargs = msg[5] if len(msg) > 5 else {}
        uri = self._reg_uris.get(registration)
        fn = self._procedures.get(uri)
        try:
            if fn is None:
                raise MetaError(E.NO_SUCH_PROCEDURE, f"no meta procedure for registration {registration}")
            caller = self.realm.sessions.get(details.get("caller"))
            result = fn(caller, *args, **kwargs)
        except MetaError as e:
            reply = [ERROR, INVOCATION, request, {}, e.error, [e.message]]
        except TypeError as e:
            reply = [ERROR, INVOCATION, request, {}, E.INVALID_ARGUMENT, [f"{uri}: {e}"]]
        except Exception as e:  # a bug in a meta procedure must not take the realm down
            log.exception("meta procedure %s failed", uri)
            reply = [ERROR, INVOCATION, request, {}, "wamp.error.runtime_error", [f"{uri}: {type(e).__name__}"]]
        else:
            reply = [YIELD, request, {}] if result is _NO_RESULT else [YIELD, request, {}, [result]]
        self.session.on_message(reply)

    # -- helpers ------------------------------------------------------------------------

    def _others(self, filter_authroles=None):
        me = self.session
        for s in self.realm.sessions.values():
            if s is me:
                continue
            if filter_authroles is not None and s.authrole not in filter_authroles:
                continue
            yield s

    def _session(self, session_id) -> RouterSession:
        s = self.realm.sessions.get(session_id)
        if s is None or s is self.session:
            raise MetaError(E.NO_SUCH_SESSION, f"no session with ID {session_id} exists on this realm")
        return s

    @staticmethod
    def _close_reason(reason, message):
        if reason is None:
            reason = E.KILLED
        if not isinstance(reason, str) or not check_uri(reason, False):
            raise MetaError(E.INVALID_URI, f"invalid close reason {short_repr(reason)}")
        if message is not None and not isinstance(message, str):
            raise MetaError(E.INVALID_ARGUMENT, "message must be a string")
        return reason, message

    def _subscription(self, sub_id):
        sub = self.realm.broker.subscription(sub_id)
        if sub is None:
            raise MetaError(E.NO_SUCH_SUBSCRIPTION, f"no subscription with ID {sub_id} exists on this realm")
        return sub

    def _registration(self, reg_id):
        reg = self.realm.dealer.registration(reg_id)
        if reg is None or reg.uri.startswith("wamp."):
            raise MetaError(E.NO_SUCH_REGISTRATION, f"no registration with ID {reg_id} exists on this realm")
        return reg

    # -- wamp.session.* -------------------------------------------------------------------

    def p_session__count(self, caller, filter_authroles=None):
        return sum(1 for _ in self._others(filter_authroles))

    def p_session__list(self, caller, filter_authroles=None):
        return [s.session_id for s in self._others(filter_authroles)]

    def p_session__get(self, caller, session_id):
        return session_info(self._session(session_id))

    def p_session__kill(self, caller, session_id, reason=None, message=None):
        reason, message = self._close_reason(reason, message)
        target = self._session(session_id)
        if target is caller:
            raise MetaError(E.NO_SUCH_SESSION, "a session cannot kill itself (no *other* session with that ID)")
        target.goodbye(reason, message)
        return _NO_RESULT

    def p_session__kill_by_authid(self, caller, authid, reason=None, message=None):
        reason, message = self._close_reason(reason, message)
        victims = [s for s in self._others() if s.authid == authid and s is not caller]
        for s in victims:
            s.goodbye(reason, message)
        return [s.session_id for s in victims]

    def p_session__kill_by_authrole(self, caller, authrole, reason=None, message=None):
        reason, message = self._close_reason(reason, message)
        victims = [s for s in self._others() if s.authrole == authrole and s is not caller]
        for s in victims:
            s.goodbye(reason, message)
        return len(victims)

    def p_session__kill_all(self, caller, reason=None, message=None):
        reason, message = self._close_reason(reason, message)
        victims = [s for s in self._others() if s is not caller]
        for s in victims:
            s.goodbye(reason, message)
        return len(victims)

    def p_session__add_testament(self, caller, topic, args=None, kwargs=None, publish_options=None,
                                 scope="destroyed"):
        if caller is None:
            raise MetaError(E.NO_SUCH_SESSION, "caller unknown")
        if scope not in SCOPES:
            raise MetaError(E.INVALID_ARGUMENT, f"scope must be one of {SCOPES}, not {short_repr(scope)}")
        if not isinstance(topic, str) or not self.realm.uri_ok(topic):
            raise MetaError(E.INVALID_URI, f"invalid testament topic {self.realm.quote_uri(topic)}")
        if args is not None and not isinstance(args, list) or kwargs is not None and not isinstance(kwargs, dict):
            raise MetaError(E.INVALID_ARGUMENT, "args must be a list and kwargs a dict")
        if publish_options is not None and not isinstance(publish_options, dict):
            raise MetaError(E.INVALID_ARGUMENT, "publish_options must be a dict")
        answer = caller.role.authorize(topic, "publish", caller)
        allowed = bool(answer and answer[0])
        if not allowed or (topic.startswith("wamp.") and not caller.trusted):
            raise MetaError(E.NOT_AUTHORIZED, f"session is not authorized to publish to topic '{topic}'")
        if caller.testaments is None:
            caller.testaments = {"detached": [], "destroyed": []}
        if len(caller.testaments[scope]) >= MAX_TESTAMENTS:
            raise MetaError(E.INVALID_ARGUMENT, f"at most {MAX_TESTAMENTS} testaments per scope")
        caller.testaments[scope].append((topic, args, kwargs, publish_options or {}))
        return _NO_RESULT

    def p_session__flush_testaments(self, caller, scope="destroyed"):
        if scope not in SCOPES:
            raise MetaError(E.INVALID_ARGUMENT, f"scope must be one of {SCOPES}, not {short_repr(scope)}")
        if caller is None or not caller.testaments:
            return 0
        n = len(caller.testaments[scope])
        caller.testaments[scope] = []
        return n

    # -- wamp.subscription.* -------------------------------------------------------------

    def p_subscription__list(self, caller):
        out = {"exact": [], "prefix": [], "wildcard": []}
        for sub in self.realm.broker.subscriptions():
            if sub.subscribers or sub.persistent:
                out[sub.match].append(sub.id)
        return out

    def p_subscription__lookup(self, caller, topic, options=None):
        sub = self.realm.broker.lookup(topic, (options or {}).get("match", "exact"))
        return sub.id if sub is not None else None

    def p_subscription__match(self, caller, topic):
        ids = [s.id for s in self.realm.broker.match(topic)]
        return ids or None

    def p_subscription__get(self, caller, subscription_id):
        return self._subscription(subscription_id).details()

    def p_subscription__list_subscribers(self, caller, subscription_id):
        return [s.session_id for s in self._subscription(subscription_id).subscribers]

    def p_subscription__count_subscribers(self, caller, subscription_id):
        return len(self._subscription(subscription_id).subscribers)

    def p_subscription__remove_subscriber(self, caller, subscription_id, subscriber_id, reason=None):
        sub = self._subscription(subscription_id)
        session = self.realm.sessions.get(subscriber_id)
        if session is None or session not in sub.subscribers:
            raise MetaError(E.NO_SUCH_SESSION, f"session {subscriber_id} is not subscribed to {subscription_id}")
        self.realm.broker.remove_subscriber(sub, session, reason)
        return _NO_RESULT

    def p_subscription__get_events(self, caller, subscription_id, limit=None, reverse=False, topic=None,
                                   from_time=None, after_time=None, before_time=None, until_time=None,
                                   from_publication=None, after_publication=None, before_publication=None,
                                   until_publication=None):
        sub = self._subscription(subscription_id)
        if limit is not None and (type(limit) is not int or limit < 1):
            raise MetaError(E.INVALID_ARGUMENT, "limit must be a positive integer")
        try:
            return self.realm.broker.get_events(
                sub, caller, limit, bool(reverse), topic, from_time=from_time, after_time=after_time,
                before_time=before_time, until_time=until_time, from_publication=from_publication,
                after_publication=after_publication, before_publication=before_publication,
                until_publication=until_publication)
        except ValueError as e:
            raise MetaError(E.INVALID_ARGUMENT, f"invalid time bound: {e}")

    # -- wamp.registration.* -------------------------------------------------------------

    def p_registration__list(self, caller):
        out = {"exact": [], "prefix": [], "wildcard": []}
        for reg in self.realm.dealer.registrations():
            if not reg.uri.startswith("wamp."):
                out[reg.match].append(reg.id)
        return out

    def p_registration__lookup(self, caller, procedure, options=None):
        reg = self.realm.dealer.lookup(procedure, (options or {}).get("match", "exact"))
        return reg.id if reg is not None and not reg.uri.startswith("wamp.") else None

    def p_registration__match(self, caller, procedure):
        reg = self.realm.dealer.match(procedure)
        return reg.id if reg is not None and not reg.uri.startswith("wamp.") else None

    def p_registration__get(self, caller, registration_id):
        return self._registration(registration_id).details()

    def p_registration__list_callees(self, caller, registration_id):
        return [s.session_id for s in self._registration(registration_id).callees]

    def p_registration__count_callees(self, caller, registration_id):
        return len(self._registration(registration_id).callees)

    def p_registration__remove_callee(self, caller, registration_id, callee_id, reason=None):
        reg = self._registration(registration_id)
        session = self.realm.sessions.get(callee_id)
        if session is None or session not in reg.callees:
            raise MetaError(E.NO_SUCH_SESSION, f"session {callee_id} is not a callee of {registration_id}")
        self.realm.dealer.remove_callee(reg, session, reason)
        return _NO_RESULT

    # -- wampfabric.rlink.* (router links: docs/clustering.md "Multi-hop") ----------------------

    def rlink_id(self, caller):
        """This realm's router ID for router links."""
        return {"router": self.realm.linkstate.id}

    @staticmethod
    def _leg(caller) -> None:
        if caller is None or not caller.rlink:
            raise MetaError(E.NOT_AUTHORIZED, "only router link legs may use the link state")

    def rlink_state_get(self, caller):
        self._leg(caller)
        state = self.realm.linkstate
        return {"router": state.id, "records": state.get()}

    def rlink_state_put(self, caller, records, own=False):
        self._leg(caller)
        try:
            newer = self.realm.linkstate.put(records, caller.session_id if own is True else None)
        except LinkStateError as e:
            raise MetaError(E.INVALID_ARGUMENT, str(e)) from None
        if newer:
            self.realm.broker.publish_to_legs(STATE_TOPIC, [newer])
        return len(newer)


_NO_RESULT = object()
