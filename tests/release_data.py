"""The generated release data that `lakehouse-phi risk`/`export` are tested on, and its k/l reference values.

Two lanes read it: the main suite (``tests/spark/test_release.py``) checks the package's k and l against the
reference file, and the pycanon lane (``tests/reference/``, its own virtualenv: ``make test-pycanon``) checks the
reference file against pycanon, an independent implementation. So the package is held to pycanon while the main
suite runs the numpy and pandas that the resolver picks (pycanon pins exact numpy/pandas/scipy versions).

The data comes from Python's ``random`` (the same stream on every numpy, pandas and platform); the reference file
records its SHA-256, so a generator that drifted is caught in both lanes.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

QI = ["birth_year", "zip", "sex"]
SENSITIVE = ["diagnosis_code"]
SENTINEL = "Zebulon-Q-Sentinel"
REFERENCE_FILE = Path(__file__).resolve().parent / "golden" / "release" / "k_l_reference.json"


def release_rows(n: int = 3000, seed: int = 5) -> dict[str, list[str]]:
    """Columns of ``n`` rows, skewed so that some quasi-identifier classes are tiny and some large."""
    rng = random.Random(seed)
    years = list(range(1930, 2005))
    year_weights = [1 + 7 * i / (len(years) - 1) for i in range(len(years))]  # 1 .. 8, rising
    return {
        "mrn": [f"tok{i:06d}" for i in range(n)],
        "birth_year": [f"{y}-01-01" for y in rng.choices(years, year_weights, k=n)],
        "zip": rng.choices(["021", "024", "100", "606", "941"], [0.4, 0.3, 0.2, 0.07, 0.03], k=n),
        "sex": rng.choices(["F", "M", "X"], [0.5, 0.48, 0.02], k=n),
        "diagnosis_code": rng.choices(["E11.9", "I10", "J45.909", "Z00.00", "F32.A"], [0.5, 0.3, 0.1, 0.07, 0.03],
                                      k=n),
        "surname_token": [SENTINEL + str(i % 7) for i in range(n)],
    }


def rows_sha256(rows: dict[str, list[str]]) -> str:
    """SHA-256 of the columns as canonical JSON (the data both lanes must agree on)."""
    return hashlib.sha256(json.dumps(rows, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def release_frame(n: int = 3000, seed: int = 5) -> Any:
    import pandas as pd

    return pd.DataFrame(release_rows(n, seed))


def reference() -> dict[str, Any]:
    """The reference values (``k``, ``l`` over :data:`QI` / :data:`SENSITIVE`) and the data's SHA-256."""
    out: dict[str, Any] = json.loads(REFERENCE_FILE.read_text())
    return out


def k_and_l(frame: Any, quasi_identifiers: list[str], sensitive: list[str]) -> tuple[int, int]:
    """k (smallest class) and distinct l (fewest distinct sensitive values in a class) by a plain pandas groupby,
    NULL a value of its own. The main suite checks the package's measurements against this; the pycanon lane
    (``tests/reference/``) holds this function to pycanon on the same frames."""
    groups = frame.groupby(quasi_identifiers, dropna=False)
    k = int(groups.size().min())
    l_div = int(min(groups[s].nunique(dropna=False).min() for s in sensitive))
    return k, l_div


def measurement_frame(n: int, seed: int) -> Any:
    """A small skewed release (year, zip, dx) for the written-files measurement tests, from Python's ``random``."""
    import pandas as pd

    rng = random.Random(seed)
    return pd.DataFrame({"year": rng.choices(["1950", "1960", "1970", "1980"], k=n),
                         "zip": rng.choices(["021", "100", "606"], [0.6, 0.3, 0.1], k=n),
                         "dx": rng.choices(["E11", "I10", "J45", "F32"], [0.6, 0.2, 0.15, 0.05], k=n)})
