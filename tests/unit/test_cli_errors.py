"""One clear message per failure: every user-facing failure exits with the contract's code and one message naming
the problem and the fix, never a traceback (``--debug`` shows one); with ``--format json`` one object on stdout,
``{"schema_version": 1, "error": {"code", "message", "place"}}``. Each case runs through ``main([...])`` and, for
the no-traceback check, through a real ``python -m lakehouse_phi`` process."""

from __future__ import annotations

import http.server
import importlib.abc
import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
import threading

import pytest

from lakehouse_phi import cli
from lakehouse_phi.cli import main
from lakehouse_phi.errors import (
    EngineError,
    ExternalFailure,
    MissingDependency,
    NotFound,
    Unreachable,
    translate,
)
from lakehouse_phi.keys.providers import Fetchers, load_keys
from lakehouse_phi.policy import load_policy
from tests.helpers import EXAMPLE, ROOT

SENTINEL = "SENTINEL-987-65-4321"
BAD_YAML = "version: 1\nname: x\ntables:\n  t: {source: [csv\n"
BAD_POLICY = textwrap.dedent("""\
    version: 1
    name: bad
    tables:
      t:
        source: {format: csv, path: landing/t}
        bronze: main.bronze.t
        columns:
          x: {type: string, phi: ssn, ingest: {strategy: rot13}}
""")


@pytest.fixture
def files(tmp_path):
    (tmp_path / "bad_yaml.yaml").write_text(BAD_YAML)
    (tmp_path / "bad_policy.yaml").write_text(BAD_POLICY)
    return tmp_path


# (id, argv with {tmp} and {policy}, exit code, JSON error code, fragments of the message)
CASES = [
    ("missing policy file", ["compile", "{tmp}/nope.yaml"], 2, "invalid_policy", ["nope.yaml", "cannot read"]),
    ("unreadable YAML names its line", ["compile", "{tmp}/bad_yaml.yaml"], 2, "invalid_policy",
     ["line 5", "not valid YAML"]),
    ("invalid policy names the place", ["compile", "{tmp}/bad_policy.yaml"], 2, "invalid_policy",
     ["tables.t.columns.x.ingest.strategy"]),
    ("missing audit trail", ["audit", "verify", "{tmp}/none.jsonl"], 2, "usage", ["no such file", "pass the"]),
    ("missing risk file", ["report", "{policy}", "--risk", "{tmp}/risk.json", "--out", "{tmp}/r.html"], 2, "usage",
     ["--risk", "no such file"]),
    ("output under a file", ["compile", "{policy}", "--out", "{tmp}/bad_yaml.yaml/sql"], 2, "not_found",
     ["bad_yaml.yaml/sql", "check the path"]),
    ("missing spark-defaults file", ["check-conf", "--spark-conf", "{tmp}/nope.conf"], 2, "usage",
     ["nope.conf: no such file"]),
    ("missing argument", ["ingest", "{policy}"], 2, "usage", ["--table"]),
    ("unknown option", ["validate", "{policy}", "--colour"], 2, "usage", ["unrecognized arguments: --colour"]),
    ("nothing to check", ["check-conf"], 2, "usage", ["nothing to check", "--spark-conf"]),
    ("unknown table", ["ingest", "{policy}", "--table", "nope"], 2, "usage", ["--table 'nope'", "declared"]),
    ("malformed --key", ["ingest", "{policy}", "--table", "patients", "--key", "phi-dek"], 2, "usage",
     ["NAME=PROVIDER:REF"]),
    ("unknown engine", ["ingest", "{policy}", "--table", "patients", "--engine", "warp"], 2, "usage",
     ["unknown engine 'warp'"]),
]


def _argv(template: list[str], tmp) -> list[str]:
    return [a.format(tmp=tmp, policy=EXAMPLE) for a in template]


@pytest.mark.parametrize("name, template, code, json_code, fragments", CASES, ids=[c[0] for c in CASES])
def test_failure_through_main(files, capsys, name, template, code, json_code, fragments):
    argv = _argv(template, files)
    assert main(argv) == code
    out, err = capsys.readouterr()
    assert "Traceback" not in err and out == ""
    assert err.count("error:") == 1, err
    for fragment in fragments:
        assert fragment in err

    assert main([*argv, "--format", "json"]) == code
    out, err = capsys.readouterr()
    doc = json.loads(out)  # exactly one JSON document on stdout
    assert list(doc) == ["schema_version", "error"] and doc["schema_version"] == 1
    assert set(doc["error"]) >= {"code", "message", "place"} and doc["error"]["code"] == json_code
    for fragment in fragments:
        assert fragment in doc["error"]["message"]
    assert "Traceback" not in err


#: One case per place a failure starts: argparse, the policy loader, a command's own check, the engine choice.
#: (Every case runs through main() above; a fresh interpreter costs about a second each.)
PROCESS_CASES = [c for c in CASES if c[0] in {"missing argument", "invalid policy names the place",
                                               "missing audit trail", "unknown engine"}]


@pytest.mark.parametrize("name, template, code, json_code, fragments", PROCESS_CASES,
                         ids=[c[0] for c in PROCESS_CASES])
def test_failure_in_a_real_process_prints_no_traceback(files, name, template, code, json_code, fragments):
    done = subprocess.run([sys.executable, "-m", "lakehouse_phi", *_argv(template, files)], capture_output=True,
                          text=True, timeout=120, cwd=files)
    assert done.returncode == code
    assert "Traceback" not in done.stderr and fragments[0] in done.stderr


def test_policy_error_envelope_lists_every_problem_with_its_place(files, capsys):
    assert main(["compile", str(files / "bad_policy.yaml"), "--format", "json"]) == 2
    error = json.loads(capsys.readouterr().out)["error"]
    places = [p["place"] for p in error["problems"]]
    assert places == ["tables.t.columns.x.ingest.strategy", "tables.t.fingerprint_key"]
    assert error["place"] == places[0]


def test_debug_shows_the_traceback(files, capsys):
    assert main(["--debug", "audit", "verify", str(files / "none.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.count("error: audit trail") == 1
    assert main(["audit", "verify", str(files / "none.jsonl"), "--debug"]) == 2  # after the command too
    assert "Traceback" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ unexpected errors
@pytest.fixture
def boom_command(tmp_path, monkeypatch):
    (tmp_path / "boom_cmd.py").write_text(textwrap.dedent(f"""\
        def add_arguments(p):
            p.add_argument("--format", default="text")
        def run(args):
            raise ValueError("value {SENTINEL} could not be parsed")
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli.COMMANDS, "boom", ("boom_cmd", "fails"))


def test_an_unexpected_exception_shows_its_class_never_its_message(boom_command, capsys):
    assert main(["boom"]) == 1
    out, err = capsys.readouterr()
    assert "internal error (ValueError)" in err and "--debug" in err
    assert SENTINEL not in out + err and "Traceback" not in err
    assert main(["boom", "--format", "json"]) == 1
    out, _ = capsys.readouterr()
    assert json.loads(out)["error"]["code"] == "internal" and SENTINEL not in out
    assert main(["boom", "--debug"]) == 1
    assert SENTINEL in capsys.readouterr().err  # only when asked for


# ------------------------------------------------------------------------------------- optional dependencies
def _run_without(modules: list[str], *argv: str, cwd=None) -> subprocess.CompletedProcess:
    """``python -m lakehouse_phi ARGV`` in a process where importing ``modules`` fails as if not installed."""
    shim = (f"import sys\nfor m in {modules!r}: sys.modules[m] = None\n"
            "from lakehouse_phi.cli import main\nraise SystemExit(main(sys.argv[1:]))\n")
    return subprocess.run([sys.executable, "-c", shim, *argv], capture_output=True, text=True, timeout=120,
                          cwd=cwd or ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.parametrize("blocked, argv, extra", [
    (["pyspark", "py4j"], ["ingest", str(EXAMPLE), "--table", "patients"], "spark"),
    (["pyspark", "py4j"], ["demo", "--out", "{tmp}/demo"], "spark"),
    (["pysail"], ["ingest", str(EXAMPLE), "--table", "patients", "--engine", "sail"], "local"),
], ids=["core-only ingest", "core-only demo", "sail without pysail"])
def test_a_missing_optional_package_says_what_to_install(files, blocked, argv, extra):
    done = _run_without(blocked, *[a.format(tmp=files) for a in argv])
    assert done.returncode == 2, done.stderr
    assert f"pip install 'lakehouse-phi[{extra}]'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (files / "demo").exists()  # the demo stops before generating anything


def test_core_only_ingest_json_envelope(files):
    done = _run_without(["pyspark", "py4j"], "ingest", str(EXAMPLE), "--table", "patients", "--format", "json")
    doc = json.loads(done.stdout)
    assert done.returncode == 2 and doc["schema_version"] == 1
    assert doc["error"]["code"] == "missing_dependency" and "lakehouse-phi[spark]" in doc["error"]["message"]


class _Blocker(importlib.abc.MetaPathFinder):
    """Makes ``import NAME`` fail as it does when NAME is not installed."""

    def __init__(self, names: set[str]) -> None:
        self.names = names

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


@pytest.mark.parametrize("module, extra", [("databricks.sdk", "databricks"), ("boto3", "aws"),
                                           ("deltalake", "local"), ("pyspark.sql", "spark")])
def test_import_errors_of_optional_packages_map_to_their_extra(monkeypatch, module, extra):
    for name in list(sys.modules):
        if name.split(".")[0] == module.split(".")[0]:
            monkeypatch.delitem(sys.modules, name)
    blocker = _Blocker({module.split(".")[0]})
    monkeypatch.setattr(sys, "meta_path", [blocker, *sys.meta_path])
    with pytest.raises(ImportError) as caught:
        __import__(module)
    error = translate(caught.value)
    assert isinstance(error, MissingDependency) and error.exit_code == 2
    assert f"pip install 'lakehouse-phi[{extra}]'" in str(error)


def test_an_import_error_of_something_else_is_not_called_optional():
    try:
        import lakehouse_phi_no_such_module  # noqa: F401
    except ImportError as exc:
        assert translate(exc) is None


# ---------------------------------------------------------------------------------------- keys and services
def test_missing_key_says_where_it_is_declared_and_how_to_pass_one():
    loaded = load_policy(EXAMPLE)
    with pytest.raises(Exception) as caught:
        load_keys(loaded.policy.keys, [("pseudonym", "hmac"), ("phi-dek", "aes")], Fetchers(environ={}))
    message = str(caught.value)
    assert caught.value.exit_code == 1
    assert "keys.pseudonym" in message and "keys.phi-dek" in message
    assert "LAKEHOUSE_PHI_PSEUDONYM_KEY is not set" in message
    for how in ("--key NAME=env:VAR", "--key NAME=file:PATH", "databricks:SCOPE/KEY", "openssl rand -base64 32"):
        assert how in message


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_service_that_does_not_answer_is_one_message():
    with pytest.raises(OSError) as caught:
        socket.create_connection(("127.0.0.1", _closed_port()), timeout=5)
    error = translate(caught.value)
    assert isinstance(error, Unreachable) and error.exit_code == 1
    assert "check the endpoint" in str(error)


class _Workspace(http.server.BaseHTTPRequestHandler):
    """A loopback stand-in for a Databricks workspace whose SQL warehouse refuses every statement."""

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # host metadata: none
        self._answer(404, {"error_code": "NOT_FOUND", "message": "no metadata"})

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer(403, {"error_code": "PERMISSION_DENIED", "message": "warehouse abc: no access"})

    def log_message(self, *args):
        pass


def test_a_warehouse_that_refuses_is_one_message_naming_the_fix():
    sdk = pytest.importorskip("databricks.sdk")
    from databricks.sdk.config import Config

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Workspace)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        host = f"http://127.0.0.1:{server.server_address[1]}"
        client = sdk.WorkspaceClient(config=Config(host=host, token="dapi-test", retry_timeout_seconds=5))
        with pytest.raises(Exception) as caught:
            client.statement_execution.execute_statement(statement="SELECT 1", warehouse_id="abc")
    finally:
        server.shutdown()
    error = translate(caught.value)
    assert isinstance(error, Unreachable) and error.exit_code == 1
    assert "warehouse abc: no access" in str(error) and "DATABRICKS_HOST" in str(error)


def test_spark_errors_show_their_class_only():
    from pyspark.errors.exceptions.connect import AnalysisException, SparkConnectGrpcException

    missing = translate(AnalysisException(message=f"[PATH_NOT_FOUND] Path does not exist: {SENTINEL}",
                                          errorClass="PATH_NOT_FOUND"))
    assert isinstance(missing, NotFound) and missing.exit_code == 2 and SENTINEL not in str(missing)
    no_delta = translate(AnalysisException(message="[DATA_SOURCE_NOT_FOUND] delta", errorClass="DATA_SOURCE_NOT_FOUND"))
    assert isinstance(no_delta, EngineError) and "--table-format parquet" in str(no_delta)
    other = translate(AnalysisException(message=f"[CAST_INVALID_INPUT] '{SENTINEL}' cannot be cast",
                                        errorClass="CAST_INVALID_INPUT"))
    assert isinstance(other, ExternalFailure) and "CAST_INVALID_INPUT" in str(other) and SENTINEL not in str(other)
    assert isinstance(translate(SparkConnectGrpcException(message="unavailable")), Unreachable)


# --------------------------------------------------------------------------------------------------- logging
@pytest.mark.parametrize("flags, level", [([], logging.WARNING), (["-v"], logging.INFO), (["-vv"], logging.DEBUG),
                                          (["-q"], logging.ERROR), (["--debug"], logging.DEBUG)])
def test_verbosity_sets_the_package_logger(flags, level, capsys):
    assert main([*flags, "validate", str(EXAMPLE)]) == 0
    assert logging.getLogger("lakehouse_phi").level == level
    assert main(["validate", str(EXAMPLE), *flags]) == 0  # after the command as well
    assert logging.getLogger("lakehouse_phi").level == level
    capsys.readouterr()
    logging.getLogger("lakehouse_phi.sql").info("an info record")
    assert ("an info record" in capsys.readouterr().err) == (level <= logging.INFO)


# ---------------------------------------------------------------------------------------------- JSON outputs
def test_every_json_output_starts_with_schema_version(tmp_path, capsys, monkeypatch):
    from lakehouse_phi.audit import JsonlSink, new_event
    from tests.helpers import demo_env

    for var, value in demo_env()[0].items():  # the report checks the example's sealed trail with its key
        monkeypatch.setenv(var, value)

    trail = tmp_path / "audit.jsonl"
    JsonlSink(trail).append(new_event(run_id="r1", actor="etl", event="ingest", policy_name="clinic",
                                      policy_sha256="ab" * 32, table="patients", rows_read=1, rows_written=1,
                                      rows_quarantined=0, columns={}))
    commands = [
        ["validate", str(EXAMPLE)],
        ["compile", str(EXAMPLE), "--target", "all"],
        ["compile", str(EXAMPLE), "--out", str(tmp_path / "sql")],
        ["check-conf", "--conf", "spark.io.encryption.enabled=false"],
        ["audit", "verify", str(trail)],
        ["report", str(EXAMPLE), "--audit", str(trail), "--out", str(tmp_path / "r.html")],
    ]
    for argv in commands:
        main([*argv, "--format", "json"])
        doc = json.loads(capsys.readouterr().out)
        assert next(iter(doc)) == "schema_version" and doc["schema_version"] == 1, argv
        assert "error" not in doc, argv


def test_an_unreachable_aws_endpoint_is_one_message_naming_the_fix(monkeypatch):
    boto3 = pytest.importorskip("boto3")
    from botocore.config import Config as BotoConfig

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    kms = boto3.client("kms", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{_closed_port()}",
                       config=BotoConfig(retries={"max_attempts": 1}, connect_timeout=2))
    with pytest.raises(Exception) as caught:
        kms.decrypt(CiphertextBlob=b"\x00" * 32)
    error = translate(caught.value)
    assert isinstance(error, Unreachable) and error.exit_code == 1
    assert "127.0.0.1" in str(error) and "AWS_ENDPOINT_URL" in str(error)
