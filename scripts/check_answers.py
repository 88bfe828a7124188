#!/usr/bin/env python3
"""Independent structural check of the answers written by `iisbulk hl7 check --out DIR`.

For every DIR/*.answer.hl7 (an ACK^V04 / Z23 or an RSP^K11 / Z31, Z32, Z33 or
Z42 in ER7):

* hl7apy (HL7 2.5.1 model, STRICT validation, find_groups) must parse and
  validate it. hl7apy's 2.5.1 model only knows MSH-1..21 and QPD-1..3, so it
  is given a copy in which MSH is cut after MSH-21 and QPD after QPD-3; nothing
  else is changed.
  hl7apy's RSP_K11 model stops after QPD, so every segment after it (PID,
  PD1, NK1, ORC, RXA, RXR, OBX) is also parsed and validated on its own,
  strictly, with hl7apy's segment model.
* plain-Python checks of the CDC IG rules the answers must follow (see
  `check_message`) run on the full, uncut text: segment order per profile,
  Z31 PID-1 numbering, Z32/Z42 RXA-4 = RXA-3, QAK-2 consistent with the
  profile, and for Z42 (evaluated history and forecast, see `check_z42`)
  the ORDER groups (ORC RXA [RXR] OBX+), the evaluation and forecast OBX
  (LOINC codes, value types, values, sub-ID groups, OBX-1 numbering) and the
  closing forecast group (ORC-3 9999, RXA-5 998, RXA-20 NA).

Prints `ok <file>` or `FAIL <file>: reason` per file and exits 1 if any file
failed (or no file was found), 0 otherwise.
"""

import re
import sys
from pathlib import Path

try:
    from hl7apy.consts import VALIDATION_LEVEL
    from hl7apy.parser import parse_message, parse_segment
except ImportError as e:  # pragma: no cover - environment problem
    print(f"check_answers.py: hl7apy is not installed ({e}); run scripts/test", file=sys.stderr)
    sys.exit(2)

MSH_7_RE = re.compile(r"^\d{14}[+-]\d{4}$")
ERL_RE = re.compile(r"^[A-Z0-9]{3}\^\d+(\^\d+){0,4}$")
HL7_ERROR_CODES = {"0", "100", "101", "102", "103", "200", "201", "202", "203",
                   "204", "205", "206", "207", "999"}
SEVERITIES = {"I", "W", "E"}
ACK_CODES = {"AA", "AE", "AR"}
QUERY_STATUS = {"OK", "NF", "TM", "AE", "AR"}
TYPES = {"ACK^V04^ACK": {"Z23"}, "RSP^K11^RSP_K11": {"Z31", "Z32", "Z33", "Z42"}}
ORDER_SEGMENTS = {"ORC", "RXA", "RXR", "OBX"}
ERR_8_MAX = 250


class Fail(Exception):
    pass


class Seg:
    """One segment split with the message's delimiters; `f(n)` is field n (1-based, HL7 numbering)."""

    def __init__(self, text, fs, cs, rep):
        self.text = text
        self.fs = fs
        self.cs = cs
        self.rep = rep
        self.parts = text.split(fs)
        self.id = self.parts[0]

    def f(self, n):
        if self.id == "MSH":
            if n == 1:
                return self.fs
            i = n - 1
        else:
            i = n
        return self.parts[i] if i < len(self.parts) else ""

    def c(self, n, k):
        """Component k (1-based) of the first repetition of field n."""
        comps = self.f(n).split(self.rep)[0].split(self.cs)
        return comps[k - 1] if k - 1 < len(comps) else ""


def unescaped_len(value, esc):
    """Length of an ST/TX value once the HL7 escape sequences are resolved.

    \\F\\ \\S\\ \\T\\ \\R\\ \\E\\ count as one character, \\Xhh..\\ as its bytes,
    any other sequence (formatting such as \\.br\\) as one character.
    """
    if not esc:
        return len(value)
    n, i = 0, 0
    while i < len(value):
        if value[i] == esc:
            j = value.find(esc, i + 1)
            if j < 0:
                n += len(value) - i
                break
            body = value[i + 1:j]
            n += max(1, len(body[1:]) // 2) if body[:1] == "X" else 1
            i = j + 1
        else:
            n += 1
            i += 1
    return n


def normalise(text):
    return text.replace("\r\n", "\r").replace("\n", "\r")


def split_messages(text):
    """Segments (without empties), grouped into messages starting at each MSH."""
    segs = [s for s in text.split("\r") if s.strip()]
    if not segs:
        raise Fail("file is empty")
    if not segs[0].startswith("MSH"):
        raise Fail(f"first segment is {segs[0][:3]!r}, not MSH")
    msgs = []
    for s in segs:
        if s.startswith("MSH"):
            msgs.append([])
        msgs[-1].append(s)
    return msgs


def cut_for_hl7apy(segs, fs):
    """Copy of the message with MSH cut after MSH-21 and QPD after QPD-3; nothing else changes."""
    out = []
    for s in segs:
        parts = s.split(fs)
        if parts[0] == "MSH":
            parts = parts[:21]  # parts[0]='MSH', parts[1]=MSH-2, ..., parts[20]=MSH-21
        elif parts[0] == "QPD":
            parts = parts[:4]  # parts[0]='QPD', parts[1..3]=QPD-1..3
        out.append(fs.join(parts))
    return "\r".join(out) + "\r"


def check_hl7apy(segs, fs):
    text = cut_for_hl7apy(segs, fs)
    try:
        msg = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
        msg.validate()
    except Exception as e:  # hl7apy raises many exception types; all are a failure of this file
        raise Fail(f"hl7apy (strict 2.5.1): {type(e).__name__}: {e}") from None
    after_qpd = False
    for seg in segs:
        if after_qpd:
            try:
                parsed = parse_segment(seg, version="2.5.1", validation_level=VALIDATION_LEVEL.STRICT)
                parsed.validate()
            except Exception as e:
                raise Fail(f"hl7apy (strict 2.5.1) {seg[:3]}: {type(e).__name__}: {e}") from None
        after_qpd = after_qpd or seg.startswith("QPD")


def check_message(segs, seen_ids, file_name):
    msh_text = segs[0]
    if len(msh_text) < 8:
        raise Fail("MSH too short")
    fs = msh_text[3]
    enc = msh_text[4:msh_text.index(fs, 4)] if fs in msh_text[4:] else msh_text[4:]
    if fs != "|" or enc != "^~\\&":
        raise Fail(f"delimiters are {fs!r} and {enc!r}, expected '|' and '^~\\&'")
    cs, rep, esc = enc[0], enc[1], enc[2]

    segments = [Seg(t, fs, cs, rep) for t in segs]
    ids = [s.id for s in segments]
    msh = segments[0]

    # MSH-10 is registered before anything can fail, so duplicates are always seen.
    control_id = msh.f(10)
    if not control_id:
        raise Fail("MSH-10 is empty")
    if control_id in seen_ids:
        raise Fail(f"MSH-10 {control_id!r} is also used by {seen_ids[control_id]}")
    seen_ids[control_id] = file_name

    # hl7apy next: it is the independent parser.
    check_hl7apy(segs, fs)

    msg_type = msh.f(9)
    if msg_type not in TYPES:
        raise Fail(f"MSH-9 is {msg_type!r}, expected ACK^V04^ACK or RSP^K11^RSP_K11")
    profile = msh.c(21, 1)
    if profile not in TYPES[msg_type]:
        raise Fail(f"MSH-21.1 is {profile!r}, expected one of {sorted(TYPES[msg_type])} for {msg_type}")
    if msh.c(21, 2) != "CDCPHINVS":
        raise Fail(f"MSH-21.2 is {msh.c(21, 2)!r}, expected CDCPHINVS")
    for n in (15, 16):
        if msh.f(n) != "NE":
            raise Fail(f"MSH-{n} is {msh.f(n)!r}, expected NE")
    if not MSH_7_RE.match(msh.f(7)):
        raise Fail(f"MSH-7 is {msh.f(7)!r}, expected YYYYMMDDHHMMSS+/-ZZZZ")

    # segment order
    if msg_type == "ACK^V04^ACK":
        if ids[:2] != ["MSH", "MSA"] or any(i != "ERR" for i in ids[2:]):
            raise Fail(f"segments are {' '.join(ids)}, expected MSH MSA ERR*")
    else:
        n_err = ids.count("ERR")
        head = ["MSH", "MSA"] + ["ERR"] * n_err + ["QAK", "QPD"]
        if n_err > 1 or ids[: len(head)] != head:
            raise Fail(f"segments are {' '.join(ids)}, expected MSH MSA [ERR] QAK QPD ...")
        check_rsp_body(profile, segments[len(head):])

    msa = segments[1]
    if msa.f(1) not in ACK_CODES:
        raise Fail(f"MSA-1 is {msa.f(1)!r}, expected AA, AE or AR")
    if not msa.f(2):
        raise Fail("MSA-2 is empty")

    for k, err in enumerate((s for s in segments if s.id == "ERR"), 1):
        where = f"ERR #{k}"
        erl = err.f(2)
        if not erl:
            raise Fail(f"{where}: ERR-2 is empty")
        for r in erl.split(rep):
            if not ERL_RE.match(r):
                raise Fail(f"{where}: ERR-2 {r!r} is not SEG^seq^field[^rep^comp^sub]")
        if err.c(3, 1) not in HL7_ERROR_CODES:
            raise Fail(f"{where}: ERR-3.1 {err.c(3, 1)!r} is not an HL7 0357 code")
        if err.c(3, 3) != "HL70357":
            raise Fail(f"{where}: ERR-3.3 is {err.c(3, 3)!r}, expected HL70357")
        sev = err.f(4)
        if sev not in SEVERITIES:
            raise Fail(f"{where}: ERR-4 is {sev!r}, expected I, W or E")
        if msa.f(1) == "AA" and sev in ("W", "E"):
            raise Fail(f"{where}: severity {sev} with MSA-1 AA")
        if err.f(5) and err.c(5, 3) != "HL70533":
            raise Fail(f"{where}: ERR-5.3 is {err.c(5, 3)!r}, expected HL70533")
        n8 = unescaped_len(err.f(8), esc)
        if n8 > ERR_8_MAX:
            raise Fail(f"{where}: ERR-8 is {n8} characters, at most {ERR_8_MAX} allowed")
        if err.f(9):
            raise Fail(f"{where}: ERR-9 must be empty, is {err.f(9)!r}")

    if msg_type == "RSP^K11^RSP_K11":
        qak = segments[ids.index("QAK")]
        if qak.f(2) not in QUERY_STATUS:
            raise Fail(f"QAK-2 is {qak.f(2)!r}, expected one of {'/'.join(sorted(QUERY_STATUS))}")
        if profile in ("Z31", "Z32", "Z42") and (qak.f(2) != "OK" or msa.f(1) != "AA"):
            raise Fail(f"{profile} with MSA-1 {msa.f(1)!r} and QAK-2 {qak.f(2)!r}, expected AA and OK")


def check_rsp_body(profile, body):
    """Z33: nothing after QPD. Z31: (PID [PD1] NK1*)+ numbered 1..n, no
    immunizations. Z32: PID [PD1] NK1* then (ORC RXA [RXR] OBX*)*. Z42: PID
    then (ORC RXA [RXR] OBX+)+, the last group the forecast."""
    ids = [s.id for s in body]
    if profile == "Z33":
        if ids:
            raise Fail(f"Z33 carries {' '.join(ids)} after QPD, expected nothing")
        return
    if profile == "Z42":
        check_z42(body)
        return
    patients = [s for s in body if s.id == "PID"]
    if not patients:
        raise Fail(f"{profile} without a PID")
    if profile == "Z31":
        if any(i in ORDER_SEGMENTS for i in ids):
            raise Fail("Z31 lists immunizations; a candidate list must not")
        for n, pid in enumerate(patients, 1):
            if pid.f(1) != str(n):
                raise Fail(f"Z31 PID #{n} has PID-1 {pid.f(1)!r}, expected {n}")
        allowed_after = {"PID": {"PD1", "NK1", "PID"}, "PD1": {"NK1", "PID"}, "NK1": {"NK1", "PID"}}
    else:
        if len(patients) != 1 or ids[0] != "PID":
            raise Fail(f"Z32 body is {' '.join(ids)}, expected exactly one PID first")
        for rxa in (s for s in body if s.id == "RXA"):
            if rxa.f(4) != rxa.f(3):
                raise Fail(f"Z32 RXA-4 {rxa.f(4)!r} differs from RXA-3 {rxa.f(3)!r}")
        allowed_after = {
            "PID": {"PD1", "NK1", "ORC"},
            "PD1": {"NK1", "ORC"},
            "NK1": {"NK1", "ORC"},
            "ORC": {"RXA"},
            "RXA": {"RXR", "OBX", "ORC"},
            "RXR": {"OBX", "ORC"},
            "OBX": {"OBX", "ORC"},
        }
    if ids[0] != "PID":
        raise Fail(f"{profile} body starts with {ids[0]}, expected PID")
    for a, b in zip(ids, ids[1:]):
        if b not in allowed_after.get(a, set()):
            raise Fail(f"{profile}: {b} may not follow {a}")
    if ids[-1] == "ORC":
        raise Fail(f"{profile}: ORC without its RXA")


# Z42 observations (CDC IG R1.5, NIST RSP-Z42): LOINC code -> OBX-2.
Z42_EVALUATION = {
    "30956-7": "CE",  # vaccine type
    "59779-9": "CE",  # immunization schedule used
    "30973-2": "NM",  # dose number in series
    "59781-5": "ID",  # dose validity
    "30982-3": "ST",  # reason (not valid)
}
Z42_FORECAST = {
    "48767-8": "ST",  # annotation (the supporting data used)
    "30956-7": "CE",
    "59779-9": "CE",
    "59783-1": "CE",  # status in immunization series
    "30973-2": "NM",  # next dose number
    "30981-5": "DT",  # earliest date to give
    "30980-7": "DT",  # date vaccine due
    "59778-1": "DT",  # date dose is overdue
    "59777-3": "DT",  # latest date
    "30982-3": "ST",  # reason (no dose due)
}
DT_RE = re.compile(r"^\d{8}$")


def z42_groups(body):
    """The ORDER groups of a Z42 body after its PID: [(ORC, RXA, RXR or None, [OBX])]."""
    ids = [s.id for s in body]
    if ids.count("PID") != 1 or ids[0] != "PID":
        raise Fail(f"Z42 body is {' '.join(ids)}, expected exactly one PID first")
    groups = []
    i = 1
    while i < len(body):
        if body[i].id != "ORC":
            raise Fail(f"Z42: {body[i].id} where an ORDER group (ORC) must start; "
                       "PD1 and NK1 are not part of Z42")
        orc = body[i]
        i += 1
        if i >= len(body) or body[i].id != "RXA":
            raise Fail("Z42: ORC without its RXA")
        rxa = body[i]
        i += 1
        rxr = None
        if i < len(body) and body[i].id == "RXR":
            rxr = body[i]
            i += 1
        obx = []
        while i < len(body) and body[i].id == "OBX":
            obx.append(body[i])
            i += 1
        if not obx:
            raise Fail(f"Z42: ORDER group of RXA {rxa.f(5)!r} without an OBX (the profile requires one)")
        groups.append((orc, rxa, rxr, obx))
    if not groups:
        raise Fail("Z42 without an ORDER group (the forecast at least)")
    return groups


def check_z42_obx(rows, allowed, where):
    """OBX-1 numbered 1..n, known codes with their value types and values,
    OBX-4 set, OBX-11 F, OBX-14 a date; returns {OBX-4: [codes]}."""
    by_sub = {}
    for n, o in enumerate(rows, 1):
        code = o.c(3, 1)
        at = f"{where} OBX #{n} ({code})"
        if o.f(1) != str(n):
            raise Fail(f"{at}: OBX-1 is {o.f(1)!r}, expected {n}")
        if o.c(3, 3) != "LN":
            raise Fail(f"{at}: OBX-3.3 is {o.c(3, 3)!r}, expected LN")
        if code not in allowed:
            raise Fail(f"{at}: OBX-3 {code!r} does not belong here (expected one of {sorted(allowed)})")
        if o.f(2) != allowed[code]:
            raise Fail(f"{at}: OBX-2 is {o.f(2)!r}, expected {allowed[code]}")
        value = o.f(5)
        if not value:
            raise Fail(f"{at}: OBX-5 is empty")
        if o.f(2) == "DT" and not DT_RE.match(value):
            raise Fail(f"{at}: OBX-5 {value!r} is not YYYYMMDD")
        if o.f(2) == "NM" and (not value.isdigit() or not o.f(6)):
            raise Fail(f"{at}: a dose number needs digits in OBX-5 and units in OBX-6")
        if code == "59781-5" and value not in ("Y", "N"):
            raise Fail(f"{at}: dose validity {value!r}, expected Y or N")
        if code in ("30956-7", "59779-9", "59783-1") and not o.c(5, 1):
            raise Fail(f"{at}: OBX-5.1 (the code) is empty")
        if code == "30956-7" and o.c(5, 3) != "CVX":
            raise Fail(f"{at}: vaccine type OBX-5.3 is {o.c(5, 3)!r}, expected CVX")
        if not o.f(4):
            raise Fail(f"{at}: OBX-4 (sub-ID) is empty")
        if o.f(11) != "F":
            raise Fail(f"{at}: OBX-11 is {o.f(11)!r}, expected F")
        if not DT_RE.match(o.f(14)[:8]):
            raise Fail(f"{at}: OBX-14 {o.f(14)!r} is not a date")
        by_sub.setdefault(o.f(4), []).append(code)
    return by_sub


def check_z42(body):
    """Z42: per administered dose its ORC/RXA/[RXR] and one OBX group per
    vaccine group (vaccine type, schedule, dose validity, a reason when not
    valid); last, the forecast: ORC-3 9999, RXA-5 998 with RXA-20 NA, and
    per vaccine group its vaccine type, schedule and series status."""
    groups = z42_groups(body)
    for orc, rxa, _, obx in groups:
        if rxa.f(4) != rxa.f(3):
            raise Fail(f"Z42 RXA-4 {rxa.f(4)!r} differs from RXA-3 {rxa.f(3)!r}")
        if not orc.c(3, 1):
            raise Fail("Z42 ORC-3 (filler order number) is empty")
    *doses, forecast = groups
    orc, rxa, rxr, obx = forecast
    if rxa.c(5, 1) != "998" or rxa.c(5, 3) != "CVX":
        raise Fail(f"Z42: the last ORDER group is RXA-5 {rxa.f(5)!r}, expected the forecast (998^...^CVX)")
    if rxa.f(20) != "NA":
        raise Fail(f"Z42 forecast RXA-20 is {rxa.f(20)!r}, expected NA")
    if rxa.f(6) != "999":
        raise Fail(f"Z42 forecast RXA-6 is {rxa.f(6)!r}, expected 999 (IZ-49)")
    if orc.c(3, 1) != "9999":
        raise Fail(f"Z42 forecast ORC-3.1 is {orc.c(3, 1)!r}, expected 9999 (IZ-45: RXA-20 NA)")
    if rxa.f(9):
        raise Fail(f"Z42 forecast RXA-9 is {rxa.f(9)!r}, expected empty (IZ-47: RXA-20 NA)")
    for n, (_, dose_rxa, _, dose_obx) in enumerate(doses, 1):
        where = f"Z42 dose #{n} (RXA-5 {dose_rxa.c(5, 1)})"
        if dose_rxa.c(5, 1) == "998":
            raise Fail(f"{where}: a 998 forecast group before the last group")
        if dose_rxa.f(20) not in ("CP", "PA"):
            raise Fail(f"{where}: RXA-20 {dose_rxa.f(20)!r}; only doses given are evaluated")
        for sub, codes in check_z42_obx(dose_obx, Z42_EVALUATION, where).items():
            for need in ("30956-7", "59779-9", "59781-5"):
                if codes.count(need) != 1:
                    raise Fail(f"{where}: OBX-4 {sub} has {codes.count(need)} {need}, expected 1")
        for o in dose_obx:
            if o.c(3, 1) == "59781-5" and o.f(5) == "N":
                if "30982-3" not in [x.c(3, 1) for x in dose_obx if x.f(4) == o.f(4)]:
                    raise Fail(f"{where}: dose not valid (OBX-4 {o.f(4)}) without its reason (30982-3)")
    by_sub = check_z42_obx(obx, Z42_FORECAST, "Z42 forecast")
    groups_seen = 0
    for sub, codes in by_sub.items():
        if codes == ["48767-8"]:
            continue
        groups_seen += 1
        for need in ("30956-7", "59779-9", "59783-1"):
            if codes.count(need) != 1:
                raise Fail(f"Z42 forecast OBX-4 {sub} has {codes.count(need)} {need}, expected 1")
    if groups_seen == 0:
        raise Fail("Z42 forecast without any vaccine group")


def check_file(path, seen_ids):
    try:
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise Fail(f"not UTF-8: {e}") from None
        if "\n" in text:
            # The IIS writes CR terminators; LF means something else produced the file.
            raise Fail("segment terminator is not CR (found LF)")
        msgs = split_messages(normalise(text))
        if len(msgs) != 1:
            raise Fail(f"{len(msgs)} messages in one answer file, expected 1")
        for segs in msgs:
            check_message(segs, seen_ids, path.name)
    except Fail as e:
        return str(e)
    except Exception as e:  # a bug or an unexpected input must not stop the other files
        return f"checker error: {type(e).__name__}: {e}"
    return None


def main(argv):
    if len(argv) != 2:
        print("usage: check_answers.py DIR", file=sys.stderr)
        return 2
    folder = Path(argv[1])
    if not folder.is_dir():
        print(f"check_answers.py: {folder} is not a directory", file=sys.stderr)
        return 2
    files = sorted(folder.glob("*.answer.hl7"))
    if not files:
        print(f"check_answers.py: no *.answer.hl7 in {folder}", file=sys.stderr)
        return 1
    seen_ids = {}
    failed = 0
    for p in files:
        reason = check_file(p, seen_ids)
        if reason is None:
            print(f"ok {p.name}")
        else:
            failed += 1
            print(f"FAIL {p.name}: {reason}")
    print(f"check_answers.py: {len(files) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
