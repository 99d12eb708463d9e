"""Problem records and benchmark/instruction-set loaders."""

from plumcode.problems.schema import Problem, TestCase, read_problems, write_problems

__all__ = ["Problem", "TestCase", "read_problems", "write_problems"]
