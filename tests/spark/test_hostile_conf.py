"""Issue 16 item 9 against the real thing: the settings spark-submit gives an application from a properties file
with form feeds, NEL, NBSP and continuation lines, and from ``--conf`` pairs with spaces around the key, are the
ones the validator reads; and ``--allow-insecure`` is refused on a session that is not local."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from lakehouse_phi.confcheck.sources import parse_submit_args
from tests.helpers import EXAMPLE

BIN = Path(sys.executable).parent
APP = """
import json
from pyspark.sql import SparkSession
spark = SparkSession.builder.getOrCreate()
conf = dict(spark.sparkContext.getConf().getAll())
print("CONF=" + json.dumps({k: v for k, v in conf.items() if k.startswith("spark.t")}))
spark.stop()
"""

PROPERTIES = (
    "spark.t.ff\fform-feed-value\n"
    "spark.t.nel one\x85spark.t.hidden two\n"
    "spark.t.nbsp\u00a0value\n"
    "spark.t.trail value\u00a0 \n"
    "\f  spark.t.lead  =  x  \n"
    "spark.t.cont a\\\n   b\n"
    "spark.t.vt x\x0bspark.t.vt2 y\n"
    "spark.t.sep:\fcolon\n"
)


def test_spark_submit_reads_properties_and_conf_as_the_validator_does(tmp_path):
    props = tmp_path / "hostile.conf"
    props.write_bytes(PROPERTIES.encode("utf-8"))
    app = tmp_path / "app.py"
    app.write_text(APP)
    argv = [str(BIN / "spark-submit"), "--master", "local[1]", "--properties-file", str(props),
            "--conf", " spark.t.leadkey=1", "--conf", "spark.t.trailkey =2", "--conf", "spark.t.val= 3 ",
            "--conf", "spark.ui.enabled=false", str(app)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env={**os.environ, "PYSPARK_PYTHON": sys.executable})
    assert out.returncode == 0, out.stderr[-3000:]
    spark_sees = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("CONF="))[5:])
    ours = {k: v.value for k, v in parse_submit_args(argv).conf.items() if k.startswith("spark.t")}
    assert spark_sees == ours
    # positive controls: the hostile lines mean what Java says, not what str.splitlines and \\s would say
    assert spark_sees["spark.t.ff"] == "form-feed-value" and "spark.t.hidden" not in spark_sees
    assert "spark.t.nbsp\u00a0value" in spark_sees and spark_sees["spark.t.trail"] == "value\u00a0"
    assert spark_sees["spark.t.val"] == " 3 " and "spark.t.trailkey " in spark_sees


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_allow_insecure_is_refused_on_a_session_that_is_not_local(tmp_path):
    """A Spark Connect server in another process reports no local master: --allow-insecure does not apply."""
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-c", (
        "from pysail.spark import SparkConnectServer\n"
        f"s = SparkConnectServer(ip='127.0.0.1', port={port}); s.start(background=False)")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        from tests.spark.test_ingest import cli
        out = cli("ingest", str(EXAMPLE), "--table", "claims", "--engine", f"sc://127.0.0.1:{port}",
                  "--allow-insecure", "--input", str(tmp_path / "nowhere"), "--bronze", str(tmp_path / "bronze"),
                  "--audit", str(tmp_path / "audit.jsonl"))
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert out.returncode == 1, out.stderr[-2000:]
    assert "--allow-insecure is only honoured on a local master" in out.stderr
    assert "cannot read the source" not in out.stderr and not (tmp_path / "bronze").exists()


def test_an_engine_failure_shows_its_error_class_only(tmp_path):
    """The engine's message may quote data: the CLI prints the error class, no traceback, no message."""
    from tests.spark.test_hostile_read import ENV, SENT, _landing
    from tests.spark.test_ingest import cli

    _landing(tmp_path, bad=False)
    policy = tmp_path / "p.yaml"
    policy.write_text(json.dumps({
        "version": 1, "name": "hostile", "keys": {"k": {"provider": "env", "ref": "K"}},
        "tables": {"people": {"source": {"format": "csv", "path": str(tmp_path / "landing")}, "bronze": "b",
                              "record_key": ["mrn"], "on_unclassified": "drop", "phi_scan": {"sample_rows": 0},
                              "columns": {"mrn": {"phi": "medical_record_number",
                                                  "ingest": {"strategy": "hmac", "key": "k"}},
                                          "note": {}, "phone": {}, "email": {}, "address": {}}}}}))
    blocker = tmp_path / f"{SENT}-bronze"
    blocker.write_text("a file where bronze's directory should be\n")  # the engine's write fails
    out = cli("ingest", str(policy), "--table", "people", "--engine", "sail", "--allow-insecure",
              "--bronze", str(blocker), "--audit", str(tmp_path / "audit.jsonl"), env=ENV)
    assert out.returncode == 1, out.stderr[-2000:]
    # refused at the key check's read of bronze's metadata (the storage layer reads it before any data), before
    # writing ("failed in the engine (Class)") or after its pending event ("failed after it started writing
    # (Class)"): the error class either way, never the engine's message
    assert any(f in out.stderr for f in ("failed in the engine (", "failed after it started writing (",
                                         "(OSError) to compare the key check values"))
    assert "Traceback" not in out.stderr
    # the operator's own --bronze argument may be named as the place; the engine's message (which would name the
    # blocked path again, with its own wording) may not
    assert SENT not in out.stderr.replace(str(blocker), "<bronze>")
    assert "Not a directory" not in out.stderr and "Errno" not in out.stderr
