"""Application realms on the master: their definitions, roles, permissions and principals (issue 16).

A part of the mrealm controller (``master/mrealm.py`` ``PARTS``), on the mrealm database (tables in
master/schema.py). Procedures under ``crossbarfabriccenter.mrealm.arealm.``, names and arguments as
Crossbar.io 26.10's (``crossbar/master/arealm/arealm.py``); roles belong to the mrealm and are given
to arealms by association (Crossbar.io's). Events ``on_arealm_created`` / ``_deleted`` /
``_starting`` / ``_started`` / ``_stopping`` / ``_stopped``, ``on_principal_created`` /
``_deleted`` / ``_changed`` (a credential added or removed), ``on_role_created`` / ``_deleted``,
``on_permission_added`` / ``_removed``, ``on_arealm_role_added`` / ``_removed`` (one positional
argument: the object).

An arealm runs on a router worker group (``start_arealm(arealm, workergroup)``): the change engine
starts it as a realm on every router worker of the group, on every member node of the group's
cluster (master/routercluster.py). Differences from Crossbar.io: no web clusters (``webcluster_oid``
must be null); a principal carries its credentials itself (``authorized_keys`` for cryptosign,
``ticket``; given with ``add_principal`` or, as Crossbar.io's shell does it, with
``add_principal_credential``: one credential per method, its oid derived from the principal's and
the method, only ticket and cryptosign), and its role must be one of the arealm's; the
role name ``wampfabric.rlink`` is reserved (the role of the links between the router workers).

Who may: the mrealm's router roles (master/roles.py). A principal's ticket is never returned.
"""

from __future__ import annotations

import logging
import time
import uuid

from ..client.session import ApplicationError
from ..protocol.auth import is_pubkey_hex
from ..protocol.uri import check_uri
from .api import ALREADY_EXISTS, INVALID_ARGUMENT, NO_SUCH_OBJECT
from .routercluster import (CANNOT_START, CANNOT_STOP, NOT_STOPPED, RLINK_ROLE, RUNNING, STOPPED, MrealmPart,
                            check_element, check_keys, out, parse_oid, who)
from .schema import ApplicationRealm, ApplicationRealmRoleAssociation, Permission, Principal, Role

log = logging.getLogger("wampfabric.master.arealm")

PREFIX = "crossbarfabriccenter.mrealm.arealm."
MATCHES = ("exact", "prefix", "wildcard")
PERMISSION_FLAGS = ("allow_call", "allow_register", "allow_publish", "allow_subscribe", "disclose_caller",
                    "disclose_publisher", "cache")


class ApplicationRealmManager(MrealmPart):
    """See the module docstring."""

    PREFIX = PREFIX
    ATTR = "arealms"
    PROCEDURES = (
        "list_arealms", "get_arealm", "get_arealm_by_name", "create_arealm", "delete_arealm", "start_arealm",
        "stop_arealm", "stat_arealm",
        "list_principals", "get_principal", "get_principal_by_name", "add_principal", "remove_principal",
        "list_principal_credentials", "get_principal_credential", "add_principal_credential",
        "remove_principal_credential",
        "list_roles", "get_role", "get_role_by_name", "create_role", "delete_role",
        "list_role_permissions", "add_role_permission", "remove_role_permission", "get_role_permission",
        "get_role_permissions_by_uri",
        "list_arealm_roles", "add_arealm_role", "remove_arealm_role", "get_arealm_role",
    )

    # -- arealms ---------------------------------------------------------------------------------------

    def _arealm(self, txn, arealm_oid):
        oid = parse_oid(arealm_oid, "arealm_oid")
        a = self.schema.arealms.get(txn, oid)
        if a is None:
            raise ApplicationError(NO_SUCH_OBJECT, f"no application realm with oid {oid}")
        return a

    def list_arealms(self, return_names=None, details=None) -> list:
        with self.db.begin() as txn:
            if return_names:
                return sorted(a.name for a in self.schema.arealms.select(txn))
            return [str(k) for k in self.schema.arealms.select(txn, return_keys=True, return_values=False)]

    def get_arealm(self, arealm_oid, details=None) -> dict:
        with self.db.begin() as txn:
            return out(self._arealm(txn, arealm_oid))

    def get_arealm_by_name(self, arealm_name, details=None) -> dict:
        with self.db.begin() as txn:
            a = self.schema.idx_arealms_by_name.get_record(txn, arealm_name) if isinstance(arealm_name, str) else None
        if a is None:
            raise ApplicationError(NO_SUCH_OBJECT, f"no application realm named {arealm_name!r}")
        return out(a)

    def create_arealm(self, arealm, details=None) -> dict:
        check_keys(arealm, "arealm", ("name", "label", "description", "tags"))
        name = arealm.get("name")
        if not isinstance(name, str) or not check_uri(name, False) or name == "crossbar":
            raise ApplicationError(INVALID_ARGUMENT, f"arealm.name: invalid realm name {name!r} (a WAMP URI)")
        a = ApplicationRealm(oid=uuid.uuid4(), name=name, status=STOPPED, changed=time.time_ns(),
                             owner_oid=self.owner_oid(details), **check_element(arealm, "arealm"))
        with self.db.begin(write=True) as txn:
            if self.schema.idx_arealms_by_name.get(txn, name) is not None:
                raise ApplicationError(ALREADY_EXISTS, f"an application realm named '{name}' exists already")
            self.schema.arealms.insert(txn, a.oid, a)
        res = out(a)
        log.info("Application realm '%s' created in mrealm '%s' (oid %s)", name, self.name, a.oid)
        self.publish("on_arealm_created", res)
        return res

    def delete_arealm(self, arealm_oid, details=None) -> dict:
        s = self.schema
        with self.db.begin(write=True) as txn:
            a = self._arealm(txn, arealm_oid)
            if a.status != STOPPED:
                raise ApplicationError(NOT_STOPPED, f"application realm '{a.name}' is {a.status}: stop it first")
            for p in list(s.principals.select(txn)):
                if p.arealm_oid == a.oid:
                    s.principals.delete(txn, p.oid)
            for key in list(s.arealm_role_associations.select(txn, prefix=(a.oid,), return_keys=True,
                                                              return_values=False)):
                s.arealm_role_associations.delete(txn, key)
            s.arealms.delete(txn, a.oid)
        res = out(a)
        log.info("Application realm '%s' deleted from mrealm '%s'", a.name, self.name)
        self.publish("on_arealm_deleted", res)
        return res

    def start_arealm(self, arealm_oid, router_workergroup_oid, webcluster_oid=None, details=None) -> dict:
        wg_oid = parse_oid(router_workergroup_oid, "router_workergroup_oid")
        if webcluster_oid is not None:
            raise ApplicationError(NO_SUCH_OBJECT, f"no web cluster {webcluster_oid!r} (this master has no web "
                                                   f"clusters: clients connect to the router workers directly)")
        s = self.schema
        with self.db.begin(write=True) as txn:
            a = self._arealm(txn, arealm_oid)
            wg = s.router_workergroups.get(txn, wg_oid)
            if wg is None:
                raise ApplicationError(NO_SUCH_OBJECT, f"no router worker group with oid {wg_oid}")
            if a.status != STOPPED:
                raise ApplicationError(CANNOT_START, f"cannot start application realm '{a.name}': it is {a.status}")
            a.status, a.workergroup_oid, a.changed = RUNNING, wg_oid, time.time_ns()
            s.arealms.put(txn, a.oid, a)
        info = {"oid": str(a.oid), "status": "STARTING", "router_workergroup_oid": str(wg_oid), "changed": a.changed,
                "who": who(details)}
        log.info("Application realm '%s' (mrealm '%s') started on worker group '%s' by '%s'", a.name, self.name,
                 wg.name, info["who"]["authid"])
        self.publish("on_arealm_starting", info)
        info = dict(info, status=RUNNING)
        self.publish("on_arealm_started", info)
        return info

    def stop_arealm(self, arealm_oid, details=None) -> dict:
        with self.db.begin(write=True) as txn:
            a = self._arealm(txn, arealm_oid)
            if a.status != RUNNING:
                raise ApplicationError(CANNOT_STOP, f"cannot stop application realm '{a.name}': it is {a.status}")
            a.status, a.changed = STOPPED, time.time_ns()
            self.schema.arealms.put(txn, a.oid, a)
        info = {"oid": str(a.oid), "status": "STOPPING", "changed": a.changed, "who": who(details)}
        log.info("Application realm '%s' (mrealm '%s') stopped by '%s'", a.name, self.name, info["who"]["authid"])
        self.publish("on_arealm_stopping", info)
        info = dict(info, status=STOPPED)
        self.publish("on_arealm_stopped", info)
        return info

    def stat_arealm(self, arealm_oid, details=None) -> dict:
        s = self.schema
        with self.db.begin() as txn:
            a = self._arealm(txn, arealm_oid)
            roles = [s.roles.get(txn, k[1]) for k in s.arealm_role_associations.select(
                txn, prefix=(a.oid,), return_keys=True, return_values=False)]
            principals = sum(1 for p in s.principals.select(txn) if p.arealm_oid == a.oid)
            wg = s.router_workergroups.get(txn, a.workergroup_oid) if a.workergroup_oid else None
        res = {"oid": str(a.oid), "name": a.name, "status": a.status,
               "workergroup_oid": str(a.workergroup_oid) if a.workergroup_oid else None,
               "routercluster_oid": str(wg.cluster_oid) if wg is not None else None,
               "roles": sorted(r.name for r in roles if r is not None), "principals": principals, "nodes": []}
        if wg is not None and self.controller.routerclusters is not None:
            stat = self.controller.routerclusters.stat_routercluster(str(wg.cluster_oid))
            res["nodes"] = [dict(n, workers=[w for w in n["workers"] if w.rpartition("_")[0] == wg.name])
                            for n in stat["nodes"]]
        return res

    # -- principals ------------------------------------------------------------------------------------

    def _principal_out(self, txn, p) -> dict:
        role = self.schema.roles.get(txn, p.role_oid) if p.role_oid else None
        res = out(p)
        res.pop("ticket", None)
        res["has_ticket"] = bool(p.ticket)
        res["role"] = role.name if role is not None else None
        return res

    def _principal(self, txn, a, principal_oid):
        oid = parse_oid(principal_oid, "principal_oid")
        p = self.schema.principals.get(txn, oid)
        if p is None or p.arealm_oid != a.oid:
            raise ApplicationError(NO_SUCH_OBJECT, f"no principal with oid {oid} in application realm '{a.name}'")
        return p

    def list_principals(self, arealm_oid, return_names=None, details=None) -> list:
        with self.db.begin() as txn:
            a = self._arealm(txn, arealm_oid)
            mine = [p for p in self.schema.principals.select(txn) if p.arealm_oid == a.oid]
        return sorted(p.authid for p in mine) if return_names else [str(p.oid) for p in mine]

    def get_principal(self, arealm_oid, principal_oid, details=None) -> dict:
        with self.db.begin() as txn:
            a = self._arealm(txn, arealm_oid)
            return self._principal_out(txn, self._principal(txn, a, principal_oid))

    def add_principal(self, arealm_oid, principal, details=None) -> dict:
        check_keys(principal, "principal", ("authid", "role_oid", "role", "authorized_keys", "ticket", "authextra"))
        authid = principal.get("authid")
        if not isinstance(authid, str) or not authid or len(authid) > 255 or any(c.isspace() for c in authid):
            raise ApplicationError(INVALID_ARGUMENT, f"principal.authid: invalid authid {authid!r}")
        keys = principal.get("authorized_keys")
        if keys is not None:
            if not isinstance(keys, list) or not all(isinstance(k, str) and is_pubkey_hex(k) for k in keys):
                raise ApplicationError(INVALID_ARGUMENT, "principal.authorized_keys: a list of Ed25519 public keys "
                                                         "(64 hex digits each)")
            keys = [k.lower() for k in keys] or None
        ticket = principal.get("ticket")
        if ticket is not None and (not isinstance(ticket, str) or not ticket):
            raise ApplicationError(INVALID_ARGUMENT, "principal.ticket: a non-empty string")
        authextra = principal.get("authextra")
        if authextra is not None and not isinstance(authextra, dict):
            raise ApplicationError(INVALID_ARGUMENT, "principal.authextra: an object or null")
        s = self.schema
        with self.db.begin(write=True) as txn:
            a = self._arealm(txn, arealm_oid)
            if "role_oid" in principal:
                role = self._role(txn, principal["role_oid"])
            elif isinstance(principal.get("role"), str):
                role = s.idx_roles_by_name.get_record(txn, principal["role"])
                if role is None:
                    raise ApplicationError(NO_SUCH_OBJECT, f"no role named {principal['role']!r}")
            else:
                raise ApplicationError(INVALID_ARGUMENT, "principal: 'role_oid' (or 'role', a role name) is missing")
            if not s.arealm_role_associations.has(txn, (a.oid, role.oid)):
                raise ApplicationError(INVALID_ARGUMENT, f"principal: role '{role.name}' is not a role of application "
                                                         f"realm '{a.name}' (add_arealm_role first)")
            if s.idx_principals_by_authid.get(txn, (a.oid, authid)) is not None:
                raise ApplicationError(ALREADY_EXISTS, f"a principal '{authid}' exists in application realm "
                                                       f"'{a.name}' already")
            p = Principal(oid=uuid.uuid4(), arealm_oid=a.oid, authid=authid, role_oid=role.oid, authextra=authextra,
                          authorized_keys=keys, ticket=ticket, modified=time.time_ns())
            s.principals.insert(txn, p.oid, p)
            res = self._principal_out(txn, p)
        log.info("Principal '%s' (role '%s') added to application realm '%s' (mrealm '%s')", authid, role.name,
                 a.name, self.name)
        self.publish("on_principal_created", res)
        return res

    def get_principal_by_name(self, arealm_oid, principal_name, details=None) -> dict:
        with self.db.begin() as txn:
            a = self._arealm(txn, arealm_oid)
            p = self.schema.idx_principals_by_authid.get_record(txn, (a.oid, principal_name)) \
                if isinstance(principal_name, str) else None
            if p is None:
                raise ApplicationError(NO_SUCH_OBJECT, f"no principal {principal_name!r} in application realm "
                                                       f"'{a.name}'")
            return self._principal_out(txn, p)

    def remove_principal(self, arealm_oid, principal_oid, details=None) -> dict:
        with self.db.begin(write=True) as txn:
            a = self._arealm(txn, arealm_oid)
            p = self._principal(txn, a, principal_oid)
            res = self._principal_out(txn, p)
            self.schema.principals.delete(txn, p.oid)
        log.info("Principal '%s' removed from application realm '%s' (mrealm '%s')", p.authid, a.name, self.name)
        self.publish("on_principal_deleted", res)
        return res

    # -- credentials (Crossbar.io's objects, kept on the principal: one per authmethod) -----------------------

    @staticmethod
    def _credentials(a, p) -> list[dict]:
        out_ = []
        for method, present, authconfig in (("cryptosign", bool(p.authorized_keys),
                                             {"authorized_keys": list(p.authorized_keys or ())}),
                                            ("ticket", bool(p.ticket), {})):
            if present:
                # "modified": the principal's (credentials have no times of their own here)
                out_.append({"oid": str(uuid.uuid5(p.oid, method)), "modified": p.modified, "authmethod": method,
                             "realm": a.name, "authid": p.authid, "authconfig": authconfig,
                             "principal_oid": str(p.oid)})
        return out_

    def list_principal_credentials(self, arealm_oid, principal_oid, details=None) -> list:
        with self.db.begin() as txn:
            a = self._arealm(txn, arealm_oid)
            return [c["oid"] for c in self._credentials(a, self._principal(txn, a, principal_oid))]

    def _credential(self, a, p, credential_oid) -> dict:
        oid = str(parse_oid(credential_oid, "credential_oid"))
        for c in self._credentials(a, p):
            if c["oid"] == oid:
                return c
        raise ApplicationError(NO_SUCH_OBJECT, f"no credential with oid {oid} of principal '{p.authid}'")

    def get_principal_credential(self, arealm_oid, principal_oid, credential_oid, details=None) -> dict:
        with self.db.begin() as txn:
            a = self._arealm(txn, arealm_oid)
            return self._credential(a, self._principal(txn, a, principal_oid), credential_oid)

    def add_principal_credential(self, arealm_oid, principal_oid, credential, details=None) -> dict:
        """``{"authmethod": "ticket", "secret"}`` or ``{"authmethod": "cryptosign", "authconfig":
        {"authorized_keys": [...]}}`` (Crossbar.io's shapes; other methods are not supported here)."""
        check_keys(credential, "credential", ("authmethod", "secret", "authconfig", "authid", "realm"))
        method = credential.get("authmethod")
        fields = {}
        if method == "ticket":
            secret = credential.get("secret")
            if not isinstance(secret, str) or not secret:
                raise ApplicationError(INVALID_ARGUMENT, "credential.secret: the ticket, a non-empty string")
            fields["ticket"] = secret
        elif method == "cryptosign":
            keys = (credential.get("authconfig") or {}).get("authorized_keys") \
                if isinstance(credential.get("authconfig"), dict) else None
            if not isinstance(keys, list) or not keys or not all(isinstance(k, str) and is_pubkey_hex(k) for k in keys):
                raise ApplicationError(INVALID_ARGUMENT, "credential.authconfig.authorized_keys: a list of Ed25519 "
                                                         "public keys (64 hex digits each)")
            fields["authorized_keys"] = [k.lower() for k in keys]
        else:
            raise ApplicationError(INVALID_ARGUMENT, f"credential.authmethod: {method!r} is not supported here "
                                                     f"(ticket, cryptosign)")
        with self.db.begin(write=True) as txn:
            a = self._arealm(txn, arealm_oid)
            p = self._principal(txn, a, principal_oid)
            if (p.ticket if method == "ticket" else p.authorized_keys):
                raise ApplicationError("crossbar.error.already_running",
                                       f"principal '{p.authid}' has a {method} credential already")
            for key, value in fields.items():
                setattr(p, key, value)
            p.modified = time.time_ns()
            self.schema.principals.put(txn, p.oid, p)
            res = next(c for c in self._credentials(a, p) if c["authmethod"] == method)
            principal = self._principal_out(txn, p)
        log.info("Credential (%s) added to principal '%s' of application realm '%s' (mrealm '%s')", method, p.authid,
                 a.name, self.name)
        self.publish("on_principal_changed", principal)
        return res

    def remove_principal_credential(self, arealm_oid, principal_oid, credential_oid, details=None) -> dict:
        with self.db.begin(write=True) as txn:
            a = self._arealm(txn, arealm_oid)
            p = self._principal(txn, a, principal_oid)
            res = self._credential(a, p, credential_oid)
            if res["authmethod"] == "ticket":
                p.ticket = None
            else:
                p.authorized_keys = None
            p.modified = time.time_ns()
            self.schema.principals.put(txn, p.oid, p)
            principal = self._principal_out(txn, p)
        log.info("Credential (%s) removed from principal '%s' of application realm '%s' (mrealm '%s')",
                 res["authmethod"], p.authid, a.name, self.name)
        self.publish("on_principal_changed", principal)
        return res

    # -- roles -------------------------------------------------------------------------------------------

    def _role(self, txn, role_oid):
        oid = parse_oid(role_oid, "role_oid")
        r = self.schema.roles.get(txn, oid)
        if r is None:
            raise ApplicationError(NO_SUCH_OBJECT, f"no role with oid {oid}")
        return r

    def list_roles(self, return_names=None, details=None) -> list:
        with self.db.begin() as txn:
            if return_names:
                return sorted(r.name for r in self.schema.roles.select(txn))
            return [str(k) for k in self.schema.roles.select(txn, return_keys=True, return_values=False)]

    def get_role(self, role_oid, details=None) -> dict:
        with self.db.begin() as txn:
            return out(self._role(txn, role_oid))

    def get_role_by_name(self, role_name, details=None) -> dict:
        with self.db.begin() as txn:
            r = self.schema.idx_roles_by_name.get_record(txn, role_name) if isinstance(role_name, str) else None
        if r is None:
            raise ApplicationError(NO_SUCH_OBJECT, f"no role named {role_name!r}")
        return out(r)

    def create_role(self, role, details=None) -> dict:
        check_keys(role, "role", ("name", "label", "description", "tags"))
        name = role.get("name")
        if not isinstance(name, str) or not check_uri(name, False):
            raise ApplicationError(INVALID_ARGUMENT, f"role.name: invalid role name {name!r} (a WAMP URI)")
        if name == RLINK_ROLE:
            raise ApplicationError(INVALID_ARGUMENT, f"role.name: '{RLINK_ROLE}' is reserved (the role of the links "
                                                     f"between a cluster's router workers)")
        r = Role(oid=uuid.uuid4(), name=name, created=time.time_ns(), owner_oid=self.owner_oid(details),
                 **check_element(role, "role"))
        with self.db.begin(write=True) as txn:
            if self.schema.idx_roles_by_name.get(txn, name) is not None:
                raise ApplicationError(ALREADY_EXISTS, f"a role named '{name}' exists already")
            self.schema.roles.insert(txn, r.oid, r)
        res = out(r)
        log.info("Role '%s' created in mrealm '%s' (oid %s)", name, self.name, r.oid)
        self.publish("on_role_created", res)
        return res

    def delete_role(self, role_oid, details=None) -> dict:
        s = self.schema
        with self.db.begin(write=True) as txn:
            r = self._role(txn, role_oid)
            users = sorted(p.authid for p in s.principals.select(txn) if p.role_oid == r.oid)
            if users:
                raise ApplicationError(INVALID_ARGUMENT, f"role '{r.name}' is the role of principal(s) "
                                                         f"{', '.join(users)}: remove them first")
            for poid in list(s.idx_permissions_by_role.select(txn, prefix=(r.oid,))):
                s.permissions.delete(txn, poid)
            for key in list(s.arealm_role_associations.select(txn, return_keys=True, return_values=False)):
                if key[1] == r.oid:
                    s.arealm_role_associations.delete(txn, key)
            s.roles.delete(txn, r.oid)
        res = out(r)
        log.info("Role '%s' deleted from mrealm '%s'", r.name, self.name)
        self.publish("on_role_deleted", res)
        return res

    # -- permissions ---------------------------------------------------------------------------------------

    def list_role_permissions(self, role_oid, prefix=None, details=None) -> list:
        if prefix is not None and not isinstance(prefix, str):
            raise ApplicationError(INVALID_ARGUMENT, "prefix: a string or null")
        with self.db.begin() as txn:
            r = self._role(txn, role_oid)
            keys = self.schema.idx_permissions_by_role.select(txn, prefix=(r.oid,), return_keys=True,
                                                              return_values=False)
            return [str(k[2]) for k in keys if not prefix or k[1].startswith(prefix)]

    def get_role_permissions_by_uri(self, role_oid, prefix=None, details=None) -> list:
        """The role's permissions (objects, by URI) whose URI starts with ``prefix``."""
        s = self.schema
        with self.db.begin() as txn:
            r = self._role(txn, role_oid)
            res = []
            for key in s.idx_permissions_by_role.select(txn, prefix=(r.oid,), return_keys=True, return_values=False):
                if not prefix or key[1].startswith(prefix):
                    p = s.permissions.get(txn, key[2])
                    if p is not None:
                        res.append(out(p))
            return res

    def add_role_permission(self, role_oid, uri, permission, details=None) -> dict:
        # Crossbar.io's shell sends the URI in the permission too
        check_keys(permission, "permission", ("match", "uri_check_level", "uri", *PERMISSION_FLAGS))
        if permission.get("uri", uri) != uri:
            raise ApplicationError(INVALID_ARGUMENT, "permission.uri: not the uri argument")
        match = permission.get("match") or "exact"
        if match not in MATCHES:
            raise ApplicationError(INVALID_ARGUMENT, f"permission.match: {match!r} is none of {', '.join(MATCHES)}")
        if not isinstance(uri, str) or not (uri == "" and match == "prefix" or check_uri(
                uri.rstrip(".") if match == "prefix" else uri, False, allow_empty=match == "wildcard")):
            raise ApplicationError(INVALID_ARGUMENT, f"uri: invalid URI {uri!r} for match '{match}'")
        flags = {}
        for key in PERMISSION_FLAGS:
            value = permission.get(key, False)
            if not isinstance(value, bool):
                raise ApplicationError(INVALID_ARGUMENT, f"permission.{key}: true or false, not {value!r}")
            flags[key] = value
        with self.db.begin(write=True) as txn:
            r = self._role(txn, role_oid)
            p = Permission(oid=uuid.uuid4(), role_oid=r.oid, uri=uri, match=match, created=time.time_ns(), **flags)
            self.schema.permissions.insert(txn, p.oid, p)
        res = out(p)
        log.info("Permission '%s' (%s) added to role '%s' (mrealm '%s')", uri, match, r.name, self.name)
        self.publish("on_permission_added", res)
        return res

    def _permission(self, txn, r, permission_oid):
        oid = parse_oid(permission_oid, "permission_oid")
        p = self.schema.permissions.get(txn, oid)
        if p is None or p.role_oid != r.oid:
            raise ApplicationError(NO_SUCH_OBJECT, f"no permission with oid {oid} in role '{r.name}'")
        return p

    def remove_role_permission(self, role_oid, permission_oid, details=None) -> dict:
        with self.db.begin(write=True) as txn:
            r = self._role(txn, role_oid)
            p = self._permission(txn, r, permission_oid)
            self.schema.permissions.delete(txn, p.oid)
        res = out(p)
        log.info("Permission '%s' removed from role '%s' (mrealm '%s')", p.uri, r.name, self.name)
        self.publish("on_permission_removed", res)
        return res

    def get_role_permission(self, role_oid, permission_oid, details=None) -> dict:
        with self.db.begin() as txn:
            r = self._role(txn, role_oid)
            return out(self._permission(txn, r, permission_oid))

    # -- roles of arealms ------------------------------------------------------------------------------------

    def list_arealm_roles(self, arealm_oid, return_names=None, details=None) -> list:
        s = self.schema
        with self.db.begin() as txn:
            a = self._arealm(txn, arealm_oid)
            oids = [k[1] for k in s.arealm_role_associations.select(txn, prefix=(a.oid,), return_keys=True,
                                                                    return_values=False)]
            if return_names:
                return sorted(r.name for r in (s.roles.get(txn, o) for o in oids) if r is not None)
        return [str(o) for o in oids]

    def add_arealm_role(self, arealm_oid, role_oid, config=None, details=None) -> dict:
        if config is not None:
            check_keys(config, "config", ())
        s = self.schema
        with self.db.begin(write=True) as txn:
            a = self._arealm(txn, arealm_oid)
            r = self._role(txn, role_oid)
            if s.arealm_role_associations.has(txn, (a.oid, r.oid)):
                raise ApplicationError(ALREADY_EXISTS, f"role '{r.name}' is a role of application realm '{a.name}' "
                                                       f"already")
            assoc = ApplicationRealmRoleAssociation(arealm_oid=a.oid, role_oid=r.oid, changed=time.time_ns())
            s.arealm_role_associations.insert(txn, (a.oid, r.oid), assoc)
        res = out(assoc)
        log.info("Role '%s' added to application realm '%s' (mrealm '%s')", r.name, a.name, self.name)
        self.publish("on_arealm_role_added", res)
        return res

    def _association(self, txn, arealm_oid, role_oid):
        a = self._arealm(txn, arealm_oid)
        r = self._role(txn, role_oid)
        assoc = self.schema.arealm_role_associations.get(txn, (a.oid, r.oid))
        if assoc is None:
            raise ApplicationError(NO_SUCH_OBJECT, f"role '{r.name}' is not a role of application realm '{a.name}'")
        return a, r, assoc

    def remove_arealm_role(self, arealm_oid, role_oid, details=None) -> dict:
        s = self.schema
        with self.db.begin(write=True) as txn:
            a, r, assoc = self._association(txn, arealm_oid, role_oid)
            users = sorted(p.authid for p in s.principals.select(txn) if p.arealm_oid == a.oid and p.role_oid == r.oid)
            if users:
                raise ApplicationError(INVALID_ARGUMENT, f"role '{r.name}' is the role of principal(s) "
                                                         f"{', '.join(users)} of application realm '{a.name}'")
            s.arealm_role_associations.delete(txn, (a.oid, r.oid))
        res = out(assoc)
        log.info("Role '%s' removed from application realm '%s' (mrealm '%s')", r.name, a.name, self.name)
        self.publish("on_arealm_role_removed", res)
        return res

    def get_arealm_role(self, arealm_oid, role_oid, details=None) -> dict:
        with self.db.begin() as txn:
            return out(self._association(txn, arealm_oid, role_oid)[2])
