"""Precision/recall and throughput of the ``scrub_text`` strategy on generated, labeled clinical notes.

    python benchmarks/scrub_eval.py [--notes N] [--seed S] [--json] [--compare]

Recall: a labeled identifier counts as found when a span of the same detector covers it entirely. Precision: a
replaced span counts as correct when it overlaps a labeled identifier of the same detector (see
:mod:`lakehouse_phi.synth.scrub_eval`). Throughput is the vectorized strategy on the whole column (best of 3);
``--compare`` also times the alternative (one Python ``re`` alternation) and checks both give the same text.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from lakehouse_phi.synth.notes import generate_notes
from lakehouse_phi.synth.scrub_eval import combined_python_scrub, evaluate
from lakehouse_phi.transforms.base import ColumnContext
from lakehouse_phi.transforms.scrub_text import ScrubText, ScrubTextParams


def _best_of(n: int, fn, *args):  # type: ignore[no-untyped-def]
    best, out = float("inf"), None
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--notes", type=int, default=20_000, help="number of generated notes (default 20000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    ap.add_argument("--compare", action="store_true", help="also time the combined Python re implementation")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    notes, labels = generate_notes(np.random.default_rng([args.seed, 0x6E6F7465]), args.notes)
    gen_s = time.perf_counter() - t0
    texts = notes.to_pylist()
    strategy = ScrubText(ScrubTextParams(), ColumnContext("encounters", "note", "note"))
    arrow_s, scrubbed = _best_of(3, strategy.apply, notes)
    scores = evaluate(texts, labels.per_note(args.notes))

    result: dict = {
        "notes": args.notes, "seed": args.seed, "mean_note_chars": round(sum(map(len, texts)) / len(texts), 1),
        "generate_notes_per_s": round(args.notes / gen_s),
        "scrub_notes_per_s": round(args.notes / arrow_s),
        "scrub_mb_per_s": round(notes.nbytes / arrow_s / 1e6, 1),
        "detectors": {name: {"labeled": s.labeled, "found": s.found, "recall": round(s.recall, 4),
                             "predicted": s.predicted, "correct": s.correct, "precision": round(s.precision, 4)}
                      for name, s in scores.items()},
    }
    if args.compare:
        py_s, py_out = _best_of(1, combined_python_scrub, texts)
        same = sum(a == b for a, b in zip(py_out, scrubbed.to_pylist()))
        result["python_re_notes_per_s"] = round(args.notes / py_s)
        result["python_re_identical_fraction"] = round(same / args.notes, 4)

    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return 0
    print(f"{args.notes} notes (seed {args.seed}, mean {result['mean_note_chars']} chars)")
    print(f"{'detector':<8} {'labeled':>8} {'recall':>8} {'predicted':>10} {'precision':>10}")
    for name, d in result["detectors"].items():
        print(f"{name:<8} {d['labeled']:>8} {d['recall']:>8.4f} {d['predicted']:>10} {d['precision']:>10.4f}")
    print(f"scrub_text (pyarrow/RE2): {result['scrub_notes_per_s']:,} notes/s ({result['scrub_mb_per_s']} MB/s)")
    if args.compare:
        print(f"combined Python re:       {result['python_re_notes_per_s']:,} notes/s; identical output on "
              f"{result['python_re_identical_fraction']:.2%} of notes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
