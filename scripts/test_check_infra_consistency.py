#!/usr/bin/env python3
"""Shows that scripts/check_infra_consistency.py catches a change made on one
side only: each case breaks a copy (of the template, or of the repository's
sources in a temporary folder) and asserts that the check reports it as a
new finding, compared with the findings of the unbroken repository.

    test_check_infra_consistency.py [--root DIR]

Ends with "test_check_infra_consistency.py: N passed, M failed".
"""

from __future__ import annotations

import argparse
import copy
import re
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_infra_consistency as cic  # noqa: E402


def res(t):
    return t["Resources"]


def env(t, fn):
    return res(t)[fn]["Properties"]["Environment"]["Variables"]


def stmts(t, role, policy):
    for p in res(t)[role]["Properties"]["Policies"]:
        if p["PolicyName"] == policy:
            return p["PolicyDocument"]["Statement"]
    raise KeyError(policy)


def drop_function(t):
    del res(t)["MatcherFunction"]


def duplicate_function(t):
    res(t)["IngestFunction2"] = copy.deepcopy(res(t)["IngestFunction"])


def drop_env(t):
    del env(t, "MembershipFunction")["IISBULK_TABLE"]


def add_env(t):
    env(t, "MatcherFunction")["IISBULK_EXTRA"] = "x"


def add_action(t):
    stmts(t, "MatcherRole", "table")[0]["Action"].append("dynamodb:Scan")


def add_wildcard_action(t):
    stmts(t, "IngestRole", "table")[0]["Action"].append("dynamodb:*")


def drop_needed_action(t):
    stmts(t, "IngestRole", "table")[1]["Action"].remove("dynamodb:Query")


def add_wildcard_resource(t):
    st = stmts(t, "IngestRole", "table")[0]
    st["Resource"] = [st["Resource"], "*"]


def foreign_resource(t):
    stmts(t, "IngestRole", "table")[0]["Resource"] = {"Fn::Sub": "arn:aws:dynamodb:us-east-1:123456789012:table/other"}


def add_api_route(t):
    r = copy.deepcopy(res(t)["RouteGetMetadata"])
    r["Properties"]["RouteKey"] = "GET /fhir/Extra"
    res(t)["RouteGetExtra"] = r


def drop_api_route(t):
    del res(t)["RouteGetMetadata"]


def misroute(t):
    res(t)["RoutePostHl7"]["Properties"]["Target"] = {"Fn::Sub": "integrations/${BulkApiIntegration}"}


def catch_all(t):
    r = copy.deepcopy(res(t)["RouteGetMetadata"])
    r["Properties"]["RouteKey"] = "$default"
    res(t)["RouteDefault"] = r


def drop_console_route(t):
    del res(t)["RoutePostConsoleUnmerge"]


def trailing_slash_route(t):
    res(t)["RouteGetConsole"]["Properties"]["RouteKey"] = "GET /console/"


def filter_typo(t):
    ev = res(t)["MatcherFunction"]["Properties"]["Events"]["TableStream"]["Properties"]
    ev["FilterCriteria"]["Filters"][0]["Pattern"] = ev["FilterCriteria"]["Filters"][0]["Pattern"].replace('"HEAD"', '"HEADS"')


def filter_too_wide(t):
    ev = res(t)["MembershipFunction"]["Properties"]["Events"]["TableStream"]["Properties"]
    ev["FilterCriteria"]["Filters"][2]["Pattern"] = '{"eventName": ["INSERT", "MODIFY"], "dynamodb": {"Keys": {"pk": {"S": [{"prefix": "SRC#"}]}}}}'


def no_partial_failures(t):
    del res(t)["MembershipFunction"]["Properties"]["Events"]["TableStream"]["Properties"]["FunctionResponseTypes"]


def gsi_renamed(t):
    res(t)["Table"]["Properties"]["GlobalSecondaryIndexes"][1]["IndexName"] = "byGroup"


def pitr_off(t):
    res(t)["Table"]["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] = False


def policy_default_changed(t):
    t["Parameters"]["PolicyQbp"]["Default"] = "true"


def shared_role(t):
    res(t)["MembershipFunction"]["Properties"]["Role"] = {"Fn::GetAtt": ["MatcherRole", "Arn"]}


TEMPLATE_CASES = [
    ("a function dropped from the template", drop_function, "crate functions/matcher has no function in the template"),
    ("a crate deployed twice", duplicate_function, "crate functions/ingest has 2 template functions"),
    ("an environment variable the code reads, unset", drop_env, "MembershipFunction (membership) reads IISBULK_TABLE"),
    ("an environment variable no code reads, set", add_env, "sets IISBULK_EXTRA, which its code never reads"),
    ("an action the code never calls, granted", add_action, "MatcherRole grants dynamodb:Scan, which MatcherFunction's code never calls"),
    ("a wildcard action", add_wildcard_action, "IngestRole grants wildcard action dynamodb:*"),
    ("an action the code calls, not granted", drop_needed_action, "IngestFunction's code can call dynamodb:Query, which IngestRole does not grant"),
    ("a wildcard resource", add_wildcard_resource, 'IngestRole grants dynamodb:GetItem on every resource ("*")'),
    ("a resource outside the stack", foreign_resource, "IngestRole grants dynamodb:GetItem on"),
    ("an API route no router has", add_api_route, "RouteGetExtra (GET /fhir/Extra) matches no route of functions/bulk-api"),
    ("a router route the API lacks", drop_api_route, "GET /fhir/metadata of functions/bulk-api has no API route to BulkApiFunction"),
    ("a route sent to the wrong function", misroute, "POST /hl7 of functions/ingest has no API route to IngestFunction (it goes to RoutePostHl7 instead)"),
    ("a catch-all route", catch_all, "RouteDefault: route key '$default' is not METHOD /path"),
    ("a console route the API lacks", drop_console_route,
     "POST /console/api/persons/{person}/unmerge of functions/console has no API route to ConsoleFunction"),
    ("a route key ending in /", trailing_slash_route,
     "RouteGetConsole: route key 'GET /console/' ends in '/', which an HTTP API refuses"),
    ("a stream filter that drops what the function acts on", filter_typo, "MatcherFunction's filters drop INSERT IN#m1 / HEAD"),
    ("a stream filter that lets through what the function ignores", filter_too_wide, "MembershipFunction's filters let through INSERT SRC#s1 / SRC"),
    ("partial batch failures not reported", no_partial_failures, "MembershipFunction does not report partial batch failures"),
    ("a GSI the store does not use", gsi_renamed, "table: GSIs"),
    ("point-in-time recovery off", pitr_off, "table: point-in-time recovery is off"),
    ("a policy default that differs from policy/jurisdiction.toml", policy_default_changed, "policy: with its defaults the template's policy"),
    ("one role for two functions", shared_role, "iam: role MatcherRole is shared by"),
]


def code_route_added(root: Path):
    p = root / "functions/ingest/src/lib.rs"
    s = p.read_text()
    s2 = s.replace('.route("/healthz", get(|| async { "ok" }))',
                   '.route("/healthz", get(|| async { "ok" }))\n        .route("/hl7/batch", post(rest::post_hl7))')
    assert s2 != s, "ingest router layout changed: update this test"
    p.write_text(s2)


def code_env_added(root: Path):
    p = root / "functions/matcher/src/lib.rs"
    s = p.read_text()
    s2 = s.replace("let table =", 'let _extra = std::env::var("IISBULK_NEW_SETTING");\n    let table =', 1)
    assert s2 != s, "matcher deps_from_env changed: update this test"
    p.write_text(s2)


def code_sdk_call_added(root: Path):
    p = root / "shared/store-dynamodb/src/lib.rs"
    s = p.read_text()
    s2 = s.replace("impl ItemStore for DynamoStore {",
                   "impl ItemStore for DynamoStore {\n    async fn scan_everything(&self) { let _ = self.client.scan().send().await; }", 1)
    assert s2 != s, "store-dynamodb layout changed: update this test"
    p.write_text(s2)


def code_crate_added(root: Path):
    d = root / "functions/newfn"
    (d / "src").mkdir(parents=True)
    (d / "Cargo.toml").write_text('[package]\nname = "newfn"\nversion = "0.1.0"\n')
    (d / "src/main.rs").write_text("fn main() {}\n")


def code_setting_unlisted(root: Path):
    p = root / "functions/membership/src/lib.rs"
    s = p.read_text()
    s2 = s.replace("let table =", 'let _extra = std::env::var("IISBULK_UNLISTED");\n    let table =', 1)
    assert s2 != s, "membership deps_from_env changed: update this test"
    p.write_text(s2)


def code_setting_deployed(root: Path):
    p = root / "shared/settings/src/lib.rs"
    s = p.read_text()
    i = s.index("name: MATCHING_CONFIG,")
    j = s.index("not_deployed: Some(", i)
    k = s.index("),\n    },", j)
    s2 = s[:j] + "not_deployed: None" + s[k + 1:]
    p.write_text(s2)


def samconfig_bad_value(root: Path):
    p = root / "infra/samconfig.toml"
    s = p.read_text()
    s2 = s.replace('"PolicyAssociation=single"', '"PolicyAssociation=both"')
    assert s2 != s, "samconfig.toml changed: update this test"
    p.write_text(s2)


CODE_CASES = [
    ("a samconfig environment with a value the template refuses", samconfig_bad_value,
     "samconfig [ex-city] sets PolicyAssociation=both, not one of"),
    ("a route added to a router only", code_route_added, "POST /hl7/batch of functions/ingest has no API route to IngestFunction"),
    ("an environment variable read in code only", code_env_added, "MatcherFunction (matcher) reads IISBULK_NEW_SETTING"),
    ("an SDK call added to an adapter only", code_sdk_call_added, "MatcherFunction's code can call dynamodb:Scan, which MatcherRole does not grant"),
    ("a function crate added without a template function", code_crate_added, "crate functions/newfn has no function in the template"),
    ("a variable read in code but not in the settings table", code_setting_unlisted,
     "MembershipFunction (membership) reads IISBULK_UNLISTED, which shared/settings/src/lib.rs's SETTINGS does not list"),
    ("a variable the table no longer exempts from deployment", code_setting_deployed,
     "MatcherFunction (matcher) reads IISBULK_MATCHING_CONFIG, which its Environment does not set"),
]


def copy_repo(root: Path, dest: Path) -> Path:
    ignore = shutil.ignore_patterns("target", ".git", ".venv", ".ci", "__pycache__", ".iisbulk")
    out = dest / "repo"
    out.mkdir()
    for name in ("Cargo.toml", "functions", "shared", "policy", "infra"):
        src = root / name
        if src.is_dir():
            shutil.copytree(src, out / name, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, out / name)
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    args = ap.parse_args(argv)
    root = args.root.resolve()
    tpath = root / "infra" / "template.yaml"
    template = cic.load_template(tpath)
    baseline = set(cic.check(root, tpath, template))
    passed = failed = 0

    def judge(name: str, findings: list[str], expect: str) -> None:
        nonlocal passed, failed
        new = [f for f in findings if f not in baseline]
        if any(expect in f for f in new):
            passed += 1
            print(f"ok   {name}")
        else:
            failed += 1
            print(f"FAIL {name}: expected a new finding containing {expect!r}; new findings: {new}")

    for name, mutate, expect in TEMPLATE_CASES:
        t = copy.deepcopy(template)
        try:
            mutate(t)
            judge(name, cic.check(root, tpath, t), expect)
        except Exception as e:  # a broken mutation is a failed case, not a crash
            failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}")

    with tempfile.TemporaryDirectory(prefix="check-infra-") as tmp:
        clean = copy_repo(root, Path(tmp))
        same = set(cic.check(clean, clean / "infra/template.yaml"))
        rel = {re.sub(re.escape(str(clean)), str(root), f) for f in same}
        if rel != baseline:
            failed += 1
            print(f"FAIL the copied repository gives other findings than the original: {sorted(rel ^ baseline)}")
        else:
            passed += 1
            print("ok   the copied repository gives the same findings")
        baseline = same
        for i, (name, mutate, expect) in enumerate(CODE_CASES):
            work = Path(tmp) / f"case{i}"
            shutil.copytree(clean, work)
            try:
                mutate(work)
                judge(name, cic.check(work, work / "infra/template.yaml"), expect)
            except Exception as e:
                failed += 1
                print(f"FAIL {name}: {type(e).__name__}: {e}")

    print(f"test_check_infra_consistency.py: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
