"""Span-level precision and recall of the ``scrub_text`` detectors on labeled notes.

Predicted spans are read off what the strategy itself writes: the notes are scrubbed as one Arrow column, and each
output is aligned back onto its input (the literal pieces between the tags anchor the alignment), so every part of
the pass (patterns, ``phonenumbers``, ``ipaddress``, the name tagger on words) is scored as it runs. A tag names
its detector (``[SSN]`` -> ``ssn``).

- A labeled identifier is *found* when one predicted span of the same detector covers it entirely
  (a partial cover would leave part of it in the output).
- A predicted span is *correct* when it overlaps a labeled identifier of the same detector.
- A look-alike (label ``neg``: a dosage, a code, a lab value) is *intact* when no predicted span overlaps it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from lakehouse_phi.transforms.detectors import GUARD, GUARDS, ORDER, TAGS, compiled

Span = tuple[int, int, str]
_TAG = re.compile(r"\[[A-Z][A-Z0-9_]*\]")
_DETECTOR_OF = {tag: name for name, tag in TAGS.items()}


def align(original: str, output: str) -> list[Span]:
    """Spans ``(start, end, detector)`` of ``original`` that ``output`` replaced by tags (the shortest reading;
    ``[]`` when the output does not align, which a scrubbed text always does)."""
    pieces = _TAG.split(output)
    tags = _TAG.findall(output)
    if not tags:
        return []
    m = re.match("^" + "(.+?)".join(re.escape(p) for p in pieces) + "$", original, re.S)
    if not m:
        return []
    return [(m.start(i + 1), m.end(i + 1), _DETECTOR_OF.get(t, t.strip("[]").lower())) for i, t in enumerate(tags)]


def predicted_spans_many(texts: Sequence[str], detectors: Sequence[str] = ORDER) -> list[list[Span]]:
    """:func:`predicted_spans` of many texts, scrubbed as one column."""
    from lakehouse_phi.transforms.scrub_text import scrub

    out = scrub(pa.array(list(texts), pa.string()), tuple(detectors)).to_pylist()
    return [sorted(align(t, o)) for t, o in zip(texts, out)]


def predicted_spans(text: str, detectors: Sequence[str] = ORDER) -> list[Span]:
    """Spans ``(start, end, detector)`` of the original ``text`` that ``scrub_text`` replaces."""
    return predicted_spans_many([text], detectors)[0]


@dataclass
class Score:
    labeled: int = 0
    found: int = 0
    predicted: int = 0
    correct: int = 0

    @property
    def recall(self) -> float:
        return self.found / self.labeled if self.labeled else 1.0

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 1.0


@dataclass
class LookAlikes:
    total: int = 0
    intact: int = 0

    @property
    def rate(self) -> float:
        return self.intact / self.total if self.total else 1.0


def evaluate(texts: Sequence[str], labels: Sequence[Sequence[Span]], detectors: Sequence[str] = ORDER,
             look_alikes: LookAlikes | None = None) -> dict[str, Score]:
    """Per-detector scores over a corpus (``labels[i]`` are the identifier spans of ``texts[i]``); spans labeled
    ``neg`` are counted into ``look_alikes``."""
    scores = {name: Score() for name in ORDER if name in detectors}
    for gold, pred in zip(labels, predicted_spans_many(texts, detectors)):
        for s, e, tag in gold:
            if tag == "neg":
                if look_alikes is not None:
                    look_alikes.total += 1
                    look_alikes.intact += not any(ps < e and s < pe for ps, pe, _ in pred)
            elif tag in scores:
                scores[tag].labeled += 1
                scores[tag].found += any(ps <= s and e <= pe and pt == tag for ps, pe, pt in pred)
        for ps, pe, pt in pred:
            if pt not in scores:
                continue
            scores[pt].predicted += 1
            scores[pt].correct += any(s < pe and ps < e and tag == pt for s, e, tag in gold)
    return scores


def python_scrub(texts: Sequence[str | None], detectors: Sequence[str] = ORDER) -> list[str | None]:
    """The same patterns with Python ``re`` (``re.sub``, one after the other): the alternative that
    ``benchmarks/scrub_eval.py --compare`` times against the Arrow/RE2 strategy (patterns only: the word pass and
    the parsers are not part of it)."""
    steps = [(re.compile(p), r.replace("\\1", "\\g<1>").replace("\\2", "\\g<2>").replace("\\3", "\\g<3>"))
             for p, r in GUARDS]
    steps += [(rx, rf"\g<1>{TAGS[name]}\g<2>") for name in ORDER if name in detectors for rx in compiled(name)]
    out = []
    for t in texts:
        if t is not None:
            for rx, rep in steps:
                t = rx.sub(rep, t)
            t = t.replace(GUARD, "")
        out.append(t)
    return out
