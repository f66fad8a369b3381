"""``lakehouse-phi`` (also ``python -m lakehouse_phi``).

Each command lives in its area's ``cli.py`` with ``add_arguments(parser)`` and ``run(args) -> int``; this module
only dispatches, importing an area when its command runs. Nothing here imports PySpark, so ``validate``,
``compile`` and ``check-conf`` stay fast. Exit codes: 0 success, 1 violations found or job refused, 2 bad usage or
an invalid policy.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from lakehouse_phi import __version__
from lakehouse_phi.errors import EXIT_USAGE, LakehousePhiError

#: command -> (module with add_arguments/run, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("lakehouse_phi.policy.cli", "load and check a policy; print every error with its place"),
    "ingest": ("lakehouse_phi.spark.cli", "run the bronze ingest job for one table"),
    "compile": ("lakehouse_phi.sql.cli", "write the governance SQL for a target"),
    "check-conf": ("lakehouse_phi.confcheck.cli", "check Spark/S3A/Databricks settings for PHI leaks"),
    "audit": ("lakehouse_phi.audit.cli", "work with the audit trail (verify)"),
    "demo": ("lakehouse_phi.demo", "the whole story on synthetic data, locally"),
    "apply": ("lakehouse_phi.databricks.cli", "apply the compiled governance SQL on a Databricks SQL warehouse"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # exit 2 with the usage, as argparse does, but never a traceback
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """All commands are listed; only the invoked one (all of them for ``--help``) imports its area."""
    argv = sys.argv[1:] if argv is None else argv
    chosen = next((a for a in argv if a in COMMANDS), None)
    parser = _Parser(prog="lakehouse-phi", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"lakehouse-phi {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if chosen is None or chosen == name:
            importlib.import_module(module).add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def add_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="text for people (default) or JSON on stdout")


def main(argv: list[str] | None = None) -> int:
    args = build_parser(argv).parse_args(argv)
    try:
        return int(importlib.import_module(args._module).run(args))
    except LakehousePhiError as exc:
        print(f"lakehouse-phi {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:  # pragma: no cover
        return 130


def console_main() -> None:
    """The console script and wheel-task entry point: exits with :func:`main`'s code (a job task whose entry point
    returns 1 would otherwise count as a success)."""
    raise SystemExit(main())


if __name__ == "__main__":  # pragma: no cover
    console_main()
