"""moto's S3 server on a loopback port (a real S3 HTTP API), for delta-rs on ``s3://`` paths."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

#: The environment delta-rs and boto3 read to reach the server.
ENV_KEYS = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_DEFAULT_REGION",
            "AWS_ALLOW_HTTP")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def s3_server(*, enforce_auth: bool = False) -> Iterator[str]:
    """Run ``python -m moto.server`` on a free port; yield its URL. ``enforce_auth``: every request needs valid IAM
    credentials (moto's ``INITIAL_NO_AUTH_ACTION_COUNT=0``), so unknown keys get 403."""
    port = _free_port()
    env = {**os.environ, **({"INITIAL_NO_AUTH_ACTION_COUNT": "0"} if enforce_auth else {})}
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                urllib.request.urlopen(url + "/moto-api/", timeout=1)
                break
            except OSError as exc:  # not listening yet
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from exc
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextlib.contextmanager
def s3_env(url: str, key: str = "testing") -> Iterator[None]:
    """Point boto3 and delta-rs at ``url`` for the block, then restore the environment."""
    saved = {k: os.environ.get(k) for k in ENV_KEYS}
    os.environ.update(AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=key, AWS_REGION="us-east-1",
                      AWS_DEFAULT_REGION="us-east-1", AWS_ALLOW_HTTP="true")
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def make_bucket(name: str) -> None:
    import boto3

    boto3.client("s3").create_bucket(Bucket=name)
