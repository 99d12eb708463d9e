"""Test synthesis (PLUM stage 1): an LM writes unit tests, plumcode parses, validates and measures them.

Library entry points: :func:`synthesize_tests` (generate + validate, resumable),
:func:`problems_with_synthetic_tests` (tests.jsonl -> Problems the loop executes samples against)
and :mod:`plumcode.testgen.quality` (how good the kept tests are against ground truth).
"""

from plumcode.testgen.synth import (
    VALIDATIONS,
    Generated,
    TestgenConfig,
    funnel_totals,
    generate,
    generated_from_record,
    problems_with_synthetic_tests,
    read_records,
    synthesize_tests,
    validate,
)

__all__ = ["VALIDATIONS", "Generated", "TestgenConfig", "funnel_totals", "generate", "generated_from_record",
           "problems_with_synthetic_tests", "read_records", "synthesize_tests", "validate"]
