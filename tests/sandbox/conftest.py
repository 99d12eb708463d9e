from __future__ import annotations

import os
import sys

import pytest

# set before any zygote starts: candidates must never see it
os.environ.setdefault("PLUMCODE_TEST_SECRET", "s3cr3t-" + os.urandom(6).hex())

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox needs Linux")


@pytest.fixture(scope="session", autouse=True)
def _stop_pools():
    yield
    from plumcode.sandbox import shutdown
    shutdown()
