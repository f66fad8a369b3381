"""The policy model and loader: the worked example is valid; every mistake is reported with its place."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lakehouse_phi.errors import PolicyError
from lakehouse_phi.policy import load_policy
from lakehouse_phi.policy.load import parse_yaml, policy_from_data
from tests.helpers import run_cli as _in_process

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "conf" / "policy.yaml"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return _in_process(*args, cwd=ROOT)


def base(columns: dict, governance: dict | None = None, **table_extra) -> dict:
    data = {
        "version": 1, "name": "t",
        "keys": {"k": {"provider": "env", "ref": "K"}, "dek": {"provider": "databricks", "ref": "scope/dek"}},
        "groups": {"billing": "phi-billing"},
        "tables": {"t": {"source": {"format": "csv", "path": "p"}, "bronze": "b", "columns": columns, **table_extra}},
    }
    if governance is not None:
        data["governance"] = {"function_schema": "main.gov", "tables": {"main.s.t": governance}}
    return data


def problems_of(data: dict) -> dict[str, str]:
    with pytest.raises(PolicyError) as info:
        policy_from_data(data, "t")
    return {p.place: p.message for p in info.value.problems}


def test_worked_example_is_valid_and_uses_every_strategy():
    from lakehouse_phi.transforms.registry import STRATEGIES

    loaded = load_policy(EXAMPLE)
    used = {rule.strategy for t in loaded.policy.tables.values() for c in t.columns.values()
            for rule in (c.effective_ingest, *c.derive.values())}
    assert used == set(STRATEGIES), f"strategies not exercised by the example: {set(STRATEGIES) - used}"
    assert len(loaded.sha256) == 64
    assert loaded.policy.governance is not None


def test_validate_cli_exit_0_on_the_example():
    out = run_cli("validate", str(EXAMPLE))
    assert out.returncode == 0, out.stderr
    assert "valid" in out.stdout


def test_three_mistakes_exit_2_and_name_all_three_places(tmp_path):
    bad = tmp_path / "bad.yaml"
    import yaml

    bad.write_text(yaml.safe_dump(base({
        "ssn": {"type": "string", "phi": "ssn"},
        "mrn": {"type": "strng", "ingest": {"strategy": "hmac", "key": "k"}},
        "note": {"type": "string", "ingest": {"strategy": "scrub_text"}, "colour": "blue"},
    })))
    out = run_cli("validate", str(bad), "--format", "json")
    assert out.returncode == 2
    import json

    places = {p["place"] for p in json.loads(out.stdout)["problems"]}
    assert "tables.t.columns.ssn.ingest" in places          # PHI without a strategy
    assert "tables.t.columns.mrn.type" in places            # unknown type
    assert "tables.t.columns.note.colour" in places         # unknown key
    text = run_cli("validate", str(bad))
    assert text.returncode == 2
    for place in ("tables.t.columns.ssn.ingest", "tables.t.columns.mrn.type", "tables.t.columns.note.colour"):
        assert place in text.stderr


def test_cross_reference_problems_are_reported_together():
    found = problems_of(base({
        "mrn": {"type": "string", "ingest": {"strategy": "hmac", "key": "nokey"}},
        "a": {"type": "string", "phi": "name", "ingest": "keep"},
        "b": {"type": "string", "ingest": {"strategy": "partial", "keepfirst": 2}},
        "c": {"type": "int", "ingest": {"strategy": "zip3"}},
        "d": {"type": "date", "ingest": {"strategy": "date_shift", "key": "k", "subject": "nobody", "max_days": 5}},
    }, governance={"masks": {"mrn": {"rules": [{"to": ["nogroup"], "show": {"decrypt": "t.mrn"}}]}}}))
    assert "not declared under keys" in found["tables.t.columns.mrn.ingest.key"]
    assert "justification" in found["tables.t.columns.a.ingest"]
    assert "keepfirst" in found["tables.t.columns.b.ingest.keepfirst"]
    assert "does not take a int" in found["tables.t.columns.c.ingest.strategy"]
    assert "nobody" in found["tables.t.columns.d.ingest"]
    assert "not declared under groups" in found["governance.tables.main.s.t.masks.mrn.rules.0.to.0"]
    assert "not encrypt" in found["governance.tables.main.s.t.masks.mrn.rules.0.show"]


def test_unknown_key_lists_what_is_allowed():
    found = problems_of(base({"x": {"type": "string"}}, colour="red"))
    msg = found["tables.t.colour"]
    assert "unknown key 'colour'" in msg and "record_key" in msg and "on_unclassified" in msg


def test_shorthand_and_params():
    policy = policy_from_data(base({
        "name": {"type": "string", "phi": "name", "ingest": "suppress"},
        "ssn": {"type": "string", "phi": "ssn", "ingest": {"strategy": "encrypt", "key": "dek"},
                "derive": {"ssn_token": {"strategy": "hmac", "key": "k", "normalize": "digits"}}},
    }))
    cols = policy.tables["t"].columns
    assert cols["name"].ingest.strategy == "suppress"
    assert cols["ssn"].derive["ssn_token"].params == {"key": "k", "normalize": "digits"}


def test_record_key_must_be_deterministic():
    found = problems_of(base({"ssn": {"type": "string", "phi": "ssn", "ingest": {"strategy": "encrypt", "key": "dek"}}},
                             record_key=["ssn"]))
    assert "merge key" in found["tables.t.record_key.0"]


def test_duplicate_yaml_key_is_an_error():
    with pytest.raises(PolicyError) as info:
        parse_yaml("version: 1\nname: a\nname: b\n", "t")
    assert "appears twice" in str(info.value)


def test_decrypt_needs_a_databricks_key():
    data = base({"ssn": {"type": "string", "phi": "ssn", "ingest": {"strategy": "encrypt", "key": "aes"}}},
                governance={"masks": {"ssn": {"rules": [{"to": ["billing"], "show": {"decrypt": "t.ssn"}}]}}})
    data["keys"]["aes"] = {"provider": "env", "ref": "AES"}
    found = problems_of(data)
    assert "databricks" in found["governance.tables.main.s.t.masks.ssn.rules.0.show"]


def test_unreadable_policy_file_exit_2(tmp_path):
    out = run_cli("validate", str(tmp_path / "missing.yaml"))
    assert out.returncode == 2 and "cannot read" in out.stderr


def test_a_dumped_policy_loads_back():
    policy = load_policy(EXAMPLE).policy
    again = policy_from_data(policy.model_dump(by_alias=True, exclude_none=True))
    assert again == policy
