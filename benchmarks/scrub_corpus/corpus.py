"""An evaluation corpus for ``scrub_text``, independent of ``lakehouse_phi/synth/notes.py``.

Two parts, both with labeled spans ``(start, end, kind)``; ``kind`` is a detector name or ``neg`` (a look-alike
that must be left intact: dosages, ICD-10 and CPT codes, lab values, vitals, scores, NPI numbers, lot and
accession numbers):

* ``handwritten.txt``: clinical snippets written by hand, labels inline as ``[[kind|text]]``.
* :func:`generate`: notes assembled from this module's own sentence templates and value formats (other phrasings
  and formats than the synthetic generator: E.164 and bare phones, ``Ext.``, MRN labels ``MR#``, ``Chart #``,
  ``medical record number``, letter prefixes, 6-10 digits; dates such as ``14-Mar-2021``, ``14MAR2021``,
  ``2021/03/14``, ``March 2021``, ``3/14`` and a weekday beside a date; titled, labelled and bare names, names
  outside any common-name list; street addresses with units, cities and ZIPs).

A label covers the identifier only (``Dr. [[name|Hargreaves]]``): a title or a label word may stay.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

Span = tuple[int, int, str]
HERE = Path(__file__).resolve().parent
_MARK = re.compile(r"\[\[([a-z]+)\|(.*?)\]\]")

# A mix of frequent US names and names that no common-name list holds.
FIRST = ("Jane Loretta Marcus Keisha Priya Tomasz Gwendolyn Frances Walter Kateryna Raymond Ana Elena Darnell Sione "
         "Aurelio Bethany Nguyet Oluwaseun Margarethe Rosalind Thaddeus Imani Joaquin Siddharth Maeve Cormac Yolanda "
         "Ezekiel Harriet Dmitri Leontyne Wilhelmina Rashida Bartholomew Xiomara Kenji Ingrid Ottoline Desmond "
         "Robert Linda Michael Susan David Karen Thomas Nancy Steven Deborah Kevin Carol Brian Sharon Jeffrey "
         "Laura Jonathan Amy Gregory Angela Patrick Helen Dennis Diane Douglas Julie Peter Joyce Harold "
         "Victoria").split()
LAST = ("Roe Hargreaves O'Neil Abernathy Raghunathan Kowalczyk Villanueva Delgado Okonkwo Lindqvist Tanaka Marsh "
        "Dubois Wierzbicki Souza Feldman Castellanos Benedetto Pruitt Theriault Hoffmann Fitzgerald Nakashima "
        "Szymanski Achterberg Quintanilla Balogun Vasquez-Ortiz MacAllister Oyelaran Thibodeaux Papadopoulos "
        "Haverford Kirkpatrick Esterhazy Blackwood Underhill Montgomery Whitfield Castellano Adeyemi Lindgren "
        "Johnson Garcia Martinez Robinson Clark Lewis Hall Allen Wright Lopez Hill Scott Adams Baker Nelson "
        "Carter Mitchell Perez Roberts Phillips Campbell Parker Evans Edwards Collins Stewart Sanchez Morris").split()
STREETS = ("Larkspur Harrow Elmwood Cobble Hill Maple Chestnut Quarry Birchwood Old Farm Mill Pond Sycamore Juniper "
           "Prospect Hawthorne Bridge Lincoln Riverside Orchard Tamarack Fieldstone").split()
SUFFIXES = ("Lane", "Road", "Rd", "Ave", "Avenue", "St", "Street", "Dr", "Drive", "Ct", "Court", "Way", "Blvd",
            "Terrace", "Place", "Circle", "Pkwy")
CITIES = (("Worcester", "MA", "01602"), ("Pittsfield", "MA", "01201"), ("Springfield", "MA", "01108"),
          ("Hartford", "CT", "06106"), ("Albany", "NY", "12203"), ("Burlington", "VT", "05401"),
          ("Providence", "RI", "02903"), ("Portland", "ME", "04101"), ("North Adams", "MA", "01247"),
          ("Saratoga Springs", "NY", "12866"))
MONTHS = ("January February March April May June July August September October November December").split()
WEEKDAYS = ("Monday Tuesday Wednesday Thursday Friday Saturday Sunday").split()
DOMAINS = ("outlook.com", "gmail.com", "berkshire-med.example.com", "comcast.net", "yahoo.com", "uvm.example.edu")


# ------------------------------------------------------------------------------------------- value formats
def ssn(r: random.Random) -> str:
    a, g, s = r.randint(1, 899), r.randint(1, 99), r.randint(1, 9999)
    if a == 666:
        a = 667
    return r.choice([f"{a:03d}-{g:02d}-{s:04d}", f"{a:03d} {g:02d} {s:04d}", f"{a:03d}{g:02d}{s:04d}"])


def phone(r: random.Random) -> str:
    area, ex, line = r.randint(201, 989), r.randint(200, 999), r.randint(0, 9999)
    if area % 100 == 11:
        area += 1
    forms = [f"({area}) {ex}-{line:04d}", f"({area}){ex}-{line:04d}", f"{area}-{ex}-{line:04d}",
             f"{area}.{ex}.{line:04d}", f"{area} {ex} {line:04d}", f"{area}{ex}{line:04d}",
             f"+1{area}{ex}{line:04d}", f"+1 {area} {ex} {line:04d}", f"+1 ({area}) {ex}-{line:04d}",
             f"1-{area}-{ex}-{line:04d}", f"1 ({area}) {ex}-{line:04d}", f"+1-{area}-{ex}-{line:04d}"]
    out = r.choice(forms)
    ext = r.random()
    if ext < 0.08:
        out += f" Ext. {r.randint(1, 9999)}"
    elif ext < 0.14:
        out += f" ext {r.randint(1, 999)}"
    elif ext < 0.2:
        out += f" x{r.randint(10, 9999)}"
    return out


def email(r: random.Random) -> str:
    f, last = r.choice(FIRST).lower(), re.sub(r"[^a-z]", "", r.choice(LAST).lower())
    local = r.choice([f"{f}.{last}", f"{f[0]}{last}", f"{f}_{last}{r.randint(1, 99)}", f"{last}.{f}+portal",
                      f"dr.{last}"])
    return f"{local}@{r.choice(DOMAINS)}"


def mrn(r: random.Random) -> tuple[str, str]:
    """(label text, MRN) -- the label stays, the number is the identifier."""
    digits = "".join(r.choice("0123456789") for _ in range(r.choice([6, 7, 8, 9, 10])))
    value = r.choice(["", "", "", "A", "MC", "H-", "E"]) + digits
    label = r.choice(["MRN ", "MRN: ", "MRN#", "MR# ", "MR #", "MR No. ", "medical record number ",
                      "Medical Record #: ", "Chart # ", "Chart #: ", "chart no. ", "Hospital No. ", "Unit No. "])
    return label, value


def date(r: random.Random) -> str:
    y, m, d = r.randint(1935, 2024), r.randint(1, 12), r.randint(1, 28)
    mon = MONTHS[m - 1]
    forms = [f"{m}/{d}/{y}", f"{m:02d}/{d:02d}/{y}", f"{m}/{d}/{y % 100:02d}", f"{m}-{d}-{y}", f"{y}-{m:02d}-{d:02d}",
             f"{y}/{m:02d}/{d:02d}", f"{mon} {d}, {y}", f"{mon[:3]} {d}, {y}", f"{mon[:3]}. {d}, {y}",
             f"{d} {mon} {y}", f"{d}-{mon[:3]}-{y}", f"{d:02d}{mon[:3].upper()}{y}",
             f"{d:02d}-{mon[:3].upper()}-{y % 100:02d}",
             f"{mon} {y}", f"{mon[:3]} {y}", f"{mon} {d}", f"{m}/{d}", f"{mon} {d}th, {y}",
             f"{r.choice(WEEKDAYS)}, {mon} {d}, {y}", f"{r.choice(WEEKDAYS)[:3]} {m}/{d}",
             f"{r.choice(WEEKDAYS)} {m}/{d}/{y}"]
    return r.choice(forms)


def address(r: random.Random) -> str:
    num = r.choice([str(r.randint(1, 99)), str(r.randint(100, 9999)), str(r.randint(10000, 99999))])
    street = r.choice(STREETS)
    if r.random() < 0.3:
        street = f"{street} {r.choice(STREETS)}"
    pre = r.choice(["", "", "", "N. ", "South ", "W "])
    out = f"{num} {pre}{street} {r.choice(SUFFIXES)}"
    if r.random() < 0.35:
        out += r.choice([f", Apt {r.randint(1, 40)}{r.choice('ABC')}", f" #{r.randint(1, 300)}",
                         f", Unit {r.randint(1, 99)}", f", Suite {r.randint(100, 900)}"])
    if r.random() < 0.6:
        city, st, z = r.choice(CITIES)
        out += f", {city}, {st}" + (f" {z}" if r.random() < 0.8 else "")
    return out


def person(r: random.Random) -> str:
    return f"{r.choice(FIRST)} {r.choice(LAST)}"


#: Look-alikes by kind, each used in a sentence where it belongs.
NEGATIVES = {
    "dose": (lambda r: f"{r.choice([5, 10, 20, 25, 40, 50, 81, 100, 250, 325, 500, 650, 875, 1000])} mg",
             lambda r: f"{r.choice([0.5, 1, 2, 4])} mg/kg", lambda r: f"{r.randint(1, 40)} units",
             lambda r: f"{r.choice([12.5, 25, 50, 75, 88, 100, 112, 125, 137])} mcg",
             lambda r: f"{r.choice([1, 2])} tab q{r.choice([4, 6, 8, 12])}h",
             lambda r: f"{r.choice([100, 500, 1000])} mL"),
    "code": (lambda r: (f"{r.choice('EIJKMNZRF')}{r.randint(0, 99):02d}.{r.randint(0, 9)}"
                        f"{r.choice(['', str(r.randint(0, 9))])}"),
             lambda r: f"{r.choice('EIJ')}{r.randint(10, 99)}", lambda r: f"{r.randint(99201, 99499)}",
             lambda r: (f"{r.choice(['L', 'C', 'T'])}{r.randint(1, 7)}-"
                        f"{r.choice(['L', 'C', 'T', 'S'])}{r.randint(1, 7)}")),
    "lab": (lambda r: f"{r.randint(3, 6)}.{r.randint(0, 9)} mmol/L", lambda r: f"{r.randint(60, 400)} mg/dL",
            lambda r: f"{r.randint(4, 14)}.{r.randint(0, 9)}%", lambda r: f"{r.randint(100, 450)} K/uL",
            lambda r: f"{r.randint(1, 5)}.{r.randint(0, 99)} ng/mL", lambda r: f"{r.randint(130, 148)}",
            lambda r: f"{r.randint(2, 6)}.{r.randint(0, 9)}"),
    "vital": (lambda r: f"{r.randint(90, 180)}/{r.randint(50, 110)}",
              lambda r: f"{r.randint(95, 103)}.{r.randint(0, 9)} F",
              lambda r: f"{r.randint(50, 130)}", lambda r: f"{r.randint(88, 100)}%"),
    "score": (lambda r: f"{r.randint(0, 10)}/10", lambda r: f"{r.randint(0, 5)}/5", lambda r: f"{r.randint(3, 15)}/15",
              lambda r: f"20/{r.choice([20, 25, 30, 40, 60, 200])}", lambda r: f"{r.randint(1, 3)}+"),
    "npi": (lambda r: f"1{r.randint(100000000, 999999999)}",),
    "misc": (lambda r: f"{r.randint(0, 23):02d}{r.choice(['00', '15', '30', '45'])}",
             lambda r: f"{r.randint(1, 12)}:{r.choice(['00', '15', '30', '45'])}", lambda r: f"{r.randint(1, 30)} days",
             lambda r: f"Lot {r.choice('ABCDEFGH')}{r.randint(1000, 99999)}", lambda r: f"Room {r.randint(100, 999)}",
             lambda r: f"x{r.randint(2, 5)}"),
}


def ident(r: random.Random) -> tuple[str, str]:
    """(label, value) of another identifier: Medicare, policy, account, licence, vehicle, device numbers."""
    letters = "ACDEFGHJKMNPQRTUVWXY"
    mbi = (f"{r.randint(1, 9)}{r.choice(letters)}{r.choice(letters)}{r.randint(0, 9)}{r.choice(letters)}"
           f"{r.choice(letters)}{r.randint(0, 9)}{r.choice(letters)}{r.choice(letters)}{r.randint(10, 99)}")
    vin = "".join(r.choice("ABCDEFGHJKLMNPRSTUVWXYZ0123456789") for _ in range(17))
    return r.choice([
        ("MBI ", mbi), ("Medicare ID: ", mbi),
        ("policy # ", f"{r.choice(['PX', 'HM', 'BC'])}-{r.randint(10000, 999999)}"),
        ("account ", str(r.randint(10_000_000, 99_999_999))), ("Acct #", str(r.randint(100000, 9999999))),
        ("driver's license ", f"{r.choice('ABCDSW')}{r.randint(1000000, 9999999)}"), ("VIN ", vin),
        ("S/N ", f"{r.choice(['PJN', 'RNK', 'UHC'])}{r.randint(100000, 999999)}{r.choice('HMKX')}"),
        ("Member ID: ", f"{r.choice(['XJH', 'W'])}{r.randint(10 ** 8, 10 ** 9)}"),
        ("Path # ", f"S{r.randint(2019, 2025)}-{r.randint(10000, 99999)}")])


US_PLACES = (("Lubbock", "TX", "79401"), ("Kalamazoo", "MI", "49001"), ("Yakima", "WA", "98901"),
             ("Las Cruces", "NM", "88001"), ("Fort Wayne", "IN", "46802"), ("Bangor", "ME", "04401"),
             ("Gainesville", "FL", "32601"), ("Duluth", "MN", "55802"), ("Reading", "PA", "19601"),
             ("Tyler", "TX", "75701"))
COUNTIES = ("Bexar", "Cuyahoga", "Maricopa", "Hennepin", "Wayne", "Allegheny", "Jefferson", "Orange", "Lake",
            "Salt Lake")


def geo(r: random.Random) -> str:
    city, st, z = r.choice(US_PLACES)
    return r.choice([f"{city}, {st}", f"{city} {st} {z}", f"{r.choice(COUNTIES)} County"])


# ----------------------------------------------------------------------------------------------- templates
# {slot} names: name, first, last, ssn, phone, email, mrn, date, address, ip, url, id, oldage (over 89), geo, and a
# look-alike kind
TEMPLATES = (
    "Pt seen with {relation} {first} today; vitals: BP {vital}, HR {vital}, SpO2 {vital}.",
    "Spoke with Dr. {last} regarding the {dose} dose.",
    "Mrs. {last} called from {phone} asking about refills.",
    "Patient: {name}. Chief complaint: cough for {misc}.",
    "Attending: {name}, MD.",
    "Discussed results with {name} and her {relation} {first} at bedside.",
    "{name} is a {age} y/o with {code}, on {dose} of metformin.",
    "Contact info: {email}, cell {phone}.",
    "Identity verified (SSN {ssn}).",
    "SS# {ssn} on registration form.",
    "{mrn_label}{mrn} - records requested on {date}.",
    "Chart reviewed: {mrn_label}{mrn}.",
    "Last seen {date} by Dr. {last}.",
    "Admitted {date}, discharged {date}; f/u in {misc}.",
    "Labs on {date}: Na {lab}, glucose {lab}, A1c {lab}.",
    "Next visit {date} at {misc}.",
    "Lives at {address} with spouse.",
    "Mailing address: {address}.",
    "Transport to {address} arranged for {date}.",
    "Voicemail left at {phone} for Mr. {last}.",
    "Please call {phone} with questions.",
    "Outside films from {ip} reviewed.",
    "Portal link {url} sent.",
    "Referring physician: Dr. {first} {last} (NPI {npi}).",
    "Dx {code}, {code}; CPT {code}.",
    "Pain {score}; strength {score}; reflexes {score}; VA {score}.",
    "Electronically signed: {name}, RN {date}",
    "Per {name}, insulin {dose} before meals.",
    "Emergency contact {name} ({relation}) {phone}.",
    "Faxed consult to {phone} on {date}.",
    "{relation} {first} will drive pt home.",
    "Allergies reviewed. Temp {vital}, RR {vital}, WBC {lab}.",
    "Call back at {phone}.",
    "Wound check {date}; culture pending, {misc} of cefazolin {dose}.",
    "Vaccine {misc} given {date} by {name}.",
    "Consult note by {name}, PA-C on {date}.",
    "Strength {score} bilaterally; pain {score} today, was {score} on {date}.",
    "GCS {score}; pupils equal. Attending NPI {npi}.",
    "Email {email} bounced; updated to {email}.",
    "Pharmacy: {phone}; Rx {dose} #{lab}.",
    "Symptoms began in {date} and worsened since {date}.",
    "Ms. {last} reports good adherence.",
    "Referred by {name} for sleep study.",
    "Seen by {name} in urgent care.",
    "Insurance: {id_label}{id} on file.",
    "Verified {id_label}{id} before the visit.",
    "This {oldage} y/o presents with {code}.",
    "Pt is a {oldage}-year-old on {dose} daily.",
    "Pleasant woman, aged {oldage}, lives alone.",
    "Moved from {geo} last spring.",
    "Lives in {geo}; daughter nearby.",
)
RELATIONS = ("wife", "husband", "daughter", "son", "mother", "sister", "brother", "friend", "neighbor", "caregiver")
_SLOT = re.compile(r"\{([a-z_]+)\}")


def _fill(template: str, r: random.Random) -> tuple[str, list[Span]]:
    out, spans, last = "", [], 0
    mrn_pair: tuple[str, str] | None = None
    id_pair = ("", "")
    for m in _SLOT.finditer(template):
        out += template[last:m.start()]
        last = m.end()
        slot = m.group(1)
        kind, text = None, ""
        if slot == "name":
            kind, text = "name", person(r)
        elif slot == "first":
            kind, text = "name", r.choice(FIRST)
        elif slot == "last":
            kind, text = "name", r.choice(LAST)
        elif slot == "relation":
            text = r.choice(RELATIONS)
        elif slot == "age":
            text = str(r.randint(20, 88))
        elif slot == "npi":
            kind, text = "neg", f"1{r.randint(100000000, 999999999)}"
        elif slot == "mrn_label":
            mrn_pair = mrn(r)
            text = mrn_pair[0]
        elif slot == "mrn":
            kind, text = "mrn", (mrn_pair or mrn(r))[1]
        elif slot == "id_label":
            id_pair = ident(r)
            text = id_pair[0]
        elif slot == "id":
            kind, text = "id", id_pair[1]
        elif slot == "oldage":
            kind, text = "age", str(r.randint(90, 104))
        elif slot == "geo":
            kind, text = "geo", geo(r)
        elif slot in NEGATIVES:
            kind, text = "neg", r.choice(NEGATIVES[slot])(r)
        elif slot == "ip":
            kind, text = "ip", ".".join(str(r.randint(1, 254)) for _ in range(4))
        elif slot == "url":
            host = r.choice(['mercy', 'bayview', 'northshore'])
            kind, text = "url", f"https://portal.{host}.example.org/v/{r.randint(1000, 99999)}"
        else:
            kind, text = slot, {"ssn": ssn, "phone": phone, "email": email, "date": date, "address": address}[slot](r)
        if kind:
            spans.append((len(out), len(out) + len(text), kind))
        out += text
    out += template[last:]
    return out, spans


def generate(n: int, seed: int = 11) -> tuple[list[str], list[list[Span]]]:
    """``n`` notes of 3 to 6 sentences each, with their labeled spans."""
    r = random.Random(seed)
    texts, labels = [], []
    for _ in range(n):
        parts, spans, pos = [], [], 0
        for t in r.sample(TEMPLATES, r.randint(3, 6)):
            text, sp = _fill(t, r)
            spans += [(s + pos, e + pos, k) for s, e, k in sp]
            parts.append(text)
            pos += len(text) + 1
        texts.append(" ".join(parts))
        labels.append(spans)
    return texts, labels


def parse_markup(line: str) -> tuple[str, list[Span]]:
    """``[[kind|text]]`` marks -> (plain text, spans)."""
    out, spans, last = "", [], 0
    for m in _MARK.finditer(line):
        out += line[last:m.start()]
        spans.append((len(out), len(out) + len(m.group(2)), m.group(1)))
        out += m.group(2)
        last = m.end()
    return out + line[last:], spans


def handwritten() -> tuple[list[str], list[list[Span]]]:
    texts, labels = [], []
    for line in (HERE / "handwritten.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            text, spans = parse_markup(line)
            texts.append(text)
            labels.append(spans)
    return texts, labels
