"""Dependency audit (issue #8, item 6): pip-audit over the installed packages finds nothing that
docs/audit.md does not list with a justification and a review date.

Skips, with the reason, when pip-audit is not installed or can audit nothing (no network, or a
package index that does not serve vulnerability data): an audit that checked nothing is not
clean. ``JOURNEY_PIP_AUDIT`` may name a pip-audit executable outside the project's venv.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import warnings
from datetime import date
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
AUDIT_DOC = REPO / "docs" / "audit.md"
FINDINGS_HEADING = "## Findings"
OWN = {"journey"}  # the project itself: installed editable, on no index
NETWORK_ERRORS = ("ConnectionError", "NameResolutionError", "Max retries exceeded",
                  "Temporary failure in name resolution", "timed out")


def pip_audit_command() -> list[str] | None:
    explicit = os.environ.get("JOURNEY_PIP_AUDIT")
    if explicit:
        return [explicit]
    if find_spec("pip_audit") is not None:
        return [sys.executable, "-m", "pip_audit"]
    found = shutil.which("pip-audit")
    return [found] if found else None


def documented_findings(text: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(package, id) -> (justification, review date) from the table under "## Findings"."""
    section = text.split(FINDINGS_HEADING, 1)[1] if FINDINGS_HEADING in text else ""
    out: dict[tuple[str, str], tuple[str, str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("package", "") or set(cells[0]) <= {"-"}:
            continue
        package, vuln_id, why, reviewed = cells
        out[(package.lower(), vuln_id)] = (why, reviewed)
    return out


def undocumented(dependencies: list[dict[str, Any]],
                 known: dict[tuple[str, str], tuple[str, str]]) -> list[str]:
    """The findings of pip-audit's JSON report that docs/audit.md does not list."""
    return [
        f"{d['name']} {d['version']}: {v['id']} (fixed in {', '.join(v.get('fix_versions', []))})"
        for d in dependencies for v in d.get("vulns", [])
        if (d["name"].lower(), v["id"]) not in known
    ]


def test_undocumented_findings_are_the_unlisted_ones() -> None:
    report: list[dict[str, Any]] = [{"name": "Jinja2", "version": "3.0", "vulns": [
        {"id": "GHSA-x", "fix_versions": ["3.1"]}, {"id": "GHSA-y", "fix_versions": []}]},
        {"name": "six", "version": "1.0", "vulns": []}]
    known = {("jinja2", "GHSA-x"): ("templates are ours only", "2026-12-03")}
    assert undocumented(report, known) == ["Jinja2 3.0: GHSA-y (fixed in )"]


def test_documented_findings_are_complete() -> None:
    """Every listed finding says why it does not apply and when that was reviewed."""
    for (package, vuln_id), (why, reviewed) in documented_findings(AUDIT_DOC.read_text()).items():
        assert why, f"{package} {vuln_id}: no justification in {AUDIT_DOC}"
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", reviewed), f"{package} {vuln_id}: date"
        date.fromisoformat(reviewed)


def test_documented_findings_parser() -> None:
    text = ("intro\n## Findings\n\n| package | id | why | reviewed |\n|---|---|---|---|\n"
            "| Jinja2 | GHSA-x | templates are ours only | 2026-12-03 |\n")
    assert documented_findings(text) == {
        ("jinja2", "GHSA-x"): ("templates are ours only", "2026-12-03")}


@pytest.mark.timeout(600)
def test_installed_packages_have_no_undocumented_vulnerabilities(tmp_path: Path) -> None:
    command = pip_audit_command()
    if command is None:
        pytest.skip("pip-audit is not installed (add it to the dev extras, or set "
                    "JOURNEY_PIP_AUDIT); see docs/audit.md")
    site = sysconfig.get_paths()["purelib"]
    report_path = tmp_path / "audit.json"
    try:
        done = subprocess.run(
            [*command, "--path", site, "-f", "json", "-o", str(report_path),
             "--progress-spinner", "off"],
            capture_output=True, text=True, timeout=540, check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.skip("pip-audit did not finish in 9 minutes (vulnerability service unreachable?)")
    if not report_path.exists():
        if any(e in done.stderr for e in NETWORK_ERRORS):
            pytest.skip(f"pip-audit cannot reach its vulnerability service: "
                        f"{done.stderr.strip().splitlines()[-1][:200]}")
        pytest.fail(f"pip-audit failed (exit {done.returncode}): {done.stderr[-2000:]}")
    dependencies = json.loads(report_path.read_text())["dependencies"]
    audited = [d for d in dependencies if "skip_reason" not in d]
    if not audited:
        reasons = {d["skip_reason"].split(":")[0] for d in dependencies}
        pytest.skip(f"pip-audit could audit none of {len(dependencies)} installed "
                    f"distributions ({'; '.join(sorted(reasons))[:200]}); see docs/audit.md")
    not_audited = sorted(d["name"] for d in dependencies
                         if "skip_reason" in d and d["name"].lower() not in OWN)
    if not_audited:
        warnings.warn(f"pip-audit could not audit: {', '.join(not_audited)}", stacklevel=1)
    missing = undocumented(audited, documented_findings(AUDIT_DOC.read_text()))
    assert not missing, (
        "vulnerabilities not listed in docs/audit.md (upgrade, or document why they do not "
        "apply):\n" + "\n".join(missing))
