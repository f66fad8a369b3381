"""Span-level precision and recall of the ``scrub_text`` detectors on labeled notes.

Predicted spans come from the same patterns run with Python ``re`` in the same order as ``scrub_text``: after each
detector its matches are blanked (same length, ``[XX..X]``, so offsets stay those of the original text) before
the next detector runs, as the tag replacement does in the real strategy.

- A labeled identifier is *found* when one predicted span of the same detector covers it entirely
  (a partial cover would leave part of it in the output).
- A predicted span is *correct* when it overlaps a labeled identifier of the same detector.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from lakehouse_phi.transforms.detectors import ORDER, PATTERNS, TAGS, compiled

Span = tuple[int, int, str]


def predicted_spans(text: str, detectors: Sequence[str] = ORDER) -> list[Span]:
    """Spans ``(start, end, detector)`` that ``scrub_text`` replaces in ``text``, in original offsets."""
    spans: list[Span] = []
    masked = text
    for name in ORDER:
        if name not in detectors:
            continue
        found = [(m.start(), m.end()) for m in compiled(name).finditer(masked)]
        if not found:
            continue
        pieces, last = [], 0
        for s, e in found:
            pieces += [masked[last:s], "[" + "X" * max(e - s - 2, 0) + "]"[: e - s - 1]]
            last = e
            spans.append((s, e, name))
        masked = "".join(pieces) + masked[last:]
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


def evaluate(texts: Sequence[str], labels: Sequence[Sequence[Span]], detectors: Sequence[str] = ORDER
             ) -> dict[str, Score]:
    """Per-detector scores over a corpus (``labels[i]`` are the identifier spans of ``texts[i]``)."""
    scores = {name: Score() for name in ORDER if name in detectors}
    for text, gold in zip(texts, labels):
        pred = predicted_spans(text, detectors)
        for s, e, tag in gold:
            if tag in scores:
                scores[tag].labeled += 1
                scores[tag].found += any(ps <= s and e <= pe and pt == tag for ps, pe, pt in pred)
        for ps, pe, pt in pred:
            scores[pt].predicted += 1
            scores[pt].correct += any(s < pe and ps < e and tag == pt for s, e, tag in gold)
    return scores


def combined_python_scrub(texts: Sequence[str | None], detectors: Sequence[str] = ORDER) -> list[str | None]:
    """The alternative implementation: one Python ``re`` alternation of all detectors, tag chosen by group."""
    rx = re.compile("|".join(f"(?P<{n}>{PATTERNS[n]})" for n in ORDER if n in detectors))
    sub = rx.sub

    def tag(m: re.Match[str]) -> str:
        return TAGS[m.lastgroup or ""]

    return [None if t is None else sub(tag, t) for t in texts]
