"""Reading the Terraform in terraform/ with python-hcl2 (Terraform itself is not installed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
TERRAFORM = ROOT / "terraform"
MODULE = TERRAFORM / "modules" / "vault-cluster"
EXAMPLE = TERRAFORM / "examples" / "complete"
DATA = Path(__file__).resolve().parent / "data"


def tf_files() -> list[Path]:
    return sorted(TERRAFORM.rglob("*.tf"))


def load(path: Path) -> dict[str, Any]:
    import hcl2

    with path.open() as fh:
        return hcl2.load(fh)


def unquote(value: Any) -> Any:
    """python-hcl2 8 keeps the quotes of labels and string literals."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def blocks(directory: Path, kind: str) -> dict[str, dict[str, Any]]:
    """Every `variable`/`output`/... block of one module: label -> body."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        for entry in load(path).get(kind, []):
            for label, body in entry.items():
                found[unquote(label)] = body
    return found


def resources(directory: Path, rtype: str) -> dict[str, dict[str, Any]]:
    """Every resource (or data source, with kind='data') of one type: name -> body."""
    return _typed(directory, "resource", rtype)


def data_sources(directory: Path, dtype: str) -> dict[str, dict[str, Any]]:
    return _typed(directory, "data", dtype)


def _typed(directory: Path, kind: str, rtype: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        for entry in load(path).get(kind, []):
            for label, named in entry.items():
                if unquote(label) == rtype:
                    for name, body in named.items():
                        found[unquote(name)] = body
    return found
