"""The package layering: no module imports a module that imports it (directly or through others),
and the engine imports nothing from the I/O shell (runtime, forms, admin)."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("engine", "forms", "runtime", "admin")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, name: str) -> set[str]:  # a package's own __init__ runs too: `from admin.web.x` imports admin.web
    """Project modules `path` imports at module level or in functions (relative imports resolved)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in found if m.split(".")[0] in PACKAGES}


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if "migrations" not in p.parts}
    return {name: {m for m in imports_of(path, name) if m in files and m != name} for name, path in files.items()}


def test_no_module_imports_a_module_that_imports_it():
    edges = graph()
    cycles = []

    def visit(node: str, stack: list[str], done: set[str]) -> None:
        for nxt in sorted(edges[node]):
            if nxt in stack:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in done:
                visit(nxt, stack + [nxt], done)
        done.add(node)

    done: set[str] = set()
    for start in sorted(edges):
        if start not in done:
            visit(start, [start], done)
    # a package's __init__ re-exporting its own modules is not a cycle between modules
    real = [c for c in cycles if not any(a.startswith(b + ".") or b.startswith(a + ".") for a, b in zip(c, c[1:]))]
    assert real == [], "import cycles:\n" + "\n".join(" -> ".join(c) for c in real)


def test_the_engine_imports_nothing_from_the_io_shell():
    edges = graph()
    assert {(m, i) for m, imp in edges.items() if m.startswith("engine") for i in imp if not i.startswith("engine")} == set()


def test_the_pages_and_the_api_do_not_import_each_other():
    edges = graph()
    across = {(m, i) for m, imp in edges.items() for i in imp
              if (m.startswith("admin.web") and i.startswith("admin.api")) or (m.startswith("admin.api") and i.startswith("admin.web"))}
    assert across == set()
