"""The master's use of its global database (``.db-controller``, master/schema.py).

Every method is one transaction; what must change together (an mrealm and its owner's roles, an
activation and its user) changes in one. The records are master/schema.py's; ``to_api`` gives the
shapes the domain API answers with (Crossbar.io's: oids as strings, ``created`` in microseconds).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from .schema import (ROLE_ADMIN, ROLE_GUEST, ROLE_OWNER, ROLE_USER, ActivationToken, GlobalSchema,
                     ManagementRealm, Node, User, UserMrealmRole, open_global_db)

ALL_ROLES = [ROLE_OWNER, ROLE_ADMIN, ROLE_USER, ROLE_GUEST]


def _oid(value) -> uuid.UUID | None:
    """A UUID from a UUID or its string; None when it is neither."""
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            return None
    return None


def to_api(record) -> dict:
    """A record as the domain API returns it: UUIDs as strings, ns timestamps of mrealms and users
    as microseconds (Crossbar.io's ``created`` / ``registered``)."""
    out = {}
    for k, v in record.marshal().items():
        if isinstance(v, uuid.UUID):
            v = str(v)
        elif k in ("created", "registered") and isinstance(v, int):
            v = v // 1000
        out[k] = v
    return out



class TooManyActivations(Exception):
    """No new activation now: too many are pending (on the master, or for the email)."""

class MasterStore:
    PENDING = ActivationToken.PENDING
    ACTIVE = ActivationToken.ACTIVE

    def __init__(self, db):
        self.db = db
        self.schema = GlobalSchema.attach(db)
        self.path = Path(db.path)

    @classmethod
    def open(cls, cbdir, **kw) -> "MasterStore":
        return cls(open_global_db(cbdir, **kw))

    def close(self) -> None:
        self.db.close()

    # -- users -------------------------------------------------------------------------------

    def user_by_email(self, email: str):
        with self.db.begin() as txn:
            return self.schema.idx_users_by_email.get_record(txn, email)

    def _ensure_user(self, txn, email: str):
        s = self.schema
        user = s.idx_users_by_email.get_record(txn, email)
        if user is None:
            user = User(oid=uuid.uuid4(), email=email, registered=time.time_ns())
            s.users.insert(txn, user.oid, user)
        return user

    def ensure_user(self, email: str):
        with self.db.begin(write=True) as txn:
            return self._ensure_user(txn, email)

    def user(self, oid):
        oid = _oid(oid)
        if oid is None:
            return None
        with self.db.begin() as txn:
            return self.schema.users.get(txn, oid)

    # -- roles ---------------------------------------------------------------------------------

    def roles(self, user_oid, mrealm_oid) -> list[int]:
        with self.db.begin() as txn:
            r = self.schema.users_mrealm_roles.get(txn, (user_oid, mrealm_oid))
        return list(r.roles or []) if r is not None else []

    def set_roles(self, user_oid, mrealm_oid, roles: list[int]) -> None:
        with self.db.begin(write=True) as txn:
            if roles:
                self.schema.users_mrealm_roles.put(txn, (user_oid, mrealm_oid), UserMrealmRole(roles=sorted(roles)))
            else:
                self.schema.users_mrealm_roles.delete(txn, (user_oid, mrealm_oid))

    def mrealms_of(self, user_oid) -> set:
        """The oids of the mrealms the user has any role on."""
        with self.db.begin() as txn:
            return {key[1] for key, r in self.schema.users_mrealm_roles.select(txn, prefix=(user_oid,),
                                                                              return_keys=True) if r.roles}

    # -- mrealms ---------------------------------------------------------------------------------

    def mrealms(self) -> list:
        with self.db.begin() as txn:
            return list(self.schema.mrealms.select(txn))

    def mrealm(self, oid):
        oid = _oid(oid)
        if oid is None:
            return None
        with self.db.begin() as txn:
            return self.schema.mrealms.get(txn, oid)

    def mrealm_by_name(self, name: str):
        if not isinstance(name, str):
            return None
        with self.db.begin() as txn:
            return self.schema.idx_mrealms_by_name.get_record(txn, name)

    def create_mrealm(self, name: str, owner, label=None, description=None, tags=None, router_worker=None):
        """A new mrealm owned by ``owner`` (a user), who gets every role on it (one transaction)."""
        mrealm = ManagementRealm(oid=uuid.uuid4(), name=name, created=time.time_ns(), owner=owner.oid,
                                 label=label, description=description, tags=tags,
                                 cf_router_worker=router_worker)
        with self.db.begin(write=True) as txn:
            self.schema.mrealms.insert(txn, mrealm.oid, mrealm)
            self.schema.users_mrealm_roles.put(txn, (owner.oid, mrealm.oid), UserMrealmRole(roles=list(ALL_ROLES)))
        return mrealm

    def delete_mrealm(self, mrealm) -> list:
        """Remove the mrealm, its role assignments and its paired nodes (returned)."""
        s = self.schema
        with self.db.begin(write=True) as txn:
            nodes = [n for n in s.nodes.select(txn) if n.mrealm_oid == mrealm.oid]
            for n in nodes:
                s.nodes.delete(txn, n.oid)
            for key in list(s.users_mrealm_roles.select(txn, return_keys=True, return_values=False)):
                if key[1] == mrealm.oid:
                    s.users_mrealm_roles.delete(txn, key)
            s.mrealms.delete(txn, mrealm.oid)
        return nodes

    # -- nodes ---------------------------------------------------------------------------------

    def nodes(self, mrealm_oids=None) -> list:
        """All nodes, or those of the given mrealms (through the (mrealm oid, authid) index)."""
        s = self.schema
        with self.db.begin() as txn:
            if mrealm_oids is None:
                return list(s.nodes.select(txn))
            out = []
            for oid in mrealm_oids:
                for node_oid in s.idx_nodes_by_authid.select(txn, prefix=(oid,)):
                    node = s.nodes.get(txn, node_oid)
                    if node is not None:
                        out.append(node)
            return out

    def count_nodes(self, mrealm_oid) -> int:
        with self.db.begin() as txn:
            return self.schema.idx_nodes_by_authid.count(txn, prefix=(mrealm_oid,))

    def node(self, oid):
        oid = _oid(oid)
        if oid is None:
            return None
        with self.db.begin() as txn:
            return self.schema.nodes.get(txn, oid)

    def node_by_pubkey(self, pubkey: str):
        with self.db.begin() as txn:
            return self.schema.idx_nodes_by_pubkey.get_record(txn, pubkey)

    def node_by_name(self, mrealm_oid, authid: str):
        with self.db.begin() as txn:
            return self.schema.idx_nodes_by_authid.get_record(txn, (mrealm_oid, authid))

    def pair_node(self, pubkey: str, mrealm, authid: str, authextra, owner, cluster_ip=None):
        node = Node(oid=uuid.uuid4(), pubkey=pubkey, mrealm_oid=mrealm.oid, authid=authid,
                    authextra=authextra, owner_oid=owner.oid, cluster_ip=cluster_ip)
        with self.db.begin(write=True) as txn:
            self.schema.nodes.insert(txn, node.oid, node)  # DuplicateKey: pubkey or name taken
        return node

    def unpair_node(self, node) -> bool:
        with self.db.begin(write=True) as txn:
            return self.schema.nodes.delete(txn, node.oid)

    # -- activation tokens --------------------------------------------------------------------------

    def activation(self, email: str, pubkey: str):
        with self.db.begin() as txn:
            return self.schema.idx_activation_tokens_by_email_pubkey.get_record(txn, (email, pubkey))

    def add_activation(self, email: str, pubkey: str, code: str, registration: bool, *, ttl: float,
                       max_pending: int, max_pending_per_email: int):
        """A new pending activation, unless ``max_pending`` are pending already (or
        ``max_pending_per_email`` for this email): then ``TooManyActivations``. Pending activations
        older than ``ttl`` seconds are deleted on the way (nobody can use them any more)."""
        now = time.time_ns()
        token = ActivationToken(oid=uuid.uuid4(), atype=2 if registration else 1, status=self.PENDING,
                                created=now, code=code, email=email, pubkey=pubkey)
        with self.db.begin(write=True) as txn:
            table = self.schema.activation_tokens
            pending = for_email = 0
            expired = []
            for t in table.select(txn):
                if t.status != self.PENDING:
                    continue
                if now - t.created > ttl * 1e9:
                    expired.append(t.oid)
                    continue
                pending += 1
                for_email += t.email == email
            for oid in expired:
                table.delete(txn, oid)
            if pending >= max_pending:
                raise TooManyActivations(f"{pending} activations are pending on this master")
            if for_email >= max_pending_per_email:
                raise TooManyActivations(f"{for_email} activations are pending for this email")
            table.insert(txn, token.oid, token)
        return token

    def delete_activation(self, token) -> None:
        with self.db.begin(write=True) as txn:
            self.schema.activation_tokens.delete(txn, token.oid)

    def failed_activation(self, token) -> int:
        """Count a wrong code for a pending activation; returns the count so far."""
        with self.db.begin(write=True) as txn:
            t = self.schema.activation_tokens.get(txn, token.oid)
            if t is None:
                return 0
            t.extra["failed"] = tries = int(t.extra.get("failed", 0)) + 1
            self.schema.activation_tokens.put(txn, t.oid, t)
        return tries

    def activate(self, token):
        """The pending activation becomes active and its user exists (one transaction)."""
        with self.db.begin(write=True) as txn:
            t = self.schema.activation_tokens.get(txn, token.oid)
            t.status = self.ACTIVE
            t.completed = time.time_ns()
            self.schema.activation_tokens.put(txn, t.oid, t)
            return self._ensure_user(txn, t.email)

    # -- usage metering (master/metering.py) ------------------------------------------------------

    def last_usage_timestamp(self, mrealm_oid=None) -> int | None:
        """The end (ns) of the newest usage record (of one mrealm, or of any)."""
        with self.db.begin() as txn:
            if mrealm_oid is None:
                keys = self.schema.usage.select(txn, reverse=True, limit=1, return_keys=True, return_values=False)
                return next((k[0] for k in keys), None)
            oid = _oid(mrealm_oid)
            keys = self.schema.idx_usage_by_mrealm.select(txn, prefix=(oid,), reverse=True, limit=1,
                                                          return_keys=True, return_values=False)
            return next((k[1] for k in keys), None)

    def add_usage(self, records) -> list:
        """Insert usage records whose key is not taken yet (one transaction); returns those."""
        added = []
        with self.db.begin(write=True) as txn:
            for rec in records:
                key = (rec.timestamp, rec.mrealm_id)
                if not self.schema.usage.has(txn, key):
                    self.schema.usage.insert(txn, key, rec)
                    added.append(rec)
        return added

    def pending_usage(self, limit: int) -> list:
        """Up to ``limit`` usage records with status 1, oldest first."""
        with self.db.begin() as txn:
            keys = list(self.schema.idx_usage_pending.select(txn, limit=limit, return_keys=True,
                                                             return_values=False))
            return [r for r in (self.schema.usage.get(txn, k) for k in keys) if r is not None]

    def update_usage(self, key, **fields) -> None:
        """Set fields of the usage record ``(timestamp, mrealm oid)`` (one transaction)."""
        with self.db.begin(write=True) as txn:
            rec = self.schema.usage.get(txn, key)
            if rec is None:
                return
            for name, value in fields.items():
                setattr(rec, name, value)
            self.schema.usage.put(txn, key, rec)

    def usage(self, mrealm_oid=None, from_ns: int | None = None, until_ns: int | None = None,
              limit: int | None = None) -> list:
        """Usage records in time order, of one mrealm or all, whose interval ends in
        ``[from_ns, until_ns)``."""
        with self.db.begin() as txn:
            if mrealm_oid is None:
                return list(self.schema.usage.select(
                    txn, from_key=None if from_ns is None else (from_ns,),
                    to_key=None if until_ns is None else (until_ns,), limit=limit))
            oid = _oid(mrealm_oid)
            keys = list(self.schema.idx_usage_by_mrealm.select(
                txn, from_key=(oid, from_ns or 0), to_key=(oid, until_ns) if until_ns is not None else None,
                prefix=(oid,), limit=limit, return_keys=False, return_values=True))
            return [r for r in (self.schema.usage.get(txn, k) for k in keys) if r is not None]
