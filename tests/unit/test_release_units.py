"""Safe release without Spark: the PEM key kind through a provider, the signing-key checks, the measured columns,
verify on a hand-made export, and the CLI registration."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lakehouse_phi.cli import build_parser, main
from lakehouse_phi.errors import KeyMaterialError
from lakehouse_phi.keys import load_key
from lakehouse_phi.keys.providers import Fetchers
from lakehouse_phi.policy import load_policy
from lakehouse_phi.policy.model import KeySpec
from lakehouse_phi.release.export import MANIFEST, SIGNATURE, canonical, sha256_file, signing_key, verify_export
from lakehouse_phi.release.risk import release_columns


def _pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def test_a_pem_key_through_the_env_and_file_providers(tmp_path):
    key = Ed25519PrivateKey.generate()
    env = load_key("signer", KeySpec(provider="env", ref="SIGNER"), "pem", Fetchers(environ={"SIGNER": _pem(key)}))
    path = tmp_path / "signer.pem"
    path.write_text(_pem(key))
    file = load_key("signer", KeySpec(provider="file", ref=str(path)), "pem")
    assert env.material == file.material and "PRIVATE" not in repr(env)
    loaded = signing_key(env.material, "signer")
    assert loaded.public_key().public_bytes_raw() == key.public_key().public_bytes_raw()
    with pytest.raises(KeyMaterialError, match="signer") as exc:  # base64 material is not a PEM
        load_key("signer", KeySpec(provider="env", ref="S"), "pem", Fetchers(environ={"S": "c2VjcmV0c2VjcmV0"}))
    assert "c2VjcmV0" not in str(exc.value)
    from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key

    ec = generate_private_key(SECP256R1()).private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption())
    with pytest.raises(KeyMaterialError, match="Ed25519"):
        signing_key(ec, "signer")


def test_the_worked_example_measures_what_it_exports():
    spec = load_policy("conf/policy.yaml").policy.tables
    cols = release_columns(spec["patients"])
    assert cols.quasi_identifiers == ("birth_year", "sex", "state") and cols.sensitive == ()
    cols = release_columns(spec["encounters"])
    assert cols.quasi_identifiers == ("facility_state",) and cols.sensitive == ("diagnosis_code",)


def test_verify_a_hand_made_export(tmp_path):
    key = Ed25519PrivateKey.generate()
    (tmp_path / "data").mkdir()
    f = tmp_path / "data" / "part-00000.parquet"
    f.write_bytes(b"PAR1 not really parquet PAR1")
    manifest = canonical({"files": [{"path": "data/part-00000.parquet", "sha256": sha256_file(f),
                                     "bytes": f.stat().st_size, "rows": 1}], "run_id": "r", "table": "t"})
    (tmp_path / MANIFEST).write_bytes(manifest)
    (tmp_path / SIGNATURE).write_text(base64.b64encode(key.sign(manifest)).decode())
    assert verify_export(str(tmp_path), key.public_key()).ok
    pub = tmp_path.parent / "pub.pem"
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    assert main(["export", "verify", str(tmp_path), "--public-key", str(pub), "--format", "json"]) == 0
    f.write_bytes(b"PAR1 not really parquet PAR2")
    report = verify_export(str(tmp_path), key.public_key())
    assert not report.ok and "content changed" in report.problems[0]
    assert main(["export", "verify", str(tmp_path), "--public-key", str(pub)]) == 1
    (tmp_path / SIGNATURE).unlink()
    assert verify_export(str(tmp_path), key.public_key()).problems == [f"missing {SIGNATURE}"]


def test_commands_are_registered(capsys):
    parser = build_parser(["risk", "--help"])
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["risk", "--help"])
    assert exc.value.code == 0 and "--table" in capsys.readouterr().out
    assert main(["export", "verify", "/nonexistent"]) == 2  # no --public-key: bad usage
    args = build_parser(["export", "conf/policy.yaml", "--table", "patients", "--out", "x"]).parse_args(
        ["export", "conf/policy.yaml", "--table", "patients", "--out", "x"])
    assert args.command == "export" and args.policy == "conf/policy.yaml" and json.dumps(vars(args), default=str)
