"""plumcode: on-policy preference learning for code LMs driven by synthetic tests (PLUM)."""

__version__ = "0.1.0"
