"""Precision/recall and throughput of ``scrub_text``, on an independent labeled corpus and on generated notes.

    python benchmarks/scrub_eval.py [--notes N] [--seed S] [--json] [--compare]

Corpora: ``independent`` is ``benchmarks/scrub_corpus`` (hand-written snippets plus notes from that folder's own
templates and formats, with look-alikes labeled ``neg``), written apart from the synthetic generator;
``synthetic`` is :func:`lakehouse_phi.synth.notes.generate_notes`. Recall: a labeled identifier counts as found
when a span of the same detector covers it entirely. Precision: a replaced span counts as correct when it overlaps
a labeled identifier of the same detector. Look-alikes intact: labeled look-alikes no span touches (see
:mod:`lakehouse_phi.synth.scrub_eval`). Throughput is the vectorized strategy on the whole column (best of 3);
``--compare`` also times the same patterns with Python ``re`` and checks both give the same text.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scrub_corpus.corpus import generate, handwritten  # noqa: E402

from lakehouse_phi.synth.notes import generate_notes  # noqa: E402
from lakehouse_phi.synth.scrub_eval import LookAlikes, evaluate, python_scrub  # noqa: E402
from lakehouse_phi.transforms.base import ColumnContext  # noqa: E402
from lakehouse_phi.transforms.scrub_text import ScrubText, ScrubTextParams  # noqa: E402


def _best_of(n: int, fn, *args):  # type: ignore[no-untyped-def]
    best, out = float("inf"), None
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best, out


def _scores(texts: list[str], labels: list) -> dict:
    look = LookAlikes()
    scores = evaluate(texts, labels, look_alikes=look)
    return {"notes": len(texts),
            "detectors": {name: {"labeled": s.labeled, "found": s.found, "recall": round(s.recall, 4),
                                 "predicted": s.predicted, "correct": s.correct, "precision": round(s.precision, 4)}
                          for name, s in scores.items()},
            "look_alikes": look.total, "look_alikes_intact": round(look.rate, 4)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--notes", type=int, default=5_000, help="notes of each generated corpus (default 5000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    ap.add_argument("--compare", action="store_true", help="also time the same patterns with Python re")
    args = ap.parse_args(argv)

    hand_texts, hand_labels = handwritten()
    gen_texts, gen_labels = generate(args.notes, seed=args.seed + 11)
    notes, labels = generate_notes(np.random.default_rng([args.seed, 0x6E6F7465]), args.notes)
    synth_texts = notes.to_pylist()
    result: dict = {
        "independent": _scores(hand_texts + gen_texts, hand_labels + gen_labels),
        "independent_handwritten": _scores(hand_texts, hand_labels),
        "synthetic": _scores(synth_texts, labels.per_note(args.notes)),
    }
    column = pa.array(gen_texts, pa.string())
    strategy = ScrubText(ScrubTextParams(), ColumnContext("encounters", "note", "note"))
    arrow_s, scrubbed = _best_of(3, strategy.apply, column)
    result["throughput"] = {"notes": len(gen_texts), "mean_note_chars": round(sum(map(len, gen_texts)) / len(gen_texts), 1),
                            "scrub_notes_per_s": round(len(gen_texts) / arrow_s),
                            "scrub_mb_per_s": round(column.nbytes / arrow_s / 1e6, 2)}
    if args.compare:
        py_s, py_out = _best_of(1, python_scrub, gen_texts)
        same = sum(a == b for a, b in zip(py_out, scrubbed.to_pylist()))
        result["throughput"]["python_re_notes_per_s"] = round(len(gen_texts) / py_s)
        result["throughput"]["python_re_identical_fraction"] = round(same / len(gen_texts), 4)

    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return 0
    for corpus in ("independent", "independent_handwritten", "synthetic"):
        r = result[corpus]
        print(f"{corpus}: {r['notes']} notes; look-alikes intact {r['look_alikes_intact']:.4f} of {r['look_alikes']}")
        print(f"  {'detector':<8} {'labeled':>8} {'recall':>8} {'predicted':>10} {'precision':>10}")
        for name, d in r["detectors"].items():
            if d["labeled"] or d["predicted"]:
                print(f"  {name:<8} {d['labeled']:>8} {d['recall']:>8.4f} {d['predicted']:>10} {d['precision']:>10.4f}")
    t = result["throughput"]
    print(f"scrub_text (pyarrow/RE2): {t['scrub_notes_per_s']:,} notes/s ({t['scrub_mb_per_s']} MB/s, "
          f"{t['mean_note_chars']} chars/note)")
    if args.compare:
        print(f"Python re, same patterns: {t['python_re_notes_per_s']:,} notes/s; identical output on "
              f"{t['python_re_identical_fraction']:.2%} of notes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
