"""The wheel: ``pip wheel . --no-deps`` builds it, it installs on its own in a fresh virtual environment (its core
dependencies only: no PySpark), and its ``lakehouse-phi`` runs ``compile`` outside the repository on the example
policy it ships, writing what ``sql_policies/`` holds. Slow lane (a build and an install take minutes on a loaded
machine): ``make test-slow``."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _run(*cmd: str, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), check=False, capture_output=True, text=True, cwd=cwd, timeout=timeout,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), "PIP_DISABLE_PIP_VERSION_CHECK": "1"})


def test_wheel_builds_installs_alone_and_compiles_outside_the_repo(tmp_path):
    dist = tmp_path / "dist"
    built = _run(sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-w", str(dist), cwd=tmp_path)
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = dist.glob("lakehouse_phi-*-py3-none-any.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "lakehouse_phi/examples/policy.yaml" in names and "lakehouse_phi/py.typed" in names
    # scrub_text's vendored word lists and their licences ship as package data
    assert {f"lakehouse_phi/transforms/scrub_data/{f}" for f in ("first_names.txt.gz", "last_names.txt.gz",
            "english_words.txt.gz", "SOURCES.md", "LICENSE-FAKER.txt", "LICENSE-SCOWL.txt")} <= set(names)
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "notebooks/"))]
    entry = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "lakehouse-phi = lakehouse_phi.cli:console_main" in entry

    env = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env)
    py, cli = env / "bin" / "python", env / "bin" / "lakehouse-phi"
    installed = _run(str(py), "-m", "pip", "install", str(wheel), cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr[-2000:]
    assert _run(str(py), "-c", "import pyspark", cwd=tmp_path).returncode != 0  # the plain install has no Spark

    work = tmp_path / "elsewhere"
    work.mkdir()
    where = _run(str(py), "-c", "import lakehouse_phi, pathlib; print(pathlib.Path(lakehouse_phi.__file__).parent)",
                 cwd=work)
    package = Path(where.stdout.strip())
    assert package.is_relative_to(env), package  # the installed copy, not the repository
    policy = package / "examples" / "policy.yaml"
    done = _run(str(cli), "compile", str(policy), "--target", "all", "--out", str(work / "sql"), cwd=work)
    assert done.returncode == 0, done.stderr[-2000:]
    for path in (ROOT / "sql_policies").rglob("*.sql"):
        rel = path.relative_to(ROOT / "sql_policies")
        assert (work / "sql" / rel).read_text() == path.read_text().replace(str(ROOT), str(work)), rel
    # failures exit non-zero from the console script itself
    assert _run(str(cli), "compile", str(policy), "--check", cwd=work).returncode == 2
    assert _run(str(cli), "validate", str(work / "missing.yaml"), cwd=work).returncode == 2
    assert _run(str(cli), "apply", str(policy), "--dry-run", cwd=work).returncode == 0
