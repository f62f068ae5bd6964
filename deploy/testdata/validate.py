"""Validates JSON documents against a JSON Schema with Python's jsonschema, a second
validator independent of the Go one the deploy tests use (deploy/schema_test.go).

Usage: python3 validate.py SCHEMA < documents.json
documents.json is a JSON array of strings, each a document's text; the answer on stdout
is a JSON array of the same length: null where the document validates, else the reason.
A text that is not JSON is refused with its parse error.
"""
import json
import sys

import jsonschema


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        schema = json.load(f)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator = cls(schema)
    verdicts = []
    for text in json.load(sys.stdin):
        try:
            doc = json.loads(text)
        except ValueError as e:
            verdicts.append("not JSON: %s" % e)
            continue
        err = jsonschema.exceptions.best_match(validator.iter_errors(doc))
        verdicts.append(None if err is None else err.message)
    json.dump(verdicts, sys.stdout)


main()
