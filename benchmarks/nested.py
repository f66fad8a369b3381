"""Nested masking throughput (issue 25): FHIR Patient resources next to the flat ``patients`` policy, same run.

``python benchmarks/nested.py [--rows N] [--repeat R] [--json]``

Both variants go through the shipped ``lakehouse_phi.mask()`` (one ``mapInArrow`` with the row fingerprint and
the PHI scan) on one classic ``local[2]`` session, each over its own input written once to local Parquet and read
back, forced with the ``noop`` sink after a warm-up, best of ``--repeat``:

* ``flat``: the worked example's ``patients`` table (14 flat columns) over ``synth.generate("patients")``;
* ``fhir``: the worked example's ``patient_fhir`` table (every R4 Patient element; names, telecoms, addresses and
  identifiers masked leaf by leaf inside their arrays) over ``synth.fhir.patients`` (same row count).

Also, without Spark, both fused passes on one core (``IngestPlan.process`` on Arrow batches of 10,000 rows), and
the number of masked leaf values per FHIR row, so rows/s can be read as values/s. Ratios are within the run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyarrow as pa
import pyarrow.parquet as pq
from bench_data import example_policy, keys_for
from micro import best_of

BATCH = 10_000


def _inputs(spark, work: Path, rows: int) -> dict[str, Path]:
    from lakehouse_phi import synth
    from lakehouse_phi.synth import fhir

    flat = work / "flat"
    flat.mkdir()
    data = synth.generate("patients", rows, seed=7)
    pq.write_table(pa.table({c: data.column(c).cast(pa.string()) for c in data.column_names}), flat / "p.parquet")
    ndjson = work / "fhir.ndjson"
    ndjson.write_bytes(fhir.ndjson(fhir.patients(rows, seed=7)))
    nested = work / "fhir"
    spark.read.json(str(ndjson)).write.parquet(str(nested))
    return {"flat": flat, "fhir": nested}


def _spark_rates(spark, inputs: dict[str, Path], rows: int, repeat: int) -> dict[str, float]:
    from lakehouse_phi.spark.mask import mask

    loaded = example_policy()
    out = {}
    for name, table in (("flat", "patients"), ("fhir", "patient_fhir")):
        df = spark.read.parquet(str(inputs[name]))
        keys = keys_for(loaded, table)

        def run(df=df, table=table, keys=keys) -> None:
            mask(df, loaded, table, keys=keys).masked.write.format("noop").mode("overwrite").save()

        run()
        out[name] = rows / best_of(run, repeat)
    return out


def _one_core(inputs: dict[str, Path]) -> dict[str, float]:
    from lakehouse_phi.engine.plan import IngestPlan, TablePlan

    loaded = example_policy()
    out = {}
    for name, table in (("flat", "patients"), ("fhir", "patient_fhir")):
        data = pq.read_table(inputs[name])
        spec = loaded.policy.tables[table]
        data = data.select([c for c in spec.columns if c in data.column_names])
        for c in spec.columns:  # optional FHIR elements no generated resource has: NULL, as mask() passes them
            if c not in data.column_names:
                data = data.append_column(c, pa.nulls(data.num_rows, pa.string()))
        if name == "flat":
            data = pa.table({c: data.column(c).cast(pa.string()) for c in data.column_names})
        plan = IngestPlan(TablePlan(loaded, table, keys_for(loaded, table)))
        batches = data.combine_chunks().to_batches(max_chunksize=BATCH)

        def run(plan=plan, batches=batches) -> None:
            for b in batches:
                plan.process(b)

        run()
        out[name] = data.num_rows / best_of(run, 3)
    return out


def _leaves_per_row(inputs: dict[str, Path]) -> float:
    """Masked (non-``keep``) leaf values per FHIR Patient row."""
    from lakehouse_phi.engine.plan import TablePlan

    loaded = example_policy()
    plan = TablePlan(loaded, "patient_fhir", keys_for(loaded, "patient_fhir"))
    data = pq.read_table(inputs["fhir"]).combine_chunks()
    total = 0
    for nc in plan.nested.values():
        if nc.name in data.column_names:
            col = data.column(nc.name).combine_chunks()
            for _label, text, _rows in nc.texts(col, lambda lp: lp.strategy.name != "keep"):
                total += len(text) - text.null_count
    return total / data.num_rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    from run import start_spark  # the same session settings as benchmarks/run.py

    spark = start_spark()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lhp-bench-nested-") as tmp:
        inputs = _inputs(spark, Path(tmp), args.rows)
        rates = _spark_rates(spark, inputs, args.rows, args.repeat)
        core = _one_core(inputs)
        leaves = _leaves_per_row(inputs)
    result = {
        "rows": args.rows,
        "flat_policy_rows_per_s": round(rates["flat"]),
        "fhir_patient_rows_per_s": round(rates["fhir"]),
        "fhir_vs_flat": round(rates["fhir"] / rates["flat"], 3),
        "flat_policy_rows_per_s_one_core": round(core["flat"]),
        "fhir_patient_rows_per_s_one_core": round(core["fhir"]),
        "fhir_masked_leaf_values_per_row": round(leaves, 2),
        "wall_s": round(time.perf_counter() - started, 1),
    }
    spark.stop()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            print(f"{k:36} {v:>12,}" if isinstance(v, int) else f"{k:36} {v:>12}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
