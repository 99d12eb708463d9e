"""Makes ``tiny_coder`` (the tiny model taught a run's prompts) importable by the loop tests."""

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
