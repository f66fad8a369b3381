"""Replace each detected identifier in free text by its tag, e.g. ``[SSN]``; remove the row's own identifiers.

Two steps, both over the whole column (no per-row Python):

1. ``row_values: [columns]``: the values of those columns *in the same row* are removed wherever they occur in the
   text, case-insensitively and on word boundaries, tagged by the column's ``phi`` category (``[NAME]``,
   ``[MEDICAL_RECORD_NUMBER]``...; ``[OTHER]`` without one). A ``phi: name`` value counts by its parts of 3 or
   more letters (``Mary-Jo O'Neil`` -> ``Mary``, ``O'Neil``); any other value as its sequence of words, whatever
   separates them in the text (``617-555-0123`` is found as ``(617) 555 0123``), and, when it holds 5 or more
   digits, also as its digits alone (``MRN1234567`` is found as ``1234567``). The text is cut into words and
   separators with Arrow, each word compared with the row's values through a ``row\\x1fword`` key (``is_in``), and
   multi-word values by comparing the following words position by position (numpy).
2. The detectors of :mod:`.detectors`, applied one after the other in :data:`~.detectors.ORDER` with
   ``pyarrow.compute.replace_substring_regex`` (RE2, over the whole column). On 20,000 generated notes (~180
   characters each) the seven regex-only detectors ran ~400k notes/s against ~21k notes/s for one combined Python
   ``re`` alternation with a callback (``benchmarks/scrub_eval.py --compare``).

NUL characters in a text scrubbed with ``row_values`` are dropped (they delimit words internally).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, get_args

import numpy as np
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray
from pydantic import Field

from lakehouse_phi.transforms.base import ColumnContext, Params, Strategy
from lakehouse_phi.transforms.detectors import GUARD, GUARDS, ORDER, PREFILTERS, TAGS, patterns, replacement
from lakehouse_phi.transforms.names import F_DOT_FIRST, F_SINGLE, Roster, Tokens, name_runs

DetectorName = Literal["ssn", "phone", "email", "mrn", "id", "date", "age", "url", "ip", "name", "address", "geo"]
DETECTORS: tuple[DetectorName, ...] = get_args(DetectorName)
_WORD = r"[\pL\pN]+"
_SEP = "\x00"
#: A value of more words than this is not an identifier to look for (a pasted paragraph).
MAX_VALUE_WORDS = 12
#: Rows worth handing to ``phonenumbers``: a ``+`` or ``00`` before digits, or a phone word before a number.
PHONE_CANDIDATES = (r"(?:\+|\b00)[1-9][0-9 ().\-/]{6,}[0-9]|(?i:\b(?:phone|tel|telephone|cell|mobile|fax|pager|"
                    r"call|callback|number|whatsapp|contact|reach|ph|ext)\b)[^0-9\n]{0,12}[+(]?[0-9][0-9 ().\-/]{5,}"
                    r"[0-9]")
#: Rows holding an IPv6-looking run (``::`` or four hex groups), checked with ``ipaddress``.
IPV6_CANDIDATES = r"::|[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}"
_IPV6_RUN = re.compile(r"(?<![0-9A-Za-z:])[0-9A-Fa-f:]*:[0-9A-Fa-f:]*(?::[0-9]{1,3}(?:\.[0-9]{1,3}){3})?"
                       r"(?![0-9A-Za-z:])")


class ScrubTextParams(Params):
    detectors: list[DetectorName] = Field(default_factory=lambda: list(DETECTORS))
    #: Columns of the same row whose values are removed from the text.
    row_values: list[str] = Field(default_factory=list)
    #: Rosters: ``table.column`` of the same policy whose values (every row's) are removed from every text.
    known: list[str] = Field(default_factory=list)


def scrub(values: pa.Array | pa.ChunkedArray, detectors: tuple[str, ...] | list[str] = DETECTORS,
          roster: Roster | None = None) -> pa.Array | pa.ChunkedArray:
    """``values`` with every match of the chosen detectors (and of ``roster``) replaced by its tag; NULL stays
    NULL."""
    out = _patterns_pass(values, detectors, parsers=True)
    if "name" in detectors or (roster is not None and roster):
        out = _words_pass(out, "name" in detectors, roster)
    return pc.replace_substring(out, GUARD, "")


def scrub_patterns(values: pa.Array | pa.ChunkedArray, detectors: tuple[str, ...] | list[str] = DETECTORS
                   ) -> pa.Array:
    """The RE2 patterns of ``detectors`` alone (no parsers, no word pass): what :func:`.scrub_eval.python_scrub`
    reproduces with Python ``re``."""
    return pc.replace_substring(_patterns_pass(values, detectors, parsers=False), GUARD, "")


def _patterns_pass(values: pa.Array | pa.ChunkedArray, detectors: tuple[str, ...] | list[str], parsers: bool
                   ) -> pa.Array:
    out = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    for pattern, guarded in GUARDS:
        out = pc.replace_substring_regex(out, pattern=pattern, replacement=guarded)
    for name in ORDER:
        if name not in detectors:
            continue
        out = _on_rows(out, PREFILTERS[name], functools.partial(_apply, name)) if name in PREFILTERS else \
            _apply(name, out)
        if parsers and name == "phone":
            out = _patch_rows(out, PHONE_CANDIDATES, _phones)
        elif parsers and name == "ip":
            out = _patch_rows(out, IPV6_CANDIDATES, _ipv6)
    return out


def tag_counts(before: pa.Array | pa.ChunkedArray, after: pa.Array | pa.ChunkedArray) -> dict[str, int]:
    """Replacements per tag (``{"SSN": 3, "NAME": 10}``): tags in ``after`` less those already in ``before``.
    Counts only, never values."""
    counts: dict[str, int] = {}
    for tag in sorted({*TAGS.values(), *(f"[{p.upper()}]" for p in _ROW_TAGS)}):
        n = (pc.sum(pc.count_substring(after, tag)).as_py() or 0) - (
            pc.sum(pc.count_substring(before, tag)).as_py() or 0)
        if n > 0:
            counts[tag.strip("[]")] = counts.get(tag.strip("[]"), 0) + n
    return counts


#: phi categories whose tags ``row_values`` and ``known`` may write (counted by :func:`tag_counts`).
_ROW_TAGS = ("name", "medical_record_number", "phone", "address", "other", "email", "ssn", "account_number",
             "health_plan_id", "license_number", "device_id", "zip")


def _words_pass(values: pa.Array, names: bool, roster: Roster | None) -> pa.Array:
    """Roster matches and person names (:mod:`.names`), on the words of the text, in one cut."""
    tok = Tokens(values)
    n = len(tok.flat)
    covered = np.zeros(n, dtype=bool)
    start_tag = np.full(n, -1, dtype=np.int64)
    tags: list[str] = []
    if roster:
        roster.mark(tok, covered, start_tag, tags)
    trim = None
    if names:
        runs = name_runs(tok) & ~covered
        if runs.any():
            starts = runs & ~tok.shifted(runs, -1)
            if TAGS["name"] not in tags:
                tags.append(TAGS["name"])
            start_tag[starts] = tags.index(TAGS["name"])
            covered |= runs
            # the dot of an initial that ends a name (Florence O., RN)
            initial_end = runs & tok.has(F_SINGLE) & ~tok.shifted(runs, 1)
            trim = tok.shifted(initial_end, -1) & ~tok.is_word & tok.has(F_DOT_FIRST)
    if not covered.any():
        return values
    return tok.rebuild(covered, start_tag, tags, trim)


def _apply(name: str, values: pa.Array) -> pa.Array:
    for pattern in patterns(name):
        values = pc.replace_substring_regex(values, pattern=pattern, replacement=replacement(name))
    return values


def _on_rows(values: pa.Array, candidates: str, fn: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """``fn`` (vectorized) over the rows matching the RE2 ``candidates``; other rows as they are."""
    hit = np.flatnonzero(np.asarray(pc.fill_null(pc.match_substring_regex(values, candidates), False), dtype=bool))
    if not len(hit):
        return values
    if len(hit) == len(values):
        return fn(values)
    where = np.arange(len(values))
    where[hit] = len(values) + np.arange(len(hit))
    return pa.concat_arrays([values, fn(values.take(pa.array(hit)))]).take(pa.array(where))


def _patch_rows(values: pa.Array, candidates: str, fn: Callable[[str], str]) -> pa.Array:
    """``fn`` over the texts matching the RE2 ``candidates`` (a cheap prefilter); other rows as they are."""
    hit = np.flatnonzero(np.asarray(pc.fill_null(pc.match_substring_regex(values, candidates), False), dtype=bool))
    if not len(hit):
        return values
    changed = pa.array([fn(t) for t in values.take(pa.array(hit)).to_pylist()], values.type)
    where = np.arange(len(values))
    where[hit] = len(values) + np.arange(len(hit))
    return pa.concat_arrays([values, changed]).take(pa.array(where))


def _phones(text: str) -> str:
    """Phone and fax numbers of any country and format (libphonenumber's matcher, US as the default region)."""
    out, last = [], 0
    for m in phonenumbers.PhoneNumberMatcher(text, "US", leniency=phonenumbers.Leniency.POSSIBLE):
        # a valid number of its country, or any possible one written internationally (+44 7700 900123: a range
        # kept for fiction, still the shape of a number someone can call)
        if GUARD in m.raw_string or not (m.raw_string.startswith(("+", "00"))
                                         or phonenumbers.is_valid_number(m.number)):
            continue
        out += [text[last:m.start], TAGS["phone"]]
        last = m.end
    return "".join(out) + text[last:] if out else text


def _ipv6(text: str) -> str:
    def sub(m: re.Match[str]) -> str:
        run = m.group(0)
        try:
            ipaddress.IPv6Address(run.split("%")[0])
        except ValueError:
            return run
        return TAGS["ip"]

    return _IPV6_RUN.sub(sub, text)


def _lists(arr: pa.Array) -> tuple[pa.Array, NDArray[Any]]:
    """(flattened pieces, parent row of each piece) of a list array."""
    return pc.list_flatten(arr), pc.list_parent_indices(arr).to_numpy(zero_copy_only=False)


def _words(values: pa.Array) -> pa.Array:
    """Per row: the text cut as [separator, word, separator, word, ..., separator] (words at odd positions)."""
    marked = pc.replace_substring_regex(pc.replace_substring(values, _SEP, ""), _WORD, f"{_SEP}\\0{_SEP}")
    return pc.split_pattern(marked, _SEP)


def _keys(rows: NDArray[Any], words: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(pa.array(rows.astype(np.int64)).cast(pa.string()), words, "\x1f")


class ScrubText(Strategy[ScrubTextParams]):
    name = "scrub_text"
    params_model = ScrubTextParams
    key_kind = None
    deterministic = True
    accepts = ("string",)

    def __init__(self, params: ScrubTextParams, ctx: ColumnContext, key: bytes | None = None) -> None:
        super().__init__(params, ctx, key)
        #: column -> phi category, for the tags of ``row_values``
        self.phi_of = dict(ctx.table_phi)
        #: the prepared rosters of ``known`` (set by the plan: :meth:`prepare_roster`)
        self.roster: Roster | None = None

    @staticmethod
    def prepare_roster(rosters: Sequence[tuple[str | None, Sequence[str | None]]]) -> Roster:
        """One :class:`~.names.Roster` of ``(phi category, values)`` lists: values tagged by their category
        (``[NAME]``, ``[MEDICAL_RECORD_NUMBER]``, ``[OTHER]`` without one), as ``row_values`` tags them."""
        roster = Roster()
        for phi, values in rosters:
            roster.add(values, f"[{(phi or 'other').upper()}]", is_name=phi == "name")
        return roster

    @classmethod
    def needs_columns(cls, params: ScrubTextParams) -> tuple[str, ...]:
        return tuple(params.row_values)

    def apply(self, values: pa.Array, others: Mapping[str, pa.Array] | None = None) -> pa.Array:
        if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
                or pa.types.is_null(values.type)):
            raise TypeError(f"scrub_text on {self.ctx.table}.{self.ctx.column}: expected a string column, got "
                            f"{values.type}; declare the column as type: string")
        if pa.types.is_null(values.type):
            return values.cast(pa.string())
        row_values = self.params.row_values
        if row_values:
            given = others or {}
            missing = [c for c in row_values if c not in given]
            if missing:
                raise ValueError(f"scrub_text on {self.ctx.table}.{self.ctx.column}: the row_values column(s) "
                                 f"{missing} were not passed in `others`")
            values = self.remove_row_values(values, {c: given[c] for c in row_values})
        if self.params.known and self.roster is None:
            raise ValueError(f"scrub_text on {self.ctx.table}.{self.ctx.column}: known rosters "
                             f"{self.params.known} were not loaded (build the plan with rosters=)")
        return scrub(values, tuple(self.params.detectors), self.roster)

    # ----------------------------------------------------------------------------------------- row values
    def remove_row_values(self, values: pa.Array | pa.ChunkedArray, columns: Mapping[str, pa.Array]) -> pa.Array:
        """``values`` with each row's values of ``columns`` replaced by their tags (see the module docstring).

        Only the rows whose text contains one of its row's value words or digit forms (a superset of the rows
        :meth:`_remove_all` changes) are cut into words; the others are returned as they are."""
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        values = values.cast(pa.string())
        columns = {c: v.combine_chunks() if isinstance(v, pa.ChunkedArray) else v for c, v in columns.items()}
        for column, col_values in columns.items():
            if len(col_values) != len(values):
                raise ValueError(f"scrub_text on {self.ctx.table}.{self.ctx.column}: {len(values)} texts but "
                                 f"{len(col_values)} values of {column}")
        values = pc.replace_substring(values, _SEP, "")  # NUL delimits words internally: dropped from every text
        rows = _candidate_rows(values, columns)
        if not len(rows):
            return values
        if len(rows) == len(values):
            return self._remove_all(values, columns)
        changed = self._remove_all(values.take(rows), {c: v.take(rows) for c, v in columns.items()})
        where = np.arange(len(values))
        where[rows] = len(values) + np.arange(len(rows))
        return pa.concat_arrays([values, changed]).take(pa.array(where))

    def _remove_all(self, values: pa.Array, columns: Mapping[str, pa.Array]) -> pa.Array:
        """:meth:`remove_row_values` over every row (its texts, without NUL, are cut into words)."""
        n = len(values)
        pieces = _words(values)
        flat, parents = _lists(pieces)
        offsets = pieces.offsets.to_numpy()
        first = offsets[:-1][parents] if len(parents) else np.zeros(0, dtype=np.int64)
        pos = np.arange(len(flat)) + (offsets[0] if len(offsets) else 0) - first
        is_word = (pos % 2) == 1
        lower = pc.utf8_lower(flat)
        start_tag = np.full(len(flat), -1, dtype=np.int64)  # index into tags where a match starts
        covered = np.zeros(len(flat), dtype=bool)
        tags: list[str] = []
        for column, col_values in columns.items():
            phi = self.phi_of.get(column)
            tags.append(f"[{(phi or 'other').upper()}]")
            tag_id = len(tags) - 1
            text = pc.utf8_lower(col_values.cast(pa.string()))
            vwords, vrows = _lists(_value_words(text))
            if phi == "name":  # each part of 3+ letters on its own
                keep = pc.greater_equal(pc.utf8_length(vwords), 3)
                singles = [(vrows[np.asarray(keep, dtype=bool)], pc.filter(vwords, keep))]
            else:
                singles = _digit_forms(text)
                self._sequences(flat, lower, parents, is_word, vwords, vrows, n, start_tag, covered, tag_id)
            for rows, words in singles:
                if len(words):
                    hit = pc.is_in(_keys(parents, lower), value_set=_keys(rows, words)).to_numpy(zero_copy_only=False)
                    hit &= is_word & (start_tag < 0) & ~covered
                    start_tag[hit] = tag_id
                    covered |= hit
        if not covered.any():
            return values
        tag_arr = pa.array(tags, pa.string())
        starts = start_tag >= 0
        out = pc.if_else(pa.array(covered & ~starts), pa.scalar("", pa.string()), flat)
        out = pc.if_else(pa.array(starts), tag_arr.take(pa.array(np.where(starts, start_tag, 0))), out)
        rebuilt = pa.ListArray.from_arrays(pa.array(offsets - offsets[0], pa.int32()), out,
                                           mask=pc.is_null(values))
        return pc.binary_join(rebuilt, "")

    @staticmethod
    def _sequences(flat: pa.Array, lower: pa.Array, parents: NDArray[Any], is_word: NDArray[Any], vwords: pa.Array,
                   vrows: NDArray[Any], n: int, start_tag: NDArray[Any], covered: NDArray[Any], tag_id: int) -> None:
        """Mark every run of words equal to the row's value words (separators between them are free)."""
        if not len(vwords) or not len(flat):
            return
        counts = np.bincount(vrows, minlength=n)
        vstart = np.concatenate([[0], np.cumsum(counts)[:-1]])
        m_row = np.where(counts <= MAX_VALUE_WORDS, counts, 0)  # per row: how many words the value has
        m = m_row[parents]
        cand = is_word & (m > 0) & (start_tag < 0) & ~covered
        total = len(flat)
        for j in range(int(m.max(initial=0))):
            idx = np.arange(total) + 2 * j
            inside = idx < total
            idx = np.where(inside, idx, 0)
            need = j < m
            same_row = inside & (parents[idx] == parents)
            want = pa.array(np.where(need, vstart[parents] + j, 0))
            equal = pc.equal(lower.take(pa.array(idx)), vwords.take(want)).to_numpy(zero_copy_only=False)
            cand &= ~need | (same_row & np.asarray(equal, dtype=bool))
            if not cand.any():
                return
        for i in np.flatnonzero(cand):
            span = 2 * int(m[i]) - 1
            if covered[i:i + span].any():
                continue
            start_tag[i] = tag_id
            covered[i:i + span] = True


def _candidate_rows(values: pa.Array, columns: Mapping[str, pa.Array]) -> NDArray[Any]:
    """Rows whose text (lower case; NUL already dropped) contains one of its row's value words, or the digits of a value
    holding 5 or more: every match of :meth:`ScrubText._remove_all` is such a word (a name part, the first word of a
    run, or a digit form), so no other row can change. Lower-casing is per code point, so a lower-cased word of
    the text is a substring of the lower-cased text."""
    texts = pc.utf8_lower(values).to_pylist()
    found = np.zeros(len(values), dtype=bool)
    for col_values in columns.values():
        lowered = pc.utf8_lower(col_values.cast(pa.string()))
        words = _value_words(lowered).to_pylist()
        digits = pc.replace_substring_regex(lowered, r"[^0-9]+", "").to_pylist()
        for i, (text, ws, d) in enumerate(zip(texts, words, digits)):
            if text is None or found[i]:
                continue
            if any(w in text for w in ws or ()) or (d is not None and len(d) >= 5 and d in text):
                found[i] = True
    return np.flatnonzero(found)


def _value_words(text: pa.Array) -> pa.Array:
    """Per value: its words (lower case), as a list array."""
    pieces = _words(text)
    flat, parents = _lists(pieces)
    offsets = pieces.offsets.to_numpy()
    pos = np.arange(len(flat)) + offsets[0] - (offsets[:-1][parents] if len(parents) else 0)
    keep = (pos % 2) == 1
    words = pc.filter(flat, pa.array(keep))
    rows = parents[keep]
    counts = np.bincount(rows, minlength=len(text)) if len(rows) else np.zeros(len(text), dtype=np.int64)
    return pa.ListArray.from_arrays(pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)), words)


def _digit_forms(text: pa.Array) -> list[tuple[NDArray[Any], pa.Array]]:
    """(rows, words): the digits of each value holding 5 or more, as one word (``617-555-0123`` -> ``6175550123``)."""
    digits = pc.replace_substring_regex(text, r"[^0-9]+", "")
    ok = pc.fill_null(pc.greater_equal(pc.utf8_length(digits), 5), False)
    rows = np.flatnonzero(np.asarray(ok, dtype=bool))
    return [(rows, pc.filter(digits, ok))]
