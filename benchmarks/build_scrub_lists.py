"""Build the vendored word lists of ``scrub_text`` (``lakehouse_phi/transforms/scrub_data/``), once, by hand.

    pip install 'faker==40.63.0'                      # the names' source (MIT licence), not a runtime dependency
    apt-get download wamerican && dpkg-deb -x wamerican_2020.12.07-2_all.deb /tmp/wam   # SCOWL words
    python benchmarks/build_scrub_lists.py --words /tmp/wam/usr/share/dict/american-english

* ``first_names.txt.gz`` / ``last_names.txt.gz``: every first name and surname of every Faker person locale
  (86 locales; Latin-script lists as they are, Cyrillic and Greek lists transliterated letter by letter, other
  scripts skipped), split into parts (``Mac Giolla Mhóir`` -> ``mac``, ``giolla``, ``mhoir``), accents folded
  (:func:`lakehouse_phi.transforms.names.fold`), lower case, 2+ letters, particles (``de``, ``van``...) removed.
* ``english_words.txt.gz``: the lower-case entries of SCOWL size 50 as Debian's ``wamerican`` package ships it
  (``american-english``), possessives dropped, accents folded.

The output is sorted and deterministic for a given Faker version and word list; ``scrub_data/SOURCES.md`` records
both versions and their licences.
"""

from __future__ import annotations

import argparse
import gzip
import importlib
import pkgutil
import re
import sys
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lakehouse_phi.transforms.names import PARTICLES, fold  # noqa: E402

OUT = ROOT / "lakehouse_phi" / "transforms" / "scrub_data"

_CYRILLIC = dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюяіїєґ",
                     "a b v g d e e zh z i y k l m n o p r s t u f kh ts ch sh shch - y - e yu ya i yi ye g".split()))
_GREEK = dict(zip("αβγδεζηθικλμνξοπρσςτυφχψωάέήίόύώϊϋΐΰ",
                  "a v g d e z i th i k l m n x o p r s s t y f ch ps o a e i i o y o i y i y".split()))


def _translit(name: str) -> str | None:
    out = []
    for ch in name.lower():
        if ch in _CYRILLIC:
            out.append("" if _CYRILLIC[ch] == "-" else _CYRILLIC[ch])
        elif ch in _GREEK:
            out.append(_GREEK[ch])
        elif ch in " -'":
            out.append(ch)
        else:
            return None
    return "".join(out)


def _latin(name: str) -> bool:
    return all(unicodedata.name(c, "").startswith("LATIN") or c in "-' ." for c in name)


def _values(provider: type, attr: str) -> list[str]:
    for klass in provider.__mro__:
        if attr in klass.__dict__:
            v = klass.__dict__[attr]
            if isinstance(v, property):
                return []
            return [x for x in v if isinstance(x, str)]
    return []


def _parts(names: list[str]) -> set[str]:
    out = set()
    for n in names:
        if not _latin(n):
            t = _translit(n)
            if t is None:
                continue
            n = t
        for part in re.split(r"[\s.-]+", fold(n)):
            part = part.strip("'")
            if len(part) >= 2 and part not in PARTICLES and re.fullmatch(r"[a-z']+", part):
                out.add(part)
    return out


def faker_names() -> tuple[set[str], set[str]]:
    import faker.providers.person as person

    first: set[str] = set()
    last: set[str] = set()
    for mod in pkgutil.iter_modules(person.__path__):
        provider = importlib.import_module(f"faker.providers.person.{mod.name}").Provider
        first |= _parts([*_values(provider, "first_names"), *_values(provider, "first_names_male"),
                         *_values(provider, "first_names_female"), *_values(provider, "first_names_nonbinary"),
                         *_values(provider, "first_romanized_names")])
        last |= _parts([*_values(provider, "last_names"), *_values(provider, "last_names_male"),
                        *_values(provider, "last_names_female"), *_values(provider, "last_romanized_names")])
    return first, last


def english_words(path: Path) -> set[str]:
    words = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        w = line.strip()
        if w and w == w.lower() and not w.endswith("'s"):
            words.add(fold(w))
    return words


def _write(name: str, items: set[str]) -> None:
    data = "".join(f"{x}\n" for x in sorted(items)).encode("utf-8")
    with open(OUT / name, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
        f.write(data)
    print(f"{name}: {len(items)} entries")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--words", type=Path, required=True, help="SCOWL american-english (Debian wamerican)")
    a = ap.parse_args()
    first, last = faker_names()
    _write("first_names.txt.gz", first)
    _write("last_names.txt.gz", last)
    _write("english_words.txt.gz", english_words(a.words))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
