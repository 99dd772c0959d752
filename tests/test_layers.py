"""The package's structure holds: layers import only downwards (function-level and
type-checking imports included), there is no import circle, migrations are frozen, and
the declared Python API is importable from the package's top without loading it all."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "n8n_deploy"
VERSIONS = ROOT / "migrations" / "versions"

#: Each layer may import from itself and the layers below it.  ``store`` and ``n8n`` are
#: side by side: neither imports the other.
LAYERS = {"base": 0, "store": 1, "n8n": 1, "apikeys": 2, "cli": 3}
TOP = 4  # n8n_deploy/__init__.py and __main__.py


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path, known: set[str]) -> Iterator[str]:
    """Every n8n_deploy module ``path`` imports, wherever the import statement is."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("n8n_deploy"):
                    yield alias.name
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("n8n_deploy"):
            assert node.level == 0, f"{path}: use absolute imports"
            module = node.module or ""
            for alias in node.names:
                candidate = f"{module}.{alias.name}"
                yield candidate if candidate in known else module


def _layer(module: str) -> tuple[str, int]:
    parts = module.split(".")
    if len(parts) < 3 and (len(parts) == 1 or parts[1] not in LAYERS):
        return "top", TOP
    return parts[1], LAYERS[parts[1]]


GRAPH = {
    name: sorted(set(_imports(path, set(_modules()))) - {name}) for name, path in _modules().items()
}


def test_every_module_is_in_a_layer() -> None:
    for name in GRAPH:
        layer, _ = _layer(name)
        assert layer in (*LAYERS, "top"), name


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_point_down_the_layers(module: str) -> None:
    layer, rank = _layer(module)
    for imported in GRAPH[module]:
        other, other_rank = _layer(imported)
        assert other_rank < rank or other == layer, (
            f"{module} ({layer}) imports {imported} ({other}): a layer may only import "
            "from itself and the layers below it"
        )


def test_there_is_no_import_circle() -> None:
    seen: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        seen[module] = 1
        for imported in GRAPH.get(module, []):
            if seen.get(imported) == 1:
                circle = [*path[path.index(imported) :], imported]
                raise AssertionError("import circle: " + " -> ".join(circle))
            if imported not in seen:
                visit(imported, [*path, imported])
        seen[module] = 2

    for module in sorted(GRAPH):
        if module not in seen:
            visit(module, [module])


def test_no_two_modules_differ_only_by_a_suffix() -> None:
    stems = sorted({path.stem for path in PACKAGE.rglob("*.py")} - {"__init__", "__main__"})
    stems += [path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists()]
    for one, other in combinations(sorted(set(stems)), 2):
        assert not other.startswith(one) and not one.startswith(other), (one, other)


@pytest.mark.parametrize("revision", sorted(p.name for p in VERSIONS.glob("[0-9]*.py")))
def test_a_migration_imports_nothing_from_the_program(revision: str) -> None:
    """Revisions are frozen: a later change to n8n_deploy must not change what they do."""
    imported = set(_imports(VERSIONS / revision, set()))
    assert not imported, f"{revision} imports {sorted(imported)}"


def test_every_test_that_starts_a_process_is_marked_e2e() -> None:
    """``make test-fast`` runs ``-m "not e2e"``: a test that starts a process (or calls a
    helper of its module that does) must carry the marker."""
    unmarked = []
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        helpers = {"installed_script", "imported_modules"} | {
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef)
            and not node.name.startswith("test_")
            and "subprocess" in ast.unparse(node)
        }
        for node in tree.body:
            if not (isinstance(node, ast.FunctionDef) and node.name.startswith("test_")):
                continue
            body = ast.unparse(node)
            starts = "subprocess." in body or any(f"{name}(" in body for name in helpers)
            marked = any("e2e" in ast.unparse(d) for d in node.decorator_list)
            if (
                starts
                and not marked
                and node.name != "test_every_test_that_starts_a_process_is_marked_e2e"
            ):
                unmarked.append(f"{path.name}::{node.name}")
    assert not unmarked, unmarked


@pytest.mark.e2e
def test_the_declared_api_is_importable_from_the_top_and_loaded_lazily() -> None:
    import n8n_deploy

    code = (
        "import sys, n8n_deploy\n"
        "heavy = ('sqlalchemy', 'alembic', 'httpx', 'rich', 'jwt')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "for name in n8n_deploy.__all__:\n"
        "    getattr(n8n_deploy, name)\n"
        "assert 'sqlalchemy' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert {"add_key", "open_database", "validate_key", "ExitStatus"} <= set(n8n_deploy.__all__)
    assert set(n8n_deploy.__all__) == {"__version__", *n8n_deploy._API}
    with pytest.raises(AttributeError, match="no attribute 'not_there'"):
        n8n_deploy.not_there  # noqa: B018
