"""The house rules that keep the code easy to change (docs/ARCHITECTURE.md, "Packages and their rooms").

The import contracts, ruff and mypy run as guardrails before the tests (`python3 dev.py check`);
these are the rules that no tool checks for us.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*ROOT.glob("engine/**/*.py"), *ROOT.glob("nlq_tui/**/*.py")])
MAX_FILE_LINES = 700
MAX_FUNCTION_LINES = 80

# A file or function that must be longer says why here.
LONG_ALLOWED: dict[str, str] = {}


def _rel(p: Path) -> str:
    return p.relative_to(ROOT).as_posix()


def test_no_source_file_is_over_700_lines():
    over = [f"{_rel(p)}: {n} lines" for p in SOURCES if (n := p.read_text().count("\n")) > MAX_FILE_LINES]
    over = [o for o in over if o.split(":")[0] not in LONG_ALLOWED]
    assert not over, "split these files (or say why in LONG_ALLOWED): " + "; ".join(over)


def test_no_function_is_over_80_lines():
    over = []
    for p in SOURCES:
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                where = f"{_rel(p)}:{node.lineno} {node.name}"
                if n > MAX_FUNCTION_LINES and f"{_rel(p)}::{node.name}" not in LONG_ALLOWED:
                    over.append(f"{where} ({n} lines)")
    assert not over, "split these functions (or say why in LONG_ALLOWED): " + "; ".join(over)


def test_only_the_layout_module_spells_the_ego4d_layout():
    spelled = []
    for p in SOURCES:
        if _rel(p) == "engine/ego4d/layout.py":
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if "egovlp_fp16" in node.value or "v1/annotations" in node.value:
                    spelled.append(f"{_rel(p)}:{node.lineno}")
    # Docstrings and help text may quote the layout; a path join may not.
    code = [s for s in spelled if not _is_docstring_or_help(s)]
    assert not code, "use engine.ego4d.layout instead of spelling the path: " + ", ".join(code)


def _is_docstring_or_help(where: str) -> bool:
    path, line = where.rsplit(":", 1)
    tree = ast.parse((ROOT / path).read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            c = body[0].value
            if isinstance(c, ast.Constant) and c.lineno <= int(line) <= (c.end_lineno or c.lineno):
                return True
        if isinstance(node, ast.keyword) and node.arg in {"help", "description", "epilog", "placeholder"}:
            if node.value.lineno <= int(line) <= (node.value.end_lineno or node.value.lineno):
                return True
    return False


def test_no_import_cycles_among_the_projects_modules():
    graph: dict[str, set[str]] = {}
    for p in SOURCES:
        mod = _rel(p)[:-3].replace("/", ".").removesuffix(".__init__")
        deps = graph.setdefault(mod, set())
        # Only imports at module level make a cycle at import time; lazy ones inside functions
        # are how the registry resolves screens on purpose.
        for node in ast.parse(p.read_text()).body:
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            deps.update(n for n in names if n.split(".")[0] in {"engine", "nlq_tui"})
    known = set(graph)
    for mod in graph:
        graph[mod] = {d for d in graph[mod] if d in known and d != mod}
    cycles = []
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                cycles.append(" -> ".join([*stack[stack.index(d) :], d]))
            elif d not in state:
                visit(d, [*stack, d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    # A package importing its own submodules in __init__ is not a cycle of concern.
    real = [c for c in cycles if len({x.rsplit(".", 1)[0] for x in c.split(" -> ")}) > 1 or "__init__" in c]
    assert not real, "import cycles: " + "; ".join(real)


def test_the_engine_imports_without_textual():
    code = (
        "import sys, importlib, pkgutil, engine\n"
        "for m in pkgutil.walk_packages(engine.__path__, 'engine.'):\n"
        "    if not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n == 'textual' or n.startswith(('textual.', 'nlq_tui')))\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("path", ["docs/ARCHITECTURE.md"])
def test_every_cited_architecture_section_exists(path):
    headings = {line[3:].strip() for line in (ROOT / path).read_text().splitlines() if line.startswith("## ")}
    cited = {
        (m.group(1), _rel(p))
        for p in [*SOURCES, *ROOT.glob("tests/*.py"), *ROOT.glob("bench/*.py")]
        for m in re.finditer(r'ARCHITECTURE\.md, "([^"\n]+)"', p.read_text())
    }
    missing = sorted(f"{where}: {name!r}" for name, where in cited if name not in headings)
    assert not missing, f"sections cited but not in {path}: " + "; ".join(missing)
