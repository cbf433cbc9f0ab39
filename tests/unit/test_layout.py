"""The package's layering, read from its source: test support stays out of the production path,
and the runbook engine knows no service (the caller hands it its table of actions)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "vaultops"
_TESTING = re.compile(r"vaultops\.testing(\.|$)")
# A string that is a module path or "module:Class" (a plugin table's entry) counts as an import too.
_TARGET = re.compile(r"vaultops\.testing(\.\w+)*(:\w+)?")



def _modules(under: Path) -> list[Path]:
    return [p for p in sorted(under.rglob("*.py")) if "__pycache__" not in p.parts]


def _names_testing(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(_TESTING.match(a.name) for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.module and _TESTING.match(node.module):
            return True
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and _TARGET.fullmatch(node.value):
            return True
    return False


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def test_nothing_outside_vaultops_testing_imports_it() -> None:
    offenders = {str(p.relative_to(PKG)) for p in _modules(PKG)
                 if "testing" not in p.relative_to(PKG).parts[:1] and _names_testing(p)}
    assert offenders == set()


def test_the_dns_registry_names_no_fake() -> None:
    from vaultops.dns import PROVIDERS

    assert not any(_TARGET.fullmatch(target) for target in PROVIDERS.values())


def test_the_runbook_package_imports_no_service() -> None:
    for path in _modules(PKG / "runbook"):
        assert not {m for m in _imports(path) if m.startswith(("vaultops.services", "vaultops.cli", "vaultops.tui"))}, \
            path
