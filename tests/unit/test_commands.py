"""Every command is a module of ``lakehouse_phi.commands`` whose ``run`` returns a :class:`CommandResult`, and the
dispatcher prints that result once: ``--format json`` is ``result.data`` with ``schema_version`` first, text is
``result.text``, and stdout is never captured or re-parsed."""

from __future__ import annotations

import argparse
import importlib
import io
import json
import os
import subprocess
import sys
import textwrap
import typing
from pathlib import Path

import pytest

from lakehouse_phi import cli
from lakehouse_phi.cli import COMMANDS, build_parser, main
from lakehouse_phi.commands.result import CommandResult, sorted_keys, with_schema_version
from tests.helpers import ROOT

EXAMPLES = sorted((ROOT / "lakehouse_phi" / "examples").glob("*.yaml"))
CONF = ROOT / "conf"


def _args(*argv: str) -> argparse.Namespace:
    return build_parser(list(argv)).parse_args(list(argv))


def _run(*argv: str) -> CommandResult:
    """The command's own ``run``, called directly (no dispatcher)."""
    args = _args(*argv)
    return importlib.import_module(args._module).run(args)


# ------------------------------------------------------------------------------------------ one module each
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_is_a_commands_module_whose_run_returns_a_command_result(command):
    module_name, _help = COMMANDS[command]
    assert module_name.startswith("lakehouse_phi.commands."), module_name
    module = importlib.import_module(module_name)
    assert callable(module.add_arguments)
    assert typing.get_type_hints(module.run)["return"] is CommandResult


@pytest.mark.parametrize("old", ["policy.cli", "spark.cli", "sql.cli", "confcheck.cli", "audit.cli", "report.cli",
                                 "release.cli", "lifecycle.cli", "suggest.cli", "databricks.cli", "cli_common"])
def test_the_area_cli_modules_are_gone(old):
    assert not (ROOT / "lakehouse_phi" / f"{old.replace('.', '/')}.py").exists()


@pytest.mark.parametrize("policy", EXAMPLES, ids=lambda p: p.name)
def test_validate_returns_its_result(policy, capsys):
    result = _run("validate", str(policy))
    assert isinstance(result, CommandResult) and result.exit_code == 0
    assert result.data["valid"] is True and result.data["problems"] == []
    assert isinstance(result.text, str) and result.text.startswith(f"{policy}: valid (policy ")
    assert capsys.readouterr().out == ""  # run itself prints nothing on stdout


def test_validate_of_an_invalid_policy_returns_exit_2_and_its_problems(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: x\ntables: {t: {source: {path: a, format: csv}, columns: {a: {type: x}}}}\n")
    result = _run("validate", str(bad), "--format", "json")
    assert result.exit_code == 2 and result.data["valid"] is False and result.data["problems"]
    assert capsys.readouterr().out == ""


def test_compile_returns_the_sql_and_the_statements(capsys):
    result = _run("compile", str(EXAMPLES[0]), "--target", "dynamic-views")
    assert result.exit_code == 0 and isinstance(result.text, str)
    assert result.text.startswith("-- ===== dynamic-views/apply.sql\n")
    assert set(result.data["statements"]) == {"dynamic-views"} and result.data["targets"] == ["dynamic-views"]
    assert capsys.readouterr().out == ""


def test_compile_check_returns_exit_1_on_a_stale_folder(tmp_path, capsys):
    result = _run("compile", str(EXAMPLES[0]), "--out", str(tmp_path), "--check", "--format", "json")
    assert result.exit_code == 1 and result.data["up_to_date"] is False and result.data["differences"]
    assert not any(tmp_path.iterdir())  # --check writes nothing
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(("conf", "code"), [("spark-defaults.secure.conf", 0), ("spark-defaults.insecure.conf", 1)])
def test_check_conf_returns_its_report_and_a_text_writer(conf, code, capsys):
    result = _run("check-conf", "--spark-conf", str(CONF / conf))
    assert result.exit_code == code and result.data["ok"] is (code == 0)
    assert capsys.readouterr().out == ""
    assert callable(result.text)  # rich tables, drawn on the stream they are given
    out = io.StringIO()
    result.write_text(out)
    assert "checked: " in out.getvalue()


# ------------------------------------------------------------------------------------- rendered once by main
def test_json_output_is_the_results_data_with_schema_version_first(capsys):
    argv = ["validate", str(EXAMPLES[0]), "--format", "json"]
    result = _run(*argv)
    assert main(argv) == result.exit_code == 0
    out = capsys.readouterr().out
    doc = json.loads(out)
    assert next(iter(doc)) == "schema_version" and doc["schema_version"] == 1
    assert doc == with_schema_version(result.data)
    assert out == json.dumps(with_schema_version(result.data), indent=2) + "\n"


def test_text_output_is_the_results_text(capsys):
    argv = ["compile", str(EXAMPLES[0]), "--target", "databricks"]
    result = _run(*argv)
    capsys.readouterr()
    assert main(argv) == 0
    assert capsys.readouterr().out == result.text


def test_sorted_keys_orders_as_json_sort_keys_does():
    obj = {"b": 1, "a": [{"z": 1, "y": {"d": 2, "c": (3, {"f": 1, "e": 0})}}], "c": {2: "x", 10: "y"}}
    assert json.dumps(sorted_keys(obj), indent=2) == json.dumps(obj, indent=2, sort_keys=True)


@pytest.fixture
def chatty_command(tmp_path, monkeypatch):
    """A command that writes on stdout itself while it runs, then returns its result; it records which stream it
    saw as ``sys.stdout``."""
    (tmp_path / "chatty_cmd.py").write_text(textwrap.dedent("""\
        import sys
        from lakehouse_phi.commands.result import CommandResult
        SEEN = []
        def add_arguments(p):
            p.add_argument("--format", default="text")
        def run(args):
            SEEN.append(sys.stdout)
            print("stray line")
            return CommandResult({"answer": 42, "schema_version": 99}, "the answer is 42\\n", 1)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli.COMMANDS, "chatty", ("chatty_cmd", "writes on stdout"))
    monkeypatch.delitem(sys.modules, "chatty_cmd", raising=False)
    return importlib.import_module("chatty_cmd")


def test_the_dispatcher_does_not_capture_stdout(chatty_command, capsys):
    assert main(["chatty", "--format", "json"]) == 1
    out = capsys.readouterr().out
    assert chatty_command.SEEN == [sys.stdout]  # the command wrote on the real stdout, not a capture buffer
    # the stray line passes through as it was written; the JSON printed after it is the result's data, not a
    # re-parse of what the command printed
    assert out == "stray line\n" + json.dumps({"schema_version": 1, "answer": 42}, indent=2) + "\n"
    assert main(["chatty"]) == 1
    assert capsys.readouterr().out == "stray line\nthe answer is 42\n"


def test_a_run_that_returns_no_command_result_is_an_internal_error(tmp_path, monkeypatch, capsys):
    (tmp_path / "old_style_cmd.py").write_text("def add_arguments(p):\n    pass\ndef run(args):\n    return 0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli.COMMANDS, "old-style", ("old_style_cmd", "returns an int"))
    assert main(["old-style"]) == 1
    assert "internal error (TypeError)" in capsys.readouterr().err


def test_listing_every_command_imports_no_spark_and_no_sql_compiler():
    """``--help`` imports every command module: they import their heavy dependencies inside ``run`` only."""
    heavy = ("pyspark", "sqlglot", "rich", "lakehouse_phi.spark.session")
    code = ("import sys\nfrom lakehouse_phi.cli import build_parser\nbuild_parser(['--help'])\n"
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["[]"]


def test_commands_package_holds_one_module_per_command():
    modules = {m for _name, (m, _h) in COMMANDS.items()}
    files = {f"lakehouse_phi.commands.{p.stem}" for p in (ROOT / "lakehouse_phi" / "commands").glob("*.py")
             if not p.stem.startswith("_") and p.stem != "result"}
    assert modules == files
    assert Path(importlib.import_module("lakehouse_phi.commands._common").__file__).parent.name == "commands"


def test_stderr_lines_are_rendered_once_by_the_dispatcher_not_printed_by_the_command(capsys, tmp_path):
    """A command's outcome lines for stderr travel in CommandResult.stderr: `run` itself writes nothing, and
    rendering puts them on stderr, the result on stdout, in both formats."""
    import io

    from lakehouse_phi.cli import build_parser
    from lakehouse_phi.commands.result import CommandResult

    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ntables: {t: {columns: {ssn: {type: string, phi: ssn}}}}\n")
    args = build_parser(["validate", str(bad)]).parse_args(["validate", str(bad)])
    import importlib

    result = importlib.import_module("lakehouse_phi.commands.validate").run(args)
    assert capsys.readouterr() == ("", "")  # run printed nothing
    assert result.exit_code == 2 and result.stderr[0] == f"{bad}: 3 problems:"
    assert all(line.startswith("  - ") for line in result.stderr[1:])
    out, err = io.StringIO(), io.StringIO()
    assert CommandResult({"a": 1}, "text\n", 1, stderr=["one", "two"]).render(out, as_json=False, err=err) == 1
    assert (out.getvalue(), err.getvalue()) == ("text\n", "one\ntwo\n")
