"""The layering contracts of pyproject.toml ([tool.importlinter]) hold: `lint-imports` over the package's import
graph (architecture.md, third wave: policy -> keys -> transforms/engine -> spark -> storage, commands on top)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _lint_imports(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("lint-imports")
    if not script.exists():
        script = Path(shutil.which("lint-imports") or "lint-imports")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's package, whatever is installed
    return subprocess.run([str(script), "--no-cache", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_the_layering_contracts_hold():
    done = _lint_imports()
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout
    for name in ("Data flows one way", "Commands sit on top", "The Arrow engine and the strategies",
                 "Nothing below spark/ imports Spark"):
        assert name in done.stdout


def test_a_contract_the_code_breaks_is_reported(tmp_path):
    """Not vacuous: the same graph against a contract it breaks (storage imports the shared errors module)."""
    config = tmp_path / "contracts.toml"
    config.write_text('[tool.importlinter]\nroot_package = "lakehouse_phi"\n\n'
                      '[[tool.importlinter.contracts]]\nname = "storage is the bottom"\ntype = "forbidden"\n'
                      'source_modules = ["lakehouse_phi.storage"]\nforbidden_modules = ["lakehouse_phi.errors"]\n')
    done = _lint_imports(str(config), cwd=tmp_path)
    assert done.returncode == 1 and "storage is the bottom BROKEN" in done.stdout


@pytest.mark.parametrize("module", ["lakehouse_phi.engine.plan", "lakehouse_phi.transforms.hmac"])
def test_the_engine_loads_no_sql_compiler(module):
    """What the engine contract means at run time: importing the engine does not import sqlglot."""
    code = f"import sys, {module}; print('sqlglot' in sys.modules, 'pyspark' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    assert out.stdout.split() == ["False", "False"], out.stderr[-2000:]
