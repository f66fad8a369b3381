"""Word lists and weighted categories for the synthetic hospital (all invented or public reference codes)."""

from __future__ import annotations

FIRST_NAMES = (
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard Susan Joseph "
    "Jessica Thomas Sarah Charles Karen Christopher Lisa Daniel Nancy Matthew Betty Anthony Margaret Mark Sandra "
    "Donald Ashley Steven Kimberly Paul Emily Andrew Donna Joshua Michelle Kenneth Carol Kevin Amanda Brian Dorothy "
    "George Melissa Timothy Deborah Ronald Stephanie Edward Rebecca Jason Sharon Jeffrey Laura Ryan Cynthia Jacob "
    "Kathleen Gary Amy Nicholas Angela Eric Shirley Jonathan Anna Stephen Brenda Larry Pamela Justin Emma Scott "
    "Nicole Brandon Helen Benjamin Samantha Samuel Katherine Gregory Christine Alexander Debra Frank Rachel Raymond "
    "Carolyn Jose Janet Luis Maria Wei Mei Priya Arjun Fatima Omar Aisha Yusuf Chen Olga Ivan Sofia Mateo Camila "
    "Diego Valentina Hiroshi Yuki Kwame Ama Siobhan Declan Ngozi Chidi Leila Reza Zoe Eli Noa Ari Ana Jo"
).split()

LAST_NAMES = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez Wilson "
    "Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis Robinson "
    "Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell "
    "Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales "
    "Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson "
    "Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long "
    "Ross Foster Jimenez Cohen Goldberg Kowalski Novak O'Brien O'Connor McCarthy Okafor Mensah Tanaka Sato Wang Li "
    "Zhang Singh Khan Ali Haddad Rossi Russo Esposito Muller Schmidt Dubois Silva Santos Ivanova Petrov Larsen Ng"
).split()

STREETS = (
    "Main Oak Maple Cedar Pine Elm Washington Lake Hill Park Church Spring Ridge Sunset Highland Broad Market "
    "Willow Chestnut Walnut Franklin Jefferson Lincoln Madison Jackson Adams Grove Meadow River Forest Prospect "
    "Union Liberty Atlantic Pacific Bay Harbor Mill Orchard Valley Summit Fairview Linden Hudson Central"
).split()
STREET_SUFFIXES = ("St", "Ave", "Rd", "Blvd", "Ln", "Dr", "Ct", "Pl", "Way", "Terrace")

EMAIL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "aol.com", "icloud.com", "mail.com",
                 "protonmail.com", "comcast.net", "verizon.net", "optonline.net", "example.org")
WEB_DOMAINS = ("mercy-health.org", "stjohns-hospital.org", "patientportal.example.com", "mychart.example.org",
               "radiology-share.net", "labcorp-results.example.com", "telehealth.example.net")

# (state, weight, ZIP3 prefixes that belong to it). NY and NJ are deliberately heavy.
STATES: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("NY", 30.0, ("100", "101", "104", "107", "112", "113", "114", "117", "120", "125", "130", "142")),
    ("NJ", 20.0, ("070", "071", "073", "076", "077", "080", "085", "088")),
    ("CT", 5.0, ("060", "061", "064", "066", "068")),
    ("PA", 6.0, ("150", "152", "170", "180", "190", "191")),
    ("MA", 4.0, ("010", "014", "018", "021", "024")),
    ("CA", 6.0, ("900", "902", "913", "921", "941", "950")),
    ("TX", 5.0, ("750", "752", "770", "782", "787", "799")),
    ("FL", 5.0, ("320", "327", "331", "334", "336")),
    ("IL", 3.0, ("600", "606", "618")),
    ("OH", 2.0, ("430", "441", "452")),
    ("GA", 2.0, ("300", "303", "310")),
    ("MD", 2.0, ("206", "208", "212")),
    ("VA", 1.5, ("220", "232", "245")),
    ("NC", 1.5, ("270", "275", "282")),
    ("MI", 1.5, ("480", "482", "495")),
    ("WA", 1.0, ("980", "981", "992")),
    ("AZ", 1.0, ("850", "852", "857")),
    ("CO", 1.0, ("800", "802", "809")),
    ("NH", 0.5, ("030", "031", "038")),
    ("MT", 0.3, ("590", "594", "598")),
    ("MN", 0.8, ("550", "553", "559")),
    ("NE", 0.4, ("680", "681", "685")),
    ("WY", 0.2, ("820", "822", "826")),
    ("NM", 0.4, ("870", "871", "875")),
    ("NV", 0.5, ("889", "891", "894")),
    ("DC", 0.4, ("200", "202")),
    ("PR", 0.3, ("006", "007", "009")),
)

#: The 17 ZIP3 prefixes with <= 20,000 people (HIPAA Safe Harbor, 2000 census), and their states.
RESTRICTED_ZIP3: tuple[tuple[str, str], ...] = (
    ("036", "NH"), ("059", "MT"), ("063", "CT"), ("102", "NY"), ("203", "DC"), ("556", "MN"), ("692", "NE"),
    ("790", "TX"), ("821", "WY"), ("823", "WY"), ("830", "WY"), ("831", "WY"), ("878", "NM"), ("879", "NM"),
    ("884", "NM"), ("890", "NV"), ("893", "NV"),
)

SEXES = (("F", 49.0), ("M", 48.0), ("U", 2.0), ("X", 1.0))

# ICD-10-CM codes matching ^[A-Z]\d{2}(\.\d{1,4})?$
ICD10 = ("E11.9", "I10", "J45.909", "N18.3", "F32.9", "M54.5", "K21.9", "J18.9", "I50.9", "Z00.00", "R07.9",
         "E78.5", "O80", "J44.1", "I25.10", "E66.9", "F41.1", "G47.33", "N39.0", "R10.9", "K57.30", "M17.11",
         "C50.911", "Z34.00", "A41.9", "I48.91", "J06.9", "R51.9", "E03.9", "D64.9")

CPT = ("99213", "99214", "99215", "99203", "99204", "99285", "99284", "99223", "99232", "80053", "85025",
       "80061", "83036", "84443", "71046", "93000", "36415", "81001", "74177", "70450", "97110", "90471",
       "90686", "45378", "43239", "29881", "66984", "59400", "11042", "20610")

PAYERS = (("MEDICARE", 30.0), ("MEDICAID", 20.0), ("AETNA", 10.0), ("UNITEDHEALTHCARE", 12.0), ("CIGNA", 7.0),
          ("BCBS", 10.0), ("HUMANA", 5.0), ("KAISER", 3.0), ("SELF-PAY", 3.0))
