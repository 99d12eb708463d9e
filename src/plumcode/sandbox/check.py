"""``plumcode sandbox check``: what the sandbox enforces on *this* machine, shown by running it.

It starts the sandbox as ``plumcode execute`` would, prints the isolation level reached (and why
a stronger one was not), what each layer enforces here (network, filesystem writes and reads,
process count, memory, CPU, pid visibility, signals), then runs a small built-in set of attacks
and legitimate programs and checks the host afterwards. It exits 1 when any verdict is wrong (an
attack passed or a legitimate program failed) or the host was touched, so a user on a new
cluster runs it first and a CI job can run it too.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from plumcode.problems.schema import Problem, TestCase
from plumcode.sandbox._master import SandboxConfig, execute_local, isolation_report, shutdown
from plumcode.sandbox.types import Sample


@dataclass(frozen=True)
class Program:
    name: str
    problem: str  # key into the problems built by :func:`builtin_problems`
    code: str
    legit: bool  # True: must pass; False: an attack, must not pass
    what: str = ""
    needs_signals_contained: bool = False


_SHA = ("import hashlib\n"
        "def f(p):\n    with open(p, 'rb') as fh:\n        return hashlib.sha256(fh.read()).hexdigest()\n")
_LIST = "import os\ndef f(p):\n    return sorted(os.listdir(p))\n"

# Looks for the harness's input files the way a reward-hacking policy would: command lines and
# working directories of every process, temp and home directories, a bounded walk from /.
DISCOVER = r'''
import glob, os, re

def _paths():
    try:
        pids = [p for p in os.listdir('/proc') if p.isdigit()]
    except OSError:
        pids = []
    for pid in pids:
        try:
            cwd = os.readlink('/proc/%s/cwd' % pid)
        except OSError:
            cwd = None
        try:
            args = open('/proc/%s/cmdline' % pid, 'rb').read().split(b'\0')
        except OSError:
            args = []
        for a in args:
            a = a.decode(errors='ignore')
            if a.endswith('.jsonl'):
                yield os.path.join(cwd or '/', a)
        if cwd:
            try:
                for n in os.listdir(cwd):
                    yield os.path.join(cwd, n)
            except OSError:
                pass
    for pat in ('/tmp/*', '/tmp/*/*', '/tmp/*/*/*', '/tmp/*/*/*/*', '/var/tmp/*/*', '/home/*/*', '/home/*/*/*',
                '/root/*', '/root/*/*', os.path.expanduser('~') + '/*', '/work/*/*', '/work/*/*/*'):
        yield from glob.glob(pat)
    n = 0
    for root, dirs, files in os.walk('/'):
        dirs[:] = [d for d in dirs if d not in ('proc', 'sys', 'dev', 'usr', 'lib', 'lib64', 'bin', 'sbin', 'boot',
                                                'etc', 'snap', 'var', 'run') and not d.startswith('.')]
        if root.count('/') >= 5:
            dirs[:] = []
        for fn in files:
            if fn.endswith(('.jsonl', '.json')):
                yield os.path.join(root, fn)
        n += 1
        if n > 20000:
            break

def f(n):
    want = re.compile(r'PLUMCODE_EXPECTED_[0-9a-f]{12}_%d\b' % n)
    for p in _paths():
        try:
            if not os.path.isfile(p) or os.path.getsize(p) > 5_000_000:
                continue
            with open(p, errors='ignore') as fh:
                m = want.search(fh.read())
        except OSError:
            continue
        if m:
            return m.group()
    return 'nope'
'''

LEGIT = [
    Program("add", "add", "def add(a, b):\n    return a + b\n", True),
    Program("lazy_imports", "add", "def add(a, b):\n    import calendar, zlib, decimal, fractions, sqlite3\n"
            "    zlib.crc32(b'x'); sqlite3.connect(':memory:').close()\n"
            "    return int(decimal.Decimal(a)) + int(fractions.Fraction(b)) + calendar.MONDAY\n", True,
            "stdlib modules the zygote did not preload (files and shared libraries read at run time)"),
    Program("threads", "add", "import threading\ndef add(a, b):\n    out = []\n"
            "    ts = [threading.Thread(target=out.append, args=(a,)) for _ in range(4)]\n"
            "    [t.start() for t in ts]; [t.join() for t in ts]\n    return out[0] + b\n", True),
    Program("recursion", "add", "import sys\nsys.setrecursionlimit(10000)\n"
            "def d(n):\n    return 0 if n == 0 else 1 + d(n - 1)\ndef add(a, b):\n    return a + b + d(3000) - 3000\n",
            True),
    Program("temp_file", "add", "import os, tempfile\ndef add(a, b):\n    with tempfile.NamedTemporaryFile('w+') as fh:\n"
            "        fh.write(str(a + b)); fh.flush(); fh.seek(0)\n        return int(fh.read())\n", True,
            "writes and reads back a file in its own temp dir"),
    Program("stdio", "stdio", "a, b = map(int, input().split())\nprint(a + b)\n", True),
    Program("reads_stdlib", "read_stdlib", _SHA, True, "reads a standard-library file (the runtime stays readable)"),
]

ATTACKS = [
    Program("sys_exit", "secret", "import sys\nsys.exit(0)\n", False, "exits 0 before any test"),
    Program("always_equal", "secret", "class E:\n    def __eq__(self, o): return True\n"
            "    __hash__ = object.__hash__\ndef f(n):\n    return E()\n", False, "an object equal to everything"),
    Program("discover_harness", "secret", DISCOVER, False,
            "finds the harness's input files through /proc/*/cmdline, /proc/*/cwd, temp and home dirs, a walk of /"),
    Program("read_harness_file", "read_harness", _SHA, False, "reads a problems file next to the harness"),
    Program("read_checkout", "read_checkout", _SHA, False, "reads plumcode's own source (the checkout)"),
    Program("list_home", "list_home", _LIST, False, "lists the user's home directory"),
    Program("tcp_connect", "net", "import socket\ndef f(port):\n    s = socket.create_connection(('127.0.0.1', port), 2)\n"
            "    s.sendall(b'pwned')\n    return 'connected'\n", False, "connects to a TCP listener of the host"),
    Program("write_outside", "write", "def f(p):\n    open(p, 'w').write('x')\n    return 'written'\n", False,
            "writes a file outside its temp dir"),
    Program("linger", "secret", "import os, time\ndef f(n):\n    if os.fork() == 0:\n        os.setsid()\n"
            "        if os.fork() == 0:\n            time.sleep(300)\n        os._exit(0)\n    return 'nope'\n", False,
            "leaves a setsid'd grandchild behind"),
    Program("fork_bomb", "secret", "import os\ndef f(n):\n    for _ in range(500):\n        try:\n            os.fork()\n"
            "        except OSError:\n            break\n    return 'nope'\n", False),
    Program("memory_bomb", "secret", "def f(n):\n    return bytearray(10**11)\n", False),
    Program("busy_loop", "secret", "def f(n):\n    while True:\n        pass\n", False),
    Program("kill_parent", "secret", "import os\ndef f(n):\n    for p in (os.getppid(), 1):\n        try:\n"
            "            os.kill(p, 9)\n        except OSError:\n            pass\n    try:\n        os.kill(-1, 9)\n"
            "    except OSError:\n        pass\n    return 'nope'\n", False, "kills its parent, pid 1 and everything it may",
            needs_signals_contained=True),
]


def builtin_problems(workdir: str, port: int, mark: str) -> dict[str, Problem]:
    """Problems whose answers an attack can only get by breaking out; files are made in
    ``workdir`` (a fresh temp dir the caller removes)."""
    import plumcode

    harness = os.path.join(workdir, "problems.jsonl")
    with open(harness, "w") as fh:
        fh.write(json.dumps({"id": "secret", "tests": [{"kind": "call", "args": [i], "expected": f"{mark}{i}"}
                                                      for i in (1, 2)]}) + "\n")
    checkout_file = os.path.abspath(plumcode.__file__)
    home = os.path.expanduser("~")

    def sha(p: str) -> str:
        with open(p, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()

    def listing(p: str) -> list[str]:
        try:
            return sorted(os.listdir(p))
        except OSError:
            return ["<unreadable to the checker too>"]

    def one(pid: str, entry: str, args: tuple, expected: object) -> Problem:
        return Problem(id=pid, instruction="sandbox check", entry_point=entry,
                       tests=[TestCase("call", args=args, expected=expected)])

    return {
        "add": Problem(id="add", instruction="sandbox check", entry_point="add",
                       tests=[TestCase("call", args=(2, 3), expected=5), TestCase("call", args=(-4, 10), expected=6)]),
        "stdio": Problem(id="stdio", instruction="sandbox check", entry_point=None,
                         tests=[TestCase("stdio", input="2 3\n", output="5\n")]),
        "read_stdlib": one("read_stdlib", "f", (os.__file__,), sha(os.__file__)),
        "secret": Problem(id="secret", instruction="sandbox check", entry_point="f",
                          tests=[TestCase("call", args=(i,), expected=f"{mark}{i}") for i in (1, 2)]),
        "read_harness": one("read_harness", "f", (harness,), sha(harness)),
        "read_checkout": one("read_checkout", "f", (checkout_file,), sha(checkout_file)),
        "list_home": one("list_home", "f", (home,), listing(home)),
        "net": one("net", "f", (port,), "connected"),
        "write": one("write", "f", (os.path.join(workdir, "written-by-candidate"),), "written"),
    }


def layers(r: dict, cfg: SandboxConfig) -> list[tuple[str, str, bool]]:
    """(layer, what it enforces here, enforced?) from a zygote report."""
    ns = r["level"].startswith("namespaces")
    ll, sc, uid = r.get("landlock_abi", 0), r.get("seccomp", False), r.get("uid_drop", False)
    out: list[tuple[str, str, bool]] = []
    net = []
    if ns:
        net.append("own network namespace (no interface but a down loopback)")
    if sc:
        net.append("seccomp: no socket can be created (socketpair only)")
    if ll >= 4:
        net.append("landlock: no TCP bind/connect")
    out.append(("network", "; ".join(net) or "NOT ENFORCED: candidates can open network connections", bool(net)))
    if ns:
        w = f"read-only view; writes only to its private tmpfs /tmp ({cfg.tmp_mb} MiB)"
    elif ll:
        w = (f"landlock: writes only in its own temp dir (size watched, {cfg.tmp_mb} MiB; files <= {cfg.fsize_mb} "
             "MiB)")
    elif uid:
        w = "PARTIAL: a per-sample uid can still write world-writable paths (no landlock)"
    else:
        w = "NOT ENFORCED: candidates can write wherever this user can (no namespaces, no landlock)"
    out.append(("filesystem writes", w, ns or bool(ll)))
    roots = ", ".join(r.get("read_roots", []))
    hidden = ", ".join(r.get("hidden", [])) or "-"
    if ns:
        rd = f"mount view holding only: {roots} (hidden: {hidden}) + its own /tmp and /proc"
        if ll:
            rd += "; landlock read rules on top"
    elif ll:
        rd = f"landlock: only {roots} (hidden: {hidden}) + its own temp dir; stat() of other paths still works"
    elif uid:
        rd = "PARTIAL: a per-sample uid reads every world-readable file of the host (run dirs, benchmark data)"
    else:
        rd = "NOT ENFORCED: candidates can read every file this user can (run dirs, benchmark data, expected values)"
    out.append(("filesystem reads", rd, ns or bool(ll)))
    if ns and not r.get("root"):
        pc = f"RLIMIT_NPROC={cfg.nproc} per candidate (own user namespace); its pid namespace dies with it"
    elif ns:
        pc = f"RLIMIT_NPROC={cfg.nproc} per sample uid; its pid namespace dies with it"
    elif uid:
        pc = f"RLIMIT_NPROC={cfg.nproc} per sample uid; process group, subreaper and uid sweeps after it"
    else:
        pc = (f"RLIMIT_NPROC = this user's current tasks + {cfg.nproc} (shared with the user's other processes); "
              "process group and subreaper sweep after it")
    out.append(("process count", pc, True))
    out.append(("memory", f"RLIMIT_AS={cfg.memory_mb} MiB of address space per process", True))
    out.append(("CPU", f"RLIMIT_CPU per candidate; wall deadlines per test ({cfg.timeout_s:g} s x "
                       f"{cfg.timeout_factor:g} + {cfg.timeout_grace_s:g}) and per sample ({cfg.job_timeout_s:g} s)",
                True))
    if ns:
        pv = "own pid namespace: it sees only its own processes"
    elif ll:
        pv = "landlock: /proc is unreadable (pids can still be probed with kill(pid, 0))"
    else:
        pv = "NOT ENFORCED: it can list every process and read their command lines"
    out.append(("pid visibility", pv, ns or bool(ll)))
    if ns:
        sg = "own pid namespace: no process outside it can be named"
    elif ll >= 6:
        sg = "landlock scope: no signal leaves its domain"
    elif uid:
        sg = "per-sample uid: it can signal only its own processes"
    else:
        sg = "NOT ENFORCED: it can signal every process of this user (the harness included)"
    out.append(("signals", sg, signals_contained(r)))
    return out


def signals_contained(r: dict) -> bool:
    return r["level"].startswith("namespaces") or r.get("landlock_abi", 0) >= 6 or bool(r.get("uid_drop"))


def _leftovers(marker: str) -> list[int]:
    """Processes whose command line holds ``marker`` (every process forked from one pool's
    zygotes carries the pool's marker): after shutdown, what a candidate left behind."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as fh:
                    if marker.encode() in fh.read():
                        out.append(int(d))
            except OSError:
                pass
    return out


def run_check(cfg: SandboxConfig, out: object = sys.stdout, verbose: bool = False) -> int:
    """Print the report, run the built-in programs; 0 when every verdict is right and the host
    untouched, 1 otherwise."""
    def say(s: str = "") -> None:
        print(s, file=out)  # type: ignore[arg-type]

    t0 = time.monotonic()
    r = isolation_report(cfg)
    say(f"isolation: {r['level']}")
    say(f"user: uid {os.getuid()}{' (root)' if os.getuid() == 0 else ''}")
    if r.get("why_not_namespaces"):
        say(f"namespaces unavailable: {r['why_not_namespaces']}")
    for layer, why in sorted((r.get("why") or {}).items()):
        say(f"{layer} off: {why}")
    say("")
    for name, text, ok in layers(r, cfg):
        say(f"  {name:<18} {'ok  ' if ok else 'WEAK'} {text}")
    say("")
    mark = "PLUMCODE_EXPECTED_" + os.urandom(6).hex() + "_"
    workdir = tempfile.mkdtemp(prefix="plumcode-check-")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    decoy = None
    bad: list[str] = []
    try:
        problems = builtin_problems(workdir, listener.getsockname()[1], mark)
        # a stand-in for `plumcode execute --problems problems.jsonl` running in the run dir
        decoy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "--problems",
                                  "problems.jsonl"], cwd=workdir, stdin=subprocess.DEVNULL)
        contained = signals_contained(r)
        progs = [p for p in LEGIT + ATTACKS if contained or not p.needs_signals_contained]
        skipped = [p.name for p in LEGIT + ATTACKS if p not in progs]
        tag = os.urandom(4).hex()  # fresh code: no verdict cache hit from an earlier check
        samples = [Sample(problems[p.problem].id, p.name, p.code + f"\n# check {tag}\n") for p in progs]
        by_name = {p.name: p for p in progs}
        verdicts = {v.sample_id: v for v in execute_local(list(problems.values()), samples, cfg)}
        for name, v in verdicts.items():
            p = by_name[name]
            right = v.passed == p.legit
            if not right:
                bad.append(name)
            msg = "" if right and not verbose else " ".join(t.message for t in v.tests if t.message)[:160]
            say(f"  {'legit ' if p.legit else 'attack'} {name:<18} {v.status:<8} "
                f"{'ok' if right else 'WRONG'} {msg}".rstrip())
        for name in skipped:
            say(f"  attack {name:<18} skipped  (signals are not contained here: it could kill this check)")
        shutdown()
        deadline = time.monotonic() + 5
        while (left := _leftovers(r["marker"])) and time.monotonic() < deadline:
            time.sleep(0.1)
        host = []
        if left:
            host.append(f"processes left behind: {left}")
        try:
            listener.accept()
            host.append("a candidate reached a TCP listener of the host")
        except BlockingIOError:
            pass
        if os.path.exists(os.path.join(workdir, "written-by-candidate")):
            host.append("a candidate wrote outside its temp dir")
        for h in host:
            say(f"  host   {h}: WRONG")
        bad += host
    finally:
        if decoy is not None:
            decoy.kill()
            decoy.wait()
        listener.close()
        shutil.rmtree(workdir, ignore_errors=True)
    say("")
    n = len(LEGIT) + len(ATTACKS)
    if bad:
        say(f"FAILED: {len(bad)} wrong ({', '.join(bad)}) of {n} checks in {time.monotonic() - t0:.1f}s: verdicts "
            "from this sandbox are not trustworthy here")
        return 1
    say(f"OK: every verdict right, host untouched ({n} programs, {time.monotonic() - t0:.1f}s)")
    return 0


def register(sub: argparse._SubParsersAction, name: str, help: str) -> None:
    p = sub.add_parser(name, help=help, description=help)
    ss = p.add_subparsers(dest="sandbox_command", metavar="SUBCOMMAND")
    c = ss.add_parser("check", help="print what the sandbox enforces here and prove it with built-in programs",
                      description=(__doc__ or "").split("\n\n")[1].replace("\n", " "))
    c.add_argument("--isolation", choices=["auto", "namespaces", "process"], default="auto",
                   help="auto = strongest available (default)")
    c.add_argument("--workers", type=int, default=2, help="parallel samples (default 2)")
    c.add_argument("--verbose", action="store_true", help="show every verdict's messages")
    c.set_defaults(func=_run)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _run(args: argparse.Namespace) -> int:
    cfg = SandboxConfig(workers=max(1, args.workers), timeout_s=1.5, job_timeout_s=30.0, fail_fast=True,
                        isolation=args.isolation)
    return run_check(cfg, verbose=args.verbose)
