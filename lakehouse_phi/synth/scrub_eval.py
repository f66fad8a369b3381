"""Span-level precision and recall of the ``scrub_text`` detectors on labeled notes.

Predicted spans come from the same patterns run with Python ``re`` in the same order as ``scrub_text``: after each
pattern its matches are replaced by the tag the strategy writes, while a list of (start, end) pieces maps the
current text back to offsets of the original text. The identifier part of a match is what lies between the kept
groups ``(before)IDENTIFIER(after)``.

- A labeled identifier is *found* when one predicted span of the same detector covers it entirely
  (a partial cover would leave part of it in the output).
- A predicted span is *correct* when it overlaps a labeled identifier of the same detector.
- A look-alike (label ``neg``: a dosage, a code, a lab value) is *intact* when no predicted span overlaps it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import re

from lakehouse_phi.transforms.detectors import GUARD, GUARDS, ORDER, TAGS, compiled

Span = tuple[int, int, str]


def predicted_spans(text: str, detectors: Sequence[str] = ORDER) -> list[Span]:
    """Spans ``(start, end, detector)`` of the original ``text`` that ``scrub_text`` replaces."""
    spans: list[Span] = []
    current = text
    # origin[i] = offset in ``text`` of current[i], or -1 inside a tag (tags carry the span they replaced)
    origin: list[int] = list(range(len(text)))
    ends: list[int] = [i + 1 for i in range(len(text))]
    for pattern, _ in GUARDS:  # the guard character after group 2, mapped to the digit before it
        for m in reversed(list(re.finditer(pattern, current))):
            at = m.end(2)
            current = current[:at] + GUARD + current[at:]
            origin.insert(at, origin[at - 1])
            ends.insert(at, ends[at - 1])
    for name in ORDER:
        if name not in detectors:
            continue
        tag = TAGS[name]
        for rx in compiled(name):
            pieces, new_origin, new_ends, last = [], [], [], 0
            found = False
            for m in rx.finditer(current):
                s, e = m.end(1), m.start(m.lastindex or 1) if (m.lastindex or 0) >= 2 else m.end()
                if e <= s:
                    continue
                found = True
                pieces.append(current[last:s])
                new_origin += origin[last:s]
                new_ends += ends[last:s]
                spans.append((origin[s], ends[e - 1], name))
                pieces.append(tag)
                new_origin += [origin[s]] * len(tag)
                new_ends += [ends[e - 1]] * len(tag)
                last = e
            if found:
                pieces.append(current[last:])
                new_origin += origin[last:]
                new_ends += ends[last:]
                current, origin, ends = "".join(pieces), new_origin, new_ends
    return sorted(spans)


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
    for text, gold in zip(texts, labels):
        pred = predicted_spans(text, detectors)
        for s, e, tag in gold:
            if tag == "neg":
                if look_alikes is not None:
                    look_alikes.total += 1
                    look_alikes.intact += not any(ps < e and s < pe for ps, pe, _ in pred)
            elif tag in scores:
                scores[tag].labeled += 1
                scores[tag].found += any(ps <= s and e <= pe and pt == tag for ps, pe, pt in pred)
        for ps, pe, pt in pred:
            scores[pt].predicted += 1
            scores[pt].correct += any(s < pe and ps < e and tag == pt for s, e, tag in gold)
    return scores


def python_scrub(texts: Sequence[str | None], detectors: Sequence[str] = ORDER) -> list[str | None]:
    """The same patterns with Python ``re`` (``re.sub``, one after the other): the alternative that
    ``benchmarks/scrub_eval.py --compare`` times against the Arrow/RE2 strategy."""
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
