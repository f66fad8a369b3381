"""``lakehouse-phi`` (also ``python -m lakehouse_phi``).

Each command is a module of :mod:`lakehouse_phi.commands` with ``add_arguments(parser)`` and
``run(args) -> CommandResult``; this module only dispatches, importing a command's module when it runs, and renders
its result once. Nothing here imports PySpark, so ``validate``, ``compile`` and ``check-conf`` stay fast. Exit codes:
0 success, 1 violations found or job refused, 2 bad usage or an invalid policy.

The dispatcher owns what every command shares:

- **one message per failure.** Our errors, and the exceptions :func:`lakehouse_phi.errors.translate` recognises (a
  missing optional package, a missing file, an unreachable service, a Spark error), print one line on stderr
  naming the problem and the fix, and exit with the contract's code. ``--debug`` adds the traceback. An unexpected
  exception prints its class only (its message could quote a data value) and exits 1.
- **output.** The command's :class:`~lakehouse_phi.commands.result.CommandResult` is printed on stdout once: with
  ``--format json`` its ``data`` with ``"schema_version": 1`` first, otherwise its ``text``. A failure prints
  ``{"schema_version": 1, "error": {"code", "message", "place"}}`` on stdout instead (JSON) and one line on stderr.
  What a command says while it runs (progress, diagnostics) goes to stderr.
- **logging.** ``-v`` (INFO), ``-vv``/``--debug`` (DEBUG) and ``-q`` (errors only) set the level of the
  ``lakehouse_phi`` logger, whose records go to stderr.

The global options are accepted before or after the command.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import sys
import traceback
from typing import Any, NoReturn

from lakehouse_phi import __version__
from lakehouse_phi.commands._common import configure_logging
from lakehouse_phi.commands.result import SCHEMA_VERSION, CommandResult
from lakehouse_phi.errors import EXIT_REFUSED, EXIT_USAGE, LakehousePhiError, PolicyError, translate

#: command -> (module with add_arguments/run, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("lakehouse_phi.commands.validate", "load and check a policy; print every error with its place"),
    "ingest": ("lakehouse_phi.commands.ingest", "run the bronze ingest job for one table"),
    "compile": ("lakehouse_phi.commands.compile", "write the governance SQL for a target"),
    "check-conf": ("lakehouse_phi.commands.check_conf", "check Spark/S3A/Databricks settings for PHI leaks"),
    "audit": ("lakehouse_phi.commands.audit", "work with the audit trail (verify)"),
    "report": ("lakehouse_phi.commands.report", "write the HTML compliance report (no data values)"),
    "risk": ("lakehouse_phi.commands.release",
             "k-anonymity and l-diversity of a masked table; exit 1 below the policy"),
    "export": ("lakehouse_phi.commands.release", "a k/l-suppressed, signed Parquet export (and `export verify`)"),
    "rekey": ("lakehouse_phi.commands.lifecycle", "rewrite bronze/quarantine values not at the active key version"),
    "erase": ("lakehouse_phi.commands.lifecycle",
              "delete data subjects' rows (by pseudonym) from bronze/quarantine"),
    "purge": ("lakehouse_phi.commands.lifecycle", "delete bronze/quarantine rows past the table's retention_days"),
    "suggest": ("lakehouse_phi.commands.suggest", "profile a source and write a DRAFT policy for it (to review)"),
    "demo": ("lakehouse_phi.commands.demo", "the whole story on synthetic data, locally"),
    "apply": ("lakehouse_phi.commands.apply", "apply the compiled governance SQL on a Databricks SQL warehouse"),
}

__all__ = ["COMMANDS", "build_parser", "emit", "main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # exit 2 with the usage, as argparse does, but never a traceback
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _add_global_options(parser: argparse.ArgumentParser, top: bool) -> None:
    """``-v``/``-q``/``--debug`` on the top parser and (defaults suppressed, so they do not reset what was given
    before the command) on every command's parser, nested ones included."""
    default: Any = (lambda value: value) if top else (lambda _value: argparse.SUPPRESS)
    group = parser.add_argument_group("output") if top else parser
    group.add_argument("-v", "--verbose", action="count", default=default(0),
                       help="more log output on stderr (-v info, -vv debug)")
    group.add_argument("-q", "--quiet", action="count", default=default(0), help="log errors only")
    group.add_argument("--debug", action="store_true", default=default(False),
                       help="show the traceback of a failure (it may quote data values: keep it off shared logs)")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):  # aliases map to the same parser
                _add_global_options(sub, top=False)


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
    _add_global_options(parser, top=True)
    return parser


# ---------------------------------------------------------------------------------------------------- output
def emit(result: CommandResult, *, as_json: bool) -> int:
    """Print a command's result on stdout, once: ``data`` with ``schema_version`` first (``as_json``), else its
    text; return its exit code. A ``run`` that returns anything else is a bug (an internal error, exit 1)."""
    if not isinstance(result, CommandResult):
        raise TypeError(f"a command's run returned {type(result).__name__}, not a CommandResult")
    return result.render(sys.stdout, as_json=as_json)


def error_envelope(error: LakehousePhiError) -> dict:
    body: dict[str, Any] = {"code": error.code, "message": str(error), "place": error.place}
    if isinstance(error, PolicyError):
        body["problems"] = [{"place": p.place, "message": p.message} for p in error.problems]
    return {"schema_version": SCHEMA_VERSION, "error": body}


def _wants_json(argv: list[str]) -> bool:
    """``--format json`` in the arguments, before they are parsed: a usage error is then reported as JSON too."""
    return any(a == "--format=json" or (a == "--format" and i + 1 < len(argv) and argv[i + 1] == "json")
               for i, a in enumerate(argv))


# ---------------------------------------------------------------------------------------------------- main
def _fail(command: str, exc: BaseException, as_json: bool, debug: bool) -> int:
    """Report a failure: one message (and the envelope in JSON), the traceback only with ``--debug``."""
    error = translate(exc)
    if debug:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    if error is None:  # a bug: its message could quote a value, so only its class is shown
        error = LakehousePhiError(f"internal error ({type(exc).__name__}); rerun with --debug for the traceback and "
                                  "report it (see SECURITY.md before sharing anything that may hold PHI)")
        error.code = "internal"
        code = EXIT_REFUSED
    else:
        code = error.exit_code
    if as_json:
        print(json.dumps(error_envelope(error), indent=2))
    prefix = f"lakehouse-phi {command}" if command else "lakehouse-phi"
    print(f"{prefix}: error: {error}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit code (never raises, except for ``SystemExit`` of ``--help``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = _wants_json(argv)
    debug = "--debug" in argv
    command = next((a for a in argv if a in COMMANDS), "")
    try:
        parser = build_parser(argv)
        stderr = io.StringIO()
        try:
            with contextlib.redirect_stderr(stderr):
                args = parser.parse_args(argv)
        except SystemExit as exc:  # --help/--version (0), or a usage error argparse already worded (2)
            sys.stderr.write(stderr.getvalue())
            if exc.code not in (0, None) and as_json:
                message = (stderr.getvalue().strip().splitlines() or ["bad usage"])[-1]
                print(json.dumps({"schema_version": SCHEMA_VERSION,
                                  "error": {"code": "usage", "message": message, "place": command}}, indent=2))
            return int(exc.code or 0)
        sys.stderr.write(stderr.getvalue())
        debug = bool(args.debug)
        configure_logging(2 if debug else args.verbose - args.quiet)
        as_json = getattr(args, "format", None) == "json"
        module = importlib.import_module(args._module)
        return emit(module.run(args), as_json=as_json)
    except KeyboardInterrupt:  # pragma: no cover
        print("lakehouse-phi: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # stdout closed early (`| head`): not a failure worth a message
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_REFUSED
    except Exception as exc:  # noqa: BLE001 - every failure becomes one message
        return _fail(command, exc, as_json, debug)


def console_main() -> None:
    """The console script and wheel-task entry point: exits with :func:`main`'s code (a job task whose entry point
    returns 1 would otherwise count as a success)."""
    raise SystemExit(main())


if __name__ == "__main__":  # pragma: no cover
    console_main()
