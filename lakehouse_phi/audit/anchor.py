"""``audit verify --against BRONZE``: the bronze table's own record of the trail, read with delta-rs (no Spark).

* The anchor: the ingest job sets ``lakehouse_phi.audit_seq`` / ``lakehouse_phi.audit_hash`` on the bronze table to
  its event's ``seq`` and ``hash``. The trail must hold that event: a trail cut below it (its tail removed) or
  with that event replaced is tampered.
* The commits: every commit of the bronze table names its run in ``userMetadata`` (the run id, or a JSON object with
  ``run_id``); every such run must have an event in the trail. A commit without a run id, or whose run left no event,
  was not audited.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from lakehouse_phi.errors import UsageError

ANCHOR_SEQ = "lakehouse_phi.audit_seq"
ANCHOR_HASH = "lakehouse_phi.audit_hash"


@dataclass
class AgainstResult:
    bronze: str
    ok: bool
    anchor_seq: int | None
    anchor_hash: str | None
    commits: int
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def commit_run_id(user_metadata: Any) -> str | None:
    """The run id a commit's ``userMetadata`` names: the text itself, or ``run_id`` of a JSON object."""
    if not isinstance(user_metadata, str) or not user_metadata.strip():
        return None
    text = user_metadata.strip()
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError:
            return None
        for k in ("run_id", "lakehouse_phi.run_id", "lakehouse_phi_run_id"):
            if isinstance(obj, dict) and isinstance(obj.get(k), str):
                return obj[k]
        return None
    return text


def check_against(bronze: str, events: list[dict]) -> AgainstResult:
    """Compare a (verified) trail with a Delta bronze table's anchor and commits.

    Raises:
        UsageError: the bronze table is missing or not a Delta table.
    """
    try:
        from deltalake import DeltaTable

        table = DeltaTable(bronze)
        conf = dict(table.metadata().configuration)
        history = table.history()
    except ImportError:
        raise UsageError("--against needs deltalake: pip install 'lakehouse-phi[local]'") from None
    except Exception as exc:  # noqa: BLE001 - delta-rs raises several types for "not a table"
        raise UsageError(f"--against {bronze}: not a readable Delta table ({type(exc).__name__}); pass the bronze "
                         "table's directory or URI") from None
    problems: list[str] = []
    seq_text, anchor_hash = conf.get(ANCHOR_SEQ), conf.get(ANCHOR_HASH)
    anchor_seq = int(seq_text) if isinstance(seq_text, str) and seq_text.isdigit() else None
    by_seq = {e.get("seq"): e for e in events if isinstance(e, dict)}
    last = max((s for s in by_seq if isinstance(s, int)), default=None)
    if anchor_seq is None or not anchor_hash:
        problems.append(f"bronze has no audit anchor ({ANCHOR_SEQ}/{ANCHOR_HASH} table properties): it was not "
                        "written by an audited ingest, or its properties were removed")
    elif anchor_seq not in by_seq:
        problems.append(f"cut tail: bronze's anchor is seq {anchor_seq}, but the trail ends at seq "
                        f"{'-' if last is None else last}")
    elif by_seq[anchor_seq].get("hash") != anchor_hash:
        problems.append(f"the event at seq {anchor_seq} is not the one bronze anchored (hash differs): the trail "
                        "was rewritten from there")
    run_ids = {e.get("run_id") for e in events if isinstance(e, dict)}
    for commit in sorted(history, key=lambda c: c.get("version", 0)):
        version, operation = commit.get("version"), commit.get("operation", "?")
        run_id = commit_run_id(commit.get("userMetadata"))
        if run_id is None:
            problems.append(f"unaudited commit: version {version} ({operation}) names no run id in userMetadata "
                            "(written outside lakehouse-phi)")
        elif run_id not in run_ids:
            problems.append(f"unaudited commit: version {version} ({operation}) by run {run_id[:80]!r} has no event in "
                            "the trail")
    return AgainstResult(bronze, not problems, anchor_seq, anchor_hash, len(history), problems)
