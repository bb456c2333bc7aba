#!/usr/bin/env python3
"""Validate every golden example in Protocol/examples against its JSON Schema (draft 2020-12).

Usage: python3 Protocol/check.py        (needs `pip install jsonschema`, 4.18 or newer)

An example named `<name>.<variant>.json` is checked against `schemas/<name>.schema.json`.
As a guard against schemas that accept anything, every schema with required fields must also
reject the empty object. Exit status 0 when everything passes, 1 otherwise.
"""
import json
import sys
from pathlib import Path

try:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
except ImportError:
    sys.exit("check.py: needs the jsonschema package (pip install 'jsonschema>=4.18')")

HERE = Path(__file__).resolve().parent


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def main():
    schemas = {p.name[: -len(".schema.json")]: load(p) for p in sorted((HERE / "schemas").glob("*.schema.json"))}
    registry = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas.values()
    )
    validators = {}
    for name, schema in schemas.items():
        Draft202012Validator.check_schema(schema)
        validators[name] = Draft202012Validator(schema, registry=registry)

    failures = []
    checked = 0
    covered = set()
    for path in sorted((HERE / "examples").glob("*.json")):
        name = path.name.split(".", 1)[0]
        if name not in validators:
            failures.append(f"{path.name}: no schema named {name}.schema.json")
            continue
        covered.add(name)
        for error in validators[name].iter_errors(load(path)):
            where = "/".join(str(p) for p in error.absolute_path) or "(body)"
            failures.append(f"{path.name}: {where}: {error.message}")
        checked += 1

    for name, schema in schemas.items():
        if name == "common":
            continue
        if name not in covered:
            failures.append(f"schemas/{name}.schema.json: no example")
        if schema.get("required") and validators[name].is_valid({}):
            failures.append(f"schemas/{name}.schema.json: accepts the empty object")

    for line in failures:
        print("FAIL", line)
    print(f"check.py: {checked} examples against {len(schemas)} schemas, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
