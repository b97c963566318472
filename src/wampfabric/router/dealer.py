"""The dealer: registrations and call routing (spec: basic/remote_procedure_call,
advanced/rpc_*).

A call in flight is one ``InvocationRequest``, indexed on the caller by the
CALL request ID and on the callee by the INVOCATION request ID, so YIELD,
ERROR, CANCEL and either side leaving are each one dict lookup.

The payload tail of a forwarded message follows protocol/payload.py: a transparent
payload goes through its ``passthru_tail``; the Arguments/ArgumentsKw case is its
``args_tail`` unrolled inline on these per-message paths, because a function call there
would cost about as much again as building the tail (tests/router/test_payload_forwarding.py
checks that every forwarded tail is what ``payload_tail`` writes).
"""

from __future__ import annotations

import logging
import random
import time

from ..common.timefmt import utcstr
from ..protocol import errors as E
from ..protocol.errors import SerializationError
from ..protocol.codes import CALL, CANCEL, ERROR, INTERRUPT, INVOCATION, REGISTER, RESULT, UNREGISTER, UNREGISTERED
from ..protocol.messages import Registered, Unregistered
from ..protocol.payload import passthru_tail
from .broker import log_unencodable
from .ids import global_id
from .linkstate import RLINK_PREFIX
from .urimap import EXACT, MATCH_POLICIES, UriCache, UriMap

log = logging.getLogger("wampfabric.router.dealer")

INVOKE_POLICIES = ("single", "first", "last", "roundrobin", "random")
COMPLETED_PROGRESSIVE_KEPT = 64  # recent progressive call IDs whose late continuations are discarded
MAX_CACHED_ROUTES = 4096  # procedures whose best registration the dealer remembers (see Dealer._routes)
MAX_CACHED_ROUTE_BYTES = 2 * 1024 * 1024  # ... and the bytes of their URIs it keeps alive
# realm option defaults: outstanding calls per caller session and invocations per callee session
# (a callee that falls behind must not make the router hold calls without limit); over a bound
# the CALL gets an ERROR with Crossbar.io's URI for a callee's concurrency limit
from ..config.defaults import DEFAULT_CALL_TIMEOUT, MAX_PENDING_CALLS, MAX_PENDING_INVOCATIONS  # noqa: E402
from ..protocol.crossbar_errors import MAX_CONCURRENCY_REACHED  # noqa: E402 (beside the bounds it reports)
# namespaces of the router (wamp.*: meta API) and of the node (crossbar.*): a CALL there reaches a
# pattern registration only if the pattern itself lies inside it (which, for wamp.*, only trusted
# sessions can register), so a registration of prefix "" or "wamp" cannot answer other sessions'
# calls to unimplemented wamp.* or crossbar.* procedures
RESERVED_PREFIXES = ("wamp.", "crossbar.")


def poaches_reserved(procedure: str, pattern: str) -> bool:
    """Whether a pattern registration ``pattern`` covers ``procedure`` only by reaching into a
    reserved namespace from outside."""
    for prefix in RESERVED_PREFIXES:
        if procedure.startswith(prefix):
            return not pattern.startswith(prefix)
    return False


class Registration:
    __slots__ = ("id", "uri", "match", "invoke", "callees", "created", "_rr", "disclose_caller", "transit")

    def __init__(self, reg_id: int, uri: str, match: str, invoke: str):
        self.id = reg_id
        self.uri = uri
        self.match = match
        self.invoke = invoke
        self.callees: list = []
        self.created = time.time()
        self._rr = 0
        self.disclose_caller = False  # REGISTER.Options.disclose_caller (advanced/rpc_caller_identification)
        # a router link's procedure for calls in transit (rlink/): legs call legs through it
        self.transit = uri.startswith(RLINK_PREFIX)

    def details(self) -> dict:
        return {"id": self.id, "created": utcstr(self.created, whole_ms=True), "uri": self.uri, "match": self.match,
                "invoke": self.invoke}

    def pick(self):
        callees = self.callees
        invoke = self.invoke
        if invoke == "single" or invoke == "first":
            return callees[0]
        if invoke == "last":
            return callees[-1]
        if invoke == "roundrobin":
            i = self._rr % len(callees)
            self._rr = i + 1
            return callees[i]
        return random.choice(callees)

    def pick_not_leg(self):
        """After ``pick()`` chose an rlink leg for a call that came over a router link (rlink/):
        the callee by the same policy among the callees that are not legs (a leg would send the
        call back over a link); roundrobin goes on from the leg to the next callee that is not
        one.  None when there is none."""
        callees = self.callees
        if self.invoke == "roundrobin":
            n = len(callees)
            for k in range(n):
                i = (self._rr + k) % n
                if not callees[i].rlink:
                    self._rr = i + 1
                    return callees[i]
            return None
        callees = [c for c in callees if not c.rlink]
        if not callees:
            return None
        invoke = self.invoke
        if invoke == "single" or invoke == "first":
            return callees[0]
        if invoke == "last":
            return callees[-1]
        return random.choice(callees)


class InvocationRequest:
    __slots__ = ("id", "caller", "call_request", "callee", "registration", "receive_progress", "timer", "canceled",
                 "progressive_in", "details", "timeout")

    def __init__(self, inv_id, caller, call_request, callee, registration, receive_progress):
        self.id = inv_id
        self.caller = caller
        self.call_request = call_request
        self.callee = callee
        self.registration = registration
        self.receive_progress = receive_progress
        self.timer = None
        self.canceled = False
        self.progressive_in = False  # the caller is still streaming progressive CALLs
        self.details = None  # INVOCATION details of a progressive call invocation (frozen for all chunks)
        self.timeout = 0.0  # seconds; re-armed by each progressive result


class Dealer:
    FEATURES = {
        "caller_identification": True,
        "pattern_based_registration": True,
        "shared_registration": True,
        "progressive_call_results": True,
        "call_canceling": True,
        "call_timeout": True,
        "payload_passthru_mode": True,
        "progressive_call_invocations": True,
        "registration_revocation": True,
        "registration_meta_api": True,
        "session_meta_api": True,
        "testament_meta_api": True,
    }

    def __init__(self, realm):
        self.realm = realm
        self._regs = UriMap()
        # procedure -> the registration its CALLs go to.  UriMap.best is a dict lookup per
        # distinct prefix length and a trie walk for wildcards (costly with many pattern
        # registrations, bench rpc-patterns); emptied whenever a registration is
        # created or removed, and when it is full.
        self._route_cache = UriCache(MAX_CACHED_ROUTES, MAX_CACHED_ROUTE_BYTES)
        self._routes: dict[str, Registration] = self._route_cache.map
        self._by_id: dict[int, Registration] = {}
        self.stats = realm.stats
        options = realm.config.get("options") or {}
        # realm option: the spec's rule (progressive results only for callees with call canceling)
        self.strict_progressive = bool(options.get("strict_progressive_call_results", False))
        self.max_pending_calls = options.get("max_pending_calls", MAX_PENDING_CALLS)
        self.max_pending_invocations = options.get("max_pending_invocations", MAX_PENDING_INVOCATIONS)
        # milliseconds, for CALLs without a timeout of their own (0: none)
        self.default_call_timeout = options.get("default_call_timeout", DEFAULT_CALL_TIMEOUT)

    # -- register / unregister -----------------------------------------------

    def register(self, session, msg) -> None:
        proc = msg.procedure
        options = msg.options
        match = options.get("match", EXACT)
        invoke = options.get("invoke", "single")
        if match not in MATCH_POLICIES:
            session.send_error(REGISTER, msg.request, E.INVALID_ARGUMENT, [f"invalid match policy {match!r}"])
            return
        if invoke not in INVOKE_POLICIES:
            session.send_error(REGISTER, msg.request, E.INVALID_ARGUMENT, [f"invalid invoke policy {invoke!r}"])
            return
        if not self.realm.pattern_ok(proc, match):
            session.send_error(
                REGISTER, msg.request, E.INVALID_URI, [f"register for invalid procedure URI {self.realm.quote_uri(proc)}"]
            )
            return
        if proc.startswith("wamp.") and not session.trusted:
            session.send_error(
                REGISTER, msg.request, E.INVALID_URI,
                [f"register for restricted procedure URI '{proc}' (wamp.* is reserved for the router)"],
            )
            return
        if proc.startswith(RLINK_PREFIX) and not (session.rlink or session.trusted):
            session.send_error(
                REGISTER, msg.request, E.NOT_AUTHORIZED,
                [f"register for restricted procedure URI '{proc}' ({RLINK_PREFIX}* is reserved for router links)"],
            )
            return
        answer = session.permission(proc, match, "register", self.register, msg)
        if answer is None:  # a dynamic authorizer decides first; this message is processed again then
            return
        allowed, _ = answer
        if not allowed:
            session.send_error(
                REGISTER, msg.request, E.NOT_AUTHORIZED,
                [f"session is not authorized to register procedure '{proc}'"],
            )
            return
        reg = self._regs.get(proc, match)
        if reg is not None:
            if options.get("force_reregister") and reg.invoke == invoke and reg.callees:
                # spec rpc_shared_registration: kick the current callees out
                for old in list(reg.callees):
                    self.remove_callee(reg, old, "force_reregister")
                reg = None
            elif invoke == "single" or reg.invoke == "single" or reg.invoke != invoke:
                session.send_error(
                    REGISTER, msg.request, E.PROCEDURE_ALREADY_EXISTS,
                    [f"register for already registered procedure '{proc}'"],
                )
                return
            elif session in reg.callees:
                session.send_error(
                    REGISTER, msg.request, E.PROCEDURE_ALREADY_EXISTS,
                    [f"session has already registered procedure '{proc}'"],
                )
                return
        created = reg is None
        if created:
            reg = Registration(global_id(), proc, match, invoke)
            self._regs.set(proc, match, reg)
            self._routes.clear()
            self._by_id[reg.id] = reg
        reg.callees.append(session)
        if options.get("disclose_caller"):
            reg.disclose_caller = True
        session.registrations[reg.id] = reg
        self.stats["register"] += 1
        session.send(Registered(msg.request, reg.id).marshal())
        meta = self.realm.broker.publish_meta
        if created and self.realm.broker.meta_wanted("wamp.registration.on_create"):
            meta("wamp.registration.on_create", [session.session_id, reg.details()])
        meta("wamp.registration.on_register", [session.session_id, reg.id])

    def unregister(self, session, msg) -> None:
        reg = session.registrations.pop(msg.registration, None)
        if reg is None:
            session.send_error(
                UNREGISTER, msg.request, E.NO_SUCH_REGISTRATION,
                [f"session has no registration with ID {msg.registration}"],
            )
            return
        session.send(Unregistered(msg.request).marshal())
        self._remove_callee(reg, session)

    def _remove_callee(self, reg: Registration, session) -> None:
        try:
            reg.callees.remove(session)
        except ValueError:
            return
        meta = self.realm.broker.publish_meta
        meta("wamp.registration.on_unregister", [session.session_id, reg.id])
        if not reg.callees:
            self._regs.pop(reg.uri, reg.match)
            self._routes.clear()
            self._by_id.pop(reg.id, None)
            meta("wamp.registration.on_delete", [session.session_id, reg.id])

    def remove_callee(self, reg: Registration, session, reason: str | None = None) -> None:
        """Revoke a callee's registration (advanced/rpc_registration_revocation)."""
        session.registrations.pop(reg.id, None)
        if session.supports("callee", "registration_revocation"):
            details = {"registration": reg.id}
            if reason:
                details["reason"] = reason
            session.send([UNREGISTERED, 0, details])
        self._remove_callee(reg, session)

    # -- introspection (meta API) ------------------------------------------------

    def registration(self, reg_id: int) -> Registration | None:
        return self._by_id.get(reg_id)

    def lookup(self, procedure: str, match: str = EXACT) -> Registration | None:
        return self._regs.get(procedure, match)

    def match(self, procedure: str) -> Registration | None:
        """The registration a CALL of ``procedure`` goes to (wamp.registration.match)."""
        reg = self._regs.best(procedure)
        if reg is not None and reg.match != EXACT and poaches_reserved(procedure, reg.uri):
            return None
        return reg

    def registrations(self):
        return self._by_id.values()

    # -- call -------------------------------------------------------------------

    def call(self, session, msg) -> None:
        proc = msg.procedure
        request = msg.request
        if not self.realm.uri_ok(proc):
            session.send_error(CALL, request, E.INVALID_URI, [f"call with invalid procedure URI {self.realm.quote_uri(proc)}"])
            return
        inv = session.pending_calls.get(request)
        if inv is not None:
            self._continue_progressive(session, inv, msg)
            return
        done = session.progressive_done
        if done and request in done:
            return  # advanced/rpc_progressive_call_invocations: continuation of a completed call: discard
        if len(session.pending_calls) >= self.max_pending_calls:
            session.send_error(CALL, request, MAX_CONCURRENCY_REACHED,
                               [f"too many outstanding calls of this session (max_pending_calls "
                                f"{self.max_pending_calls})"])
            return
        answer = session.role.authorize(proc, "call", session)
        if answer is None:
            session.defer_for_authorization(self.call, msg, proc, "call")
            return
        allowed, disclose = answer
        if not allowed:
            session.send_error(
                CALL, request, E.NOT_AUTHORIZED, [f"session is not authorized to call procedure '{proc}'"]
            )
            return
        reg = self._routes.get(proc)
        if reg is None:
            reg = self._regs.best(proc)
            if reg is None or (reg.match != EXACT and poaches_reserved(proc, reg.uri)):
                session.send_error(CALL, request, E.NO_SUCH_PROCEDURE, [f"no callee registered for procedure <{proc}>"])
                return
            self._route_cache.put(proc, reg, proc)
        callee = reg.pick()
        if callee.rlink and session.rlink and not reg.transit:
            # a call that came over a router link goes to a callee of this router, never on over
            # another link (a shared registration has the other routers' legs among its callees);
            # only the links' own procedures (wampfabric.rlink.call.<router>) pass calls on
            callee = reg.pick_not_leg()
            if callee is None:
                session.send_error(CALL, request, E.NO_SUCH_PROCEDURE,
                                   [f"no callee on this router for procedure <{proc}> (calls go one hop)"])
                return
        if len(callee.pending_invocations) >= self.max_pending_invocations:
            # a shared registration: another callee may have room (as Crossbar.io's concurrency)
            limit = self.max_pending_invocations
            callee = next((c for c in reg.callees
                           if len(c.pending_invocations) < limit and not (c.rlink and session.rlink)), None)
            if callee is None:
                session.send_error(CALL, request, MAX_CONCURRENCY_REACHED,
                                   [f"the callee of procedure <{proc}> has too many outstanding invocations "
                                    f"(max_pending_invocations {limit})"])
                return
        self.stats["call"] += 1
        options = msg.options
        details = {}
        receive_progress = False
        progressive_in = False
        if options:
            if options.get("disclose_me"):
                disclose = True
            if "forward_for" in options and session.rlink:
                # router-to-router links (rlink/); from any other session ignored (it would claim
                # somebody else's identity)
                details["forward_for"] = options["forward_for"]
            if options.get("receive_progress") and (
                    not self.strict_progressive
                    or (callee.supports("callee", "progressive_call_results")
                        and callee.supports("callee", "call_canceling"))):
                # The spec (rpc_progressive_call_results) disregards a callee's progressive support
                # without call canceling; autobahn-js and wampy callees announce none, so by default
                # (as Crossbar.io) the caller's wish is forwarded (a callee without the feature
                # ignores it, spec) and progressive YIELDs are passed on.  No backlog builds when
                # the caller goes: its later YIELDs find no pending invocation and are dropped.
                receive_progress = True
                details["receive_progress"] = True
            timeout = options.get("timeout")
            if options.get("progress"):
                # advanced/rpc_progressive_call_invocations
                if not session.supports("caller", "progressive_call_invocations"):
                    session.protocol_violation("CALL with progress=true from a caller that did not announce "
                                               "progressive_call_invocations")
                    return
                if not (callee.supports("callee", "progressive_call_invocations")
                        and callee.supports("callee", "call_canceling")):
                    session.send_error(CALL, request, E.FEATURE_NOT_SUPPORTED,
                                       ["callee does not support progressive call invocations"])
                    return
                progressive_in = True
                details["progress"] = True
        else:
            timeout = None
        if not timeout:
            timeout = self.default_call_timeout  # realm option; 0: none
        if msg.payload is not None and options.get("ppt_scheme"):
            if not session.supports("caller", "payload_passthru_mode"):
                session.protocol_violation("CALL with ppt_scheme from a caller that did not announce payload_passthru_mode")
                return
            if not callee.supports("callee", "payload_passthru_mode"):
                session.send_error(CALL, request, E.FEATURE_NOT_SUPPORTED,
                                   ["callee does not support payload passthru mode"])
                return
        # (an in-process rlink leg is trusted, but it passes the caller on to another router: it
        # learns the caller only when the realm's rules disclose it)
        if disclose or reg.disclose_caller or (callee.trusted and not callee.rlink):
            details["caller"] = session.session_id
            details["caller_authid"] = session.authid
            details["caller_authrole"] = session.authrole
        if reg.match != EXACT:
            details["procedure"] = proc
        callee._inv_seq += 1
        inv_id = callee._inv_seq
        inv = InvocationRequest(inv_id, session, request, callee, reg, receive_progress)
        if progressive_in:
            inv.progressive_in = True
            inv.details = {k: v for k, v in details.items() if k != "progress"}
        callee.pending_invocations[inv_id] = inv
        session.pending_calls[request] = inv
        if msg.payload is not None:
            out = [INVOCATION, inv_id, reg.id, details, *passthru_tail(msg.payload, options, details)]
        elif msg.kwargs:
            out = [INVOCATION, inv_id, reg.id, details, msg.args or [], msg.kwargs]
        elif msg.args:
            out = [INVOCATION, inv_id, reg.id, details, msg.args]
        else:
            out = [INVOCATION, inv_id, reg.id, details]
        try:
            callee.send(out)
        except SerializationError as e:
            self._finish(inv)
            self._unencodable(inv, "call", callee, e)
            return
        self.stats["invocation"] += 1
        if timeout:
            if type(timeout) is int and timeout > 0:
                inv.timeout = timeout / 1000.0
                inv.timer = self.realm.call_later(inv.timeout, self._timeout, inv)

    def _continue_progressive(self, session, inv: InvocationRequest, msg) -> None:
        """A further CALL of a progressive call invocation: one more INVOCATION to the same callee."""
        if not inv.progressive_in:
            session.protocol_violation(f"CALL with request ID {msg.request} already in flight")
            return
        progress = bool(msg.options.get("progress"))
        inv.progressive_in = progress
        # "Freezing of Options": every chunk carries the details of the initiating CALL
        details = dict(inv.details, progress=True) if progress else dict(inv.details)
        if msg.payload is not None:
            out = [INVOCATION, inv.id, inv.registration.id, details,
                   *passthru_tail(msg.payload, msg.options, details)]
        elif msg.kwargs:
            out = [INVOCATION, inv.id, inv.registration.id, details, msg.args or [], msg.kwargs]
        elif msg.args:
            out = [INVOCATION, inv.id, inv.registration.id, details, msg.args]
        else:
            out = [INVOCATION, inv.id, inv.registration.id, details]
        try:
            inv.callee.send(out)
        except SerializationError as e:
            self._finish(inv)
            self._unencodable(inv, "call", inv.callee, e)
            self._interrupt(inv, E.CANCELED)
            return
        self.stats["invocation"] += 1

    def _timeout(self, inv: InvocationRequest) -> None:
        # advanced/rpc_call_timeout: the caller gets wamp.error.timeout, the callee an INTERRUPT
        # (implicitly killnowait)
        inv.timer = None
        if inv.callee.pending_invocations.get(inv.id) is not inv:
            return
        self._finish(inv)
        inv.caller.send_error(CALL, inv.call_request, E.TIMEOUT, ["call timed out"])
        self._interrupt(inv, E.TIMEOUT)

    @staticmethod
    def _interrupt(inv: InvocationRequest, reason: str) -> None:
        """INTERRUPT (mode killnowait) to a callee that announced call canceling."""
        if inv.callee.supports("callee", "call_canceling"):
            inv.callee.send([INTERRUPT, inv.id, {"mode": "killnowait", "reason": reason}])

    @staticmethod
    def _unencodable(inv: InvocationRequest, what: str, receiver, e: SerializationError) -> None:
        """A payload one side sent cannot be encoded in the other side's serializer (e.g. a
        MessagePack extension type for JSON, an integer beyond 64 bits for JSON or MessagePack):
        the caller gets ERROR wamp.error.invalid_argument (the call has failed); nobody's session
        is closed."""
        if what == "call":
            text = f"the call's payload cannot be encoded for the callee ({receiver.serializer.NAME}): {e}"
        else:
            text = f"the call result cannot be encoded in the caller's serializer ({receiver.serializer.NAME}): {e}"
        log_unencodable(f"{what} of procedure '{inv.registration.uri}'", receiver.serializer, e)
        inv.caller.send_error(CALL, inv.call_request, E.INVALID_ARGUMENT, [text])

    def _finish(self, inv: InvocationRequest) -> None:
        inv.callee.pending_invocations.pop(inv.id, None)
        inv.caller.pending_calls.pop(inv.call_request, None)
        if inv.timer is not None:
            inv.timer.cancel()
            inv.timer = None
        if inv.details is not None:  # a progressive call invocation: late continuations are discarded
            done = inv.caller.progressive_done
            if done is None:
                done = inv.caller.progressive_done = {}
            done[inv.call_request] = None
            if len(done) > COMPLETED_PROGRESSIVE_KEPT:
                del done[next(iter(done))]

    def cancel(self, session, msg) -> None:
        inv = session.pending_calls.get(msg.request)
        if inv is None:
            return  # the call already finished: nothing to cancel (spec: ignore)
        mode = msg.options.get("mode", "killnowait")
        if mode not in ("skip", "kill", "killnowait"):
            session.send_error(CANCEL, msg.request, E.INVALID_ARGUMENT, [f"invalid cancel mode {mode!r}"])
            return
        callee_can = inv.callee.supports("callee", "call_canceling")
        if mode == "kill" and callee_can:
            # wait for the callee's ERROR, which is then passed to the caller
            inv.canceled = True
            inv.callee.send([INTERRUPT, inv.id, {"mode": "kill"}])
            return
        self._finish(inv)
        session.send_error(CALL, msg.request, E.CANCELED, ["call canceled"])
        if mode != "skip" and callee_can:
            inv.callee.send([INTERRUPT, inv.id, {"mode": mode}])

    def yield_(self, session, msg) -> None:
        inv = session.pending_invocations.get(msg.request)
        if inv is None:
            return  # late YIELD for a canceled/timed-out call: ignored (spec)
        options = msg.options
        progress = options.get("progress", False) if options else False
        details = {}
        if progress:
            if not inv.receive_progress or inv.canceled:
                return  # the caller did not ask for progressive results, or canceled (mode kill): drop
            details["progress"] = True
            if inv.timer is not None:
                # rpc_progressive_call_results "Timeouts": the timeout runs between results
                inv.timer.cancel()
                inv.timer = self.realm.call_later(inv.timeout, self._timeout, inv)
        else:
            self._finish(inv)
        if msg.payload is not None:
            out = [RESULT, inv.call_request, details, *passthru_tail(msg.payload, options, details)]
        elif msg.kwargs:
            out = [RESULT, inv.call_request, details, msg.args or [], msg.kwargs]
        elif msg.args:
            out = [RESULT, inv.call_request, details, msg.args]
        else:
            out = [RESULT, inv.call_request, details]
        try:
            inv.caller.send(out)
        except SerializationError as e:
            if progress:  # the stream is broken: the call ends here
                self._finish(inv)
                self._interrupt(inv, E.CANCELED)
            self._unencodable(inv, "result", inv.caller, e)
            return
        self.stats["yield"] += 1

    def invocation_error(self, session, msg) -> None:
        inv = session.pending_invocations.get(msg.request)
        if inv is None:
            return
        self._finish(inv)
        error = msg.error
        if inv.canceled and error != E.CANCELED:
            # CANCEL mode kill: the caller asked to cancel, so it learns that the call was
            # canceled, whatever the callee answered the INTERRUPT with (autobahn-python answers
            # wamp.error.runtime_error); Crossbar.io does the same. A callee's own
            # wamp.error.canceled is passed on with its payload.
            inv.caller.send_error(CALL, inv.call_request, E.CANCELED, ["call canceled"])
            self.stats["error"] += 1
            return
        if msg.payload is not None:
            details = {}
            out = [ERROR, CALL, inv.call_request, details, error, *passthru_tail(msg.payload, msg.details, details)]
        elif msg.kwargs:
            out = [ERROR, CALL, inv.call_request, msg.details, error, msg.args or [], msg.kwargs]
        elif msg.args:
            out = [ERROR, CALL, inv.call_request, msg.details, error, msg.args]
        else:
            out = [ERROR, CALL, inv.call_request, msg.details, error]
        try:
            inv.caller.send(out)
        except SerializationError as e:
            # the caller still learns the callee's error URI, without the payload it cannot take
            log_unencodable(f"error of procedure '{inv.registration.uri}' (sent without its payload)",
                            inv.caller.serializer, e)
            inv.caller.send_error(CALL, inv.call_request, error,
                                  [f"the callee's error payload cannot be encoded in {inv.caller.serializer.NAME}: {e}"])
        self.stats["error"] += 1

    # -- sessions leaving -------------------------------------------------------

    def detach(self, session) -> None:
        # calls this session was serving: the callers get wamp.error.canceled
        for inv in list(session.pending_invocations.values()):
            self._finish(inv)
            inv.caller.send_error(CALL, inv.call_request, E.CANCELED, ["callee disconnected from in-flight request"])
        # calls this session made: tell callees that can cancel
        for inv in list(session.pending_calls.values()):
            self._finish(inv)
            self._interrupt(inv, E.CANCELED)
        regs = list(session.registrations.values())
        session.registrations.clear()
        for reg in regs:
            self._remove_callee(reg, session)

    def registration_count(self) -> int:
        return len(self._by_id)
