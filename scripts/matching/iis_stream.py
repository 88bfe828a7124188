#!/usr/bin/env python3
"""An IIS-like stream of patient records with its ground truth, for judging
`iisbulk matching link` on data the matcher was never tuned on.

The people are pseudopeople's simulated population (its sample data, shipped
in the PyPI package: a town of about 20,000 people over 2020-2041), reported
the way an IIS hears about them, each source noised by pseudopeople with its
default noise (typos, OCR and phonetic errors, nicknames, fake and blank
names, wrong digits, swapped day and month, a household member's birth date,
moves, name changes) under the seed given:

  * vital records / SSA: every SSN issued at birth in the period (full middle
    name and SSN; the birth report an IIS receives from vital records);
  * WIC: every yearly WIC enrolment file (children under five and mothers);
  * census-style demographics: the 2020, 2030 and 2040 decennial census rows
    of people under 19 in that year (an IIS is mostly children), and a share
    of the adults (`--adults`), as a clinic that registers whole families.

A report without a birth date that is a real date, a given name or a family
name is left out (`--keep-rejected` keeps it, with the birth date as written):
the CDC guide requires PID-7 (a valid date) and both name components of
PID-5, so an IIS rejects such a VXU and matching never sees it. Placeholder
names the noise writes instead (GIRL, SON, MOM) are kept, as an IIS accepts
them with a warning; so are real dates the noise made wrong (a wrong digit,
day and month swapped, a household member's date).

Records arrive in time order (the event date; a census row on April 1, a WIC
row on a day of its year drawn from the seed). `--clinics N` also gives each
report the medical record number of one of N clinics, as a VXU's PID-3 does:
a family keeps its clinic, a clinic keeps the child's number (a re-registered
child gets a second one, `--rechart`), and some numbers are mistyped.

The truth comes from pseudopeople's own simulant ids: `entity` is the
simulant, and `twin_group` names children of one multiple birth, found in the
noiseless data (same household and same birth date, more than one child).

Writes DIR/records.jsonl (the `matching link` record format) and
DIR/truth.json (the format of link_metrics.py), and prints a summary.

    python scripts/matching/iis_stream.py --seed 1 --out /tmp/stream-1
    iisbulk matching link --records /tmp/stream-1/records.jsonl > /tmp/out.jsonl
    python scripts/matching/link_metrics.py /tmp/stream-1/truth.json /tmp/out.jsonl

Needs `pip install -r scripts/matching/requirements.txt` (pseudopeople).
"""
import argparse
import collections
import datetime as dt
import json
import os
import random
import sys
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("TQDM_DISABLE", "1")

import pandas as pd  # noqa: E402
import pseudopeople as psp  # noqa: E402

CENSUS_YEARS = (2020, 2030, 2040)
WIC_YEARS = range(2019, 2042)


def text(value):
    """A cell as text, or None when blank."""
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    s = str(value).strip()
    return s or None


def iso_date(raw, order):
    """pseudopeople writes dates as MM/DD/YYYY (census), MMDDYYYY (WIC) or
    YYYYMMDD (SSA); noise can make them impossible. A real date becomes
    YYYY-MM-DD; anything else is passed on as written, as a sender would."""
    raw = text(raw)
    if raw is None:
        return None
    digits = "".join(c for c in raw if c.isdigit())
    if len(digits) == 8:
        if order == "mdy":
            m, d, y = digits[0:2], digits[2:4], digits[4:8]
        else:
            y, m, d = digits[0:4], digits[4:6], digits[6:8]
        try:
            return dt.date(int(y), int(m), int(d)).isoformat()
        except ValueError:
            pass
    return raw


def sex_code(raw):
    raw = text(raw)
    return {"Female": "F", "Male": "M"}.get(raw, None) if raw else None


def street(row, prefix=""):
    parts = [text(row.get(prefix + "street_number")), text(row.get(prefix + "street_name"))]
    unit = text(row.get(prefix + "unit_number"))
    if unit:
        parts.append("Apt " + unit)
    joined = " ".join(p for p in parts if p)
    return joined or None


def record(rid, row, dob_order, middle_col):
    r = {
        "id": rid,
        "given": text(row.get("first_name")),
        "middle": text(row.get(middle_col)),
        "family": text(row.get("last_name")),
        "birth_date": iso_date(row.get("date_of_birth"), dob_order),
        "sex": sex_code(row.get("sex")),
        "street": street(row),
        "city": text(row.get("city")),
        "state": text(row.get("state")),
        "zip": text(row.get("zipcode")),
        "ssn": text(row.get("ssn")),
    }
    return {k: v for k, v in r.items() if v is not None}


def twin_groups(frames):
    """Children of one multiple birth: noiselessly, more than one simulant
    in one household with one birth date."""
    groups = {}
    for df in frames:
        keyed = df.dropna(subset=["household_id", "date_of_birth"])
        for (_, _), sims in keyed.groupby(["household_id", "date_of_birth"]).simulant_id:
            ids = sorted(set(sims))
            if len(ids) > 1:
                name = "twins:" + "+".join(ids)
                for s in ids:
                    groups.setdefault(s, name)
    return groups


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1, help="pseudopeople noise seed and the stream's own draws")
    ap.add_argument("--out", required=True, help="folder for records.jsonl and truth.json")
    ap.add_argument("--adults", type=float, default=0.25, help="share of adult census rows kept (default 0.25)")
    ap.add_argument("--clinics", type=int, default=0, help="give every report a clinic MRN from one of N clinics (default: no MRNs)")
    ap.add_argument("--rechart", type=float, default=0.02, help="with --clinics: chance a report opens a second chart at its clinic")
    ap.add_argument("--mrn-typo", type=float, default=0.01, help="with --clinics: chance an MRN is mistyped")
    ap.add_argument("--keep-rejected", action="store_true", help="keep reports without a birth date, given or family name (an IIS rejects them)")
    ap.add_argument("--noise", type=float, default=1.0, help="multiply pseudopeople's default cell noise (default 1.0)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    os.makedirs(args.out, exist_ok=True)

    config = None
    if args.noise != 1.0:
        config = psp.get_config()
        for dataset in config.values():
            for column in dataset.get("column_noise", {}).values():
                for noise in column.values():
                    if "cell_probability" in noise:
                        noise["cell_probability"] = min(0.9, noise["cell_probability"] * args.noise)

    def gen(fn, **kw):
        return fn(seed=args.seed, config=config, **kw)

    def clean(fn, **kw):
        return fn(seed=args.seed, config=psp.NO_NOISE, **kw)

    events = []  # (date, source, row, dob order, middle column)
    noiseless = []
    for year in CENSUS_YEARS:
        df = gen(psp.generate_decennial_census, year=year)
        nn = clean(psp.generate_decennial_census, year=year)
        noiseless.append(nn)
        true_age = dict(zip(nn.simulant_id, pd.to_numeric(nn.age, errors="coerce")))
        for row in df.to_dict("records"):
            age = true_age.get(row["simulant_id"])
            if age is not None and age >= 19 and rng.random() >= args.adults:
                continue
            events.append((dt.date(year, 4, 1), "census", row, "mdy", "middle_initial"))
    for year in WIC_YEARS:
        df = gen(psp.generate_women_infants_and_children, year=year)
        noiseless.append(clean(psp.generate_women_infants_and_children, year=year))
        for row in df.to_dict("records"):
            day = dt.date(year, 1, 1) + dt.timedelta(days=rng.randrange(365))
            events.append((day, "wic", row, "mdy", "middle_initial"))
    ssa = gen(psp.generate_social_security, year=2041)
    for row in ssa.to_dict("records"):
        if text(row.get("event_type")) != "creation":
            continue
        when = iso_date(row.get("event_date"), "ymd")
        try:
            day = dt.date.fromisoformat(when)
        except (TypeError, ValueError):
            continue
        if day.year < 2019:
            continue
        events.append((day, "ssa", row, "ymd", "middle_name"))

    twins = twin_groups(noiseless)
    # Arrival order: by date, ties broken by the seed (not by source).
    order = list(range(len(events)))
    rng.shuffle(order)
    order.sort(key=lambda i: events[i][0])

    # Clinic charts: a household keeps its clinic; a clinic keeps a child's number.
    clinic_of_household = {}
    charts = {}
    next_mrn = collections.Counter()
    records, truth = [], {}
    by_source = collections.Counter()
    rejected = 0
    for n, i in enumerate(order):
        day, source, row, dob_order, middle_col = events[i]
        rid = f"{source}-{n:06d}"
        rec = record(rid, row, dob_order, middle_col)
        real_date = False
        try:
            dt.date.fromisoformat(rec.get("birth_date", ""))
            real_date = True
        except ValueError:
            pass
        if not args.keep_rejected and not (real_date and "given" in rec and "family" in rec):
            rejected += 1
            continue
        sim = row["simulant_id"]
        if args.clinics:
            house = text(row.get("household_id")) or sim
            clinic = clinic_of_household.setdefault(house, rng.randrange(args.clinics))
            key = (clinic, sim)
            if key not in charts or rng.random() < args.rechart:
                next_mrn[clinic] += 1
                charts[key] = f"{100000 + next_mrn[clinic] * 7}"
            mrn = charts[key]
            if rng.random() < args.mrn_typo:
                pos = rng.randrange(len(mrn))
                mrn = mrn[:pos] + str((int(mrn[pos]) + 1 + rng.randrange(8)) % 10) + mrn[pos + 1:]
            rec["identifiers"] = [{"system": f"CLINIC{clinic:02d}", "type": "MR", "value": mrn}]
        records.append(rec)
        truth[rid] = {"entity": sim, "twin_group": twins.get(sim)}
        by_source[source] += 1

    with open(os.path.join(args.out, "records.jsonl"), "w") as f:
        for rec in records:
            f.write(json.dumps(rec, sort_keys=True) + "\n")
    with open(os.path.join(args.out, "truth.json"), "w") as f:
        json.dump(truth, f)
    people = len({t["entity"] for t in truth.values()})
    in_twins = sum(1 for t in truth.values() if t["twin_group"])
    print(json.dumps({"records": len(records), "people": people, "records_in_twin_groups": in_twins,
                      "twin_groups": len({t["twin_group"] for t in truth.values() if t["twin_group"]}),
                      "by_source": dict(by_source), "left_out_rejected": rejected, "seed": args.seed, "clinics": args.clinics,
                      "noise": args.noise}))


if __name__ == "__main__":
    sys.exit(main())
