"""Microbenchmarks without Spark, on one core: every ingest strategy over generated values, the fused
``TablePlan.process`` of ``patients``, and a cProfile of it; and what the ingest pass adds to a plan (the row
fingerprint, the PHI scan), on the hmac cut of variant (c).

Each strategy is measured as the plan binds it to the first column of the example policy that uses it (so with
that column's parameters and a realistic value mix), on values already parsed to the column's type.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from collections.abc import Callable

import pyarrow as pa
from bench_data import example_policy, hmac_only_policy, plan_for

from lakehouse_phi import synth
from lakehouse_phi.engine.plan import SOURCE_FILE_COL, IngestPlan, TablePlan
from lakehouse_phi.engine.types import parse


def best_of(fn: Callable[[], object], repeat: int = 3, clock: Callable[[], float] = time.perf_counter) -> float:
    """Best of ``repeat`` runs by ``clock`` (wall time; ``time.process_time`` for the CPU of this one process,
    steadier for one-core figures on a machine other work shares)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = clock()
        fn()
        best = min(best, clock() - t0)
    return best


def _typed(plan: TablePlan, data: pa.Table) -> dict[str, pa.Array]:
    return {c: parse(data.column(c).combine_chunks(), s.type)[0] for c, s in plan.spec.columns.items()}


def strategy_rates(values: int = 200_000, seed: int = 7) -> dict[str, float]:
    """Values per second of each strategy (name -> rate), best of 3, on ``values`` values."""
    loaded = example_policy()
    rates: dict[str, float] = {}
    for table in ("patients", "encounters", "claims"):
        plan = plan_for(loaded, table)
        typed = _typed(plan, synth.generate(table, values, seed=seed, patients=max(1, values // 3)))
        for out in plan.outputs:
            name = out.strategy.name
            if name in rates:
                continue
            column = typed[out.source]
            others = {c: typed[c] for c in out.strategy.needs_columns(out.strategy.params)}

            def run(s=out.strategy, v=column, o=others):
                bad = s.invalid(v)
                s.apply(v, o)
                return bad

            run()
            rates[name] = values / best_of(run)
    return rates


def plan_rate(rows: int = 100_000, seed: int = 7) -> tuple[float, list[dict]]:
    """Rows per second of the fused ``patients`` plan on one core, and its top costs by cProfile (own time)."""
    plan = plan_for(example_policy(), "patients")
    batch = synth.generate("patients", rows, seed=seed).combine_chunks().to_batches()[0]
    plan.process(batch)
    rate = rows / best_of(lambda: plan.process(batch))
    prof = cProfile.Profile()
    prof.enable()
    plan.process(batch)
    prof.disable()
    stats = pstats.Stats(prof, stream=io.StringIO()).sort_stats("tottime")
    top = []
    for (file, line, func), (_cc, calls, own, cum, _callers) in sorted(
            stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:10]:
        where = f"{file.rsplit('/site-packages/', 1)[-1].rsplit('/lakehouse_phi/', 1)[-1]}:{line}"
        top.append({"function": f"{where}({func})", "calls": calls, "own_s": round(own, 4), "cum_s": round(cum, 4)})
    return rate, top


def ingest_pass_rates(rows: int = 100_000, seed: int = 7) -> dict[str, float]:
    """Rows per second on one core (CPU time) of the ``hmac`` cut of ``patients`` (variant (c)): the strategy alone
    (``TablePlan.process``) and the ingest pass that ``mask()`` runs (``IngestPlan.process``: plus the keyed row
    fingerprint, the PHI scan and the source-file hash), on landing strings in batches of 10,000."""
    plan = plan_for(hmac_only_policy(), "patients")
    data = synth.generate("patients", rows, seed=seed)
    table = pa.table({c: data.column(c).cast(pa.string()) for c in plan.spec.columns})
    table = table.append_column(SOURCE_FILE_COL, pa.array(["file:///landing/patients/part-0.csv"] * rows))
    batches = table.to_batches(10_000)
    out = {}
    for name, run in (("strategy", plan.process), ("ingest_pass", IngestPlan(plan).process)):
        run(batches[0])
        out[name] = rows / best_of(lambda run=run: [run(b) for b in batches], 5, time.process_time)
    return out


def hmac_variants(values: int = 100_000, seed: int = 7) -> dict[str, float]:
    """Keyed hashes per second on one core over the ``mrn`` values (as bytes), the ideas of issue 21.5 side by side:

    * ``hmac_copy_hex_list``: the earlier path: a copied ``cryptography`` HMAC context per value, ``.hex()`` per
      digest, ``pa.array`` over the strings;
    * ``hmac_copy_hexlify``: the pure path (:meth:`HmacSha256.hex_array`): the same digests, one ``hexlify`` of
      their concatenation into an Arrow array with fixed offsets;
    * ``hashlib_pads``: copied ``hashlib`` SHA-256 states of the key's inner and outer pads (same bytes);
    * ``native_arrow_loop`` (with ``lakehouse-phi-native`` installed): the shipped path then
      (:meth:`HmacSha256.hex_arrow`): one C loop over the Arrow buffers, OpenSSL's SHA-256 from the pads' midstates;
    * ``blake2b_keyed``: keyed BLAKE2b-256, copied per value. Faster, but **not** the contract: ``_row_fingerprint``
      and the ``hmac`` strategy are HMAC-SHA256 (policy.md), and bronze's history/latest rules compare stored
      fingerprints across runs, so a different keyed hash would make every row look new. Measured, not used.
    """
    import binascii
    import hashlib

    from lakehouse_phi.transforms.hmac import NATIVE, HmacSha256

    key = hashlib.sha256(b"benchmark-key").digest()
    data = synth.generate("patients", values, seed=seed)
    messages = [m.encode() for m in data.column("mrn").to_pylist()]
    mac = HmacSha256(key)
    base = mac._base

    def copy_hex_list() -> pa.Array:
        copy, out = base.copy, []
        for m in messages:
            c = copy()
            c.update(m)
            out.append(c.finalize().hex())
        return pa.array(out, pa.string())

    padded = key.ljust(64, b"\0")
    inner0 = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
    outer0 = hashlib.sha256(bytes(b ^ 0x5C for b in padded))

    def pads() -> list[bytes]:
        ic, oc, out = inner0.copy, outer0.copy, []
        for m in messages:
            i = ic()
            i.update(m)
            o = oc()
            o.update(i.digest())
            out.append(o.digest())
        return out

    blake = hashlib.blake2b(key=key, digest_size=32)

    def blake2b() -> bytes:
        copy, out = blake.copy, []
        for m in messages:
            c = copy()
            c.update(m)
            out.append(c.digest())
        return binascii.hexlify(b"".join(out))

    assert copy_hex_list().equals(mac.hex_array(messages))
    assert [binascii.hexlify(d).decode() for d in pads()] == mac.hexdigests(messages)
    runs = {"hmac_copy_hex_list": copy_hex_list, "hmac_copy_hexlify": lambda: mac.hex_array(messages),
            "hashlib_pads": pads, "blake2b_keyed": blake2b}
    if NATIVE:  # the C loop over the Arrow buffers (lakehouse-phi-native), same bytes
        arrow_messages = pa.array(messages, pa.binary())
        assert mac.hex_arrow(arrow_messages).equals(mac.hex_array(messages))
        runs["native_arrow_loop"] = lambda: mac.hex_arrow(arrow_messages)
    return {name: values / best_of(run, 7, time.process_time) for name, run in runs.items()}
