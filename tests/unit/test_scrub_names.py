"""scrub_text beyond one country's lists (issue 24.3, 24.4): names in any case, with accents, initials and
particles, the dictionary test, the keep list; phone numbers through libphonenumber, IPv6 through ipaddress,
labelled identifiers, ages over 89, geographic units; the vendored lists and their provenance."""

from __future__ import annotations

import gzip
from importlib import resources

import pyarrow as pa
import pytest

from lakehouse_phi.transforms import names
from lakehouse_phi.transforms.scrub_text import DETECTORS, scrub, tag_counts


def run(texts: list[str | None], detectors: tuple[str, ...] = DETECTORS) -> list[str | None]:
    return scrub(pa.array(texts, pa.string()), detectors).to_pylist()


# ---------------------------------------------------------------------------------------------------- names
@pytest.mark.parametrize(("text", "expected"), [
    ("RE: MANSOUR, SAMIR", "RE: [NAME]"),  # capitals, Last, First
    ("spoke with socorro mendoza today", "spoke with [NAME] today"),  # lower case: two listed names together
    ("Seen by DR. D. KOWALSKI and A. M. Traoré.", "Seen by DR. [NAME] and [NAME]."),  # initials, any case, accent
    ("Caller: Wiśniewska, Agnieszka re refill", "Caller: [NAME] re refill"),  # accent folded
    ("Met with pt Yusuf bin Saleh and Maria de la Cruz.", "Met with pt [NAME] and [NAME]."),  # particles
    ("Patient: Oduya, Grace T.", "Patient: [NAME]"),  # Last, First M. (initial and its dot)
    ("Report given to Florence O., RN at 1500.", "Report given to [NAME], RN at 1500."),
])
def test_names_of_many_origins_any_case(text, expected):
    assert run([text]) == [expected]


def test_dictionary_test_in_a_name_position():
    """A capitalised word after a name cue that is neither an English word nor on the keep list is a name,
    though no list holds it; an English word in the same place is not."""
    made_up = "Zqvorthal"
    assert made_up.lower() not in names.first_names() | names.last_names() | names.english_words()
    assert run([f"Signed by Dr. {made_up}", f"Attending: {made_up}", "Attending: Cardiology"]) == [
        "Signed by Dr. [NAME]", "Attending: [NAME]", "Attending: Cardiology"]
    assert run([f"The {made_up} was replaced"]) == [f"The {made_up} was replaced"]  # no name position


@pytest.mark.parametrize("text", [
    "Hx of Parkinson's disease; Babinski sign negative; Apgar 8 and 9.",
    "Austin Flint murmur; Graves disease; Foley catheter; Holter monitor; Wilson disease.",
    "Allegra 180 mg daily, Lyrica 75 mg BID; Glasgow coma scale 15.",
    "Na 137, Cl 101, PO BID, RR 18, WBC 7.2, ANA 1:80.",
])
def test_eponyms_drugs_and_abbreviations_stay(text):
    assert run([text]) == [text]


def test_vendored_lists_are_what_the_build_script_writes():
    """The lists ship with the package (no Faker at run time), with their sources and licences beside them."""
    data = resources.files("lakehouse_phi.transforms").joinpath("scrub_data")
    sources = data.joinpath("SOURCES.md").read_text(encoding="utf-8")
    for name in ("first_names.txt.gz", "last_names.txt.gz", "english_words.txt.gz"):
        entries = gzip.decompress(data.joinpath(name).read_bytes()).decode("utf-8").split()
        assert entries == sorted(set(entries)) and all(e == names.fold(e) for e in entries[:2000])
        assert name in sources
    assert "MIT" in sources and "SCOWL" in sources
    assert data.joinpath("LICENSE-FAKER.txt").is_file() and data.joinpath("LICENSE-SCOWL.txt").is_file()
    # many origins, not one country's lists
    for first in ("ngozi", "samir", "socorro", "kenji", "priya", "agnieszka", "yusuf"):
        assert first in names.first_names(), first
    for last in ("mendoza", "mansour", "nguyen", "traore", "nowak", "okafor", "haddad"):
        assert last in names.last_names(), last
    assert len(names.first_names()) > 15_000 and len(names.last_names()) > 15_000


def test_fold_is_the_same_in_python_and_arrow():
    words = ["Wiśniewska", "ŁUKASZ", "Søren", "Straße", "Traoré", "O’Neil", "Ærø"]
    assert names.fold_arrow(pa.array(words)).to_pylist() == [names.fold(w) for w in words]
    assert names.fold("Wiśniewska") == "wisniewska"


# ------------------------------------------------------------------------------------------ parsers and rules
@pytest.mark.parametrize(("text", "expected"), [
    ("call 732/409-9494 today", "call [PHONE] today"),
    ("UK mobile +44 7700 900123, office abroad +33 1 42 68 53 00", "UK mobile [PHONE], office abroad [PHONE]"),
    ("Fax: +49 30 901820", "Fax: [PHONE]"),
    ("device at fe80::1ff:fe23:4567:890a and 2001:db8::8a2e:370:7334", "device at [IP] and [IP]"),
    ("at 10:30:00 the pump 2.3.1 alarmed", "at 10:30:00 the pump 2.3.1 alarmed"),  # times, versions: no IP
])
def test_phone_and_ip_parsers(text, expected):
    assert run([text]) == [expected]


@pytest.mark.parametrize(("text", "expected"), [
    ("Path # S2025-68377 reviewed", "Path # [ID] reviewed"),
    ("MBI 3CN2EX5XN20 on file", "MBI [ID] on file"),
    ("S/N UHC910080M; VIN: 1HGCM82633A004352", "S/N [ID]; VIN: [ID]"),
    ("Driver's license D1234567, policy # PX-99812, account 40091277", "Driver's license [ID], policy # [ID], "
                                                                       "account [ID]"),
    ("this 102 y/o gentleman, aged 94, a 91-year-old", "this [AGE] gentleman, aged [AGE], a [AGE]"),
    ("a 67 y/o woman aged 45", "a 67 y/o woman aged 45"),  # 89 and under stay
    ("lives in Reading, PA with family", "lives in [GEO] with family"),
    ("from Bexar County; moved to Tyler TX 75766", "from [GEO]; moved to [GEO]"),
    ("Head CT and Severe AR; MI ruled out", "Head CT and Severe AR; MI ruled out"),  # state codes as clinical
    ("EMPI 76-672-628 and Clinic # 44120", "[MRN] and [MRN]"),
    ("SSN 123.45.6789", "SSN [SSN]"),
    ("since 03/2019 and 2019-03; SSN ending in 4421", "since [DATE] and [DATE]; SSN ending in [SSN]"),
    ("2019-2020 season vaccine; ref range 3.5-5.0", "2019-2020 season vaccine; ref range 3.5-5.0"),
    ("OCR: DOB: O3/14/195O MRN: 1234S67; mild MR, MR 2+", "OCR: DOB: [DATE] [MRN]; mild MR, MR 2+"),
    ("on 31/05/2023, 24.01.2023, 20170401 and the 10th of March", "on [DATE], [DATE], [DATE] and the [DATE]"),
    ("27 WALNUT TRAIL; RR 2 Box 15", "[ADDRESS]; [ADDRESS]"),
    ("NPI 1467539821, SNOMED CT 195967001, Epic 2023.1.4", "NPI 1467539821, SNOMED CT 195967001, Epic 2023.1.4"),
])
def test_labelled_identifiers_ages_geography_and_forms(text, expected):
    assert run([text]) == [expected]


def test_counts_per_tag_never_values():
    before = pa.array(["SSN 123-45-6789, Dr. Zqvorthal; call 617-555-0123", None, "[SSN] already"])
    after = scrub(before)
    counts = tag_counts(before, after)
    assert counts == {"SSN": 1, "NAME": 1, "PHONE": 1}
    assert all(isinstance(k, str) and isinstance(v, int) for k, v in counts.items())


@pytest.mark.parametrize(("text", "expected"), [
    ("Caller: luz maria vasquez (daughter)", "Caller: [NAME] (daughter)"),  # lower case after a cue
    ("| Patient | MRN | DOB |\n| OKAFOR, CHIDI | 5530917 | 04/11/1948 |",
     "| Patient | MRN | DOB |\n| [NAME] | [MRN] | [DATE] |"),
    ("Discharged to 4410 N KINGS HWY, SHREVEPORT LA 71107", "Discharged to [ADDRESS]"),
    ("Order signed by Dr. Minh Van; Van, Ngozi reviewed", "Order signed by Dr. [NAME]; [NAME] reviewed"),
    ("Spoke with Ana Ruiz; ANA 1:80 negative", "Spoke with [NAME]; ANA 1:80 negative"),
    ("T 36.1 C. Linda Collins, RN notified", "T 36.1 C. [NAME], RN notified"),  # a unit is not an initial
    ("sutures out in 3/7; PACS 8.8.0.63 upgraded", "sutures out in 3/7; PACS 8.8.0.63 upgraded"),
    ("pt states her son tomasz kowalczyk will pick her up", "pt states her son [NAME] will pick her up"),
    ("in Kalamazoo County; zip 49001; pacemaker SN PJN123456H", "in [GEO]; zip [GEO]; pacemaker SN [ID]"),
    ("PT SEEN WITH DAUGHTER MARIA LOPEZ. PT IS A 93 Y/O MALE.", "PT SEEN WITH DAUGHTER [NAME]. PT IS A [AGE] MALE."),
])
def test_tables_particles_units_and_durations(text, expected):
    assert run([text]) == [expected]
