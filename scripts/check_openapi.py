#!/usr/bin/env python3
"""Validates the console API's OpenAPI document (functions/console/src/openapi.json)
against the OpenAPI 3.1 schema with an independent validator
(openapi-spec-validator). scripts/test runs it; exits 1 naming the problem."""
import json
import pathlib
import sys

from openapi_spec_validator import validate

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "functions" / "console" / "src" / "openapi.json"]


def main() -> int:
    failed = 0
    for path in DOCUMENTS:
        try:
            validate(json.loads(path.read_text()))
            print(f"{path.relative_to(ROOT)}: valid OpenAPI")
        except Exception as e:  # the validator's errors say where
            print(f"{path.relative_to(ROOT)}: {e}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
