"""The import graph of the installed package (emsync_bridge/, export/, ui/) has no cycle and keeps
the rules written in docs/architecture.md (the test reads them from there, so the page and the check
cannot drift apart). Every import counts, lazy ones inside functions too; `if TYPE_CHECKING:` blocks
do not run and are skipped."""

from __future__ import annotations

import ast
import functools
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# source folder -> the package it is installed as (pyproject.toml's package-dir)
PACKAGES = {"emsync_bridge": "emsync_bridge", "export": "emsync_bridge.export", "ui": "emsync_bridge.ui"}


def module_files(root: Path, packages: dict[str, str]) -> dict[str, Path]:
    mods = {}
    for folder, package in packages.items():
        for path in sorted((root / folder).rglob("*.py")):
            parts = [package, *path.relative_to(root / folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            mods[".".join(parts)] = path
    return mods


def import_graph(root: Path = REPO, packages: dict[str, str] = PACKAGES) -> dict[str, set[str]]:
    """module -> what it imports: the project module `from X import Y` names (X.Y when that is a
    module, else X), or the dotted name of anything outside the project."""
    mods = module_files(root, packages)
    graph = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()

        def visit(node):
            for n in ast.iter_child_nodes(node):
                if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test):
                    continue
                if isinstance(n, ast.Import):
                    targets.update(a.name for a in n.names)
                elif isinstance(n, ast.ImportFrom):
                    if n.level:
                        base = package.split(".")[: len(package.split(".")) - (n.level - 1)]
                        module = ".".join(base + ([n.module] if n.module else []))
                    else:
                        module = n.module
                    for a in n.names:
                        targets.add(f"{module}.{a.name}" if f"{module}.{a.name}" in mods else module)
                else:
                    visit(n)

        visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        graph[name] = targets - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in graph:
                    continue
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def rule_table(header: str) -> list[tuple[list[str], list[str]]]:
    """Rows of the docs/architecture.md table under `header`: (left names, right names), each the
    `backticked` names of its cell."""
    lines = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8").splitlines()
    start = lines.index(header)  # ValueError here: the table's header changed on the page
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = line.strip("|").split("|")
        rows.append(tuple(re.findall(r"`([^`]+)`", cell) for cell in cells[:2]))
    assert rows, f"no rules under {header!r} in docs/architecture.md"
    return rows


@functools.cache
def project_graph() -> dict[str, set[str]]:
    return import_graph()


NEVER = rule_table("| these modules | never import |")
ONLY_BY = rule_table("| this module | is imported only by |")


def test_import_graph_sees_real_edges():
    g = project_graph()
    assert len(g) > 60
    assert "emsync_bridge.music.splice" in g["emsync_bridge.score"]  # a lazy import inside a function
    assert "emsync_bridge.cli" in g["emsync_bridge.__main__"]
    assert "emsync_bridge.ui.app" in g["emsync_bridge.commands.panel"]  # ui/ is installed as emsync_bridge.ui
    assert "emsync_bridge.commands.registry" in g["emsync_bridge.commands.music"]


def test_no_import_cycles():
    assert cycles(project_graph()) == []


@pytest.mark.parametrize("sources,forbidden", NEVER, ids=[" ".join(r[0]) for r in NEVER])
def test_never_rule(sources, forbidden):
    bad = sorted(f"{m} imports {t}" for m, targets in project_graph().items()
                 if any(under(m, s) for s in sources) for t in targets if any(under(t, f) for f in forbidden))
    assert not bad, "breaks docs/architecture.md:\n" + "\n".join(bad)


@pytest.mark.parametrize("module,importers", ONLY_BY, ids=[r[0][0] for r in ONLY_BY])
def test_imported_only_by_rule(module, importers):
    (module,) = module
    bad = sorted(f"{m} imports {t}" for m, targets in project_graph().items()
                 if not any(under(m, i) for i in importers) for t in targets if under(t, module))
    assert not bad, "breaks docs/architecture.md:\n" + "\n".join(bad)


def test_the_checker_finds_cycles_and_broken_rules(tmp_path):
    """The checks above can fail: a made-up package with a lazy-import cycle through a relative
    import, and a library module calling its CLI."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "cli.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "a.py").write_text("from . import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from pkg.sub.a import x\n    import pkg.cli\n")
    (pkg / "sub" / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import cli\n")
    g = import_graph(tmp_path, {"pkg": "pkg"})
    assert g["pkg.sub.a"] == {"pkg.sub.b"}
    assert g["pkg.sub.b"] == {"pkg.sub.a", "pkg.cli"}
    assert g["pkg.sub.c"] == {"typing"}
    assert cycles(g) == [["pkg.sub.a", "pkg.sub.b"]]
    assert cycles({"x": {"y"}, "y": {"z"}, "z": set()}) == []
    assert under("pkg.cli", "pkg.cli") and under("pkg.cli.x", "pkg.cli") and not under("pkg.client", "pkg.cli")


def test_commands_register_without_the_cli():
    """Importing the commands fills the registry without loading the CLI, and both ways of running
    the CLI see every subcommand once."""
    code = ("import sys, emsync_bridge.commands; from emsync_bridge.commands.registry import COMMANDS; "
            "print(' '.join(n for n, _, _ in COMMANDS)); print('emsync_bridge.cli' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    names, cli_loaded = proc.stdout.split("\n")[:2]
    assert proc.returncode == 0 and cli_loaded == "False", proc.stderr
    names = names.split()
    assert len(names) == len(set(names)) and {"train", "score", "serve", "bench", "bench-live", "panel"} <= set(names)
    for entry in (["-m", "emsync_bridge"], ["-m", "emsync_bridge.cli"]):
        helped = subprocess.run([sys.executable, *entry, "--help"], capture_output=True, text=True, timeout=120)
        assert helped.returncode == 0 and all(n in helped.stdout for n in names), helped.stderr
