"""The modules of d1check import each other without a circle (module-level imports, those under
`if TYPE_CHECKING:` included; imports inside functions are deliberate and lazy)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "d1check"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts).removesuffix(".__init__")


def top_level_imports(tree: ast.Module) -> set[str]:
    """What a module imports at its top level and in its top-level `if` blocks."""
    found: set[str] = set()
    nodes: list[ast.stmt] = list(tree.body)
    while nodes:
        node = nodes.pop()
        if isinstance(node, ast.If | ast.Try):
            nodes += [*node.body, *node.orelse]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        imported = top_level_imports(ast.parse(path.read_text(encoding="utf-8")))
        graph[name] = {m for m in imported if m in modules and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each import circle once, as the path around it."""
    found: list[list[str]] = []
    seen: set[frozenset[str]] = set()

    def walk(node: str, path: list[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt in path:
                circle = path[path.index(nxt) :]
                if frozenset(circle) not in seen:
                    seen.add(frozenset(circle))
                    found.append([*circle, nxt])
            elif len(path) < 12:
                walk(nxt, [*path, nxt])

    for start in sorted(graph):
        walk(start, [start])
    return found


def test_no_import_circle_among_d1check_modules() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_finder_sees_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]


def test_type_checking_imports_count() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from d1check.x import Y\n"
        "def f():\n    from d1check.z import W\n"
    )
    assert top_level_imports(tree) == {"typing", "typing.TYPE_CHECKING", "d1check.x", "d1check.x.Y"}


# --- one place changes remote databases -------------------------------------------------------

SENDERS = {"d1check.writes", "d1check.remote", "d1check.testing"}


def remote_changes(tree: ast.Module) -> list[int]:
    """Lines that send a change to a remote database directly: `.query`/`.batch`/`.raw` with
    `write=True` or without `write=False`, and `.restore(…)` with a bookmark."""
    lines = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        receiver = node.func.value
        if not (isinstance(receiver, ast.Call) or "client" in ast.unparse(receiver).lower()):
            continue  # a local database (`db.query`), not the API client
        name = node.func.attr
        write = next((k.value for k in node.keywords if k.arg == "write"), None)
        read_only = isinstance(write, ast.Constant) and write.value is False
        if (name in ("query", "batch", "raw") and len(node.args) >= 2 and not read_only) or (
            name == "restore" and len(node.args) == 2
        ):
            lines.append(node.lineno)
    return lines


def test_only_the_writes_module_sends_changes_to_remote_databases() -> None:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if module_name(path) in SENDERS:
            continue
        lines = remote_changes(ast.parse(path.read_text(encoding="utf-8")))
        if lines:
            found[module_name(path)] = lines
    assert found == {}


def test_the_change_finder_sees_writes() -> None:
    tree = ast.parse(
        "client.query(db, 'UPDATE t SET a = 1')\nclient.query(db, sql, write=True)\n"
        "client.query(db, sql, write=False)\nclient.restore(db, bookmark)\n"
        "client.batch(db, statements, write=False)\ndb.query(sql, params)\n"
        "factory(target).query(db, sql)\n"
    )
    assert remote_changes(tree) == [1, 2, 4, 7]
