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
nothing stale commits nothing, so a second run rewrites nothing. Before any change every resolved key version is
compared with the check values the table was written with (wrong material, old or new, refuses naming the key);
a ``rekey_started`` event precedes the first commit and the ``rekey`` event, with the per-column counts and
versions, follows the last; bronze then records the active versions' check values (``lakehouse_phi.key_checks``),
as ingest does, so a later ingest with other material under the new version refuses too.
"""

from __future__ import annotations

import binascii
import logging
from collections import Counter
from collections.abc import Iterable
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
from lakehouse_phi.lifecycle.tables import (
    FINGERPRINT_COL,
    KEY_VERSIONS_COL,
    RUN_ID_COL,
    Context,
    commit_of,
    open_table,
)
from lakehouse_phi.storage.delta import DeltaRsTable
from lakehouse_phi.storage.sqltext import datafusion_ident
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
        rules = [(cname + p, leaf.effective_ingest) for p, leaf in col.fields.items()] if col.fields else \
            ([(cname + "[]", col.effective_ingest)] if col.nested else [])
        keyed = [label for label, rule in rules if registry.get(rule.strategy).key_kind and "key" in rule.params]
        if keyed:
            raise UsageError(f"keyed leaves of nested columns ({', '.join(keyed)}) are not rewritten by rekey yet; "
                             "re-ingest the table from its landing data under the new key version instead")
        for name, rule in ((cname, col.effective_ingest), *col.derive.items()):
            cls = registry.get(rule.strategy)
            params = cls.params_model.model_validate(rule.params)
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
    key = ring.version(out.key or "", version)
    if key is None:  # callers only open versions the ring holds
        raise JobRefused(f"{where}: key '{out.key}' version {version} is not resolved")
    if out.strategy == "encrypt":
        return _aes_open(key.material, aad_for(ColumnContext(table, out.name, out.source)), values, where)
    return out.build(table, key.material).decrypt(pa.array(values, pa.string())).to_pylist()  # type: ignore[attr-defined]


def _map_rows(maps: pa.ChunkedArray | pa.MapArray) -> list[list[tuple[str, int]]]:
    """``map<string,int>`` rows as lists of pairs, from the flat keys/items (``to_pylist`` of a map array is about
    20 times slower); NULL maps give empty lists."""
    if isinstance(maps, pa.ChunkedArray):
        maps = maps.combine_chunks()
    offsets = maps.offsets.to_pylist()
    keys, items = maps.keys.to_pylist(), maps.items.to_pylist()
    valid = maps.is_valid().to_pylist()
    return [list(zip(keys[offsets[i]:offsets[i + 1]], items[offsets[i]:offsets[i + 1]])) if valid[i] else []
            for i in range(len(maps))]


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
    """Compute every rewritten value of one table (rows are grouped by recorded version; each group is opened and
    re-made in one vectorized call)."""
    plan = TablePlan(name, target)
    missing = [c for c in (KEY_VERSIONS_COL, *IDENTITY) if c not in data.column_names]
    if missing:
        raise UsageError(f"{name} {target}: no {', '.join(missing)} column(s); rekey needs the row column contract "
                         "(rows written by an ingest with versioned keys)")
    data = _candidates(data, outs, ring)
    if data.num_rows == 0:
        return plan
    rows = _Rekeying.of(ctx, name, data, outs, ring)
    for o in rows.keyed:
        rows.remake(o, plan)
    if not rows.changed.any():
        return plan
    plan.source = rows.merge_source(plan)
    plan.rows = int(rows.changed.sum())
    return plan


@dataclass
class _Rekeying:
    """The candidate rows of one table and their re-made values. Per keyed output: the recorded version (-1: none),
    the new values and versions; per output present: where a value is present, and the values."""

    ctx: Context
    name: str
    ring: KeyRing
    data: pa.Table
    keyed: list[Output]
    present: list[Output]
    ver: dict[str, np.ndarray]
    valid: dict[str, np.ndarray]
    column: dict[str, pa.Array]
    known_versions: dict[str, set[int]]
    new_values: dict[str, np.ndarray]
    new_ver: dict[str, np.ndarray]
    changed: np.ndarray  # rows with at least one re-made value
    raw_cache: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @classmethod
    def of(cls, ctx: Context, name: str, data: pa.Table, outs: list[Output], ring: KeyRing) -> _Rekeying:
        kv = data.column(KEY_VERSIONS_COL)
        present = [o for o in outs if o.name in data.column_names]
        keyed = [o for o in present if o.strategy in KEYED]
        ver = {o.name: pc.fill_null(pc.map_lookup(kv, pa.scalar(o.name), "first"), -1).to_numpy(zero_copy_only=False)
               for o in keyed}
        column = {o.name: data.column(o.name).combine_chunks() for o in present}
        return cls(ctx, name, ring, data, keyed, present, ver,
                   valid={o.name: pc.is_valid(data.column(o.name)).to_numpy(zero_copy_only=False) for o in present},
                   column=column,
                   known_versions={o.name: set(ring.all_versions(o.key)) for o in keyed},  # type: ignore[arg-type]
                   new_values={o.name: np.array(column[o.name].to_pylist(), dtype=object) for o in keyed},
                   new_ver={o.name: ver[o.name].copy() for o in keyed},
                   changed=np.zeros(data.num_rows, dtype=bool))

    def opened(self, o: Output, rows: np.ndarray, v: int) -> pa.Array:
        """Raw values (typed as the policy column) of an encrypt/fpe output at ``rows``, recorded at version ``v``."""
        strings = _open(o, self.ctx.table, self.ring, v, self.column[o.name].take(pa.array(rows)).to_pylist(),
                        f"{self.name} {o.name}")
        return parse(pa.array(strings, pa.string()), o.input_type)[0]

    def recover(self, source: str) -> tuple[np.ndarray, np.ndarray]:
        """Raw typed values of a policy column per row (object array), and where they are known."""
        if source in self.raw_cache:
            return self.raw_cache[source]
        raw = np.full(self.data.num_rows, None, dtype=object)
        known = np.zeros(self.data.num_rows, dtype=bool)
        for o in self.present:
            if o.source != source:
                continue
            if o.strategy == "keep":
                take = ~known
                raw[take] = np.array(self.column[o.name].to_pylist(), dtype=object)[take]
                known |= take
            elif o.strategy in REVERSIBLE:
                for v in self.known_versions[o.name]:
                    rows = np.flatnonzero(~known & self.valid[o.name] & (self.ver[o.name] == v))
                    if len(rows):
                        raw[rows] = np.array(self.opened(o, rows, v).to_pylist(), dtype=object)
                        known[rows] = True
        self.raw_cache[source] = (raw, known)
        return raw, known

    def remake(self, o: Output, plan: TablePlan) -> None:
        """Re-make the stale values of keyed output ``o`` under its key's active version, one call per recorded
        version; what cannot be re-made is counted in ``plan.unrecoverable``."""
        target_v = self.ring[o.key].version  # type: ignore[index]
        stale = self.valid[o.name] & (self.ver[o.name] != target_v)
        if not stale.any():
            return
        lost = plan.unrecoverable.setdefault(o.name, Counter())
        versions = self._versions(o, stale, lost)
        strategy = o.build(self.ctx.table, self.ring[o.key].material)  # type: ignore[index]
        needs = list(strategy.needs_columns(o.params))
        for v in versions:
            rows = np.flatnonzero(stale & (self.ver[o.name] == v))
            if o.strategy in REVERSIBLE:
                inputs, others = self.opened(o, rows, v), None
            else:
                rows, inputs, others = self._recovered(o, rows, needs, lost)
                if not len(rows):
                    continue
            result = strategy.apply(inputs, others)
            self.new_values[o.name][rows] = np.array(result.to_pylist(), dtype=object)
            self.new_ver[o.name][rows] = target_v
            self.changed[rows] = True
            plan.columns.setdefault(o.name, Counter())[v] += len(rows)
        if not lost:
            del plan.unrecoverable[o.name]

    def _versions(self, o: Output, stale: np.ndarray, lost: Counter) -> list[int]:
        """The recorded versions of ``o``'s stale values that can be re-made; the other values are counted in
        ``lost`` (no recorded version; for encrypt/fpe, a version the key ring does not hold)."""
        ver = self.ver[o.name]
        unknown = stale & (ver == -1)
        if unknown.any():
            lost["no recorded key version"] += int(unknown.sum())
        versions = sorted(set(np.unique(ver[stale & ~unknown]).tolist()))
        if o.strategy in REVERSIBLE:
            for v in [v for v in versions if v not in self.known_versions[o.name]]:
                lost[f"version {v} is not under keys.{o.key}.previous"] += int((stale & (ver == v)).sum())
            versions = [v for v in versions if v in self.known_versions[o.name]]
        return versions

    def _recovered(self, o: Output, rows: np.ndarray, needs: list[str], lost: Counter
                   ) -> tuple[np.ndarray, pa.Array | None, dict[str, pa.Array] | None]:
        """Those of ``rows`` whose raw input (and the subjects in ``needs``) can be recovered, with the inputs and
        subjects; the other rows are counted in ``lost``."""
        raw, known = self.recover(o.source)
        subjects = {s: self.recover(s) for s in needs}
        ok = known[rows] & np.all([subjects[s][1][rows] for s in needs], axis=0) if needs else known[rows]
        if (~ok).any():
            lost[f"{o.strategy} input {'/'.join([o.source, *needs])} cannot be recovered"] += int((~ok).sum())
        rows = rows[ok]
        if not len(rows):
            return rows, None, None
        inputs = pa.array(raw[rows].tolist(), arrow_type(o.input_type))
        others = {s: pa.array(subjects[s][0][rows].tolist(), arrow_type(self.ctx.spec.columns[s].type))
                  for s in needs}
        return rows, inputs, others

    def merge_source(self, plan: TablePlan) -> pa.Table:
        """The MERGE source: the identity columns, the re-made outputs and the updated ``_key_versions`` of the
        changed rows."""
        data = self.data
        idx = np.flatnonzero(self.changed)
        # one source row per (fingerprint, run): rows sharing them hold the same raw values
        ident = pa.table({c: data.column(c).take(pa.array(idx)) for c in IDENTITY})
        pairs = zip(*(ident.column(c).to_pylist() for c in IDENTITY))
        _, first = np.unique(np.array([f"{a}\x00{b}" for a, b in pairs], dtype=object).astype(str), return_index=True)
        keep = idx[np.sort(first)]
        cols = {c: data.column(c).take(pa.array(keep)) for c in IDENTITY}
        for o in self.keyed:
            if o.name in plan.columns:
                cols[o.name] = pa.array(self.new_values[o.name][keep].tolist(), data.schema.field(o.name).type)
        cols[KEY_VERSIONS_COL] = self._key_versions(keep)
        return pa.table(cols)

    def _key_versions(self, keep: np.ndarray) -> pa.Array:
        """The ``_key_versions`` maps of rows ``keep``, with each re-made output at its new version."""
        names = [o.name for o in self.keyed]
        matrix = np.stack([self.new_ver[nm][keep] for nm in names], axis=1).tolist()
        maps = []
        for old, row in zip(_map_rows(self.data.column(KEY_VERSIONS_COL).take(pa.array(keep))), matrix):
            entry = dict(old)
            for nm, v in zip(names, row):
                if v != -1:
                    entry[nm] = v
            maps.append(list(entry.items()))
        return pa.array(maps, self.data.schema.field(KEY_VERSIONS_COL).type)


def _write(ctx: Context, table: DeltaRsTable, plan: TablePlan) -> None:
    on = " AND ".join(f"(t.{datafusion_ident(c)} IS NOT DISTINCT FROM s.{datafusion_ident(c)})" for c in IDENTITY)
    updates = {c: f"s.{datafusion_ident(c)}" for c in plan.source.column_names if c not in IDENTITY}  # type: ignore[union-attr]
    table.commit_with(lambda delta, props: (delta.merge(plan.source, on, source_alias="s", target_alias="t",
                                                        commit_properties=props)
                                            .when_matched_update(updates=updates).execute()), commit_of(ctx))


def _totals(plans: Iterable[TablePlan], outs: list[Output], ring: KeyRing) -> tuple[dict[str, dict], dict[str, dict]]:
    """Over the tables: per output, the values re-made and their old versions; and the values left unrecoverable."""
    columns: dict[str, dict] = {}
    lost: dict[str, dict] = {}
    by_name = {o.name: o for o in outs}
    for plan in plans:
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
    return columns, lost


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
    checks = ctx.check_keys(ring)  # before anything is read for rewriting: wrong material, old or new, refuses
    plans = {name: plan_table(ctx, name, getattr(ctx.targets, name), t.read_arrow(), outs, ring)
             for name, t in tables.items() if t is not None}
    columns, lost = _totals(plans.values(), outs, ring)
    ok = allow_partial or not lost
    rows = {name: plans[name].rows if name in plans else 0 for name in ("bronze", "quarantine")}
    result = RekeyResult(ctx.run_id, ctx.table, ok, dry_run, allow_partial, {o.key: ring[o.key].version for o in outs
                         if o.key and o.strategy in KEYED}, dict(sorted(columns.items())), dict(sorted(lost.items())),
                         rows["bronze"], rows["quarantine"])
    if not ok or dry_run:
        return result
    changes = [name for name, plan in plans.items() if plan.source is not None]
    if changes:
        ctx.begin("rekey", {"tables": changes, "active_versions": result.active_versions,
                            "key_checks": checks}, seal)
    done: dict[str, int] = {}
    for name in changes:
        ctx.commit("rekey", name, dict(done), seal, lambda t=tables[name], p=plans[name]: _write(ctx, t, p))
        done[f"{name}_rows_rewritten"] = plans[name].rows
    if changes:
        ctx.commit("rekey", "bronze properties", dict(done), seal, lambda: ctx.record_key_checks(checks))
    sealed = ctx.audit("rekey", {c: {"strategy": i["strategy"], "key_version": i["key_version"],
                                     "values": i["values"], "from_versions": i["from_versions"]}
                                 for c, i in result.columns.items()},
                       {"bronze_rows_rewritten": rows["bronze"], "quarantine_rows_rewritten": rows["quarantine"],
                        "allow_partial": allow_partial, "left_at_old_version": lost, "key_checks": checks}, seal,
                       rows_written=rows["bronze"] + rows["quarantine"])
    result.audit_hash = sealed["hash"]
    return result
