#!/usr/bin/env python3
"""Validates FHIR resources the tests kept (one JSON file each) with an
independent implementation: the `fhir.resources` models (pydantic), using
its R4B package, FHIR R4's compatible successor for the resources we emit
(Patient, Immunization, Group, Organization, OperationOutcome, Bundle,
CapabilityStatement, the console's AuditEvent export, and the $immds-forecast answer: Parameters holding
ImmunizationEvaluation and ImmunizationRecommendation resources).

Each file must parse as its resourceType with no unknown elements, empty
values or wrong types; a Bundle's entries and a Parameters' resources are
validated as their own types.
Prints one line per failure and a final summary line:
    check_fhir.py: N passed, M failed
"""
import importlib
import json
import pathlib
import sys


def model(resource_type):
    module = importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}")
    return getattr(module, resource_type)


def empty_values(value, path="$"):
    """FHIR JSON forbids null, "" and empty arrays/objects anywhere."""
    if value is None or value == "" or value == [] or value == {}:
        yield path
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from empty_values(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from empty_values(v, f"{path}[{i}]")


# Codes with a required binding in R4 that the models do not enforce.
REQUIRED = {
    "gender": {"male", "female", "other", "unknown"},
    "Immunization.status": {"completed", "entered-in-error", "not-done"},
    "Group.type": {"person", "animal", "practitioner", "device", "medication", "substance"},
    "Bundle.type": {"document", "message", "transaction", "transaction-response", "batch",
                    "batch-response", "history", "searchset", "collection"},
    "severity": {"fatal", "error", "warning", "information"},
    "name.use": {"usual", "official", "temp", "nickname", "anonymous", "old", "maiden"},
    "address.use": {"home", "work", "temp", "old", "billing"},
    "address.type": {"postal", "physical", "both"},
    "telecom.system": {"phone", "fax", "email", "pager", "url", "sms", "other"},
    "telecom.use": {"home", "work", "temp", "old", "mobile"},
    "identifier.use": {"usual", "official", "temp", "secondary", "old"},
    "ImmunizationEvaluation.status": {"completed", "entered-in-error"},
}

# Codes the ImmDS answer promises (its documentation), checked as if bound.
PROMISED = {
    "ImmunizationEvaluation.doseStatus": (
        "http://terminology.hl7.org/CodeSystem/immunization-evaluation-dose-status", {"valid", "notvalid"}),
    "ImmunizationRecommendation.forecastStatus": (
        "http://terminology.hl7.org/CodeSystem/immunization-recommendation-status",
        {"due", "overdue", "immune", "contraindicated", "complete"}),
    "ImmunizationRecommendation.dateCriterion": (
        "http://loinc.org", {"30981-5", "30980-7", "59778-1", "59777-3"}),
}


def promised_codes(kind, resource):
    """(what, system, code) of the codings the ImmDS answer promises."""
    if kind == "ImmunizationEvaluation":
        for c in resource["doseStatus"].get("coding", []):
            yield "ImmunizationEvaluation.doseStatus", c.get("system"), c.get("code")
    if kind == "ImmunizationRecommendation":
        for r in resource["recommendation"]:
            for c in r["forecastStatus"].get("coding", []):
                yield "ImmunizationRecommendation.forecastStatus", c.get("system"), c.get("code")
            for d in r.get("dateCriterion", []):
                for c in d["code"].get("coding", []):
                    yield "ImmunizationRecommendation.dateCriterion", c.get("system"), c.get("code")


def bound_codes(kind, resource):
    """(what, value) pairs of required-binding codes in the resource."""
    if "gender" in resource:
        yield "gender", resource["gender"]
    if kind == "Immunization":
        yield "Immunization.status", resource["status"]
    if kind == "Group":
        yield "Group.type", resource.get("type")
    if kind == "Bundle":
        yield "Bundle.type", resource.get("type")
    if kind == "ImmunizationEvaluation":
        yield "ImmunizationEvaluation.status", resource.get("status")
    for issue in resource.get("issue", []):
        yield "severity", issue.get("severity")
    people = [resource] + [c for c in resource.get("contact", []) if isinstance(c, dict)]
    for p in people:
        names = p.get("name", [])
        for n in names if isinstance(names, list) else [names]:
            if "use" in n:
                yield "name.use", n["use"]
        addresses = p.get("address", [])
        for a in addresses if isinstance(addresses, list) else [addresses]:
            for k in ("use", "type"):
                if k in a:
                    yield f"address.{k}", a[k]
        for t in p.get("telecom", []):
            for k in ("system", "use"):
                if k in t:
                    yield f"telecom.{k}", t[k]
    for i in resource.get("identifier", []):
        if "use" in i:
            yield "identifier.use", i["use"]


def check(resource):
    kind = resource.get("resourceType")
    if not kind:
        raise ValueError("no resourceType")
    empties = list(empty_values(resource))
    if empties:
        raise ValueError(f"empty values at {', '.join(empties[:5])}")
    model(kind).model_validate(resource)
    for what, value in bound_codes(kind, resource):
        if value not in REQUIRED[what]:
            raise ValueError(f"{what} {value!r} is not in its required value set")
    for what, system, code in promised_codes(kind, resource):
        want_system, codes = PROMISED[what]
        if system != want_system or code not in codes:
            raise ValueError(f"{what} coding {system}|{code} is not one of {sorted(codes)} in {want_system}")
    if kind == "ImmunizationRecommendation":
        for i, r in enumerate(resource["recommendation"]):
            # imr-1: a recommendation names a vaccine or a target disease.
            if not r.get("vaccineCode") and not r.get("targetDisease"):
                raise ValueError(f"recommendation[{i}] has neither vaccineCode nor targetDisease (imr-1)")
    if kind == "Parameters":
        for i, p in enumerate(resource.get("parameter", [])):
            if "resource" not in p:
                continue
            try:
                check(p["resource"])
            except Exception as e:  # noqa: BLE001 - report and go on
                raise ValueError(f"parameter[{i}] ({p.get('name')}): {e}") from e
    if kind == "Bundle":
        for i, entry in enumerate(resource.get("entry", [])):
            if "resource" not in entry:
                continue  # e.g. a DELETE entry of a transaction Bundle
            try:
                check(entry["resource"])
            except Exception as e:  # noqa: BLE001 - report and go on
                raise ValueError(f"entry[{i}]: {e}") from e
    return kind


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: check_fhir.py DIR")
    files = sorted(pathlib.Path(sys.argv[1]).glob("*.json"))
    passed = failed = 0
    kinds = {}
    for f in files:
        try:
            kind = check(json.loads(f.read_text()))
            kinds[kind] = kinds.get(kind, 0) + 1
            passed += 1
        except Exception as e:  # noqa: BLE001 - every failure is reported
            failed += 1
            print(f"FAIL {f.name}: {e}".replace("\n", " | ")[:2000])
    print("types: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    print(f"check_fhir.py: {passed} passed, {failed} failed")
    sys.exit(1 if failed or not files else 0)


if __name__ == "__main__":
    main()
