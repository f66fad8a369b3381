"""Test helpers: the example policy's path, fixed local keys for it, and the command line run in-process."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from lakehouse_phi.keys.local import local_keys, local_var
from lakehouse_phi.policy import load_policy
from lakehouse_phi.policy.model import KeySpec

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "conf" / "policy.yaml"
#: where the local runs read the databricks-provider key ``phi-dek`` from
DEK_VAR = local_var("phi-dek")


def demo_env() -> tuple[dict[str, str], dict[str, KeySpec]]:
    """Fixed key material for every key of the example policy (the same in every process), and the override that
    reads the databricks-provider key from the environment."""
    return local_keys(load_policy(EXAMPLE).policy, seed="lakehouse-phi-tests")


def run_cli(*args: str, stdin: str | None = None, env: Mapping[str, str] | None = None,
            cwd: str | os.PathLike[str] | None = None) -> subprocess.CompletedProcess[str]:
    """``lakehouse-phi ARGS`` in this process, through the same entry point (:func:`lakehouse_phi.cli.main`), as a
    :class:`subprocess.CompletedProcess`: exit code, stdout and stderr as the command wrote them. ``env`` is added
    to the environment for the call only; ``stdin`` is the text the command reads.

    A fresh interpreter per command costs about a second of imports; tests that are about the process itself (no
    PySpark imported, no traceback, the console script) still start one."""
    from lakehouse_phi.cli import main

    saved_env = dict(os.environ)
    saved_stdin, saved_cwd = sys.stdin, os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    try:
        os.environ.update(env or {})
        sys.stdin = io.StringIO(stdin or "")
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # --help, --version
                code = int(exc.code or 0)
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        sys.stdin = saved_stdin
        os.chdir(saved_cwd)
    return subprocess.CompletedProcess(["lakehouse-phi", *args], code, out.getvalue(), err.getvalue())
