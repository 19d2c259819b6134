"""The documentation is self-contained: no pointer to files a user of the library does not have.

The papers are cited by authors, title, venue, year and arXiv id / DOI (README, "References"); the
design is in the repository's own DESIGN.md. A docstring, comment or markdown file that points at the
development-time folder next to the repository (its design notes or its plain-text copies of the papers)
fails here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUFFIXES = (".py", ".md", ".toml")

# Built from pieces so that this file does not match itself.
_SHARED = "shared"
FORBIDDEN = {
    "a path into the sibling development folder": re.compile(re.escape("../" + _SHARED)),
    "the development copies of the papers": re.compile(re.escape(_SHARED + "/" + "seeds")),
    "a paper file number": re.compile(r"\bseeds/0" + r"0"),
    "a paper cited by file number": re.compile(r"\bseed 0" + r"0[0-9]\b"),
    # a three-digit file number alone, in parentheses or before "Sec." / "Table" / "Fig." (not 10,000 or 2_000)
    "a paper cited by bare file number": re.compile(r"(?<![\d.,_])0" + r"0[0-4](?=[,)]| Sec\.| Table| Fig\.)"),
    "the development digest of the papers": re.compile(r"\bPAPERS" + r"\.md\b"),
}


def _project_files() -> list[Path]:
    """Tracked files plus new files not ignored by .gitignore (so a file is checked before its commit)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout to list the project's files")
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    files = [ROOT / line for line in out.splitlines() if line.endswith(SUFFIXES)]
    return [f for f in files if f.is_file()]


def test_the_listing_finds_the_documentation():
    names = {f.relative_to(ROOT).as_posix() for f in _project_files()}
    assert {"README.md", "DESIGN.md", "pyproject.toml", "benchmarks/RESULTS.md", "solvers/wmmse.py"} <= names


def test_no_pointers_to_files_users_do_not_have():
    found = []
    for path in _project_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for what, pattern in FORBIDDEN.items():
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{path.relative_to(ROOT)}:{line}: {what} ({match.group(0)!r})")
    assert not found, ("cite the paper (authors, title, venue, year, arXiv id / DOI) or DESIGN.md instead:\n"
                       + "\n".join(found))


def test_readme_lists_the_references():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "## References" in text
    for ident in ("arXiv:[1705.09412]", "arXiv:[2006.08448]", "arXiv:[2009.10812]", "arXiv:[2007.07632]",
                  "10.1109/TSP.2011.2147784", "arXiv:[1808.01486]"):
        assert ident in text, ident


@pytest.mark.parametrize("script", sorted((ROOT / "examples").glob("*.py")) + sorted((ROOT / "benchmarks").glob("*.py")),
                         ids=lambda p: p.name)
def test_scripts_set_the_thread_policy_before_torch_loads(script):
    """A script that imports torch before ``l2o_env``/``solvers`` gets spinning OpenMP threads, which slowed a
    shared 2-core machine's training several-fold; each script must set ``OMP_WAIT_POLICY`` (or import the
    library, which sets it) before its first ``import torch``."""
    lines = script.read_text().splitlines()
    first_torch = next((i for i, l in enumerate(lines) if re.match(r"(import torch|from torch)\b", l)), None)
    if first_torch is None:
        return
    before = "\n".join(lines[:first_torch])
    assert ("OMP_WAIT_POLICY" in before or re.search(r"^(import|from) (l2o_env|solvers)\b", before, re.M)), (
        f"{script.name}: `import torch` on line {first_torch + 1} comes before OMP_WAIT_POLICY is set")
