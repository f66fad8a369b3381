"""The three landing tables of ``conf/policy.yaml`` — patients, encounters, claims — as Arrow tables.

Every column is a string as it would arrive in a CSV/JSON/Parquet landing zone, except ``encounters.length_of_stay``
(an int32: a number in JSON). Rows are built in chunks of :data:`CHUNK_ROWS`, each from its own
``numpy.random.default_rng([seed, table, chunk])``, so a table is a pure function of ``(rows, seed, patients,
malformed_rate)``.

Patient ``i`` (``0 <= i < patients``) has an MRN and a member id that are pure functions of ``(seed, i)``; encounters
and claims draw patient numbers below ``patients`` and so reference MRNs that exist in ``generate("patients",
patients, seed)`` (unless that patient's row was made malformed). Dates are relative to :data:`REFERENCE_DATE`, not
today, so output never depends on the clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakehouse_phi.synth import vocab
from lakehouse_phi.synth._vec import (
    EPOCH_DAY,
    affine_bijection,
    concat,
    day_number,
    digit_matrix,
    digits,
    iso_dates,
    permute,
    pick,
    templated,
    with_nulls,
    zero_padded,
)
from lakehouse_phi.synth.notes import generate_notes, phone_values, ssn_values

#: Ages and the dates relative to them are as of this day.
REFERENCE_DATE = "2025-01-01"
CHUNK_ROWS = 1 << 18

COLUMNS: dict[str, tuple[str, ...]] = {
    "patients": ("mrn", "ssn", "first_name", "last_name", "dob", "age", "sex", "zip", "state", "phone", "email",
                 "address", "member_id", "registered_at"),
    "encounters": ("encounter_id", "mrn", "admit_date", "discharge_date", "facility_state", "diagnosis_code",
                   "attending_npi", "length_of_stay", "note"),
    "claims": ("claim_id", "mrn", "member_id", "service_date", "amount", "cpt_code", "payer", "account_number",
               "submitter_ip"),
}
TABLES = tuple(COLUMNS)
_TABLE_CODE = {"patients": 1, "encounters": 2, "claims": 3}
_KEYS = 0x6B657973  # stream for per-patient keys


# ------------------------------------------------------------------------------------------------ patient keys
@dataclass(frozen=True)
class _PatientKeys:
    mrn_ab: tuple[int, int]
    member_ab: tuple[int, int]
    member_form: int

    @classmethod
    def of(cls, seed: int) -> _PatientKeys:
        rng = np.random.default_rng([seed, _KEYS])
        return cls(affine_bijection(rng, 10**7), affine_bijection(rng, 10**10), int(rng.integers(0, 1 << 30)))

    def mrn(self, idx: np.ndarray) -> pa.Array:
        return templated(("MRN#######",), np.zeros(len(idx), np.int64),
                         digit_matrix(permute(idx, self.mrn_ab, 10**7), 7))

    def member_id(self, idx: np.ndarray) -> pa.Array:
        """10-digit member ids in three dash layouts; 1 patient in 20 has none (NULL), the same in every table."""
        num = permute(idx, self.member_ab, 10**10)
        form = (idx.astype(np.int64) * 7 + self.member_form) % 3
        out = templated(("##########", "###-###-####", "####-####-##"), form, digit_matrix(num, 10))
        return pc.if_else(pa.array(num % 20 == 0), pa.scalar(None, pa.string()), out)


def _check_patients(rows: int) -> None:
    if rows > 10**7:
        raise ValueError(f"synth: patients={rows} exceeds the 10,000,000 distinct MRNs (MRN + 7 digits); "
                         "generate fewer patients")


# ------------------------------------------------------------------------------------------------ the tables
def _age_weights() -> np.ndarray:
    w = np.zeros(106)
    w[0:18] = 20 / 18
    w[18:65] = 52 / 47
    w[65:90] = 22 / 25
    tail = 0.93 ** np.arange(16)
    w[90:106] = 6 * tail / tail.sum()  # ~6% older than 89
    return w / w.sum()


_AGE_P = _age_weights()


def _exact_age(dob: np.ndarray, ref: np.datetime64) -> np.ndarray:
    """Whole years between ``dob`` (datetime64[D] array) and ``ref``."""
    def ymd(d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        y = d.astype("M8[Y]")
        m = d.astype("M8[M]")
        return (y.astype(np.int64), (m - y.astype("M8[M]")).astype(np.int64), (d - m.astype("M8[D]")).astype(np.int64))
    y, m, d = ymd(dob)
    ry, rm, rd = ymd(np.array([ref]))
    before_birthday = (rm < m) | ((rm == m) & (rd < d))
    return ry - y - before_birthday.astype(np.int64)


def _zip_and_state(rng: np.random.Generator, n: int, restricted_rate: float = 0.04) -> tuple[pa.Array, pa.Array]:
    states = [s for s, _, _ in vocab.STATES]
    p = np.array([w for _, w, _ in vocab.STATES]) / sum(w for _, w, _ in vocab.STATES)
    st = rng.choice(len(states), size=n, p=p)
    # a ZIP3 of the chosen state: lists padded to equal length by repetition
    width = max(len(z) for _, _, z in vocab.STATES)
    table = np.array([[z[k % len(z)] for k in range(width)] for _, _, z in vocab.STATES])
    zip3 = table[st, rng.integers(0, width, size=n)]
    state = np.array(states)[st]
    restricted = rng.random(n) < restricted_rate
    r = rng.integers(0, len(vocab.RESTRICTED_ZIP3), size=int(restricted.sum()))
    zip3[restricted] = np.array([z for z, _ in vocab.RESTRICTED_ZIP3])[r]
    state[restricted] = np.array([s for _, s in vocab.RESTRICTED_ZIP3])[r]
    return concat(pa.array(zip3), digits(rng, n, 2)), pa.array(state)


def _patients(rng: np.random.Generator, start: int, n: int, keys: _PatientKeys) -> dict[str, pa.Array]:
    idx = np.arange(start, start + n, dtype=np.int64)
    ref = np.datetime64(REFERENCE_DATE, "D")
    age_target = rng.choice(106, size=n, p=_AGE_P)
    dob = ref - (age_target * 365.2425 + rng.integers(0, 365, size=n)).astype(np.int64).astype("m8[D]")
    age = _exact_age(dob, ref)
    dob_days = (dob - EPOCH_DAY).astype(np.int64)
    first, last = pick(rng, n, vocab.FIRST_NAMES), pick(rng, n, vocab.LAST_NAMES)
    zip5, state = _zip_and_state(rng, n)
    email_local = concat(pc.utf8_lower(first), pick(rng, n, (".", "_", ""), (5, 2, 3)),
                         pc.replace_substring(pc.utf8_lower(last), "'", ""),
                         pc.if_else(pa.array(rng.random(n) < 0.5), "",
                                    pa.array(rng.integers(1, 100, size=n)).cast(pa.string())))
    street = concat(pa.array(rng.integers(1, 9999, size=n)).cast(pa.string()), " ", pick(rng, n, vocab.STREETS),
                    " ", pick(rng, n, vocab.STREET_SUFFIXES))
    unit = pc.if_else(pa.array(rng.random(n) < 0.25),
                      concat(", Apt ", pa.array(rng.integers(1, 40, size=n)).cast(pa.string()),
                             pick(rng, n, ("", "A", "B", "C"))), "")
    # registered some time between max(dob, 2005-01-01) and the reference date
    lo = np.maximum(dob_days, day_number("2005-01-01"))
    reg_days = lo + (rng.random(n) * (day_number(REFERENCE_DATE) - lo)).astype(np.int64)
    reg_ts = reg_days * 86400 + rng.integers(6 * 3600, 20 * 3600, size=n)
    return {
        "mrn": keys.mrn(idx),
        "ssn": with_nulls(rng, ssn_values(rng, n, dash_rate=0.75), 0.03),
        "first_name": first,
        "last_name": last,
        "dob": iso_dates(dob_days),
        "age": pa.array(age).cast(pa.string()),
        "sex": pick(rng, n, [s for s, _ in vocab.SEXES], [w for _, w in vocab.SEXES]),
        "zip": zip5,
        "state": state,
        "phone": with_nulls(rng, phone_values(rng, n, bare=True), 0.05),
        "email": with_nulls(rng, concat(email_local, "@", pick(rng, n, vocab.EMAIL_DOMAINS)), 0.10),
        "address": with_nulls(rng, concat(street, unit), 0.02),
        "member_id": keys.member_id(idx),
        "registered_at": pa.array(reg_ts, pa.timestamp("s")).cast(pa.string()),
    }


def _patient_refs(rng: np.random.Generator, start: int, n: int, patients: int, seed: int) -> np.ndarray:
    """Patient numbers for encounter rows: rows ``0..patients-1`` visit every patient once (1-N per patient),
    later rows favour some patients (frequent flyers)."""
    rows = np.arange(start, start + n, dtype=np.int64)
    cover = permute(rows % patients, affine_bijection(np.random.default_rng([seed, _KEYS, 1]), patients), patients)
    skewed = (patients * rng.random(n) ** 2).astype(np.int64)
    return np.where(rows < patients, cover, skewed)


def _encounters(rng: np.random.Generator, start: int, n: int, keys: _PatientKeys, patients: int, seed: int
                ) -> dict[str, pa.Array]:
    pid = _patient_refs(rng, start, n, patients, seed)
    admit = rng.integers(day_number("2018-01-01"), day_number("2024-12-31"), size=n)
    los = np.where(rng.random(n) < 0.45, 0, rng.geometric(0.2, size=n))
    los[rng.random(n) < 0.01] += 30  # a few long stays
    still_admitted = rng.random(n) < 0.03
    discharge = pc.if_else(pa.array(still_admitted), pa.scalar(None, pa.string()), iso_dates(admit + los))
    notes, _ = generate_notes(rng, n)
    states = [s for s, _, _ in vocab.STATES]
    return {
        "encounter_id": concat("E", zero_padded(permute(np.arange(start, start + n), affine_bijection(
            np.random.default_rng([seed, _KEYS, 2]), 10**9), 10**9), 9)),
        "mrn": keys.mrn(pid),
        "admit_date": iso_dates(admit),
        "discharge_date": discharge,
        "facility_state": pick(rng, n, states, [w for _, w, _ in vocab.STATES]),
        "diagnosis_code": with_nulls(rng, pick(rng, n, vocab.ICD10), 0.02),
        "attending_npi": digits(rng, n, 10, 1),
        "length_of_stay": pa.array(np.where(still_admitted, 0, los).astype(np.int32),
                                   mask=still_admitted),
        "note": with_nulls(rng, notes, 0.02),
    }


def _claims(rng: np.random.Generator, start: int, n: int, keys: _PatientKeys, patients: int, seed: int
            ) -> dict[str, pa.Array]:
    pid = rng.integers(0, patients, size=n)
    cents = np.clip(np.exp(rng.normal(5.3, 1.3, size=n)) * 100, 500, 25_000_000).astype(np.int64)
    amount = concat(pa.array(cents // 100).cast(pa.string()), ".", zero_padded(cents % 100, 2))
    ip = concat(*[x for k in range(4) for x in
                  ((pa.array(rng.integers(1 if k == 0 else 0, 224 if k == 0 else 256, size=n)).cast(pa.string()),)
                   + ((".",) if k < 3 else ()))])
    return {
        "claim_id": concat("C", zero_padded(permute(np.arange(start, start + n), affine_bijection(
            np.random.default_rng([seed, _KEYS, 3]), 10**10), 10**10), 10)),
        "mrn": keys.mrn(pid),
        "member_id": keys.member_id(pid),
        "service_date": iso_dates(rng.integers(day_number("2018-01-01"), day_number("2024-12-31"), size=n)),
        "amount": amount,
        "cpt_code": pick(rng, n, vocab.CPT),
        "payer": pick(rng, n, [p for p, _ in vocab.PAYERS], [w for _, w in vocab.PAYERS]),
        "account_number": digits(rng, n, 12, 1),
        "submitter_ip": with_nulls(rng, ip, 0.05),
    }


# ------------------------------------------------------------------------------------------------ defects
# (kind, columns the defect may hit, bad values); a NULL bad value means "missing required value".
_Defect = tuple[str, tuple[str, ...], tuple[str | None, ...]]
_BAD_DATES = ("2023-13-45", "0000-00-00", "1987-02-30", "31/31/1999", "yesterday")
_BAD_MEMBER = ("12-34", "123", "9-99-9", "12345", "A-1")
_DEFECTS: dict[str, tuple[_Defect, ...]] = {
    "patients": (
        ("bad_date", ("dob",), _BAD_DATES),
        ("bad_ssn", ("ssn",), ("12-345", "1234-56-789", "abc-de-fghi", "123-45-678")),
        ("missing_required", ("mrn", "dob", "state"), (None,)),
        ("bad_mrn", ("mrn",), ("MRN12345", "mrn1234567", "MRN12345A7", "1234567", "MRN 1234567")),
        ("bad_age", ("age",), ("forty", "4O", "n/a", "12.5.1")),
        ("bad_member_id", ("member_id",), _BAD_MEMBER),
        ("bad_state", ("state",), ("N1", "new york", "XYZ", "ny")),
    ),
    "encounters": (
        ("bad_date", ("admit_date", "discharge_date"), _BAD_DATES),
        ("missing_required", ("encounter_id", "mrn", "admit_date"), (None,)),
        ("bad_mrn", ("mrn",), ("MRN12345", "mrn1234567", "MRN12345A7", "1234567")),
        ("bad_state", ("facility_state",), ("N1", "new york", "XYZ", "ny")),
        ("bad_code", ("diagnosis_code",), ("E11-9", "11.9", "EE11", "e11.9")),
        ("bad_npi", ("attending_npi",), ("123456789", "NPI1234567", "12345678901")),
    ),
    "claims": (
        ("bad_date", ("service_date",), _BAD_DATES),
        ("missing_required", ("claim_id", "mrn", "service_date", "amount", "payer"), (None,)),
        ("bad_amount", ("amount",), ("12.3.4", "$120.00", "abc", "1,200.00")),
        ("bad_member_id", ("member_id",), _BAD_MEMBER),
        ("bad_cpt", ("cpt_code",), ("9921", "9921A", "992134")),
    ),
}
DEFECT_KINDS: dict[str, tuple[str, ...]] = {t: tuple(d[0] for d in ds) for t, ds in _DEFECTS.items()}


def _malform(rng: np.random.Generator, table: str, cols: dict[str, pa.Array], n: int, rate: float
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Give ``round(rate * n)`` rows one defect each, in place in ``cols``; return (rows, column idx, kind idx)."""
    k = round(rate * n)
    if k == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    rows = np.sort(rng.choice(n, size=k, replace=False))
    kind = rng.integers(0, len(_DEFECTS[table]), size=k)
    names = COLUMNS[table]
    col = np.empty(k, np.int64)
    for ki, (_, targets, _) in enumerate(_DEFECTS[table]):
        sel = kind == ki
        col[sel] = np.array([names.index(c) for c in targets])[rng.integers(0, len(targets), size=int(sel.sum()))]
    for ci in np.unique(col):
        sel = col == ci
        bad: list[str | None] = []
        for ki in kind[sel]:
            options = _DEFECTS[table][ki][2]
            bad.append(options[int(rng.integers(0, len(options)))])
        mask = np.zeros(n, bool)
        mask[rows[sel]] = True
        name = names[ci]
        cols[name] = pc.replace_with_mask(cols[name], pa.array(mask), pa.array(bad, cols[name].type))
    return rows, col, kind


# ------------------------------------------------------------------------------------------------ public API
@dataclass(frozen=True)
class Generated:
    """A generated table and its defects: row ``defects["row"][i]`` had column ``defects["column"][i]`` broken in
    the way ``defects["kind"][i]`` (one of :data:`DEFECT_KINDS`)."""

    table: pa.Table
    defects: pa.Table

    def malformed_rows(self) -> set[int]:
        return set(self.defects.column("row").to_pylist())


def _builder(table: str) -> Callable[..., dict[str, pa.Array]]:
    builders: dict[str, Callable[..., dict[str, pa.Array]]] = {"patients": _patients, "encounters": _encounters,
                                                                "claims": _claims}
    return builders[table]


def generate_table(table: str, rows: int, seed: int = 0, malformed_rate: float = 0.0,
                   patients: int | None = None) -> Generated:
    """Generate ``rows`` rows of ``table`` with their defects list.

    Args:
        table: ``patients``, ``encounters`` or ``claims``.
        rows: number of rows.
        seed: the same seed (and other arguments) gives the same table.
        malformed_rate: fraction of rows (rounded per chunk of :data:`CHUNK_ROWS`) given one realistic defect.
        patients: for encounters and claims, how many patients they reference (``MRN``s of
            ``generate("patients", patients, seed)``); default ``max(1, rows // 2)``.
    """
    if table not in COLUMNS:
        raise ValueError(f"synth: unknown table {table!r}; use one of {', '.join(TABLES)}")
    if rows < 0 or not 0.0 <= malformed_rate <= 1.0:
        raise ValueError("synth: rows must be >= 0 and malformed_rate within [0, 1]")
    patients = rows if table == "patients" else (patients if patients is not None else max(1, rows // 2))
    if patients < 1 and table != "patients":
        raise ValueError("synth: patients must be >= 1")
    _check_patients(patients)
    keys = _PatientKeys.of(seed)
    build = _builder(table)
    batches, defect_parts = [], []
    for chunk, start in enumerate(range(0, max(rows, 1), CHUNK_ROWS)):
        n = min(CHUNK_ROWS, rows - start)
        if n <= 0:
            break
        rng = np.random.default_rng([seed, _TABLE_CODE[table], chunk])
        extra = () if table == "patients" else (patients, seed)
        cols = build(rng, start, n, keys, *extra)
        r, c, k = _malform(rng, table, cols, n, malformed_rate)
        defect_parts.append((r + start, c, k))
        batches.append(pa.RecordBatch.from_arrays([cols[name] for name in COLUMNS[table]], names=list(COLUMNS[table])))
    schema = pa.schema([(name, pa.int32() if name == "length_of_stay" else pa.string()) for name in COLUMNS[table]])
    out = pa.Table.from_batches(batches, schema=schema)
    r = np.concatenate([p[0] for p in defect_parts]) if defect_parts else np.zeros(0, np.int64)
    c = np.concatenate([p[1] for p in defect_parts]) if defect_parts else np.zeros(0, np.int64)
    k = np.concatenate([p[2] for p in defect_parts]) if defect_parts else np.zeros(0, np.int64)
    defects = pa.table({"row": pa.array(r, pa.int64()),
                        "column": pa.array(np.array(COLUMNS[table], dtype=object)[c].tolist(), pa.string()),
                        "kind": pa.array(np.array(DEFECT_KINDS[table], dtype=object)[k].tolist(), pa.string())})
    return Generated(out, defects)


def generate(table: str, rows: int, seed: int = 0, malformed_rate: float = 0.0, patients: int | None = None
             ) -> pa.Table:
    """:func:`generate_table` without the defects list."""
    return generate_table(table, rows, seed, malformed_rate, patients).table


def generate_all(patients: int = 1000, encounters: int | None = None, claims: int | None = None, seed: int = 0,
                 malformed_rate: float = 0.0) -> dict[str, pa.Table]:
    """All three tables, encounters and claims referencing the patients (defaults: 3 encounters and 2 claims per
    patient)."""
    encounters = 3 * patients if encounters is None else encounters
    claims = 2 * patients if claims is None else claims
    return {
        "patients": generate("patients", patients, seed, malformed_rate),
        "encounters": generate("encounters", encounters, seed, malformed_rate, patients=patients),
        "claims": generate("claims", claims, seed, malformed_rate, patients=patients),
    }


def inject(table: pa.Table, column: str, value: str | None, rows: Sequence[int] | np.ndarray, *,
           embed: bool = False) -> pa.Table:
    """``table`` with ``column`` set to ``value`` in ``rows`` (e.g. a sentinel SSN the leak tests then search for).

    With ``embed=True`` the value is inserted into the existing text instead (``"<text> <value>"``; NULL becomes
    ``value``), which is how a sentinel gets into a free-text note.
    """
    if column not in table.column_names:
        raise ValueError(f"synth.inject: no column {column!r}; the table has {', '.join(table.column_names)}")
    idx = np.asarray(rows, dtype=np.int64)
    if len(idx) and (idx.min() < 0 or idx.max() >= table.num_rows):
        raise ValueError(f"synth.inject: rows must be within [0, {table.num_rows})")
    col = table.column(column).combine_chunks()
    mask = np.zeros(table.num_rows, bool)
    mask[idx] = True
    if embed:
        if value is None:
            raise ValueError("synth.inject: embed=True needs a value")
        current = pc.array_filter(col, pa.array(mask))
        repl = pc.if_else(pc.is_null(current), value, concat(pc.fill_null(current, ""), " ", value))
    else:
        repl = pa.array([value] * int(mask.sum()), col.type)
    new = pc.replace_with_mask(col, pa.array(mask), repl.cast(col.type))
    return table.set_column(table.column_names.index(column), column, new)
