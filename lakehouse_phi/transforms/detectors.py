"""Regular expressions that find identifiers in free text, shared by ``scrub_text`` and the ingest PHI scan.

Every pattern is written in the common subset of RE2 (what ``pyarrow.compute`` and Spark's ``rlike`` run) and
Python's ``re``, so the vectorized strategy and the Python-side evaluation (``benchmarks/scrub_eval.py``) run the
same expressions. RE2 has no look-around, so a pattern that needs context keeps it in two capture groups: every
pattern is ``(KEEP_BEFORE)IDENTIFIER(KEEP_AFTER)`` (either group may be empty) and is replaced by
``\\1[TAG]\\2``: ``Dr. Hargreaves`` becomes ``Dr. [NAME]``, ``call 555-0142`` becomes ``call [PHONE]``.

:data:`ORDER` is the order in which ``scrub_text`` applies the detectors: each runs on the output of the previous
one, so the ones that swallow digits of other kinds go first (a URL or an e-mail address may hold digits and dates;
an IPv4 address looks like a dotted phone number; a 9-digit SSN must be claimed before the phone patterns look;
dates before names, as ``May`` and ``June`` are first names; addresses before names, as ``12 Lincoln Ave`` holds one).

Detectors by class of pattern: labelled identifiers (``MRN``/``EMPI``/``Clinic #`` for ``mrn``; ``MBI``, ``S/N``,
``VIN``, licence, ``Path #``, account, policy, device for ``id``), shapes (SSN, NANP phones, e-mail, URL, IPv4,
dates in every common order and separator), ages over 89 (``[AGE]``), street lines with their city, and geographic
units below a state (``geo``: a city with its state or ZIP, a county). Look-alikes with a code label (NPI, SNOMED,
LOINC, CPT, NDC, versions, lot numbers) are guarded first (:data:`GUARDS`). Names are not patterns: they are found
on words by :mod:`.names` after every pattern has run; phone numbers of other countries and IPv6 addresses are
checked by ``phonenumbers`` and ``ipaddress`` in :mod:`.scrub_text`, on the rows a cheap RE2 prefilter keeps.

Costly patterns run only on the rows their RE2 prefilter (:data:`PREFILTERS`) matches, and letters are written as
explicit Latin ranges (RE2 compiles ``\\p{Lu}`` into a large automaton on every call).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_MONTHS = ("Jan(?:uary)?", "Feb(?:ruary)?", "Mar(?:ch)?", "Apr(?:il)?", "May", "June?", "July?", "Aug(?:ust)?",
           "Sep(?:t(?:ember)?)?", "Oct(?:ober)?", "Nov(?:ember)?", "Dec(?:ember)?")
_MONTH = "(?:" + "|".join(_MONTHS) + ")"
#: A month name as written at the start of a word: ``March``, ``Mar``, ``MAR`` (not ``march``, ``may``).
_MONTH_CAP = "(?:" + "|".join(_MONTHS) + "|" + "|".join(
    ("JAN(?:UARY)?", "FEB(?:RUARY)?", "MAR(?:CH)?", "APR(?:IL)?", "MAY", "JUNE?", "JULY?", "AUG(?:UST)?",
     "SEP(?:T(?:EMBER)?)?", "OCT(?:OBER)?", "NOV(?:EMBER)?", "DEC(?:EMBER)?")) + ")"
_WEEKDAY = (r"(?:Mon(?:day)?|Tue(?:s(?:day)?)?|Wed(?:nesday)?|Thu(?:r(?:s(?:day)?)?)?|Fri(?:day)?|Sat(?:urday)?|"
            r"Sun(?:day)?)")
_DAY = r"(?:0?[1-9]|[12][0-9]|3[01])"
_MM = r"(?:0?[1-9]|1[0-2])"
_YEAR = r"(?:19|20)[0-9]{2}"
_ORD = r"(?:st|nd|rd|th)?"

# ----------------------------------------------------------------------------------------------- address
#: A capitalised word (``Smith``, ``O'Neil``, ``McKay``, ``Smith-Jones``, ``Traoré``) or one in capitals (``WALNUT``).
#: Latin letters (ASCII, Latin-1 and Latin Extended-A; explicit ranges compile far faster in RE2 than \p{Lu}).
_UP = "[A-ZÀ-ÖØ-ÞĀ-ž]"
_LOW = "[a-zß-öø-ÿĀ-ž]"
_TOKEN = rf"(?:{_UP}(?:{_LOW}+|'{_UP}{_LOW}+)(?:{_UP}{_LOW}+)?(?:-{_UP}{_LOW}+)?)"
_CAPS = rf"(?:{_UP}[A-ZÀ-ÖØ-ÞĀ-ž'-]+)"
_STATES = ("AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND "
           "OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR GU VI").split()
#: State codes that are also credentials or words (``MD``, ``PA``, ``OR``): a city before them needs a ZIP or a cue.
_STATES_AMBIGUOUS = ("CO", "DE", "HI", "ID", "IN", "LA", "MA", "MD", "ME", "OH", "OK", "OR", "PA")
_STATE = "(?:" + "|".join(_STATES) + ")"
_STATE_SAFE = "(?:" + "|".join(s for s in _STATES if s not in _STATES_AMBIGUOUS) + ")"
_STATE_NAMES = ("Alabama|Alaska|Arizona|Arkansas|California|Colorado|Connecticut|Delaware|Florida|Georgia|Hawaii|"
                "Idaho|Illinois|Indiana|Iowa|Kansas|Kentucky|Louisiana|Maine|Maryland|Massachusetts|Michigan|"
                "Minnesota|Mississippi|Missouri|Montana|Nebraska|Nevada|New Hampshire|New Jersey|New Mexico|New York|"
                "North Carolina|North Dakota|Ohio|Oklahoma|Oregon|Pennsylvania|Rhode Island|South Carolina|"
                "South Dakota|Tennessee|Texas|Utah|Vermont|Virginia|Washington|West Virginia|Wisconsin|Wyoming|"
                "Puerto Rico")
_ZIP = r"[0-9]{5}(?:-[0-9]{4})?"
_CITY = rf"(?:{_TOKEN}|{_CAPS})(?:\s+(?:{_TOKEN}|{_CAPS})){{0,2}}"
_SUFFIX = (r"(?i:Street|St|Avenue|Ave|Av|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|Way|Terrace|Ter|"
           r"Circle|Cir|Parkway|Pkwy|Highway|Hwy|Square|Sq|Trail|Trl|Plaza|Turnpike|Tpke|Pike|Row|Path|Loop|Alley|"
           r"Crescent|Expressway|Expy|Freeway|Fwy|Run|Ridge|Crossing|Xing|Point|Pt|Cove|Bend|Hollow|Heights|Hts)")
_DIRECTION = r"(?:N|S|E|W|NE|NW|SE|SW|North|South|East|West|NORTH|SOUTH|EAST|WEST)\.?"
_UNIT = (r"(?:,?\s*(?i:Apt|Apartment|Unit|Suite|Ste|Fl|Floor|Rm|Room|Bldg|Building|Lot|Trlr|#)\.?\s*#?\s*"
         r"[0-9A-Z]{1,5}(?:-[0-9A-Z]+)?\b)")
#: After a street line: ``, City``, ``, City, ST 12345``, ``City ST 12345``.
_AFTER_STREET = (rf"(?:,\s*{_CITY}(?:,?\s+(?:{_STATE}|{_STATE_NAMES})\b\.?)?(?:,?\s+{_ZIP}\b)?"
                 rf"|\s+{_CITY},?\s+{_STATE}\b\.?(?:\s+{_ZIP}\b)?)")
ADDRESS_PATTERNS: tuple[str, ...] = (
    rf"()\b[0-9]{{1,6}}[A-Z]?(?:-[0-9]{{1,4}})?\s+(?:{_DIRECTION}\s+)?(?:(?:{_TOKEN}|{_CAPS}|[0-9]{{1,3}}"
    rf"(?i:st|nd|rd|th))\.?\s+){{1,4}}{_SUFFIX}\b\.?(?:\s+(?:N|S|E|W|NE|NW|SE|SW)\b\.?)?{_UNIT}?{_AFTER_STREET}?()",
    r"()\b(?i:P\.?\s?O\.?\s*Box|Post Office Box)\s+[0-9]+\b" + rf"{_AFTER_STREET}?()",
    # rural routes and highway contract routes: RR 2 Box 15, Rural Route 3
    r"()(?:\b(?:RR|R\.R\.|HC)\s*#?\s*[0-9]{1,4},?\s*(?i:box)\s*#?\s*[0-9]{1,5}\b|"
    r"\b(?i:rural route|highway contract route|star route)\s*#?\s*[0-9]{1,4}\b"
    r"(?:,?\s*(?i:box)\s*#?\s*[0-9]{1,5}\b)?)" + rf"{_AFTER_STREET}?()",
    rf"()\b{_CITY},\s+{_STATE}\s+{_ZIP}\b()",
)

# ------------------------------------------------------------------------------------------------- geography
_GEO_CUE = (r"(?i:\b(?:in|from|near|to|at|of|lives in|living in|resides in|resident of|moved to|native of|visiting|"
            r"travel(?:l?ed)? to|born in|outside|around)\s+)")
GEO_PATTERNS: tuple[str, ...] = (
    # a city with a state and a ZIP (any state code), or with a state name
    rf"()\b{_CITY},?\s+{_STATE}\b\.?\s+{_ZIP}\b()",
    rf"()\b{_CITY},\s+(?:{_STATE_NAMES})\b()",
    # a city with an unambiguous state code: Tyler TX, Reading, PA after a cue
    rf"()\b{_CITY},\s+{_STATE_SAFE}\b()",
    rf"({_GEO_CUE}){_CITY},?\s+{_STATE}\b()",
    # counties, parishes, boroughs
    rf"()\b{_TOKEN}(?:\s+{_TOKEN})?\s+(?:County|Parish|Borough|COUNTY|PARISH)\b()",
    # a ZIP after a state (... TX 75766) or after its label (zip 49001, postal code: 49001-1234)
    rf"(\b{_STATE}\s+){_ZIP}\b()",
    rf"(\b(?i:zip(?:\s*code)?|postal\s+code)\s*(?:#|:|is)?\s*){_ZIP}\b()",
)

#: Labels of medical record numbers (``MRN``, ``MR #``, ``EMPI``, ``Clinic #``, ``Chart No.``...).
_MRN_LABEL = (r"(?i:MRN|MR\s?#|MR\s?No\.?|MR\s?number|MR|Med(?:ical)?\.?\s+Rec(?:ord)?\.?\s*(?:No\.?|Number|Num|#)?|"
              r"Medical\s+record(?:\s+(?:number|no\.?|num|#))?|Chart\s*(?:#|No\.?|Number|Num|ID)?|Record\s*(?:#|No\.?)|"
              r"Unit\s+(?:No\.?|Number)|Hospital\s+(?:No\.?|Number|#|ID)|(?:Patient|Pt)\s+(?:ID|#|No\.?|number)|"
              r"E?MPI(?:\s*(?:#|ID|No\.?))?|Clinic\s*(?:#|No\.?|Number|ID)|EHR\s*(?:#|ID)|MRUN|URN|UR\s*(?:#|No\.?))")
_LABEL_SEP = r"\s*(?:#|:|=|-|\||is|was|no\.?|number)?\s*(?:#|:|\|)?\s*"
#: Labels of other identifiers (Safe Harbor (K)-(R): account, plan, licence, vehicle, device numbers...).
_ID_LABEL = (r"(?i:MBI|HICN|Medicare(?:\s+(?:Beneficiary\s+)?(?:ID|number|no\.?|#))?|"
             r"Medicaid(?:\s+(?:ID|number|no\.?|#))?|"
             r"S/?N|serial(?:\s+(?:number|no\.?|#))?|VIN|vehicle\s+(?:ID|identification\s+number)|plate(?:\s+(?:number|#))?|"
             r"licen[cs]e(?:\s+plate)?(?:\s+(?:number|no\.?|#))?|lic\.?|DL|driver'?s\s+licen[cs]e(?:\s+(?:number|no\.?|#))?|"
             r"DEA(?:\s+(?:number|no\.?|#))?|path(?:ology)?(?:\s+(?:#|no\.?|number|case|accession))?|surg\s*path|"
             r"acct\.?|account(?:\s+(?:number|no\.?|#))?|policy(?:\s+(?:number|no\.?|#|ID))?|member(?:\s+(?:ID|#|number|no\.?))|"
             r"subscriber(?:\s+(?:ID|#|number|no\.?))|group(?:\s+(?:number|no\.?|#|ID))|claim(?:\s+(?:number|no\.?|#|ID))?|"
             r"device(?:\s+(?:ID|serial|number|#))?|UDI|implant(?:\s+(?:serial|ID|#))?|pacemaker\s+serial|"
             r"passport(?:\s+(?:number|no\.?|#))?|badge(?:\s+(?:number|#))?|employee(?:\s+(?:ID|number|#))|"
             r"certificate(?:\s+(?:number|no\.?|#))?|health\s+plan(?:\s+(?:ID|number|#))?|insurance(?:\s+(?:ID|number|#))|"
             r"enc(?:ounter)?\s*(?:#|number|ID|no\.?)|CSN|FIN(?:\s*#)?|visit\s*(?:#|number|ID)|case\s*(?:#|number|no\.?)|"
             r"requisition\s*(?:#|number|no\.?)|specimen\s*(?:#|ID|number)|benefici?ary\s+(?:ID|number|#)|"
             r"(?:tax|EIN|TIN)\s*(?:ID|#|number)?|ID\s*(?:#|number|no\.?)|identifier)")
#: An identifier's value: letters, digits and dashes, 4-24 characters, holding a digit.
_ID_VALUE = r"(?:[A-Za-z]{0,6}-?[0-9][A-Za-z0-9-]{2,22}[A-Za-z0-9]|[A-Za-z][A-Za-z0-9-]{1,20}[0-9][A-Za-z0-9]*)"
_AGE90 = r"(?:9[0-9]|1[01][0-9]|12[0-5])"
_AGE_WORDS = r"(?i:ninety|one hundred)(?:[- ](?i:one|two|three|four|five|six|seven|eight|nine))?"
_DATE_CUES = (r"on|since|until|till|through|thru|dated|before|after|as of|starting|DOS|DOB|born|seen|admitted|"
              r"admission|"
              r"discharged|discharge|visit|appt|appointment|given|started|stopped|due|scheduled|surgery|returns?|f/u|"
              r"follow-up|from|to|dictated|transcribed|signed|submitted|received|collected|drawn|resulted|"
              r"reported|performed|done|last|next|by|effective|expires?|expired|date|dx|diagnosed|onset|injury|"
              r"procedure|ordered|obtained|placed|removed|changed|updated|called|hospitalized|ED|ER")

#: Detector name -> its patterns, applied one after the other (each RE2 and Python ``re`` compatible).
DETECTOR_PATTERNS: dict[str, tuple[str, ...]] = {
    # scheme or www., or a bare host with a common TLD followed by a path; not ending in sentence punctuation
    "url": (r"()(?:\b(?:[Hh][Tt][Tt][Pp][Ss]?://|[Ww][Ww][Ww]\.)|\b[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
            r"\.(?:com|org|net|edu|gov|io|us|info|biz|health|care|co\.uk|ca|de|fr)/)[^\s<>\"']*[^\s<>\"'.,;:!?)\]]()",),
    "email": (r"()\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b()",),
    # IPv4 here (IPv6 candidates are checked with ``ipaddress`` in scrub_text)
    "ip": (rf"()\b{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}(?::[0-9]{{1,5}})?\b()",),
    # a medical record number after one of its labels: digits (5-12, or dashed groups), optionally after letters
    "mrn": (rf"()\b{_MRN_LABEL}{_LABEL_SEP}"
            r"(?:[A-Za-z]{1,4}-?[0-9]{4,12}|[0-9]{2,4}(?:[-.][0-9]{2,5}){1,3}|[0-9]{4,12}[A-Za-z]?|"
            # any letters-and-digits value after the label (OCR: 1234S67)
            r"[A-Za-z0-9]{0,4}[0-9][A-Za-z0-9]{3,14})\b()",
            # a number of 6-8 digits alone in a table cell (its label is in the header row): | 5530917 |
            r"(\|[ \t]*)[A-Za-z]{0,3}[0-9]{6,8}([ \t]*\|)"),
    # other identifiers after their label (MBI, S/N, VIN, licence, Path #, account, policy, device...)
    "id": (rf"(\b{_ID_LABEL}{_LABEL_SEP}){_ID_VALUE}\b()",
           # a Medicare Beneficiary Identifier's shape, unlabelled: 1 digit, letter, alnum, digit, letter, ...
           r"()\b[1-9][AC-HJKMNP-RT-Yac-hjkmnp-rt-y][AC-HJKMNP-RT-Yac-hjkmnp-rt-y0-9][0-9]-?"
           r"[AC-HJKMNP-RT-Yac-hjkmnp-rt-y][AC-HJKMNP-RT-Yac-hjkmnp-rt-y0-9][0-9]-?"
           r"[AC-HJKMNP-RT-Yac-hjkmnp-rt-y]{2}[0-9]{2}\b()",),
    # 3-2-4 with dashes, dots or spaces, or 9 digits standing alone (not part of a longer number or word)
    "ssn": (r"()(?:\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b|\b[0-9]{3}\.[0-9]{2}\.[0-9]{4}\b|\b[0-9]{3} [0-9]{2} [0-9]{4}\b|"
            r"\b[0-9]{9}\b)()",
            # after its label, any separators and a masked prefix: SSN xxx-xx-1234, SS# 123 45 6789
            r"(\b(?i:SSN|SS#|SS\s+no\.?|social\s+security(?:\s+(?:number|no\.?|#))?)\s*(?:#|:|is)?\s*"
            r"(?i:(?:ending|ends)(?:\s+in)?:?\s*|last\s*(?:4|four)(?:\s+digits)?:?\s*)?)"
            r"(?:[0-9Xx*]{3}[\s./-]?[0-9Xx*]{2}[\s./-]?[0-9]{4}|[0-9]{4})\b()"),
    # NANP: +1 / 1- / 1, area code bare or in parentheses, separators space/dot/dash/slash or none (a bare 10-digit
    # number whose area code and exchange start with 2-9: an NPI starts with 1), an extension x / ext. / extension;
    # a 7-digit local number only after a phone word. Other countries' numbers: ``phonenumbers`` in scrub_text.
    "phone": (r"()(?:(?:\+1[\s.-]?|\b1[\s.-]?)?\([2-9][0-9]{2}\)\s?|(?:\+1[\s.-]?|\b1[\s.-]?|\b)[2-9][0-9]{2}"
              r"(?:[\s.-]|\s?/\s?)?)[2-9][0-9]{2}[\s.-]?"
              r"[0-9]{4}\b(?:,?\s?(?i:x|ext\.?|extension)\s?[0-9]{1,5}\b)?()",
              r"((?i:\b(?:phone|tel|telephone|cell|mobile|home|work|call|called|pager|fax|callback|reached at|"
              r"number|ph)\.?\s*(?:#|no\.?|number)?\s*:?\s*))[2-9][0-9]{2}[\s.-][0-9]{4}\b"
              r"(?:,?\s?(?i:x|ext\.?|extension)\s?[0-9]{1,5}\b)?()"),
    "date": (
        # numeric and written dates with a year, optionally with the weekday beside them
        rf"()(?:\b(?i:{_WEEKDAY})\.?,?\s+)?(?:"
        rf"\b{_DAY}/{_DAY}/(?:{_YEAR}|[0-9]{{2}})\b|\b{_DAY}-{_DAY}-(?:{_YEAR}|[0-9]{{2}})\b|\b{_DAY}\.{_DAY}\.{_YEAR}\b"
        rf"|\b{_MM}\.{_DAY}\.[0-9]{{2}}\b"
        rf"|\b{_YEAR}[-/](?:0?[1-9]|1[0-2])[-/](?:0?[1-9]|[12][0-9]|3[01])\b"
        rf"|\b{_YEAR}\.(?:0[1-9]|1[0-2])\.(?:0[1-9]|[12][0-9]|3[01])\b"
        rf"|\b(?i:{_MONTH})\.?\s+{_DAY}{_ORD},?\s+{_YEAR}\b"
        rf"|\b{_DAY}{_ORD}\s+(?:of\s+)?(?i:{_MONTH})\.?,?\s+{_YEAR}\b"
        rf"|\b{_DAY}[-/ ]?(?i:{_MONTH})[-/ ]?(?:{_YEAR}|[0-9]{{2}})\b"
        rf"|\b{_MONTH_CAP}\.?\s+{_DAY}{_ORD}\b"  # month and day without a year
        rf"|\b{_DAY}(?:st|nd|rd|th)\s+(?:of\s+)?(?i:{_MONTH})\b"  # the 10th of March
        rf"|\b{_DAY}\s+(?:January|February|March|April|June|July|August|September|October|November|December)\b"
        rf"|\b(?i:{_MONTH})\.?,?\s+(?:of\s+)?{_YEAR}\b"  # month and year
        rf"|\b(?:0[1-9]|1[0-2])/{_YEAR}\b|\b{_YEAR}-(?:0[1-9]|1[0-2])\b"  # month and year: 03/2019, 2019-03
        rf"|\b(?i:{_MONTH})\.?\s*'[0-9]{{2}}\b"  # Mar '21
        rf")()",
        # month/day without a year: after a weekday or a date word, or with a day 11-31 but 15 (``7/10`` is a pain
        # score, ``4/5`` a strength grade, ``14/15`` a coma score; ``3/14`` is a date)
        rf"()\b(?i:{_WEEKDAY})\.?,?\s+{_MM}/{_DAY}\b()",
        # after a birth-date label, a numeric date even with OCR letters for digits (O3/14/195O)
        r"(\b(?i:DOB|D\.O\.B\.|date of birth|birth\s?date|born)\s*:?\s*)"
        r"[0-9OoIl]{1,4}[/.-][0-9OoIl]{1,2}[/.-][0-9OoIl]{2,4}\b()",
        # compact yyyymmdd standing alone (not inside a dashed accession such as RA-20210314-0042)
        rf"(^|[^0-9A-Za-z-]){_YEAR}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])($|[^0-9A-Za-z-])",
        rf"((?i:\b(?:{_DATE_CUES})\.?:?\s+))"
        rf"{_MM}/{_DAY}\b()",
        rf"()\b{_MM}/(?:1[1-46-9]|2[0-9]|3[01])\b()",
    ),
    # ages over 89 (Safe Harbor): 102 y/o, 94-year-old, aged 94, age: 91, ninety-two years old
    "age": (rf"()\b(?:{_AGE90}|{_AGE_WORDS})\s?-?\s?(?i:y/o|y\.o\.|yo|yrs?|years?|year-old|yr-old)\b"
            rf"(?:[- ](?i:old))?()",
            rf"(\b(?i:aged?|age:|age is|at age)\s*:?\s*){_AGE90}\b()",
            rf"()\b{_AGE90}\s?(?:M|F|yo[MF]?|y[MF])\b()"),
    "address": ADDRESS_PATTERNS,
    "geo": GEO_PATTERNS,
}

#: Look-alikes guarded before the detectors run: the value after a code label (NPI, SNOMED, LOINC, CPT, NDC,
#: versions and builds, lot numbers) gets :data:`GUARD` between its first characters, so that no detector
#: matches it; ``scrub_text`` removes every ``GUARD`` at the end (a GUARD character already in the text goes too).
GUARD = "\x02"
_CODE_LABEL = (r"(?i:NPI|SNOMED(?:\s+CT)?|SCTID|LOINC|CPT|HCPCS|NDC|RxNorm|RXCUI|ICD-?(?:9|10)?(?:-CM|-PCS)?|"
               r"version|ver\.?|v\.|build|release|firmware|software|lot|PACS|model|catalog|cat\.?|ref|CLIA|"
               r"Epic|Cerner|DRG|MS-DRG|APR-DRG|UNII|ATC|HL7)")
_CH = r"([0-9A-Za-z.\-]?)"
GUARDS: tuple[tuple[str, str], ...] = (
    (rf"(\b{_CODE_LABEL}\s*(?:#|no\.?|number|code)?\s*:?\s*)([0-9])" + _CH * 7,
     "\\1\\2" + GUARD + "\\3" + GUARD + "\\4" + GUARD + "\\5" + GUARD + "\\6" + GUARD + "\\7" + GUARD + "\\8"
     + GUARD + "\\9"),
)

#: Cheap RE2 prefilters: a detector whose patterns are costly runs only on the rows its prefilter matches (every
#: match of its patterns holds a match of the prefilter).
PREFILTERS: dict[str, str] = {
    "address": r"\b[0-9]{1,6}[A-Za-z]?(?:-[0-9]{1,4})?\s+(?:[^\s]+\s+){1,5}" + _SUFFIX + r"\b|"
               r"(?i:box|route)\s*#?\s*[0-9]|\b[A-Z]{2}\s+[0-9]{5}",
    "geo": r"\b" + _STATE + r"\b|(?i:county|parish|borough|zip|postal)\b|, (?:" + _STATE_NAMES + r")\b",
}

#: Order of application in ``scrub_text`` (``name`` runs on words, after the patterns; see :mod:`.names`).
ORDER: tuple[str, ...] = ("url", "email", "ip", "mrn", "id", "ssn", "phone", "date", "age", "address", "geo",
                          "name")

#: Detector name -> replacement tag.
TAGS: dict[str, str] = {name: f"[{name.upper()}]" for name in ORDER}


def patterns(name: str) -> tuple[str, ...]:
    """The patterns of detector ``name``, in order (``name`` has none: it runs on words)."""
    return DETECTOR_PATTERNS.get(name, ())


#: The ingest PHI scan's phone form: with separators, parentheses or +1 (a column of bare 10-digit numbers is more
#: often an NPI or an account number than phones; free text is scrubbed with the bare form too).
PHONE_SEPARATED = (r"(?:\+1[\s.-]?|\b1[\s.-])?(?:\([2-9][0-9]{2}\)\s?|\b[2-9][0-9]{2}[\s.-])"
                   r"[2-9][0-9]{2}[\s.-][0-9]{4}\b"
                   r"(?:,?\s?(?i:x|ext\.?|extension)\s?[0-9]{1,5}\b)?")


class _Patterns(dict[str, str]):
    """``PATTERNS[name]``: one pattern that matches what any of a detector's patterns matches (the PHI scan and
    the whole-value checks use it; scrubbing applies the patterns one by one); ``phone`` is
    :data:`PHONE_SEPARATED`."""

    def __missing__(self, name: str) -> str:
        if name not in DETECTOR_PATTERNS:
            raise KeyError(name)
        if name == "phone":
            self[name] = PHONE_SEPARATED
            return PHONE_SEPARATED
        pats = patterns(name)
        value = pats[0] if len(pats) == 1 else "(?:" + "|".join(f"(?:{p})" for p in pats) + ")"
        self[name] = value
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(n for n in ORDER if n in DETECTOR_PATTERNS)

    def __len__(self) -> int:
        return len(DETECTOR_PATTERNS)

    def __contains__(self, name: object) -> bool:
        return name in DETECTOR_PATTERNS


#: Detector name -> one combined pattern (for the ingest PHI scan and for tests).
PATTERNS: dict[str, str] = _Patterns()

#: Whole-value forms for scanning columns that are not declared PHI (anchored; a cell that *is* an identifier).
VALUE_PATTERNS: dict[str, str] = {
    "ssn": r"^\s*[0-9]{3}-?[0-9]{2}-?[0-9]{4}\s*$",
    "email": rf"^\s*{DETECTOR_PATTERNS['email'][0]}\s*$",
    "phone": rf"^\s*{PHONE_SEPARATED}\s*$",
}


def replacement(name: str) -> str:
    """The RE2 rewrite for detector ``name``: the kept context around the tag."""
    return rf"\1{TAGS[name]}\2"


@cache
def compiled(name: str) -> tuple[re.Pattern[str], ...]:
    """The Python ``re`` forms of detector ``name`` (for evaluation and for per-value checks in tests)."""
    return tuple(re.compile(p) for p in patterns(name))
