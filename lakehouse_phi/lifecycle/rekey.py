"""``rekey``: rewrite bronze and quarantine values written under an older key version, so that every keyed output
is at its key's active version (``_key_versions`` of each row says which version wrote each output).

Per output column, for the rows whose recorded version is not the active one:

* ``encrypt`` / ``fpe``: decrypted with the recorded (old) version, encrypted with the active one;
* ``hmac`` / ``date_shift``: recomputed under the active version from the raw input, which is recovered from
  another output of the same policy column that can be opened (``encrypt``/``fpe`` under its own recorded version,
  or ``keep``); ``date_shift`` also needs its subject recovered that way. An output whose input cannot be recovered
  (the record key's pseudonym, say) is named, and the command refuses (nothing written) unless ``allow_partial``,
  which leaves those values and their recorded versions as they are.

Rows are rewritten in place through one delta-rs ``MERGE`` commit per table (matched on ``_row_fingerprint`` and
``_ingest_run_id``), tagged with the run id. Every value is computed before anything is written; a run that finds
nothing stale commits nothing, so a second run rewrites nothing. One ``rekey`` audit event carries the per-column
counts and versions.
"""

from __future__ import annotations

import binascii
import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lakehouse_phi.engine.plan import key_needs
from lakehouse_phi.engine.types import arrow_type, parse
from lakehouse_phi.errors import JobRefused, UsageError
from lakehouse_phi.keys.providers import KeyRing
from lakehouse_phi.lifecycle.tables import (FINGERPRINT_COL, KEY_VERSIONS_COL, RUN_ID_COL, Context, commit_props,
                                            open_table, quote, read_rows)
from lakehouse_phi.transforms import registry
from lakehouse_phi.transforms.base import ColumnContext, Strategy
from lakehouse_phi.transforms.encrypt import IV_BYTES, aad_for

log = logging.getLogger(__name__)

KEYED = ("hmac", "encrypt", "fpe", "date_shift")
REVERSIBLE = ("encrypt", "fpe")
IDENTITY = (FINGERPRINT_COL, RUN_ID_COL)


@dataclass(frozen=True)
class Output:
    """One output column of the policy table and how it was made."""

    name: str
    source: str
    strategy: str
    params: Any
    key: str | None
    input_type: str

    def build(self, table: str, material: bytes) -> Strategy:
        cls = registry.get(self.strategy)
        return cls(self.params, ColumnContext(table, self.name, self.source, self.input_type), material)


def outputs_of(ctx: Context) -> list[Output]:
    out = []
    for cname, col in ctx.spec.columns.items():
        for name, rule in ((cname, col.effective_ingest), *col.derive.items()):
            cls = registry.get(rule.strategy)
            params = cls.Params.model_validate(rule.params)
            key = getattr(params, "key", None) if cls.key_kind else None
            out.append(Output(name, cname, rule.strategy, params, key, col.type))
    return out


@dataclass
class TablePlan:
    """What one table's rewrite changes (computed in full before anything is written)."""

    name: str
    target: str
    source: pa.Table | None = None  # the rewritten rows, or None when nothing changes
    rows: int = 0
    columns: dict[str, Counter] = field(default_factory=dict)  # output -> Counter(old version)
    unrecoverable: dict[str, Counter] = field(default_factory=dict)  # output -> Counter(reason)


@dataclass
class RekeyResult:
    run_id: str
    table: str
    ok: bool
    dry_run: bool
    allow_partial: bool
    active_versions: dict[str, int]
    columns: dict[str, dict]
    unrecoverable: dict[str, dict]
    bronze_rows_rewritten: int
    quarantine_rows_rewritten: int
    audit_hash: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        out = []
        if not self.ok:
            out.append(f"{self.table}: refused, nothing written: these outputs' key changed but their input cannot "
                       "be recovered to recompute them (re-ingest from the source, or pass --allow-partial to leave "
                       "them at their old version):")
        for col, info in self.unrecoverable.items():
            out.append(f"  {col}: {info['rows']} row(s) ({', '.join(info['reasons'])})")
        if self.ok:
            verb = "would rewrite" if self.dry_run else "rewrote"
            out.append(f"{self.table}: {verb} {self.bronze_rows_rewritten} bronze and {self.quarantine_rows_rewritten} "
                       "quarantine row(s)")
            for col, info in self.columns.items():
                froms = ", ".join(f"v{v}: {n}" for v, n in sorted(info["from_versions"].items()))
                out.append(f"  {col} ({info['strategy']}, key '{info['key']}' -> v{info['key_version']}): "
                           f"{info['values']} value(s) from {froms}")
            if not self.columns:
                out.append("  every keyed value is at its key's active version")
        return out


def _aes_open(key: bytes, aad: bytes, values: list[str | None], where: str) -> list[str | None]:
    aead = AESGCM(key)
    out: list[str | None] = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        try:
            raw = binascii.a2b_base64(v)
            out.append(aead.decrypt(raw[:IV_BYTES], raw[IV_BYTES:], aad).decode("utf-8"))
        except (InvalidTag, binascii.Error, ValueError, UnicodeDecodeError):
            raise JobRefused(f"{where}: a value does not decrypt under the key version its row records; the table "
                             "or its _key_versions was changed outside lakehouse-phi - nothing was written") from None
    return out


def _open(out: Output, table: str, ring: KeyRing, version: int, values: list[str | None], where: str
          ) -> list[str | None]:
    """The raw strings under an encrypt/fpe output's recorded ``version``."""
    key = ring.version(out.key, version)  # type: ignore[arg-type]
    if out.strategy == "encrypt":
        return _aes_open(key.material, aad_for(ColumnContext(table, out.name, out.source)), values, where)
    return out.build(table, key.material).decrypt(pa.array(values, pa.string())).to_pylist()  # type: ignore[attr-defined]


def _versions(table: pa.Table) -> list[dict[str, int]]:
    return [dict(m) if m is not None else {} for m in table.column(KEY_VERSIONS_COL).to_pylist()]


def _candidates(data: pa.Table, outs: list[Output], ring: KeyRing) -> pa.Table:
    """Only the rows with a non-NULL keyed output not recorded at its key's active version (vectorized: most rows
    of a table re-keyed before are skipped here)."""
    kv = data.column(KEY_VERSIONS_COL)
    stale = pa.array(np.zeros(data.num_rows, dtype=bool))
    for o in outs:
        if o.strategy not in KEYED or o.name not in data.column_names:
            continue
        version = pc.map_lookup(kv, pa.scalar(o.name), "first")
        off = pc.fill_null(pc.not_equal(version, ring[o.key].version), True)  # type: ignore[index]
        stale = pc.or_(stale, pc.and_(pc.is_valid(data.column(o.name)), off))
    return data.filter(stale)


def plan_table(ctx: Context, name: str, target: str, data: pa.Table, outs: list[Output], ring: KeyRing
               ) -> TablePlan:
    """Compute every rewritten value of one table."""
    plan = TablePlan(name, target)
    missing = [c for c in (KEY_VERSIONS_COL, *IDENTITY) if c not in data.column_names]
    if missing:
        raise UsageError(f"{name} {target}: no {', '.join(missing)} column(s); rekey needs the row column contract "
                         "(rows written by an ingest with versioned keys)")
    data = _candidates(data, outs, ring)
    n = data.num_rows
    if n == 0:
        return plan
    versions = _versions(data)
    values = {o.name: data.column(o.name).to_pylist() for o in outs if o.name in data.column_names}
    keyed = [o for o in outs if o.strategy in KEYED and o.name in values]
    active = {o.name: ring[o.key].version for o in keyed}  # type: ignore[index]

    raw_cache: dict[str, list] = {}
    known_cache: dict[str, list[bool]] = {}

    def recover(source: str) -> tuple[list, list[bool]]:
        """Raw typed values of a policy column per row, and where they are known."""
        if source in raw_cache:
            return raw_cache[source], known_cache[source]
        col_type = ctx.spec.columns[source].type
        raw: list = [None] * n
        known = [False] * n
        for o in outs:
            if o.source != source or o.name not in values:
                continue
            if o.strategy == "keep":
                for i in range(n):
                    if not known[i]:
                        raw[i], known[i] = values[o.name][i], True
            elif o.strategy in REVERSIBLE:
                by_version: dict[int, list[int]] = {}
                for i in range(n):
                    v = versions[i].get(o.name)
                    if not known[i] and values[o.name][i] is not None and v is not None and \
                            ring.version(o.key, v) is not None:  # type: ignore[arg-type]
                        by_version.setdefault(v, []).append(i)
                for v, rows in by_version.items():
                    opened = _open(o, ctx.table, ring, v, [values[o.name][i] for i in rows], f"{name} {o.name}")
                    typed = parse(pa.array(opened, pa.string()), col_type)[0].to_pylist()
                    for i, t in zip(rows, typed):
                        raw[i], known[i] = t, True
        raw_cache[source], known_cache[source] = raw, known
        return raw, known

    new_values = {o.name: list(values[o.name]) for o in keyed}
    new_versions = [dict(v) for v in versions]
    changed: set[int] = set()
    for o in keyed:
        target_v = active[o.name]
        stale: dict[int, list[int]] = {}
        for i in range(n):
            v = versions[i].get(o.name)
            if values[o.name][i] is None or v == target_v:
                continue
            if v is None:
                plan.unrecoverable.setdefault(o.name, Counter())["no recorded key version"] += 1
            elif ring.version(o.key, v) is None and o.strategy in REVERSIBLE:  # type: ignore[arg-type]
                plan.unrecoverable.setdefault(o.name, Counter())[f"version {v} is not under keys.{o.key}.previous"] += 1
            else:
                stale.setdefault(v, []).append(i)
        if not stale:
            continue
        active_key = ring[o.key].material  # type: ignore[index]
        strategy = o.build(ctx.table, active_key)
        arrow_in = arrow_type(o.input_type)
        for v, rows in stale.items():
            if o.strategy in REVERSIBLE:
                raw_rows, opened = rows, _open(o, ctx.table, ring, v, [values[o.name][i] for i in rows],
                                               f"{name} {o.name}")
                inputs = parse(pa.array(opened, pa.string()), o.input_type)[0]
                others = None
            else:
                raw, known = recover(o.source)
                needs = list(strategy.needs_columns(o.params))
                subj = {s: recover(s) for s in needs}
                raw_rows = [i for i in rows if known[i] and all(subj[s][1][i] for s in needs)]
                lost = len(rows) - len(raw_rows)
                if lost:
                    plan.unrecoverable.setdefault(o.name, Counter())[
                        f"{o.strategy} input {'/'.join([o.source, *needs])} cannot be recovered"] += lost
                if not raw_rows:
                    continue
                inputs = pa.array([raw[i] for i in raw_rows], arrow_in)
                others = {s: pa.array([subj[s][0][i] for i in raw_rows],
                                      arrow_type(ctx.spec.columns[s].type)) for s in needs}
            result = strategy.apply(inputs, others).to_pylist()
            for i, value in zip(raw_rows, result):
                new_values[o.name][i] = value
                new_versions[i][o.name] = target_v
                changed.add(i)
            if raw_rows:
                plan.columns.setdefault(o.name, Counter())[v] += len(raw_rows)
    if not changed:
        return plan
    idx = sorted(changed)
    # one source row per (fingerprint, run): rows sharing them hold the same raw values
    seen, keep = set(), []
    fps, runs = data.column(FINGERPRINT_COL).to_pylist(), data.column(RUN_ID_COL).to_pylist()
    for i in idx:
        ident = (fps[i], runs[i])
        if ident not in seen:
            seen.add(ident)
            keep.append(i)
    cols = {c: data.column(c).take(pa.array(keep)) for c in IDENTITY}
    for o in keyed:
        if o.name in plan.columns:
            cols[o.name] = pa.array([new_values[o.name][i] for i in keep], data.schema.field(o.name).type)
    kv_type = data.schema.field(KEY_VERSIONS_COL).type
    cols[KEY_VERSIONS_COL] = pa.array([sorted(new_versions[i].items()) for i in keep], kv_type)
    plan.source = pa.table(cols)
    plan.rows = len(idx)
    return plan


def _write(table: Any, plan: TablePlan, run_id: str) -> None:
    on = " AND ".join(f"(t.{quote(c)} IS NOT DISTINCT FROM s.{quote(c)})" for c in IDENTITY)
    updates = {c: f"s.{quote(c)}" for c in plan.source.column_names if c not in IDENTITY}  # type: ignore[union-attr]
    (table.merge(plan.source, on, source_alias="s", target_alias="t", commit_properties=commit_props(run_id))
     .when_matched_update(updates=updates).execute())


def rekey(ctx: Context, *, dry_run: bool = False, allow_partial: bool = False) -> RekeyResult:
    """Re-key bronze and quarantine (see the module docstring).

    Raises:
        KeyMaterialError: a key version (or the audit key) cannot be resolved; nothing written.
        UsageError: a table lacks the row column contract.
        JobRefused: a value does not open under its recorded version.
    """
    ring = ctx.keys(key_needs(ctx.spec))
    seal = None if dry_run else ctx.seal_key()
    outs = outputs_of(ctx)
    tables = {"bronze": open_table(ctx.targets.bronze, required=True),
              "quarantine": open_table(ctx.targets.quarantine, required=False)}
    plans = {name: plan_table(ctx, name, getattr(ctx.targets, name), read_rows(t), outs, ring)
             for name, t in tables.items() if t is not None}
    columns: dict[str, dict] = {}
    lost: dict[str, dict] = {}
    by_name = {o.name: o for o in outs}
    for plan in plans.values():
        for col, counts in plan.columns.items():
            o = by_name[col]
            info = columns.setdefault(col, {"strategy": o.strategy, "key": o.key,
                                            "key_version": ring[o.key].version,  # type: ignore[index]
                                            "values": 0, "from_versions": {}})
            info["values"] += sum(counts.values())
            for v, k in counts.items():
                info["from_versions"][str(v)] = info["from_versions"].get(str(v), 0) + k
        for col, reasons in plan.unrecoverable.items():
            info = lost.setdefault(col, {"rows": 0, "reasons": []})
            info["rows"] += sum(reasons.values())
            info["reasons"] = sorted(set(info["reasons"]) | set(reasons))
    ok = allow_partial or not lost
    rows = {name: plans[name].rows if name in plans else 0 for name in ("bronze", "quarantine")}
    result = RekeyResult(ctx.run_id, ctx.table, ok, dry_run, allow_partial, {o.key: ring[o.key].version for o in outs
                         if o.key and o.strategy in KEYED}, dict(sorted(columns.items())), dict(sorted(lost.items())),
                         rows["bronze"], rows["quarantine"])
    if not ok or dry_run:
        return result
    for name, plan in plans.items():
        if plan.source is not None:
            _write(tables[name], plan, ctx.run_id)
    sealed = ctx.audit("rekey", {c: {"strategy": i["strategy"], "key_version": i["key_version"],
                                     "values": i["values"], "from_versions": i["from_versions"]}
                                 for c, i in result.columns.items()},
                       {"bronze_rows_rewritten": rows["bronze"], "quarantine_rows_rewritten": rows["quarantine"],
                        "allow_partial": allow_partial, "left_at_old_version": lost}, seal,
                       rows_written=rows["bronze"] + rows["quarantine"])
    result.audit_hash = sealed["hash"]
    return result
