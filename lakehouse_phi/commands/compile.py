"""``lakehouse-phi compile POLICY --target databricks|databricks-abac|dynamic-views|all [--out DIR] [--check]
[--format text|json]``.

Without ``--out`` the SQL goes to stdout. With ``--out`` the files are written to ``DIR/<target>/``; with
``--check`` as well, nothing is written and the exit code says whether ``DIR`` holds exactly what the policy
compiles to (0) or not (1, naming each differing file). An invalid policy exits 2 with every problem and its place.
No PySpark is imported.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakehouse_phi.commands._common import add_format
from lakehouse_phi.commands.result import CommandResult
from lakehouse_phi.errors import EXIT_OK, EXIT_REFUSED, EXIT_USAGE

if TYPE_CHECKING:
    from lakehouse_phi.policy import LoadedPolicy
    from lakehouse_phi.sql.compile import Compiled

_TARGET_CHOICES = ("databricks", "databricks-abac", "dynamic-views", "all")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("policy", metavar="POLICY", help="path to the policy YAML")
    p.add_argument("--target", choices=_TARGET_CHOICES, default="databricks",
                   help="databricks (Unity Catalog masks, row filters, tags, comments, grants; default), "
                        "databricks-abac (the same through tag-matching ABAC policies), dynamic-views, or all")
    p.add_argument("--out", metavar="DIR", help="write DIR/<target>/apply.sql and rollback.sql (e.g. sql_policies)")
    p.add_argument("--check", action="store_true",
                   help="with --out: write nothing; exit 1 if DIR differs from what POLICY compiles to")
    add_format(p)


def run(args: argparse.Namespace) -> CommandResult:
    from lakehouse_phi.policy import load_policy

    if args.check and not args.out:
        return CommandResult(exit_code=EXIT_USAGE,
                             stderr=["lakehouse-phi compile: --check needs --out DIR (the folder to compare)"])
    loaded = load_policy(args.policy)  # PolicyError: exit 2; with --format json, the CLI's error envelope
    comp = _Compilation.compile(loaded, args)
    if args.out is None:
        return _sql(comp)
    if args.check:
        return _check_folder(comp, args, Path(args.out), loaded.sha256)
    return _write_folder(comp, Path(args.out), as_json=args.format == "json")


@dataclass
class _Compilation:
    """What a policy compiles to: per target, and as files by relative path (monitoring queries included)."""

    compiled: list[Compiled]
    files: dict[str, str]
    folders: list[str]
    head: dict[str, Any]

    @classmethod
    def compile(cls, loaded: LoadedPolicy, args: argparse.Namespace) -> _Compilation:
        from lakehouse_phi.sql.compile import compile_ir
        from lakehouse_phi.sql.dialects import TARGETS
        from lakehouse_phi.sql.ir import build_ir
        from lakehouse_phi.sql.monitoring import monitoring_files

        targets = list(TARGETS) if args.target == "all" else [args.target]
        ir = build_ir(loaded)
        compiled = [compile_ir(ir, t) for t in targets]
        files = {rel: text for c in compiled for rel, text in c.files().items()}
        folders = list(targets)
        if any(t.startswith("databricks") for t in targets):  # who read what: system.access.audit queries
            files.update(monitoring_files(ir))
            folders.append("monitoring")
        head = {"policy": args.policy, "name": loaded.name, "sha256": loaded.sha256, "targets": targets}
        return cls(compiled, files, folders, head)


def _sql(comp: _Compilation) -> CommandResult:
    """No ``--out``: the statements (json) or the files' text go to stdout."""
    statements = {c.target: {which: [{"kind": s.kind, "about": s.about, "sql": s.sql} for s in sts]
                             for which, sts in (("apply", c.apply), ("rollback", c.rollback))}
                  for c in comp.compiled}
    text = "".join(f"-- ===== {rel}\n{text}\n" for rel, text in comp.files.items())
    return CommandResult({**comp.head, "statements": statements}, text)


def _check_folder(comp: _Compilation, args: argparse.Namespace, folder: Path, sha256: str) -> CommandResult:
    """``--out DIR --check``: exit 1, naming each file, if DIR differs from what the policy compiles to."""
    from lakehouse_phi.sql.compile import differences

    diff = differences(comp.files, folder, comp.folders)
    result = CommandResult({**comp.head, "out": str(folder), "up_to_date": not diff, "differences": diff},
                           exit_code=EXIT_REFUSED if diff else EXIT_OK)
    if args.format == "json":
        return result
    if diff:
        result.stderr = [f"{folder}: {len(diff)} file(s) differ from what {args.policy} compiles to; regenerate "
                         f"with lakehouse-phi compile {args.policy} --target {args.target} --out {folder}",
                         *(f"  - {d}" for d in diff)]
    else:
        result.stderr = [f"{folder}: up to date with {args.policy} (sha256 {sha256[:12]}…)"]
    return result


def _write_folder(comp: _Compilation, folder: Path, *, as_json: bool) -> CommandResult:
    from lakehouse_phi.sql.compile import write

    written = write(comp.files, folder)
    return CommandResult({**comp.head, "out": str(folder), "written": [str(p) for p in written]},
                         stderr=[] if as_json else [f"wrote {p}" for p in written])
