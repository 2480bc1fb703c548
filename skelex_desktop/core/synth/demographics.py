"""Synthetic but realistic-looking patients and studies, all drawn from a seed."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from pydicom.uid import generate_uid

_SURNAMES = (
    "Novak",
    "Svoboda",
    "Dvorak",
    "Cerny",
    "Prochazka",
    "Kucera",
    "Vesely",
    "Horak",
    "Nemec",
    "Marek",
    "Pospisil",
    "Hajek",
    "Kral",
    "Jelinek",
    "Ruzicka",
    "Benes",
    "Fiala",
    "Sedlacek",
    "Muller",
    "Schmidt",
    "Weber",
    "Wagner",
    "Becker",
    "Hoffmann",
    "Kowalski",
    "Nowak",
    "Wisniewski",
    "Rossi",
    "Bianchi",
    "Ferrari",
    "Garcia",
    "Martinez",
    "Lopez",
    "Smith",
    "Johnson",
    "Brown",
    "Taylor",
    "Wilson",
    "Dubois",
    "Laurent",
    "Jansen",
    "De Vries",
    "Nielsen",
    "Larsen",
    "Horvath",
    "Nagy",
    "Popescu",
    "Ionescu",
    "Petrov",
    "Ivanova",
)
_CZECH = 18  # the first surnames take the feminine -ova form
_GIVEN = {
    "F": (
        "Eva",
        "Jana",
        "Anna",
        "Petra",
        "Lucie",
        "Marie",
        "Katerina",
        "Tereza",
        "Sofia",
        "Laura",
        "Emma",
        "Julia",
        "Clara",
        "Hana",
        "Ingrid",
        "Elena",
        "Maria",
        "Sarah",
        "Olivia",
        "Zuzana",
    ),
    "M": (
        "Jan",
        "Petr",
        "Tomas",
        "Martin",
        "Jakub",
        "Lukas",
        "David",
        "Pavel",
        "Karel",
        "Michal",
        "Thomas",
        "Lars",
        "Marco",
        "Luca",
        "Pierre",
        "Jonas",
        "Daniel",
        "Andrei",
        "Ivan",
        "Josef",
    ),
}
INSTITUTIONS = (
    "St. Anne Regional Hospital",
    "City Orthopaedic Clinic",
    "University Hospital North",
    "Riverside Trauma Centre",
    "Lakeside Medical Centre",
)
PHYSICIANS = (
    "Kral^Martin^^Dr.",
    "Weber^Anna^^Dr.",
    "Rossi^Marco^^Dr.",
    "Nielsen^Ida^^Dr.",
    "Horak^Petr^^MUDr.",
    "Smith^Helen^^Dr.",
)
MANUFACTURERS = {
    "CR": (("Agfa", "CR 85-X"), ("Fujifilm", "FCR PRIMA T2"), ("Carestream", "Vita Flex")),
    "DX": (
        ("Siemens", "Ysio Max"),
        ("Philips", "DigitalDiagnost C90"),
        ("Canon", "CXDI-710C"),
        ("GE Healthcare", "Definium 656"),
    ),
}


@dataclass(frozen=True)
class Patient:
    patient_id: str
    name: str
    sex: str
    birth_date: str  # YYYYMMDD


@dataclass(frozen=True)
class Study:
    study_uid: str
    study_id: str
    accession: str
    date: str  # YYYYMMDD
    time: str  # HHMMSS
    institution: str
    referring: str
    station: int  # index into the manufacturer list


def make_patient(seed: int, k: int) -> Patient:
    """Patient number k of the data set drawn from `seed`."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(k), 101]))
    sex = "F" if rng.random() < 0.5 else "M"
    k_name = int(rng.integers(len(_SURNAMES)))
    family = _SURNAMES[k_name]
    if sex == "F" and k_name < _CZECH and family.endswith(("k", "r", "l", "s")):
        family = family + "ova"  # Czech feminine form: Novak -> Novakova
    given = _GIVEN[sex][int(rng.integers(len(_GIVEN[sex])))]
    middle = chr(ord("A") + int(rng.integers(26)))
    birth = dt.date(1938, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 * 70)))
    pid = f"SKX{int(rng.integers(10**6, 10**7)):07d}{k % 100:02d}"
    return Patient(pid, f"{family}^{given}^{middle}", sex, birth.strftime("%Y%m%d"))


def make_study(seed: int, patient_k: int, study_k: int, first_day: int) -> Study:
    """Study number study_k of patient patient_k; studies of a patient are later in time."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(patient_k), study_k, 202]))
    day = dt.date(2019, 1, 1) + dt.timedelta(days=first_day + study_k * int(rng.integers(20, 300)))
    secs = int(rng.integers(7 * 3600, 19 * 3600))
    uid = generate_uid(
        entropy_srcs=["skelex-synth", "study", str(seed), str(patient_k), str(study_k)]
    )
    return Study(
        study_uid=str(uid),
        study_id=f"{int(rng.integers(1, 99999)):05d}",
        accession=f"A{day.strftime('%y%m')}{int(rng.integers(0, 10**6)):06d}",
        date=day.strftime("%Y%m%d"),
        time=f"{secs // 3600:02d}{secs // 60 % 60:02d}{secs % 60:02d}",
        institution=INSTITUTIONS[int(rng.integers(len(INSTITUTIONS)))],
        referring=PHYSICIANS[int(rng.integers(len(PHYSICIANS)))],
        station=int(rng.integers(0, 12)),
    )
