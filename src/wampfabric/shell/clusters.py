"""The shell's commands for router clusters and application realms (docs/clustering.md, "Router
clusters"): Crossbar.io's verbs and nouns (``create routercluster``, ``add routercluster-node``,
``start arealm`` ...), on the master's ``crossbarfabriccenter.mrealm.routercluster.*`` and
``crossbarfabriccenter.mrealm.arealm.*`` procedures.  Every object may be named by its name (a
principal by its authid, a permission by its URI) or by its oid.  Registered into the one command
table of commands.py on import (cli.py and interactive.py import it)."""

from __future__ import annotations

from .commands import NAME_SOURCES, NAMES, Arg, Opt, UsageError, _object, command, is_oid
from .context import ShellError

RC = "crossbarfabriccenter.mrealm.routercluster."
AR = "crossbarfabriccenter.mrealm.arealm."

CLUSTER = Arg("routercluster", "the router cluster's name or oid", kind="routercluster")
WORKERGROUP = Arg("workergroup", "the worker group's name or oid", kind="workergroup")
AREALM = Arg("arealm", "the application realm's name or oid", kind="arealm")
ROLE = Arg("role", "the role's name or oid", kind="role")
CONFIG = Opt("config", "JSON: the object's other attributes", json=True)


async def _oid(ctx, value: str, by_name: str, *prefix) -> str:
    if is_oid(value):
        return value
    return (await ctx.call(ctx.realm, by_name, *prefix, value))["oid"]


async def cluster_oid(ctx, cluster: str) -> str:
    return await _oid(ctx, cluster, RC + "get_routercluster_by_name")


async def workergroup_oid(ctx, cluster: str, workergroup: str) -> tuple[str, str]:
    """(cluster oid, worker group oid)."""
    coid = await cluster_oid(ctx, cluster)
    if is_oid(workergroup):
        return coid, workergroup
    name = cluster if not is_oid(cluster) else (await ctx.call(ctx.realm, RC + "get_routercluster", coid))["name"]
    wg = await ctx.call(ctx.realm, RC + "get_routercluster_workergroup_by_name", name, workergroup)
    return coid, wg["oid"]


async def arealm_oid(ctx, arealm: str) -> str:
    return await _oid(ctx, arealm, AR + "get_arealm_by_name")


async def role_oid(ctx, role: str) -> str:
    return await _oid(ctx, role, AR + "get_role_by_name")


async def principal_oid(ctx, aoid: str, principal: str) -> str:
    if is_oid(principal):
        return principal
    for oid in await ctx.call(ctx.realm, AR + "list_principals", aoid) or []:
        if (await ctx.call(ctx.realm, AR + "get_principal", aoid, oid)).get("authid") == principal:
            return oid
    raise ShellError(f"no principal '{principal}' in application realm '{aoid}'")


async def permission_oid(ctx, roid: str, permission: str) -> str:
    if is_oid(permission):
        return permission
    for oid in await ctx.call(ctx.realm, AR + "list_role_permissions", roid, prefix=permission) or []:
        if (await ctx.call(ctx.realm, AR + "get_role_permission", roid, oid)).get("uri") == permission:
            return oid
    raise ShellError(f"no permission for URI '{permission}' on role '{roid}'")


def _names(procedure: str, needs_cluster: bool = False):
    async def fetch(ctx, values):
        if not needs_cluster:
            return await ctx.call(ctx.realm, procedure, return_names=True)
        if not values.get("routercluster"):
            return []
        return await ctx.call(ctx.realm, procedure, await cluster_oid(ctx, values["routercluster"]), return_names=True)
    return fetch


NAME_SOURCES.update(routercluster=_names(RC + "list_routerclusters"),
                    workergroup=_names(RC + "list_routercluster_workergroups", needs_cluster=True),
                    arealm=_names(AR + "list_arealms"), role=_names(AR + "list_roles"))


async def _records(ctx, oids, procedure, *prefix) -> list:
    return [await ctx.call(ctx.realm, procedure, *prefix, oid) for oid in oids or []]


# -- router clusters --------------------------------------------------------------------------------

@command("list", "routerclusters", "the router clusters of the mrealm", opts=[NAMES],
         columns=["name", "oid", "status", "changed"])
async def list_routerclusters(ctx, names=False):
    if names:
        return await ctx.call(ctx.realm, RC + "list_routerclusters", return_names=True)
    return await _records(ctx, await ctx.call(ctx.realm, RC + "list_routerclusters"), RC + "get_routercluster")


@command("show", "routercluster", "a router cluster, with its nodes (online or not, the workers wanted on "
         "each), worker groups and application realms", args=[CLUSTER])
async def show_routercluster(ctx, routercluster):
    oid = await cluster_oid(ctx, routercluster)
    record = await ctx.call(ctx.realm, RC + "get_routercluster", oid)
    stat = await ctx.call(ctx.realm, RC + "stat_routercluster", oid)
    return {**record, **{k: stat[k] for k in ("nodes", "workergroups", "arealms") if k in stat}}


@command("create", "routercluster", "a new router cluster (stopped)",
         args=[Arg("routercluster", "its name")], opts=[CONFIG])
async def create_routercluster(ctx, routercluster, config=None):
    return await ctx.call(ctx.realm, RC + "create_routercluster", _object(config, "config", name=routercluster))


@command("delete", "routercluster", "a stopped router cluster, with its node memberships and worker groups",
         args=[CLUSTER])
async def delete_routercluster(ctx, routercluster):
    return await ctx.call(ctx.realm, RC + "delete_routercluster", await cluster_oid(ctx, routercluster))


@command("start", "routercluster", "start a router cluster: the master wires its member nodes", args=[CLUSTER])
async def start_routercluster(ctx, routercluster):
    return await ctx.call(ctx.realm, RC + "start_routercluster", await cluster_oid(ctx, routercluster))


@command("stop", "routercluster", "stop a router cluster", args=[CLUSTER])
async def stop_routercluster(ctx, routercluster):
    return await ctx.call(ctx.realm, RC + "stop_routercluster", await cluster_oid(ctx, routercluster))


@command("list", "routercluster-nodes", "the member nodes of a router cluster", args=[CLUSTER],
         opts=[NAMES, Opt("status", "online or offline only")],
         columns=["node", "node_oid", "client_port", "link_port", "softlimit", "hardlimit"])
async def list_routercluster_nodes(ctx, routercluster, names=False, status=None):
    oid = await cluster_oid(ctx, routercluster)
    if names:
        return await ctx.call(ctx.realm, RC + "list_routercluster_nodes", oid, return_names=True,
                              filter_by_status=status)
    oids = await ctx.call(ctx.realm, RC + "list_routercluster_nodes", oid, filter_by_status=status)
    return await _records(ctx, oids, RC + "get_routercluster_node", oid)


@command("show", "routercluster-node", "a node's membership in a router cluster",
         args=[CLUSTER, Arg("node", "the node's name or oid", kind="node")])
async def show_routercluster_node(ctx, routercluster, node):
    return await ctx.call(ctx.realm, RC + "get_routercluster_node", await cluster_oid(ctx, routercluster), node)


@command("add", "routercluster-node", "add a node (or all paired nodes) to a router cluster; --config: "
         "client_port, link_port, link_host, client_interface, link_interface, softlimit, hardlimit",
         args=[CLUSTER, Arg("node", "the node's name or oid, or 'all' (the default)", kind="node", optional=True)],
         opts=[CONFIG])
async def add_routercluster_node(ctx, routercluster, node=None, config=None):
    oid = await cluster_oid(ctx, routercluster)
    config = _object(config, "config")
    if node in (None, "all"):
        nodes = await ctx.call(ctx.realm, "crossbarfabriccenter.mrealm.get_nodes", return_names=True)
        return [await ctx.call(ctx.realm, RC + "add_routercluster_node", oid, n, config) for n in sorted(nodes)]
    return await ctx.call(ctx.realm, RC + "add_routercluster_node", oid, node, config)


@command("remove", "routercluster-node", "remove a node from a router cluster (its wiring is taken down)",
         args=[CLUSTER, Arg("node", "the node's name or oid", kind="node")])
async def remove_routercluster_node(ctx, routercluster, node):
    return await ctx.call(ctx.realm, RC + "remove_routercluster_node", await cluster_oid(ctx, routercluster), node)


@command("list", "routercluster-workergroups", "the worker groups of a router cluster", args=[CLUSTER],
         opts=[NAMES], columns=["name", "oid", "scale", "status"])
async def list_routercluster_workergroups(ctx, routercluster, names=False):
    oid = await cluster_oid(ctx, routercluster)
    if names:
        return await ctx.call(ctx.realm, RC + "list_routercluster_workergroups", oid, return_names=True)
    oids = await ctx.call(ctx.realm, RC + "list_routercluster_workergroups", oid)
    return await _records(ctx, oids, RC + "get_routercluster_workergroup", oid)


@command("show", "routercluster-workergroup", "a worker group of a router cluster", args=[CLUSTER, WORKERGROUP])
async def show_routercluster_workergroup(ctx, routercluster, workergroup):
    coid, woid = await workergroup_oid(ctx, routercluster, workergroup)
    return await ctx.call(ctx.realm, RC + "get_routercluster_workergroup", coid, woid)


@command("add", "routercluster-workergroup", "add a worker group to a router cluster; --config: scale (router "
         "workers per member node), label, description", args=[CLUSTER, Arg("workergroup", "its name")],
         opts=[CONFIG])
async def add_routercluster_workergroup(ctx, routercluster, workergroup, config=None):
    oid = await cluster_oid(ctx, routercluster)
    return await ctx.call(ctx.realm, RC + "add_routercluster_workergroup", oid,
                          _object(config, "config", name=workergroup))


@command("remove", "routercluster-workergroup", "remove a worker group from a router cluster",
         args=[CLUSTER, WORKERGROUP])
async def remove_routercluster_workergroup(ctx, routercluster, workergroup):
    coid, woid = await workergroup_oid(ctx, routercluster, workergroup)
    return await ctx.call(ctx.realm, RC + "remove_routercluster_workergroup", coid, woid)


# -- application realms -----------------------------------------------------------------------------

@command("list", "arealms", "the application realms of the mrealm", opts=[NAMES],
         columns=["name", "oid", "status", "workergroup_oid"])
async def list_arealms(ctx, names=False):
    if names:
        return await ctx.call(ctx.realm, AR + "list_arealms", return_names=True)
    return await _records(ctx, await ctx.call(ctx.realm, AR + "list_arealms"), AR + "get_arealm")


@command("show", "arealm", "an application realm, with where it runs", args=[AREALM])
async def show_arealm(ctx, arealm):
    oid = await arealm_oid(ctx, arealm)
    record = await ctx.call(ctx.realm, AR + "get_arealm", oid)
    stat = await ctx.call(ctx.realm, AR + "stat_arealm", oid)
    return {**record, **{k: stat[k] for k in ("routercluster_oid", "roles", "principals", "nodes") if k in stat}}


@command("create", "arealm", "a new application realm (stopped)", args=[Arg("arealm", "its name: the WAMP realm")],
         opts=[CONFIG])
async def create_arealm(ctx, arealm, config=None):
    return await ctx.call(ctx.realm, AR + "create_arealm", _object(config, "config", name=arealm))


@command("delete", "arealm", "a stopped application realm, with its principals", args=[AREALM])
async def delete_arealm(ctx, arealm):
    return await ctx.call(ctx.realm, AR + "delete_arealm", await arealm_oid(ctx, arealm))


@command("start", "arealm", "start an application realm on a worker group of a router cluster",
         args=[AREALM, CLUSTER, WORKERGROUP,
               Arg("webcluster", "(Crossbar.io's; web clusters are not supported: leave it out)", optional=True)])
async def start_arealm(ctx, arealm, routercluster, workergroup, webcluster=None):
    if webcluster not in (None, "", "null", "none"):
        raise UsageError("web clusters are not supported: leave WEBCLUSTER out")
    aoid = await arealm_oid(ctx, arealm)
    _, woid = await workergroup_oid(ctx, routercluster, workergroup)
    return await ctx.call(ctx.realm, AR + "start_arealm", aoid, woid)


@command("stop", "arealm", "stop an application realm (it is taken down on every node)", args=[AREALM])
async def stop_arealm(ctx, arealm):
    return await ctx.call(ctx.realm, AR + "stop_arealm", await arealm_oid(ctx, arealm))


# -- roles and permissions --------------------------------------------------------------------------

@command("list", "roles", "the roles of the mrealm (for application realms)", opts=[NAMES],
         columns=["name", "oid", "label"])
async def list_roles(ctx, names=False):
    if names:
        return await ctx.call(ctx.realm, AR + "list_roles", return_names=True)
    return await _records(ctx, await ctx.call(ctx.realm, AR + "list_roles"), AR + "get_role")


@command("show", "role", "a role", args=[ROLE])
async def show_role(ctx, role):
    return await ctx.call(ctx.realm, AR + "get_role", await role_oid(ctx, role))


@command("create", "role", "a new role", args=[Arg("role", "its name")], opts=[CONFIG])
async def create_role(ctx, role, config=None):
    return await ctx.call(ctx.realm, AR + "create_role", _object(config, "config", name=role))


@command("delete", "role", "a role, with its permissions", args=[ROLE])
async def delete_role(ctx, role):
    return await ctx.call(ctx.realm, AR + "delete_role", await role_oid(ctx, role))


PERMISSION = Arg("permission", "the permission's URI or oid")


@command("list", "role-permissions", "the permissions of a role", args=[ROLE],
         opts=[Opt("prefix", "only URIs that start with it")],
         columns=["uri", "match", "allow_call", "allow_register", "allow_publish", "allow_subscribe", "oid"])
async def list_role_permissions(ctx, role, prefix=None):
    roid = await role_oid(ctx, role)
    oids = await ctx.call(ctx.realm, AR + "list_role_permissions", roid, prefix=prefix)
    return await _records(ctx, oids, AR + "get_role_permission", roid)


@command("show", "role-permission", "a permission of a role", args=[ROLE, PERMISSION])
async def show_role_permission(ctx, role, permission):
    roid = await role_oid(ctx, role)
    return await ctx.call(ctx.realm, AR + "get_role_permission", roid, await permission_oid(ctx, roid, permission))


@command("add", "role-permission", "a permission on a URI to a role; --config: match (exact, prefix, "
         "wildcard), allow_call, allow_register, allow_publish, allow_subscribe, disclose_caller, "
         "disclose_publisher (default false)", args=[ROLE, Arg("uri", "the URI (or prefix or pattern)")],
         opts=[CONFIG])
async def add_role_permission(ctx, role, uri, config=None):
    roid = await role_oid(ctx, role)
    return await ctx.call(ctx.realm, AR + "add_role_permission", roid, uri, _object(config, "config"))


@command("remove", "role-permission", "a permission from a role", args=[ROLE, PERMISSION])
async def remove_role_permission(ctx, role, permission):
    roid = await role_oid(ctx, role)
    return await ctx.call(ctx.realm, AR + "remove_role_permission", roid, await permission_oid(ctx, roid, permission))


@command("list", "arealm-roles", "the roles of an application realm", args=[AREALM], opts=[NAMES],
         columns=["name", "oid", "label"])
async def list_arealm_roles(ctx, arealm, names=False):
    aoid = await arealm_oid(ctx, arealm)
    if names:
        return await ctx.call(ctx.realm, AR + "list_arealm_roles", aoid, return_names=True)
    return await _records(ctx, await ctx.call(ctx.realm, AR + "list_arealm_roles", aoid), AR + "get_role")


@command("show", "arealm-role", "a role's association with an application realm", args=[AREALM, ROLE])
async def show_arealm_role(ctx, arealm, role):
    return await ctx.call(ctx.realm, AR + "get_arealm_role", await arealm_oid(ctx, arealm), await role_oid(ctx, role))


@command("add", "arealm-role", "a role to an application realm", args=[AREALM, ROLE], opts=[CONFIG])
async def add_arealm_role(ctx, arealm, role, config=None):
    return await ctx.call(ctx.realm, AR + "add_arealm_role", await arealm_oid(ctx, arealm),
                          await role_oid(ctx, role), config)


@command("remove", "arealm-role", "a role from an application realm", args=[AREALM, ROLE])
async def remove_arealm_role(ctx, arealm, role):
    return await ctx.call(ctx.realm, AR + "remove_arealm_role", await arealm_oid(ctx, arealm),
                          await role_oid(ctx, role))


# -- principals ---------------------------------------------------------------------------------------

PRINCIPAL = Arg("principal", "the principal's authid or oid")


@command("list", "principals", "the principals (users) of an application realm", args=[AREALM], opts=[NAMES],
         columns=["authid", "role", "oid", "has_ticket", "authorized_keys"])
async def list_principals(ctx, arealm, names=False):
    aoid = await arealm_oid(ctx, arealm)
    if names:
        return await ctx.call(ctx.realm, AR + "list_principals", aoid, return_names=True)
    return await _records(ctx, await ctx.call(ctx.realm, AR + "list_principals", aoid), AR + "get_principal", aoid)


@command("show", "principal", "a principal of an application realm (never its ticket)", args=[AREALM, PRINCIPAL])
async def show_principal(ctx, arealm, principal):
    aoid = await arealm_oid(ctx, arealm)
    return await ctx.call(ctx.realm, AR + "get_principal", aoid, await principal_oid(ctx, aoid, principal))


@command("add", "principal", "a principal to an application realm; --config: role (name or oid, required), "
         "ticket and/or authorized_keys (cryptosign public keys, hex), authextra",
         args=[AREALM, Arg("principal", "its authid")], opts=[Opt("config", "JSON", json=True, required=True)])
async def add_principal(ctx, arealm, principal, config=None):
    aoid = await arealm_oid(ctx, arealm)
    config = _object(config, "config", authid=principal)
    role = config.pop("role", None)
    if role is not None:
        config["role_oid"] = await role_oid(ctx, role)
    if "role_oid" not in config:
        raise UsageError("--config needs \"role\": the principal's role (name or oid)")
    return await ctx.call(ctx.realm, AR + "add_principal", aoid, config)


async def _remove_principal(ctx, arealm, principal):
    aoid = await arealm_oid(ctx, arealm)
    return await ctx.call(ctx.realm, AR + "remove_principal", aoid, await principal_oid(ctx, aoid, principal))


@command("remove", "arealm-principal", "a principal from an application realm", args=[AREALM, PRINCIPAL])
async def remove_arealm_principal(ctx, arealm, principal):
    return await _remove_principal(ctx, arealm, principal)


@command("remove", "principal", "a principal from an application realm (remove arealm-principal)",
         args=[AREALM, PRINCIPAL])
async def remove_principal(ctx, arealm, principal):
    return await _remove_principal(ctx, arealm, principal)
