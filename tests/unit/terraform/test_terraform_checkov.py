"""checkov passes on terraform/, and every skipped check carries its reason.

checkov pins an older boto3/packaging than vaultops, so it lives in its own
venv (.venv-checkov, created by scripts/test):
    python3 -m venv .venv-checkov && .venv-checkov/bin/pip install 'checkov>=3.3,<3.4'
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from terraform_helpers import ROOT, TERRAFORM

MIN_REASON = 40  # characters: a reason, not "false positive"


def _checkov() -> str | None:
    for candidate in (os.environ.get("VAULTOPS_CHECKOV"), str(ROOT / ".venv-checkov" / "bin" / "checkov")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("checkov")


CHECKOV = _checkov()


@pytest.fixture(scope="module")
def report() -> dict:
    if CHECKOV is None:
        pytest.skip("checkov is not installed: python3 -m venv .venv-checkov && "
                    ".venv-checkov/bin/pip install 'checkov>=3.3,<3.4'")
    # --skip-download: no calls to the vendor's API (there is no network here, nor in CI).
    proc = subprocess.run(
        [CHECKOV, "-d", str(TERRAFORM), "--framework", "terraform", "--skip-download",
         "--compact", "-o", "json"],
        capture_output=True, text=True, timeout=300, cwd=ROOT, check=False,
    )
    assert proc.stdout.strip(), f"checkov printed nothing (exit {proc.returncode}): {proc.stderr[-2000:]}"
    data = json.loads(proc.stdout)
    reports = data if isinstance(data, list) else [data]
    terraform = [r for r in reports if r.get("check_type") == "terraform"]
    assert len(terraform) == 1, f"unexpected checkov report: {proc.stdout[:500]}"
    return terraform[0]


def test_checkov_finds_no_failed_check(report: dict) -> None:
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
              for c in report["results"]["failed_checks"]]
    assert not failed, "checkov failures:\n" + "\n".join(failed)
    summary = report["summary"]
    assert summary["parsing_errors"] == 0
    # It really scanned the module through the example, not an empty folder.
    assert summary["resource_count"] >= 30 and summary["passed"] >= 100, summary


def test_every_skipped_check_is_justified(report: dict) -> None:
    skipped = report["results"].get("skipped_checks", [])
    assert len(skipped) == report["summary"]["skipped"]
    for check in skipped:
        reason = check["check_result"].get("suppress_comment", "")
        assert len(reason) >= MIN_REASON, f"{check['check_id']} on {check['resource']}: reason {reason!r}"


def test_skip_comments_all_have_reasons_in_the_source() -> None:
    """Also the ones checkov did not need: a bare `#checkov:skip=ID` is not allowed."""
    for path in TERRAFORM.rglob("*.tf"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "checkov:skip" in line:
                m = re.search(r"#checkov:skip=(CKV2?_AWS_\d+):(.+)$", line)
                assert m and len(m.group(2).strip()) >= MIN_REASON, f"{path}:{number}: {line.strip()}"
