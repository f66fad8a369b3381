"""``audit verify --against BRONZE``: the bronze table's own record of the trail, read with delta-rs (no Spark).

* The anchor: the ingest job sets ``lakehouse_phi.audit_seq`` / ``lakehouse_phi.audit_hash`` on the bronze table to
  its event's ``seq`` and ``hash``. The trail must hold that event: a trail cut below it (its tail removed) or
  with that event replaced is tampered.
* The commits, of bronze and of its quarantine table: every commit names its run in ``userMetadata`` (the run id,
  or a JSON object with ``run_id``), and is bound to that run's events by **version and operation**:

  - the run's events record the versions it committed (``details.commits``: ``{"bronze": [3, 4], "quarantine":
    [2]}``, written by ingest, stream micro-batches and the lifecycle commands; an ``ingest_unfinished`` event
    records them for the crashed run it names in ``pending_run_id``). A commit whose version no event of its run
    records was not made by that run: its run id was copied (a ``DELETE`` of every row tagged with an old run id);
  - the operation is one the run's command performs: ingest writes, merges, creates and sets its anchor
    properties (one ``SET TBLPROPERTIES`` after each closing ``ingest`` event, the commit that sets the anchor);
    ``rekey`` merges; ``erase`` and ``purge`` delete (and vacuum). A ``DELETE`` carrying an ingest's run id fails;
  - ``RESTORE`` is always reported: no lakehouse-phi command restores, and ``delta.appendOnly`` does not stop it;
  - any commit without a run id, or whose run left no event, is an unaudited history entry.

  An older trail whose events record one version per table (the table's version after the run) bounds the run's
  commits from above, and the versions recorded before the run's first event bound them from below.
* The quarantine table checked is ``--quarantine`` when given, else the one the trail's events name for this
  bronze (``details.quarantine``), else ``<bronze>_quarantine`` (the policy default). A quarantine table that the
  events say was written but that is not there is reported.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from lakehouse_phi.errors import UsageError

ANCHOR_SEQ = "lakehouse_phi.audit_seq"
ANCHOR_HASH = "lakehouse_phi.audit_hash"
ROLES = ("bronze", "quarantine")

#: the operations each command's runs perform (by the event name's first word: ``ingest_started`` -> ingest)
RUN_OPERATIONS: dict[str, frozenset[str]] = {
    "ingest": frozenset({"WRITE", "MERGE", "CREATE TABLE", "CREATE OR REPLACE TABLE", "CREATE TABLE AS SELECT",
                         "STREAMING UPDATE", "SET TBLPROPERTIES"}),
    "rekey": frozenset({"MERGE", "UPDATE", "WRITE", "SET TBLPROPERTIES"}),
    "erase": frozenset({"DELETE", "MERGE", "VACUUM START", "VACUUM END"}),
    "purge": frozenset({"DELETE", "MERGE", "VACUUM START", "VACUUM END"}),
}
#: the one commit an ingest makes after its closing event: the anchor properties
ANCHOR_OPERATION = "SET TBLPROPERTIES"
#: closing events after (or around) which one SET TBLPROPERTIES of the run may stand unrecorded
PROPERTY_CLOSINGS = ("ingest", "rekey")


@dataclass
class AgainstResult:
    bronze: str
    ok: bool
    anchor_seq: int | None
    anchor_hash: str | None
    commits: int
    problems: list[str] = field(default_factory=list)
    quarantine: str | None = None
    quarantine_commits: int = 0

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


def run_commits(locations: dict[str, str | None], run_id: str) -> dict[str, list[int]]:
    """The versions of each Delta table (by role) whose commit names ``run_id``, read with delta-rs; a table that
    is not there gives ``[]``. What a run's events record in ``details.commits``; an unreadable location is left
    out, and ``audit verify --against`` then reports the run's commits as not bound."""
    from lakehouse_phi.storage.delta import DeltaRsTable

    out: dict[str, list[int]] = {}
    for role, location in locations.items():
        if not location:
            continue
        try:
            out[role] = DeltaRsTable(location).run_versions(run_id)
        except Exception:  # noqa: BLE001 - delta-rs raises several types; the verifier reports the gap
            continue
    return out


def _history(location: str, what: str) -> tuple[dict[str, str], list[dict]] | None:
    """(table properties, history oldest first) of a Delta table, None when there is no table there."""
    try:
        from lakehouse_phi.storage.delta import DeltaRsTable

        table = DeltaRsTable(location)
        if not table.exists():
            return None
        conf, history = table.properties(), table.history()
    except ImportError:
        raise UsageError("--against needs deltalake: pip install 'lakehouse-phi[local]'") from None
    except Exception as exc:  # noqa: BLE001 - delta-rs raises several types for "not a table"
        raise UsageError(f"--against {what} {location}: not a readable Delta table ({type(exc).__name__}); pass the "
                         "table's directory or URI") from None
    return conf, sorted(history, key=lambda c: c.get("version", 0))


@dataclass
class _Runs:
    """What the trail says about each run: its event kinds, position of its first event, recorded versions."""

    kinds: dict[str, set[str]] = field(default_factory=dict)
    first: dict[str, int] = field(default_factory=dict)
    closings: dict[str, int] = field(default_factory=dict)
    exact: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    upto: dict[tuple[str, str], int] = field(default_factory=dict)
    lower: dict[tuple[str, str], int] = field(default_factory=dict)
    places: dict[str, set[str]] = field(default_factory=dict)


def _recorded(details: dict, role: str) -> tuple[list[int], int | None]:
    """(exact versions, an upper bound) of ``role`` an event records: ``commit_versions`` / ``commits`` as a list of
    versions (exact), ``{"version": N, ...}`` (the run's last commit: exact, and a bound for its earlier ones) or an
    integer (an older trail: the table's version after the run, a bound)."""
    exact: list[int] = []
    upto: int | None = None
    for key in ("commit_versions", "commits"):
        block = details.get(key)
        value: Any = block.get(role) if isinstance(block, dict) else None
        last: Any = value.get("version") if isinstance(value, dict) else value
        if isinstance(value, list):
            exact += [int(v) for v in value if _is_int(v)]
        elif _is_int(last):
            if isinstance(value, dict):
                exact.append(int(last))
            upto = max(int(last), -1 if upto is None else upto)
    return exact, upto


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _runs(events: list[dict]) -> _Runs:
    runs = _Runs()
    seen_max: dict[str, int] = {}
    for pos, ev in enumerate(events):
        if not isinstance(ev, dict) or not isinstance(ev.get("run_id"), str):
            continue
        raw = ev.get("details")
        details: dict[str, Any] = raw if isinstance(raw, dict) else {}
        kind = str(ev.get("event", "")).split("_", 1)[0]
        owner = ev["run_id"]
        pending = details.get("pending_run_id")
        if str(ev.get("event")) == "ingest_unfinished" and isinstance(pending, str):
            owner = pending  # the versions it lists are the crashed run's
        for run in {ev["run_id"], owner}:
            if run not in runs.first:
                runs.first[run] = pos
                for role in ROLES:
                    runs.lower[(run, role)] = seen_max.get(role, -1)
        runs.kinds.setdefault(ev["run_id"], set()).add(kind)
        runs.kinds.setdefault(owner, set()).add(kind)
        if ev.get("event") in PROPERTY_CLOSINGS:
            runs.closings[owner] = runs.closings.get(owner, 0) + 1
        for role in ROLES:
            where = details.get(role)
            if isinstance(where, str):
                runs.places.setdefault(role, set()).add(where)
            exact, upto = _recorded(details, role)
            if exact:
                runs.exact.setdefault((owner, role), set()).update(exact)
            if upto is not None:
                runs.upto[(owner, role)] = max(upto, runs.upto.get((owner, role), -1))
            top = max([*exact, *([upto] if upto is not None else [])], default=None)
            if top is not None:
                seen_max[role] = max(top, seen_max.get(role, -1))
    return runs


def _commit_problems(role: str, history: list[dict], runs: _Runs) -> list[str]:
    problems: list[str] = []
    anchors_used: dict[str, int] = {}
    for commit in history:
        version, operation = commit.get("version"), str(commit.get("operation", "?"))
        run_id = commit_run_id(commit.get("userMetadata"))
        what = f"{role} version {version} ({operation})"
        if operation == "RESTORE":
            problems.append(f"RESTORE: {what} rolled the table back to an earlier version"
                            f"{'' if run_id is None else f' (tagged with run {run_id[:80]!r})'}; no lakehouse-phi "
                            "command restores, so rows were removed or brought back outside the audit trail")
            continue
        if run_id is None:
            problems.append(f"unaudited commit: {what} names no run id in userMetadata (written outside "
                            "lakehouse-phi)")
            continue
        if run_id not in runs.kinds:
            problems.append(f"unaudited commit: {what} by run {run_id[:80]!r} has no event in the trail")
            continue
        allowed = set().union(*(RUN_OPERATIONS.get(k, frozenset()) for k in runs.kinds[run_id]))
        kinds = "/".join(sorted(runs.kinds[run_id]))
        kinds = f"{'an' if kinds[:1] in 'aeiou' else 'a'} {kinds}"
        if operation not in allowed:
            problems.append(f"unaudited commit: {what} carries the id of run {run_id[:80]!r}, {kinds} run, which "
                            f"never performs {operation}: the run id was copied")
            continue
        if not isinstance(version, int) or _bound(runs, run_id, role, version):
            continue
        if (operation == ANCHOR_OPERATION and runs.closings.get(run_id, 0) > anchors_used.get(run_id, 0)
                and version > max(runs.exact.get((run_id, role), {-1}) | {runs.upto.get((run_id, role), -1)})):
            anchors_used[run_id] = anchors_used.get(run_id, 0) + 1  # the anchor set after a closing event
            continue
        problems.append(f"unaudited commit: {what} carries the id of run {run_id[:80]!r}, but no event of that run "
                        f"records {role} version {version}: the run id was copied onto another commit")
    return problems


def _bound(runs: _Runs, run_id: str, role: str, version: int) -> bool:
    if version in runs.exact.get((run_id, role), set()):
        return True
    upto = runs.upto.get((run_id, role))
    return upto is not None and runs.lower.get((run_id, role), -1) < version <= upto


def _same_place(a: str, b: str) -> bool:
    if "://" in a or "://" in b:
        return a.rstrip("/") == b.rstrip("/")
    return os.path.realpath(a) == os.path.realpath(b)


def _quarantine_of(bronze: str, events: Iterable[dict]) -> str:
    for ev in reversed(list(events)):
        raw = ev.get("details") if isinstance(ev, dict) else None
        details: dict[str, Any] = raw if isinstance(raw, dict) else {}
        b, q = details.get("bronze"), details.get("quarantine")
        if isinstance(b, str) and isinstance(q, str) and _same_place(b, bronze):
            return q
    return f"{bronze.rstrip('/')}_quarantine"


def check_against(bronze: str, events: list[dict], quarantine: str | None = None) -> AgainstResult:
    """Compare a (verified) trail with a Delta bronze table's anchor and the commits of bronze and its quarantine.

    Raises:
        UsageError: the bronze table is missing or not a Delta table, or a quarantine table is unreadable.
    """
    found = _history(bronze, "bronze")
    if found is None:
        raise UsageError(f"--against {bronze}: not a readable Delta table (no _delta_log); pass the bronze "
                         "table's directory or URI")
    conf, history = found
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
    runs = _runs(events)
    problems += _commit_problems("bronze", history, runs)
    q_location = quarantine or _quarantine_of(bronze, events)
    q_found = _history(q_location, "quarantine")
    q_commits = 0
    if q_found is None:
        written = sorted({r for (r, role), vs in runs.exact.items() if role == "quarantine" and vs})
        if written:
            problems.append(f"quarantine {q_location}: no Delta table there, but run {written[0][:80]!r} recorded "
                            "commits to it (deleted or moved); pass --quarantine with its location")
    else:
        q_commits = len(q_found[1])
        problems += _commit_problems("quarantine", q_found[1], runs)
    return AgainstResult(bronze, not problems, anchor_seq, anchor_hash, len(history), problems, q_location,
                         q_commits)
