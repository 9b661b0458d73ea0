"""The layers of ARCHITECTURE.md, checked on the source: who may import whom, and no import cycles.

Every module under bot/ and detectors/ is parsed with `ast` (nothing is imported), so a rule
broken anywhere fails here with the file and the line, before it can turn into a start-up
ImportError or a store that needs the core to be tested.

Layer rules count every import, lazy ones inside functions too: a lazy import is still a
dependency. Cycles count only what runs at import time (module level, not under
`if TYPE_CHECKING:`): that is where a loop breaks a partially initialised module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bot", "detectors")

# The detectors' one way into the bot: fusion makes the core's verdict types (see its docstring).
DETECTORS_MAY_IMPORT = ("bot.core.verdict",)
PLATFORM_SDKS = ("discord", "slack_bolt", "slack_sdk")

# Cycles other work has yet to break, as frozensets of the modules in each loop, with the owner
# named. Empty when every loop is gone; a loop listed here that no longer exists fails the test,
# so the list cannot go stale.
KNOWN_CYCLES: dict[frozenset[str], str] = {}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the imported module (or the name, for a `from x import name`)
    line: int
    at_import_time: bool  # module level and not under `if TYPE_CHECKING:`


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def our_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


MODULES = our_modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:  # relative: from the package this module is in (or is)
        package = module.split(".")
        if not is_package:
            package = package[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, base] if base else package)
    # `from pkg import sub` imports the module pkg.sub when there is one, else a name of pkg.
    return [
        f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
        for alias in node.names
    ]


def imports_of(module: str, path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"

    def visit(nodes: list[ast.stmt], at_import_time: bool) -> Iterator[Import]:
        for node in nodes:
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _targets(node, module, is_package):
                    yield Import(module, target, node.lineno, at_import_time)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                yield from visit(node.body, False)
            elif isinstance(node, ast.If):
                yield from visit(node.body, at_import_time and not _is_type_checking(node.test))
                yield from visit(node.orelse, at_import_time)
            else:  # class bodies, try/with/for blocks: whatever statements they hold
                for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                    children = getattr(node, field, None)
                    if isinstance(children, list):
                        statements = [c for c in children if isinstance(c, ast.stmt)]
                        statements += [
                            s
                            for c in children
                            if not isinstance(c, ast.stmt)
                            for s in getattr(c, "body", [])
                        ]
                        yield from visit(statements, at_import_time)

    yield from visit(tree.body, True)


ALL_IMPORTS = [found for module, path in MODULES.items() for found in imports_of(module, path)]


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def _broken(
    importer: tuple[str, ...], forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()
) -> list[str]:
    return sorted(
        {
            f"{MODULES[i.module].relative_to(ROOT)}:{i.line} imports {i.target}"
            for i in ALL_IMPORTS
            if _within(i.module, importer)
            and _within(i.target, forbidden)
            and not _within(i.target, allowed)
        }
    )


@pytest.mark.parametrize(
    ("importer", "forbidden", "allowed"),
    [
        pytest.param(("bot.store",), ("bot.core", "detectors"), (), id="store-below-core"),
        pytest.param(("bot.platforms",), ("detectors",), (), id="platforms-not-detectors"),
        pytest.param(("detectors",), ("bot",), DETECTORS_MAY_IMPORT, id="detectors-not-bot"),
        pytest.param(("bot.core",), PLATFORM_SDKS, (), id="core-not-platform-sdks"),
    ],
)
def test_layer_rule(
    importer: tuple[str, ...], forbidden: tuple[str, ...], allowed: tuple[str, ...]
) -> None:
    assert _broken(importer, forbidden, allowed) == []


def import_graph() -> dict[str, set[str]]:
    """Our modules and the modules of ours each imports at import time."""
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for found in ALL_IMPORTS:
        if found.at_import_time and found.target in MODULES and found.target != found.module:
            graph[found.module].add(found.target)
    return graph


def cycles_in(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[frozenset[str]] = []

    def connect(node: str) -> None:  # recursion depth is bounded by the number of modules
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for following in sorted(graph.get(node, ())):
            if following not in index:
                connect(following)
                low[node] = min(low[node], low[following])
            elif following in on_stack:
                low[node] = min(low[node], index[following])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return cycles


def test_no_import_cycles() -> None:
    found = cycles_in(import_graph())
    unknown = [sorted(cycle) for cycle in found if cycle not in KNOWN_CYCLES]
    gone = [
        f"{sorted(cycle)} ({owner})" for cycle, owner in KNOWN_CYCLES.items() if cycle not in found
    ]
    assert unknown == [], "import cycles (module level, outside TYPE_CHECKING)"
    assert gone == [], "listed as known but no longer a cycle: remove them from KNOWN_CYCLES"


def test_the_checker_sees_what_it_checks(tmp_path: Path) -> None:
    """An empty answer above means something: the parser finds module-level, lazy,
    TYPE_CHECKING and relative imports, and the cycle finder finds a loop."""
    by_module = {(i.module, i.target): i for i in ALL_IMPORTS}
    assert len(MODULES) > 100 and "bot.core.digest" in MODULES
    assert by_module[("bot.store.repos", "bot.store.models")].at_import_time
    assert ("detectors.fusion", "bot.core.verdict") in by_module
    assert not by_module[("bot.core.digest.render", "bot.core.digest.chart")].at_import_time

    sample = tmp_path / "sample.py"
    sample.write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import chart\n"
        "from .stats import DigestStats\n"
        "if TYPE_CHECKING:\n    import discord\n"
        "def later():\n    import slack_sdk\n"
        "class Kept:\n    import sqlalchemy\n",
        encoding="utf-8",
    )
    found = {(i.target, i.at_import_time) for i in imports_of("bot.core.digest.render", sample)}
    assert found == {
        ("typing", True),
        ("bot.core.digest.chart", True),
        ("bot.core.digest.stats", True),
        ("discord", False),
        ("slack_sdk", False),
        ("sqlalchemy", True),
    }

    loop = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert cycles_in(loop) == [frozenset({"a", "b", "c"})]
