"""The import graph of src/wampfabric points downwards only and has no cycle.

docs/architecture.md ("Layers") states the order; this test keeps it true.  Every
import counts: at module level and inside functions, absolute and relative, so a
function-level import cannot hide an upward edge or hold a cycle together.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PKG = "wampfabric"

# The layers, lowest first.  A module may import modules of its own package and of
# packages in lower layers; packages in the same layer do not import each other.
LAYERS = [
    {"wampfabric", "common"},      # the root package (__version__) and helpers that import nothing of ours
    {"protocol", "db"},            # sans-I/O WAMP; LMDB tables (wampfabric.db: imports nothing of ours)
    {"config"},                    # the config checker (imports protocol)
    {"router", "client"},          # the router core; the small client (both on protocol only)
    {"transport"},                 # asyncio transports (router, client)
    {"web"},                       # web services behind the HTTP front (static, archive, bridge, ...)
    {"personality", "rlink"},      # the switchboard (config, router, transport); router-to-router links
    {"worker"},                    # native worker processes
    {"node"},                      # the node controller and its CLI commands
    {"edge", "master", "metering", "shell"},  # personalities above the node (docs/fabric.md), metering service, shell
    {"cli"},                       # the wampfabric command (node commands + personality groups)
    {"__main__"},                  # python -m wampfabric
]
RANK = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}

# node may import worker only to run a worker process (the hidden `wampfabric _exec_worker`
# command calls worker.main); nothing else of the node controller uses worker internals.
NODE_TO_WORKER = {("wampfabric.node.cli", "wampfabric.worker.main")}


def _modules() -> dict[str, Path]:
    mods = {}
    for path in sorted((SRC / PKG).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _is_package(mod: str) -> bool:
    return MODULES[mod].name == "__init__.py"


def _imports(mod: str) -> list[tuple[str, int]]:
    """(imported module, line) for every import of ours in ``mod``, at any depth."""
    tree = ast.parse(MODULES[mod].read_text(), str(MODULES[mod]))
    pkg = mod if _is_package(mod) else mod.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PKG or alias.name.startswith(PKG + "."):
                    found.append((_existing(alias.name), node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not (target == PKG or target.startswith(PKG + ".")):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.append((sub if sub in MODULES else _existing(target), node.lineno))
    return found


def _existing(name: str) -> str:
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _package(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else PKG


GRAPH = {mod: _imports(mod) for mod in MODULES}


def test_every_package_has_a_layer():
    missing = sorted({_package(m) for m in MODULES} - set(RANK))
    assert not missing, f"packages without a layer in LAYERS (add them here and to docs/architecture.md): {missing}"


def test_imports_point_downwards():
    bad = []
    for mod, imports in GRAPH.items():
        src = _package(mod)
        for target, line in imports:
            dst = _package(target)
            if dst == src or dst not in RANK or src not in RANK:
                continue
            if src == "node" and dst == "worker":
                if (mod, target) not in NODE_TO_WORKER:
                    bad.append(f"{mod}:{line} imports {target} (node uses worker only to run a worker process)")
                continue
            if RANK[dst] >= RANK[src]:
                bad.append(f"{mod}:{line} imports {target} ({src} is not above {dst})")
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_cycle_between_modules():
    graph = {m: {t for t, _ in imps if t != m and _package(t) == _package(m) and not _is_package(t)}
             for m, imps in GRAPH.items()}
    cycles = _cycles(graph)
    assert not cycles, f"import cycles between modules: {cycles}"


def test_no_cycle_between_packages():
    graph: dict[str, set[str]] = {}
    for mod, imps in GRAPH.items():
        for target, _ in imps:
            if _package(target) != _package(mod):
                graph.setdefault(_package(mod), set()).add(_package(target))
    cycles = _cycles(graph)
    assert not cycles, f"import cycles between packages: {cycles}"
