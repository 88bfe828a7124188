#!/usr/bin/env python3
"""Holds infra/template.yaml to the code it deploys.

    check_infra_consistency.py [--root DIR] [--template FILE]

Prints one line per finding and exits 1 if there is any. What is compared:

functions  every functions/* crate except `local` (the all-in-one CLI) has
           exactly one AWS::Serverless::Function whose CodeUri is that crate,
           and every template function's crate exists (with the [[bin]] its
           BuildProperties name).
env        every environment variable the function's code can read is set in
           its Environment (Globals included), and every variable set there
           is one the code reads. Exempt, each for a stated reason: the
           variables Lambda itself sets, PLATFORM_NOT_DEPLOYED below, and
           those shared/settings's table marks `not_deployed`.
settings   every IISBULK_* variable a function reads is listed in
           shared/settings's SETTINGS table, and every listed one is read.
iam        every action in the function's role is one its code can call, or
           one the platform needs for what the template wires to it (logs,
           stream reading, the on-failure queue, KMS for encrypted
           destinations); no `*` in actions; `*` as a resource only for
           WILDCARD_RESOURCE_OK actions; each action's resources are the
           stack resources of its service; and every action the code can
           call is granted (else it would fail at run time).
routes     every route of the crate's axum router is served by an API route
           to that crate's function, and every API route serves one.
table      the table's keys, GSIs, stream, billing and TTL are those that
           shared/store-dynamodb creates for tests (create_table_for_tests),
           with PITR, KMS encryption and deletion protection on.
streams    each stream mapping's FilterCriteria lets through exactly the
           records its function acts on (STREAM_CASES, a hand-kept mirror of
           the Rust decision functions named there), and has batch-failure
           reporting, bisect, bounded retries and an on-failure destination.
policy     the jurisdiction policy the template assembles from its parameter
           defaults is policy/jurisdiction.toml, option for option, and the
           one each infra/samconfig.toml environment gives is valid TOML
           with the same options.

How "the code can read / call" is computed (an approximation, on purpose
simple enough to audit): the Rust sources of the function crate and of every
workspace crate it depends on (normal dependencies, optional ones included:
the Lambda build turns them on) are read without comments, tests
(`#[cfg(test)]` items) or benches. Each `fn` body is an item. An item reads
the environment variables named in its `std::env::var`/`var_os` calls (a
literal, a `const`, or for a computed name every ALL_CAPS literal in the same
body) and calls the AWS SDK operations written as `.operation()` in crates
that depend on an `aws-sdk-*` crate. An item is reached when a reached text
names it: a method of `impl Trait for Type` when `Type` is named (it can be
called through the trait object), any other fn when its name is. The
function crate's whole source is reached to start with. So the check can
over-estimate what a function calls (a name shared by two fns reaches both)
but does not miss a call made through the workspace's own crates. SDK calls
map to IAM actions through SDK_ACTIONS; a TransactWriteItems is authorised
per write, so it maps to the actions of the write kinds the crate builds.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

# ---------------------------------------------------------------- policy
# Variables a function may read that the template deliberately leaves unset,
# beside the IISBULK_* ones shared/settings marks `not_deployed` (read by
# load_settings).
PLATFORM_NOT_DEPLOYED = {
    "AWS_ACCESS_KEY_ID": "set by the Lambda runtime (the role's credentials)",
}
SETTINGS_RS = "shared/settings/src/lib.rs"
# Actions the name-based reach below attributes to a function that its code
# provably never performs, each with the reason. Kept tiny and explicit.
NEVER_CALLED: dict[str, dict[str, str]] = {}
# Set by Lambda for every function; never in a template.
LAMBDA_PROVIDED = re.compile(r"^(AWS_REGION|AWS_DEFAULT_REGION|AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|"
                             r"AWS_SESSION_TOKEN|AWS_LAMBDA_\w+|AWS_EXECUTION_ENV|_HANDLER|_X_AMZN_TRACE_ID|"
                             r"LAMBDA_TASK_ROOT|LAMBDA_RUNTIME_DIR|TZ)$")
# Calls that read a variable without a std::env call in our code.
IMPLICIT_ENV_READS = {
    "try_from_default_env": "RUST_LOG",  # tracing_subscriber::EnvFilter
    "from_default_env": "RUST_LOG",
}

# AWS SDK for Rust fluent operations -> IAM actions.
SDK_ACTIONS = {
    # DynamoDB
    "get_item": ["dynamodb:GetItem"],
    "put_item": ["dynamodb:PutItem"],
    "update_item": ["dynamodb:UpdateItem"],
    "delete_item": ["dynamodb:DeleteItem"],
    "query": ["dynamodb:Query"],
    "scan": ["dynamodb:Scan"],
    "batch_get_item": ["dynamodb:BatchGetItem"],
    "batch_write_item": ["dynamodb:BatchWriteItem"],
    "transact_get_items": ["dynamodb:GetItem"],
    "transact_write_items": [],  # per write kind, see TRANSACT_WRITES
    "describe_table": ["dynamodb:DescribeTable"],
    "create_table": ["dynamodb:CreateTable"],
    "update_time_to_live": ["dynamodb:UpdateTimeToLive"],
    # S3
    "put_object": ["s3:PutObject"],
    "create_multipart_upload": ["s3:PutObject"],
    "upload_part": ["s3:PutObject"],
    "complete_multipart_upload": ["s3:PutObject"],
    "abort_multipart_upload": ["s3:AbortMultipartUpload"],
    "get_object": ["s3:GetObject"],
    "head_object": ["s3:GetObject"],
    "delete_object": ["s3:DeleteObject"],
    "delete_objects": ["s3:DeleteObject"],
    "list_objects_v2": ["s3:ListBucket"],
    "copy_object": ["s3:GetObject", "s3:PutObject"],
}
TRANSACT_WRITES = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}
# Actions IAM evaluates against "*" only.
WILDCARD_RESOURCE_OK = {"dynamodb:ListStreams"}
STREAM_READ = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"]
LOG_WRITE = ["logs:CreateLogStream", "logs:PutLogEvents"]

# The records each stream consumer acts on, mirrored from the Rust decisions:
#   matcher       registry::patients::events::accepted_message_key
#   membership    registry::membership::events::membership_event
#   export-worker registry::export::job_created, registry::export::shard_created,
#                 registry::bulk_match::job_created (the same cases are
#                 asserted against export_worker::work in
#                 functions/export-worker/src/lib.rs's tests)
# (eventName, pk, sk, acted on?)
STREAM_CASES = {
    "matcher": [
        ("INSERT", "IN#m1", "HEAD", True),
        ("MODIFY", "IN#m1", "HEAD", False),
        ("INSERT", "IN#m1", "MATCHED", False),
        ("INSERT", "IN#m1", "PART#0000", False),
        ("INSERT", "JOB#j1", "JOB", False),
        ("REMOVE", "IN#m1", "HEAD", False),
    ],
    "membership": [
        ("INSERT", "IN#m1", "MATCHED", True),
        ("MODIFY", "IN#m1", "MATCHED", False),
        ("INSERT", "IN#m1", "HEAD", False),
        ("INSERT", "QRY#clinic", "00000000000000000001#x", True),
        ("MODIFY", "QRY#clinic", "00000000000000000001#x", False),
        ("MODIFY", "SRC#s1", "SRC", True),
        ("INSERT", "SRC#s1", "SRC", False),
        ("MODIFY", "SRC#s1", "DOSE#d1", False),
        ("MODIFY", "PAT#p1", "PROFILE", True),
        ("INSERT", "PAT#p1", "PROFILE", False),
        ("MODIFY", "PAT#p1", "IMM#i1", False),
        ("INSERT", "JOB#j1", "JOB", False),
        ("REMOVE", "SRC#s1", "SRC", False),
    ],
    "export-worker": [
        ("INSERT", "JOB#j1", "JOB", True),
        ("MODIFY", "JOB#j1", "JOB", False),
        ("INSERT", "JOBSHARD#j1#1", "SHARD", True),
        ("MODIFY", "JOBSHARD#j1#1", "SHARD", False),
        ("INSERT", "JOB#j1", "POLL", False),
        ("INSERT", "JOBEXP", "000000000001#j1", False),
        ("INSERT", "AUJOBS#au", "j1", False),
        ("REMOVE", "JOB#j1", "JOB", False),
        ("INSERT", "IN#m1", "HEAD", False),
        ("INSERT", "BMJOB#b1", "BMJOB", True),
        ("MODIFY", "BMJOB#b1", "BMJOB", False),
        ("REMOVE", "BMJOB#b1", "BMJOB", False),
        ("INSERT", "BMSLOT#au", "0", False),
        ("INSERT", "BMQUEUE", "0000000000001#b1", False),
        ("INSERT", "BMEXP", "000000000001#b1", False),
    ],
}
# functions/local: the `iisbulk` CLI, not a Lambda.
EXCLUDED_CRATES = {"local"}


# ------------------------------------------------------------ Rust lexing
_LEX_NEXT = re.compile(r"""//|/\*|(?<![A-Za-z0-9_])b?r#*"|"|'""")
_RAW = re.compile(r'b?r(#*)"')
_CHAR = re.compile(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'\n])'")
_STR_BODY = re.compile(r'(?:[^"\\]|\\.)*', re.S)


def lex(src: str) -> tuple[str, dict[int, str]]:
    """Source with comments and string contents blanked (same length, same
    newlines), and the string literals by the offset of their opening quote."""
    out: list[str] = []
    strings: dict[int, str] = {}
    n = len(src)
    i = 0

    def blanked(a: int, b: int) -> str:
        return re.sub(r"[^\n]", " ", src[a:b])

    while i < n:
        m = _LEX_NEXT.search(src, i)
        if not m:
            out.append(src[i:])
            break
        out.append(src[i:m.start()])
        i = m.start()
        tok = m.group(0)
        if tok == "//":
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(blanked(i, j))
            i = j
        elif tok == "/*":
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(blanked(i, j))
            i = j
        elif tok == "'":
            cm = _CHAR.match(src, i)
            if cm:
                out.append("'" + blanked(i + 1, cm.end() - 1) + "'")
                i = cm.end()
            else:  # a lifetime
                out.append("'")
                i += 1
        elif tok == '"':
            bm = _STR_BODY.match(src, i + 1)
            j = bm.end()
            strings[i] = src[i + 1:j]
            out.append('"' + blanked(i + 1, j) + '"')
            i = j + 1
        else:  # raw string
            rm = _RAW.match(src, i)
            close = '"' + rm.group(1)
            start = rm.end()
            j = src.find(close, start)
            j = n if j < 0 else j
            strings[start - 1] = src[start:j]
            out.append(src[i:start] + blanked(start, j) + src[j:j + len(close)])
            i = j + len(close)
    code = "".join(out)
    assert len(code) == len(src)
    return code, strings


def match_brace(code: str, open_at: int) -> int:
    """Offset just past the brace that closes the one at open_at."""
    depth = 0
    for k in range(open_at, len(code)):
        if code[k] == "{":
            depth += 1
        elif code[k] == "}":
            depth -= 1
            if depth == 0:
                return k + 1
    return len(code)


def match_paren(code: str, open_at: int) -> int:
    depth = 0
    for k in range(open_at, len(code)):
        if code[k] in "([{":
            depth += 1
        elif code[k] in ")]}":
            depth -= 1
            if depth == 0:
                return k + 1
    return len(code)


def strip_cfg_test(code: str) -> str:
    """Blanks items under #[cfg(test)] (test modules, test-only fns/impls/uses)."""
    out = list(code)
    for m in re.finditer(r"#\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]", code):
        j = m.end()
        brace = code.find("{", j)
        semi = code.find(";", j)
        if semi != -1 and (brace == -1 or semi < brace):
            end = semi + 1
        elif brace != -1:
            end = match_brace(code, brace)
        else:
            continue
        for k in range(m.start(), end):
            if out[k] != "\n":
                out[k] = " "
    return "".join(out)


def strip_generics(s: str) -> str:
    prev = None
    while prev != s:
        prev = s
        s = re.sub(r"<[^<>]*>", "", s)
    return s


def last_ident(type_text: str) -> str | None:
    t = strip_generics(type_text)
    t = re.sub(r"\b(dyn|mut|impl)\b|&|'\w+", " ", t)
    ids = re.findall(r"[A-Za-z_]\w*", t)
    return ids[-1] if ids else None


@dataclass
class Item:
    crate: str
    name: str
    impl_type: str | None
    trait: str | None
    body: str
    strings: list[str]
    env: set[str] = field(default_factory=set)
    ops: set[str] = field(default_factory=set)

    def words(self) -> set[str]:
        if not hasattr(self, "_words"):
            self._words = set(re.findall(r"[A-Za-z_]\w*", self.body))
        return self._words


@dataclass
class SourceFile:
    path: Path
    code: str
    strings: dict[int, str]


_SOURCE_CACHE: dict[tuple, list[SourceFile]] = {}


def read_sources(crate_dir: Path) -> list[SourceFile]:
    paths = sorted((crate_dir / "src").rglob("*.rs"))
    sig = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths)
    if sig not in _SOURCE_CACHE:
        _SOURCE_CACHE[sig] = _read_sources(paths)
    return _SOURCE_CACHE[sig]


def _read_sources(paths: list[Path]) -> list[SourceFile]:
    files = []
    for p in paths:
        src = p.read_text(encoding="utf-8")
        code, strings = lex(src)
        code = strip_cfg_test(code)
        files.append(SourceFile(p, code, strings))
    return files


ENV_CALL = re.compile(r"\benv\s*::\s*var(?:_os)?\s*\(")


_ITEMS_CACHE: dict[tuple, list[Item]] = {}


def items_of(crate: str, files: list[SourceFile], uses_sdk: bool) -> list[Item]:
    key = (id(files), crate, uses_sdk)
    if key not in _ITEMS_CACHE:
        _ITEMS_CACHE[key] = _items_of(crate, files, uses_sdk)
    return _ITEMS_CACHE[key]


def _items_of(crate: str, files: list[SourceFile], uses_sdk: bool) -> list[Item]:
    items: list[Item] = []
    for f in files:
        code = f.code
        consts = {}
        for m in re.finditer(r"\bconst\s+([A-Z_][A-Z0-9_]*)\s*:\s*&(?:'static\s+)?str\s*=\s*\"", code):
            q = m.end() - 1
            if q in f.strings:
                consts[m.group(1)] = f.strings[q]
        impls = []
        for m in re.finditer(r"\bimpl\b", code):
            brace = code.find("{", m.end())
            semi = code.find(";", m.end())
            if brace == -1 or (semi != -1 and semi < brace):
                continue
            header = strip_generics(code[m.end():brace]).strip()
            header = re.sub(r"\bwhere\b.*", "", header, flags=re.S)
            hm = re.match(r"(?:(.+?)\s+for\s+)?(.+)$", header.strip(), re.S)
            if not hm:
                continue
            trait = last_ident(hm.group(1)) if hm.group(1) else None
            impls.append((brace, match_brace(code, brace), last_ident(hm.group(2)), trait))
        for m in re.finditer(r"\bfn\s+([A-Za-z_]\w*)", code):
            k = m.end()
            depth = 0
            body_start = None
            while k < len(code):
                ch = code[k]
                if ch in "([":
                    depth += 1
                elif ch in ")]":
                    depth -= 1
                elif depth == 0 and ch == ";":
                    break
                elif depth == 0 and ch == "{":
                    body_start = k
                    break
                k += 1
            if body_start is None:
                continue
            end = match_brace(code, body_start)
            impl_type = trait = None
            for (a, b, t, tr) in impls:
                if a < m.start() < b:
                    impl_type, trait = t, tr
            strs = [v for pos, v in f.strings.items() if body_start <= pos < end]
            it = Item(crate, m.group(1), impl_type, trait, code[body_start:end], strs)
            body = it.body
            for em in ENV_CALL.finditer(body):
                arg_end = match_paren(body, em.end() - 1)
                arg = body[em.end():arg_end - 1].strip()
                abs_q = body_start + em.end() + (len(body[em.end():arg_end - 1]) - len(body[em.end():arg_end - 1].lstrip()))
                if arg.startswith('"') and abs_q in f.strings:
                    it.env.add(f.strings[abs_q])
                elif arg in consts:
                    it.env.add(consts[arg])
                else:
                    it.env.update(s for s in strs if re.fullmatch(r"[A-Z][A-Z0-9_]{2,}", s))
            for word, var in IMPLICIT_ENV_READS.items():
                if re.search(r"\b" + word + r"\s*\(", body):
                    it.env.add(var)
            if uses_sdk:
                for om in re.finditer(r"\.\s*([a-z_0-9]+)\s*\(\s*\)", body):
                    if om.group(1) in SDK_ACTIONS:
                        it.ops.add(om.group(1))
            items.append(it)
    return items


# ------------------------------------------------------------- workspace
@dataclass
class Crate:
    name: str
    dir: Path
    deps: set[str]  # workspace crate names
    sdk_deps: set[str]
    bins: set[str]


def load_workspace(root: Path) -> dict[str, Crate]:
    ws = tomllib.loads((root / "Cargo.toml").read_text())
    members = ws["workspace"]["members"]
    dirs = {}
    for mem in members:
        d = root / mem
        if (d / "Cargo.toml").exists():
            dirs[d.resolve()] = tomllib.loads((d / "Cargo.toml").read_text())
    # functions/* crates are Lambdas whether or not they are members yet
    for d in sorted((root / "functions").glob("*/Cargo.toml")):
        dirs.setdefault(d.parent.resolve(), tomllib.loads(d.read_text()))
    by_dir = {d: man["package"]["name"] for d, man in dirs.items()}
    wsdeps = ws["workspace"].get("dependencies", {})
    crates = {}
    for d, man in dirs.items():
        name = man["package"]["name"]
        deps, sdk = set(), set()
        for dep, spec in man.get("dependencies", {}).items():
            path = None
            if isinstance(spec, dict) and "path" in spec:
                path = (d / spec["path"]).resolve()
            elif isinstance(spec, dict) and spec.get("workspace"):
                w = wsdeps.get(dep, {})
                if isinstance(w, dict) and "path" in w:
                    path = (root / w["path"]).resolve()
            if path is not None and path in by_dir:
                deps.add(by_dir[path])
            if dep.startswith("aws-sdk-"):
                sdk.add(dep)
        bins = {b["name"] for b in man.get("bin", [])} or {name}
        crates[name] = Crate(name, d, deps, sdk, bins)
    return crates


def closure(crates: dict[str, Crate], name: str) -> list[str]:
    seen, todo = [], [name]
    while todo:
        c = todo.pop()
        if c in seen or c not in crates:
            continue
        seen.append(c)
        todo.extend(crates[c].deps)
    return seen


@dataclass
class CodeFacts:
    env: set[str]
    ops: set[str]
    transact_writes: set[str]
    routes: list[tuple[str, str]]
    route_problems: list[str]


ROUTE_METHODS = {"get", "post", "put", "delete", "patch", "head", "options", "any"}


def routes_of(files: list[SourceFile]) -> tuple[list[tuple[str, str]], list[str]]:
    routes, problems = [], []
    for f in files:
        code = f.code
        for m in re.finditer(r"\.\s*(route|nest|nest_service|route_service)\s*\(", code):
            end = match_paren(code, m.end() - 1)
            args = code[m.end():end - 1]
            q = m.end() + (len(args) - len(args.lstrip()))
            if m.group(1) != "route":
                problems.append(f"{f.path}: .{m.group(1)}( is not understood by this check; list its routes by hand")
                continue
            path = f.strings.get(q)
            if path is None:
                problems.append(f"{f.path}: a .route( whose path is not a literal")
                continue
            comma = args.find(",", len(path) + 2)
            handler = args[comma + 1:]
            depth = 0
            k = 0
            while k < len(handler):
                ch = handler[k]
                if ch in "([{":
                    depth += 1
                elif ch in ")]}":
                    depth -= 1
                elif depth == 0:
                    # get(h), .post(h), and axum::routing::post(h) alike
                    mm = re.compile(r"(?:^|(?<=[\s.:]))([a-z_]+)\s*\(").match(handler, k)
                    if mm and mm.group(1) in ROUTE_METHODS:
                        routes.append((mm.group(1).upper(), path))
                        k = mm.end() - 1
                        continue
                k += 1
    return routes, problems


def code_facts(crates: dict[str, Crate], name: str) -> CodeFacts:
    own = read_sources(crates[name].dir)
    all_items: list[Item] = []
    transact: set[str] = set()
    for c in closure(crates, name):
        files = own if c == name else read_sources(crates[c].dir)
        all_items.extend(items_of(c, files, bool(crates[c].sdk_deps)))
        if crates[c].sdk_deps:
            for f in files:
                for kind, action in TRANSACT_WRITES.items():
                    if re.search(r"\b" + kind + r"\s*::\s*builder\s*\(", f.code):
                        transact.add(action)
    reached_words: set[str] = set()
    for f in own:
        reached_words |= set(re.findall(r"[A-Za-z_]\w*", f.code))
    reached = [it for it in all_items if it.crate == name]
    pending = [it for it in all_items if it.crate != name]
    changed = True
    while changed:
        changed = False
        rest = []
        for it in pending:
            hit = (it.impl_type in reached_words) if it.trait else (it.name in reached_words)
            if hit:
                reached.append(it)
                reached_words |= it.words()
                changed = True
            else:
                rest.append(it)
        pending = rest
    env, ops = set(), set()
    for it in reached:
        env |= it.env
        ops |= it.ops
    routes, problems = routes_of(own)
    return CodeFacts(env, ops, transact, routes, problems)


def iam_actions_of(facts: CodeFacts) -> set[str]:
    acts = set()
    for op in facts.ops:
        acts.update(SDK_ACTIONS[op])
        if op == "transact_write_items":
            acts |= facts.transact_writes
    return acts


# -------------------------------------------------------------- template
def load_template(path: Path) -> dict:
    from cfnlint.decode import cfn_yaml

    return json.loads(json.dumps(cfn_yaml.load(str(path))))


def ref_target(v) -> str | None:
    """The logical id a Ref / GetAtt / Sub names (first ${X} or ${X.Attr})."""
    if isinstance(v, dict):
        if "Ref" in v:
            return v["Ref"]
        if "Fn::GetAtt" in v:
            g = v["Fn::GetAtt"]
            return g[0] if isinstance(g, list) else g.split(".")[0]
        if "Fn::Sub" in v:
            s = v["Fn::Sub"]
            s = s[0] if isinstance(s, list) else s
            m = re.search(r"\$\{([A-Za-z0-9]+)", s)
            return m.group(1) if m else None
    return None


def function_crate(fn_props: dict, template_path: Path, root: Path) -> str | None:
    uri = fn_props.get("CodeUri")
    if not isinstance(uri, str):
        return None
    p = (template_path.parent / uri).resolve()
    try:
        rel = p.relative_to(root.resolve())
    except ValueError:
        return None
    parts = rel.parts
    return parts[1] if len(parts) == 2 and parts[0] == "functions" else None


def statements_of(doc) -> list[dict]:
    st = doc.get("Statement", []) if isinstance(doc, dict) else []
    return st if isinstance(st, list) else [st]


def as_list(v) -> list:
    return v if isinstance(v, list) else [v]


# --------------------------------------------------------- intrinsic eval
def evaluate(v, params: dict, conditions: dict):
    if isinstance(v, list):
        return [evaluate(x, params, conditions) for x in v]
    if not isinstance(v, dict):
        return v
    if "Ref" in v:
        return params[v["Ref"]]
    if "Fn::Join" in v:
        sep, items = v["Fn::Join"]
        items = evaluate(items, params, conditions)
        return sep.join(items if isinstance(items, list) else [items])
    if "Fn::If" in v:
        c, a, b = v["Fn::If"]
        return evaluate(a if eval_condition(conditions[c], params, conditions) else b, params, conditions)
    if "Fn::Sub" in v:
        s = v["Fn::Sub"]
        text, extra = (s[0], s[1]) if isinstance(s, list) else (s, {})
        scope = dict(params)
        scope.update({k: evaluate(x, params, conditions) for k, x in extra.items()})
        return re.sub(r"\$\{([A-Za-z0-9_:.]+)\}", lambda m: str(scope[m.group(1)]), text)
    raise ValueError(f"cannot evaluate {v}")


def eval_condition(c, params, conditions) -> bool:
    if "Fn::Equals" in c:
        a, b = evaluate(c["Fn::Equals"], params, conditions)
        return str(a) == str(b)
    if "Fn::Not" in c:
        return not eval_condition(c["Fn::Not"][0], params, conditions)
    if "Condition" in c:
        return eval_condition(conditions[c["Condition"]], params, conditions)
    raise ValueError(f"cannot evaluate condition {c}")


def parameter_defaults(t: dict) -> dict:
    out = {}
    for k, p in t.get("Parameters", {}).items():
        d = p.get("Default")
        if p.get("Type") == "CommaDelimitedList" and isinstance(d, str):
            d = [x.strip() for x in d.split(",")]
        out[k] = d
    return out


# ------------------------------------------------------------- filters
def pattern_matches(pattern, event) -> bool:
    for k, want in pattern.items():
        if k not in event:
            return False
        got = event[k]
        if isinstance(want, dict):
            if not isinstance(got, dict) or not pattern_matches(want, got):
                return False
        else:
            ok = False
            for w in want:
                if isinstance(w, dict) and "prefix" in w:
                    ok = ok or (isinstance(got, str) and got.startswith(w["prefix"]))
                elif isinstance(w, dict):
                    raise ValueError(f"filter operator {w} not understood by this check")
                else:
                    ok = ok or got == w
            if not ok:
                return False
    return True


# -------------------------------------------------------------- settings
_SETTING = re.compile(r"Setting \{(.*?)\n    \},", re.S)
_CONST = re.compile(r'pub const (\w+): &str = "([^"]*)";')
_PIECES = re.compile(r'"((?:[^"\\]|\\.)*)"', re.S)


def load_settings(root: Path) -> dict[str, str | None]:
    """shared/settings's SETTINGS table: each variable's name and, for one
    the stack never sets, the reason (None: deployed)."""
    path = root / SETTINGS_RS
    if not path.exists():
        return {}
    src = path.read_text()
    consts = dict(_CONST.findall(src))
    table_at = src.find("pub const SETTINGS")
    out: dict[str, str | None] = {}
    for block in _SETTING.findall(src[table_at:]):
        m = re.search(r"name: (\w+),", block)
        if not m:
            continue
        name = consts.get(m.group(1), m.group(1))
        nd = block[block.find("not_deployed:"):]
        reason = None
        if nd.startswith("not_deployed: Some("):
            text = "".join(_PIECES.findall(nd))
            reason = re.sub(r"\\\n\s*", "", text)
        out[name] = reason
    return out


# ----------------------------------------------------------------- check
def check(root: Path, template_path: Path, template: dict | None = None) -> list[str]:
    """Findings for the template at template_path (or `template`, read as if
    it were there: CodeUri paths are relative to template_path's folder)."""
    findings: list[str] = []
    add = findings.append
    t = template if template is not None else load_template(template_path)
    res = t.get("Resources", {})
    globals_env = t.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    crates = load_workspace(root)
    settings = load_settings(root)
    not_deployed = dict(PLATFORM_NOT_DEPLOYED)
    not_deployed.update({k: v for k, v in settings.items() if v is not None})
    read_anywhere: set[str] = set()
    fn_crates = {}
    for d in sorted((root / "functions").iterdir()):
        if (d / "Cargo.toml").exists() and d.name not in EXCLUDED_CRATES:
            fn_crates[d.name] = tomllib.loads((d / "Cargo.toml").read_text())["package"]["name"]

    # ---- functions <-> crates
    by_crate: dict[str, list[str]] = {}
    for lid, r in res.items():
        if r.get("Type") != "AWS::Serverless::Function":
            continue
        crate_dir = function_crate(r.get("Properties", {}), template_path, root)
        if crate_dir is None:
            add(f"functions: {lid}: CodeUri does not name a functions/<crate> folder")
            continue
        by_crate.setdefault(crate_dir, []).append(lid)
    for d in fn_crates:
        if d not in by_crate:
            add(f"functions: crate functions/{d} has no function in the template")
    for d, lids in by_crate.items():
        if len(lids) > 1:
            add(f"functions: crate functions/{d} has {len(lids)} template functions: {', '.join(lids)}")
        if d in EXCLUDED_CRATES:
            add(f"functions: {lids[0]} deploys functions/{d}, which is not a Lambda")
        elif d not in fn_crates:
            add(f"functions: {lids[0]} deploys functions/{d}, which does not exist (no functions/{d}/Cargo.toml)")

    table_lid = next((k for k, r in res.items() if r.get("Type") == "AWS::DynamoDB::Table"), None)
    bucket_lids = {k for k, r in res.items() if r.get("Type") == "AWS::S3::Bucket"}
    queue_lids = {k for k, r in res.items() if r.get("Type") == "AWS::SQS::Queue"}
    key_lids = {k for k, r in res.items() if r.get("Type") == "AWS::KMS::Key"}
    fn_of_integration = {}
    for k, r in res.items():
        if r.get("Type") == "AWS::ApiGatewayV2::Integration":
            fn_of_integration[k] = ref_target(r.get("Properties", {}).get("IntegrationUri"))
    api_routes: dict[str, list[tuple[str, str, str]]] = {}
    for k, r in res.items():
        p = r.get("Properties", {})
        if r.get("Type") == "AWS::ApiGatewayV2::Route":
            key = p.get("RouteKey", "")
            fn = fn_of_integration.get(ref_target(p.get("Target")) or "")
            if key == "$default" or " " not in key:
                add(f"routes: {k}: route key {key!r} is not METHOD /path (a catch-all hides unknown routes)")
                continue
            method, path = key.split(" ", 1)
            if len(path) > 1 and path.endswith("/"):
                # An HTTP API refuses such a key; the key without the slash
                # serves both /x and /x/ (the Lambda sees the path as sent).
                add(f"routes: {k}: route key {key!r} ends in '/', which an HTTP API refuses "
                    f"({method} {path.rstrip('/')} serves both)")
            api_routes.setdefault(fn or "?", []).append((method, path, k))
        if r.get("Type") == "AWS::Serverless::Function":
            for ename, e in p.get("Events", {}).items():
                if e.get("Type") in ("HttpApi", "Api"):
                    ep = e.get("Properties", {})
                    api_routes.setdefault(k, []).append((ep.get("Method", "ANY").upper(), ep.get("Path", "?"), f"{k}.{ename}"))

    for crate_dir, lids in sorted(by_crate.items()):
        if crate_dir not in fn_crates or len(lids) != 1:
            continue
        lid = lids[0]
        r = res[lid]
        props = r.get("Properties", {})
        cname = fn_crates[crate_dir]
        binary = r.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
        if binary and binary not in crates[cname].bins:
            add(f"functions: {lid}: BuildProperties.Binary {binary!r} is not a [[bin]] of functions/{crate_dir}")
        facts = code_facts(crates, cname)

        # ---- env
        env = dict(globals_env)
        env.update(props.get("Environment", {}).get("Variables", {}))
        read_anywhere |= facts.env
        for var in sorted(facts.env):
            if var.startswith("IISBULK_") and var not in settings:
                add(f"settings: {lid} ({crate_dir}) reads {var}, which {SETTINGS_RS}'s SETTINGS does not list")
            if var in env or LAMBDA_PROVIDED.match(var) or var in not_deployed:
                continue
            add(f"env: {lid} ({crate_dir}) reads {var}, which its Environment does not set")
        for var in sorted(env):
            if var not in facts.env:
                add(f"env: {lid} ({crate_dir}) sets {var}, which its code never reads")
            if var in not_deployed:
                add(f"env: {lid} ({crate_dir}) sets {var}: {not_deployed[var]}")

        # ---- iam
        stream_events = [e for e in props.get("Events", {}).values() if e.get("Type") == "DynamoDB"]
        code_actions = iam_actions_of(facts) - set(NEVER_CALLED.get(crate_dir, {}))
        allowed = set(code_actions) | set(LOG_WRITE)
        if stream_events:
            allowed |= set(STREAM_READ)
            if any(e.get("Properties", {}).get("DestinationConfig", {}).get("OnFailure", {}).get("Type") == "SQS"
                   for e in stream_events):
                allowed.add("sqs:SendMessage")
                if any(res[q].get("Properties", {}).get("KmsMasterKeyId") for q in queue_lids):
                    allowed |= {"kms:GenerateDataKey", "kms:Decrypt"}
        bucket_kms = any(
            "KMSMasterKeyID" in json.dumps(res[b].get("Properties", {}).get("BucketEncryption", {})) for b in bucket_lids)
        if bucket_kms and "s3:PutObject" in code_actions:
            allowed |= {"kms:GenerateDataKey", "kms:Decrypt"}
        if bucket_kms and "s3:GetObject" in code_actions:
            allowed.add("kms:Decrypt")
        role_lid = ref_target(props.get("Role"))
        if props.get("Policies") or not role_lid or role_lid not in res:
            add(f"iam: {lid} must use its own AWS::IAM::Role (Role: !GetAtt <X>.Arn), not SAM Policies")
            continue
        others = [k for k, rr in res.items() if rr.get("Type") == "AWS::Serverless::Function" and k != lid
                  and ref_target(rr.get("Properties", {}).get("Role")) == role_lid]
        if others:
            add(f"iam: role {role_lid} is shared by {lid} and {', '.join(others)}")
        role = res[role_lid].get("Properties", {})
        if role.get("ManagedPolicyArns"):
            add(f"iam: {role_lid} attaches managed policies; their actions cannot be checked")
        log_group = ref_target(props.get("LoggingConfig", {}).get("LogGroup"))
        granted = set()
        for pol in role.get("Policies", []):
            for st in statements_of(pol.get("PolicyDocument", {})):
                if st.get("Effect") != "Allow":
                    continue
                if "NotAction" in st or "NotResource" in st:
                    add(f"iam: {role_lid}/{pol.get('PolicyName')}: NotAction/NotResource is not least privilege")
                actions = as_list(st.get("Action", []))
                resources = as_list(st.get("Resource", []))
                for a in actions:
                    granted.add(a)
                    if "*" in a:
                        add(f"iam: {role_lid} grants wildcard action {a}")
                    elif a not in allowed:
                        add(f"iam: {role_lid} grants {a}, which {lid}'s code never calls")
                    service = a.split(":")[0]
                    for rsc in resources:
                        if rsc == "*":
                            if a not in WILDCARD_RESOURCE_OK:
                                add(f"iam: {role_lid} grants {a} on every resource (\"*\")")
                            continue
                        target = ref_target(rsc)
                        want = {"dynamodb": {table_lid}, "s3": bucket_lids, "sqs": queue_lids, "kms": key_lids,
                                "logs": {log_group}}.get(service)
                        if want is not None and target not in want:
                            add(f"iam: {role_lid} grants {a} on {json.dumps(rsc)}, not on this stack's "
                                f"{'/'.join(sorted(x for x in want if x)) or service} resource")
        for a in sorted(code_actions - granted):
            add(f"iam: {lid}'s code can call {a}, which {role_lid} does not grant")
        if stream_events:
            for a in STREAM_READ:
                if a not in granted:
                    add(f"iam: {lid} consumes the stream but {role_lid} does not grant {a}")
        for a in LOG_WRITE:
            if a not in granted:
                add(f"iam: {role_lid} does not grant {a} (its logs would be lost)")

        # ---- routes
        findings.extend(f"routes: {p}" for p in facts.route_problems)
        mine = api_routes.get(lid, [])
        for method, path in facts.routes:
            if not any(m in (method, "ANY") and path_covers(p, path) for m, p, _ in mine):
                owner = [k for f_, rs in api_routes.items() for m, p, k in rs
                         if m in (method, "ANY") and path_covers(p, path)]
                extra = f" (it goes to {', '.join(owner)} instead)" if owner else ""
                add(f"routes: {method} {path} of functions/{crate_dir} has no API route to {lid}{extra}")
        for m, p, k in mine:
            if not any(m in (method, "ANY") and path_covers(p, path) for method, path in facts.routes):
                add(f"routes: {k} ({m} {p}) matches no route of functions/{crate_dir}")

        # ---- streams
        cases = STREAM_CASES.get(crate_dir)
        if stream_events and cases is None:
            add(f"streams: {lid} consumes the stream but STREAM_CASES has no records for {crate_dir}")
        if cases is not None and not stream_events:
            add(f"streams: {lid} has no DynamoDB stream event, but {crate_dir} consumes the stream")
        for e in stream_events:
            ep = e.get("Properties", {})
            if ref_target(ep.get("Stream")) != table_lid:
                add(f"streams: {lid} reads a stream other than {table_lid}'s")
            if "ReportBatchItemFailures" not in ep.get("FunctionResponseTypes", []):
                add(f"streams: {lid} does not report partial batch failures (ReportBatchItemFailures)")
            if not ep.get("BisectBatchOnFunctionError"):
                add(f"streams: {lid} does not bisect a failing batch")
            if not isinstance(ep.get("MaximumRetryAttempts"), int) or ep["MaximumRetryAttempts"] < 0:
                add(f"streams: {lid} retries without bound (MaximumRetryAttempts)")
            if not isinstance(ep.get("MaximumRecordAgeInSeconds"), int) or ep["MaximumRecordAgeInSeconds"] < 0:
                add(f"streams: {lid} keeps records without age bound (MaximumRecordAgeInSeconds)")
            if ep.get("DestinationConfig", {}).get("OnFailure", {}).get("Type") != "SQS":
                add(f"streams: {lid} has no SQS on-failure destination")
            filters = ep.get("FilterCriteria", {}).get("Filters", [])
            if not filters:
                add(f"streams: {lid} has no FilterCriteria (it would be invoked for every change)")
                continue
            try:
                patterns = [json.loads(fl["Pattern"]) for fl in filters]
            except (KeyError, TypeError, json.JSONDecodeError) as ex:
                add(f"streams: {lid}: a filter pattern is not JSON: {ex}")
                continue
            for (ev, pk, sk, acted) in cases or []:
                record = {"eventName": ev, "dynamodb": {"Keys": {"pk": {"S": pk}, "sk": {"S": sk}}}}
                passes = any(pattern_matches(p, record) for p in patterns)
                if passes != acted:
                    add(f"streams: {lid}'s filters {'drop' if acted else 'let through'} {ev} {pk} / {sk}, "
                        f"which {crate_dir} {'acts on' if acted else 'ignores'}")

    # API routes to no known function
    for fn, rs in api_routes.items():
        if fn not in res or res[fn].get("Type") != "AWS::Serverless::Function":
            for m, p, k in rs:
                add(f"routes: {k} ({m} {p}) targets no function of this template")

    for var in sorted(set(settings) - read_anywhere):
        add(f"settings: {SETTINGS_RS}'s SETTINGS lists {var}, which no function reads")

    findings.extend(check_table(root, res.get(table_lid, {}) if table_lid else {}))
    findings.extend(check_policy(root, t))
    return findings


def segments(path: str) -> list[tuple[str, str]]:
    """A path's segments; a trailing "/" is not one (API Gateway routes
    /x/ by the route /x, so it covers a router's /x and /x/ alike)."""
    out = []
    for s in path.strip("/").split("/"):
        if re.fullmatch(r"\{\*\w+\}|\{\w+\+\}", s):
            out.append(("greedy", s))
        elif re.fullmatch(r"\{\w+\}", s):
            out.append(("var", s))
        else:
            out.append(("lit", s))
    return out


def path_covers(api_path: str, router_path: str) -> bool:
    """Whether an API Gateway route path forwards every request of an axum path."""
    a, r = segments(api_path), segments(router_path)
    for i, (kind, val) in enumerate(a):
        if kind == "greedy":
            return i < len(r)
        if i >= len(r):
            return False
        rk, rv = r[i]
        if kind == "lit" and (rk != "lit" or rv != val):
            return False
        if kind == "var" and rk == "greedy":
            return False
    return len(a) == len(r)


def check_table(root: Path, table: dict) -> list[str]:
    out = []
    if not table:
        return ["table: the template has no AWS::DynamoDB::Table"]
    p = table.get("Properties", {})
    ddb = root / "shared" / "store-dynamodb" / "src"
    consts = dict(re.findall(r'const\s+([A-Z0-9_]+)\s*:\s*&str\s*=\s*"([^"]*)"', (ddb / "attrs.rs").read_text()))
    setup = (ddb / "setup.rs").read_text()

    def c(n: str) -> str:
        return consts.get(n, n)

    want_keys = [(c(a), {"Hash": "HASH", "Range": "RANGE"}[k])
                 for a, k in re.findall(r"\.key_schema\(key\(([A-Z0-9_]+),\s*KeyType::(\w+)\)", setup)]
    have_keys = [(k["AttributeName"], k["KeyType"]) for k in p.get("KeySchema", [])]
    if want_keys != have_keys:
        out.append(f"table: KeySchema {have_keys} but create_table_for_tests uses {want_keys}")
    want_gsis = {n: [(c(a), "HASH"), (c(b), "RANGE")] for n, a, b in
                 re.findall(r'gsi\("(\w+)",\s*([A-Z0-9_]+),\s*([A-Z0-9_]+)\)', setup)}
    have_gsis = {g["IndexName"]: [(k["AttributeName"], k["KeyType"]) for k in g["KeySchema"]]
                 for g in p.get("GlobalSecondaryIndexes", [])}
    if want_gsis != have_gsis:
        out.append(f"table: GSIs {have_gsis} but create_table_for_tests creates {want_gsis}")
    for g in p.get("GlobalSecondaryIndexes", []):
        if "ProjectionType::All" in setup and g.get("Projection", {}).get("ProjectionType") != "ALL":
            out.append(f"table: GSI {g['IndexName']} must project ALL")
    attrs = {a["AttributeName"]: a["AttributeType"] for a in p.get("AttributeDefinitions", [])}
    want_attrs = {c(x): "S" for x in re.search(r"\[([A-Z0-9_, ]+)\]\s*\.into_iter\(\)\s*\.map\(attr\)", setup)
                  .group(1).replace(" ", "").split(",")}
    if attrs != want_attrs:
        out.append(f"table: AttributeDefinitions {attrs} but the store defines {want_attrs}")
    if "StreamViewType::NewAndOldImages" in setup and \
            p.get("StreamSpecification", {}).get("StreamViewType") != "NEW_AND_OLD_IMAGES":
        out.append("table: the stream must carry NEW_AND_OLD_IMAGES (the functions read both images)")
    if "BillingMode::PayPerRequest" in setup and p.get("BillingMode") != "PAY_PER_REQUEST":
        out.append("table: billing must be PAY_PER_REQUEST (on-demand)")
    ttl = re.search(r"\.attribute_name\(([A-Z0-9_]+)\)", setup)
    tspec = p.get("TimeToLiveSpecification", {})
    if ttl and (tspec.get("AttributeName") != c(ttl.group(1)) or tspec.get("Enabled") is not True):
        out.append(f"table: TTL must be enabled on {c(ttl.group(1))!r}")
    if p.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") is not True:
        out.append("table: point-in-time recovery is off")
    sse = p.get("SSESpecification", {})
    if not (sse.get("SSEEnabled") is True and sse.get("SSEType") == "KMS" and sse.get("KMSMasterKeyId")):
        out.append("table: not encrypted with the stack's KMS key")
    if p.get("DeletionProtectionEnabled") is not True:
        out.append("table: deletion protection is off")
    return out


def policy_texts(t: dict) -> list[tuple[str, object]]:
    """(function, IISBULK_JURISDICTION_POLICY value) of every function."""
    out = []
    for k, r in t.get("Resources", {}).items():
        v = r.get("Properties", {}).get("Environment", {}).get("Variables", {}).get("IISBULK_JURISDICTION_POLICY")
        if r.get("Type") == "AWS::Serverless::Function" and v is not None:
            out.append((k, v))
    return out


def samconfig_envs(root: Path) -> dict[str, dict]:
    path = root / "infra" / "samconfig.toml"
    if not path.exists():
        return {}
    cfg = tomllib.loads(path.read_text())
    envs = {}
    for env, cmds in cfg.items():
        if not isinstance(cmds, dict):
            continue
        over = cmds.get("deploy", {}).get("parameters", {}).get("parameter_overrides")
        if over is None:
            continue
        items = over if isinstance(over, list) else re.findall(r'(\w+=(?:"[^"]*"|\S+))', over)
        params = {}
        for it in items:
            k, _, v = it.partition("=")
            params[k] = v.strip('"')
        envs[env] = params
    return envs


def check_policy(root: Path, t: dict) -> list[str]:
    out = []
    texts = policy_texts(t)
    if not texts:
        return out
    first = texts[0][1]
    for k, v in texts[1:]:
        if v != first:
            out.append(f"policy: {k} gets a different IISBULK_JURISDICTION_POLICY from {texts[0][0]}")
    shipped = tomllib.loads((root / "policy" / "jurisdiction.toml").read_text())
    defaults = parameter_defaults(t)
    conds = t.get("Conditions", {})
    try:
        rendered = tomllib.loads(evaluate(first, defaults, conds))
    except (ValueError, KeyError, tomllib.TOMLDecodeError) as e:
        return out + [f"policy: the template's default policy does not render as TOML: {e}"]
    if rendered != shipped:
        out.append(f"policy: with its defaults the template's policy is {rendered}, "
                   f"not policy/jurisdiction.toml {shipped}")
    for env, over in samconfig_envs(root).items():
        params = dict(defaults)
        for k, v in over.items():
            if k not in params:
                out.append(f"policy: samconfig [{env}] sets unknown parameter {k}")
                continue
            params[k] = [x.strip() for x in v.split(",")] if t["Parameters"][k].get("Type") == "CommaDelimitedList" else v
        try:
            doc = tomllib.loads(evaluate(first, params, conds))
        except (ValueError, KeyError, tomllib.TOMLDecodeError) as e:
            out.append(f"policy: samconfig [{env}] gives a policy that is not TOML: {e}")
            continue
        if set(doc) != set(shipped) or any(set(doc[s]) - set(shipped[s]) - {"identifier_type", "assigning_authority",
                                                                    "patient_identifier_type",
                                                                    "patient_assigning_authority"}
                                           for s in doc if isinstance(doc[s], dict)):
            out.append(f"policy: samconfig [{env}] gives options policy/jurisdiction.toml does not have: {doc}")
        for k, p in t["Parameters"].items():
            if "AllowedValues" in p and k in over and over[k] not in [str(x) for x in p["AllowedValues"]]:
                out.append(f"policy: samconfig [{env}] sets {k}={over[k]}, not one of {p['AllowedValues']}")
            if "AllowedPattern" in p and k in over and not re.fullmatch(p["AllowedPattern"], over[k]):
                out.append(f"policy: samconfig [{env}] sets {k}={over[k]}, which does not match {p['AllowedPattern']}")
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    here = Path(__file__).resolve().parent.parent
    ap.add_argument("--root", type=Path, default=here)
    ap.add_argument("--template", type=Path, default=None)
    args = ap.parse_args(argv)
    template = args.template or args.root / "infra" / "template.yaml"
    findings = check(args.root, template)
    for f in findings:
        print(f"FINDING {f}")
    print(f"check_infra_consistency.py: {len(findings)} finding(s) in {template}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
