from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

import pytest

# set before any zygote starts: candidates must never see it
os.environ.setdefault("PLUMCODE_TEST_SECRET", "s3cr3t-" + os.urandom(6).hex())

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox needs Linux")

@pytest.fixture(scope="session", autouse=True)
def _stop_pools():
    yield
    from plumcode.sandbox import shutdown
    shutdown()


def _denied() -> set[str]:
    return {x for x in os.environ.get("PLUMCODE_SANDBOX_DENY", "").replace(",", " ").split() if x}


def namespaces_expected() -> bool:
    """Must the sandbox reach the namespaces level here? Judged without the sandbox's code: if
    util-linux ``unshare`` can make the namespaces it needs (user namespace too when not root),
    so must the sandbox, unless the test run denies them (PLUMCODE_SANDBOX_DENY)."""
    denied = _denied()
    if denied & {"namespaces", "mount"} or ("userns" in denied and os.geteuid() != 0):
        return False
    if shutil.which("unshare") is None:
        pytest.skip("util-linux unshare is not installed: cannot tell independently whether namespaces work")
    user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    cmd = ["unshare", *user, "--pid", "--fork", "--mount", "--mount-proc", "--net", "--ipc", "--uts", "true"]
    return subprocess.run(cmd, capture_output=True, timeout=30).returncode == 0


def expected_prefix(isolation: str) -> str:
    if isolation == "process" or isolation == "no-namespaces":
        return "process"
    if isolation == "namespaces":
        return "namespaces"
    return "namespaces" if namespaces_expected() else "process"


@dataclass(frozen=True)
class Iso:
    name: str  # the ISOLATIONS parameter
    isolation: str  # SandboxConfig.isolation
    expected: str  # the level prefix the sandbox must report


@pytest.fixture
def iso(request, monkeypatch) -> Iso:
    """Use with ``@pytest.mark.parametrize("iso", ["auto", "process", "no-namespaces"],
    indirect=True)``. "no-namespaces" is auto on a host made to refuse every namespace (as
    containers often do), so the fallback is exercised whoever runs the tests."""
    name = request.param
    only = os.environ.get("PLUMCODE_SANDBOX_TEST_LEVELS")
    if only and name not in only.replace(",", " ").split():
        pytest.skip(f"PLUMCODE_SANDBOX_TEST_LEVELS={only}")
    expected = expected_prefix(name)
    if name == "no-namespaces":
        monkeypatch.setenv("PLUMCODE_SANDBOX_DENY", " ".join(sorted(_denied() | {"namespaces"})))
        return Iso(name, "auto", expected)
    return Iso(name, name, expected)
