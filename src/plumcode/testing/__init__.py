"""Helpers for tests and examples (tiny models built on the spot, so no download is needed)."""
