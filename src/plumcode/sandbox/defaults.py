"""The sandbox's default limits, defined once.

Every entry point (``SandboxConfig``, ``plumcode execute``/``evaluate``, the loop's
``SandboxLimits``, the Ray CLI) takes its default from here, so the loop's evaluation and
``plumcode evaluate`` judge the same samples under the same limits. This module imports nothing,
so configuration code can use it without loading the sandbox.
"""

DEFAULT_MEMORY_MB = 4096  # RLIMIT_AS per candidate; 1024 made some canonical solutions (numpy-sized maps) fail
DEFAULT_TIMEOUT_S = 5.0  # per test, when the test has no limit of its own
DEFAULT_JOB_TIMEOUT_S = 120.0  # total wall time per sample
