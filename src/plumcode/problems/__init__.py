"""Problem records and benchmark/instruction-set loaders."""

from plumcode.problems.decontam import decontaminate
from plumcode.problems.loaders import BENCHMARKS, load_benchmark, load_instructions
from plumcode.problems.schema import Problem, TestCase, read_problems, write_problems

__all__ = ["BENCHMARKS", "Problem", "TestCase", "decontaminate", "load_benchmark", "load_instructions",
           "read_problems", "write_problems"]
