"""The PLUM loop: tests -> (sample -> execute -> preferences -> train -> evaluate) x rounds."""

from plumcode.loop.config import RunConfig, load_config
from plumcode.loop.runner import Runner, resume, run
from plumcode.loop.state import RunState

__all__ = ["RunConfig", "RunState", "Runner", "load_config", "resume", "run"]
