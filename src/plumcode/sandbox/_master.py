"""The master M: zygote pool, job scheduling, verdict streaming, oracle calls.

M holds the jobs (tests and expected values) but never runs candidate code. Per job it makes
the socket pairs, asks the judge zygote for a judge J (handing it the job through a memfd) and
the candidate zygote for a candidate C, then reads J's per-test results. A selector loop keeps
``workers`` jobs in flight and yields verdicts as they complete.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import pickle
import random
import selectors
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from plumcode.problems.schema import Problem
from plumcode.sandbox import _wire
from plumcode.sandbox.cache import VerdictCache, cache_key, problem_fingerprint
from plumcode.sandbox.defaults import DEFAULT_JOB_TIMEOUT_S, DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S
from plumcode.sandbox.types import Sample, TestResult, Verdict

log = logging.getLogger(__name__)

# 2: candidates lost read access to the host's files; verdicts cached by version 1 may hold
# passes forged by reading expected values, so they are not reused.
SANDBOX_VERSION = "2"


@dataclass
class SandboxConfig:
    """Limits and parallelism. ``timeout_s`` is per test (a TestCase's own timeout_s wins);
    ``job_timeout_s`` caps one sample's total wall time so an always-looping candidate cannot
    cost ``n_tests * timeout_s``. ``workers`` is per machine: None runs one per CPU of this
    machine, or on Ray of each node (so a driver's core count never sizes a worker node)."""

    workers: int | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    memory_mb: int = DEFAULT_MEMORY_MB
    fail_fast: bool = False
    cache_path: str | None = None
    isolation: str = "auto"  # "auto" | "namespaces" | "process"
    job_timeout_s: float = DEFAULT_JOB_TIMEOUT_S
    # The judge's wall clock also covers moving arguments and results between processes and
    # waiting for a CPU; a test may run ``timeout * timeout_factor + timeout_grace_s`` so that
    # canonical solutions keep passing their EvalPlus-derived limits on a loaded machine.
    # Set 1.0 and 0.0 for the bare limits.
    timeout_factor: float = 2.0
    timeout_grace_s: float = 0.5
    load_timeout_s: float | None = None  # module-level code of the candidate; default timeout_s
    tmp_mb: int = 64
    nproc: int = 64
    nofile: int = 256
    fsize_mb: int = 64
    # extra paths candidates may read (data files a problem needs); everything else outside the
    # Python runtime and the candidate's own temp dir is unreadable to them
    read_paths: tuple[str, ...] = ()

    def limits(self) -> dict:
        cpu = int(self.job_timeout_s + 2 * self.timeout_s) + 5
        return {"memory_mb": self.memory_mb, "cpu_s": cpu, "fsize_mb": self.fsize_mb, "nofile": self.nofile,
                "nproc": self.nproc, "tmp_mb": self.tmp_mb}


@dataclass
class CallOutcome:
    ok: bool
    value: Any = None
    error: str = ""
    duration_s: float = 0.0


# ---------------------------------------------------------------- zygote pool
class _Pool:
    def __init__(self, isolation: str, tmp_mb: int, read_paths: tuple[str, ...] = ()):
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.procs: list[subprocess.Popen] = []
        self.uid_base = 1_000_000 + random.randrange(1 << 15) * 65536  # < 2**31: valid uids
        self.uid_next = 0
        src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        import tempfile
        cfg = {"paths": [src], "tmp_mb": tmp_mb, "deny": sorted(denied_features()), "read_paths": list(read_paths),
               "tmpdir": tempfile.gettempdir(), "probe_uid": self.uid_base}
        self.why_not_ns = ""
        try:
            self.cz, self.report = self._start_level("candidate", isolation, cfg, src)
            self.jz, jreport = self._start_level("judge", isolation, cfg, src)
        except BaseException:
            self.close()
            raise
        self.level = self.report["level"]
        self.judge_level = jreport["level"]
        self.report["why_not_namespaces"] = self.why_not_ns
        self.report["marker"] = f'"probe_uid": {self.uid_base}'  # in every zygote's (and fork's) command line

    def _start_level(self, kind: str, isolation: str, cfg: dict, src: str) -> tuple[socket.socket, dict]:
        """Start a zygote at the strongest level asked for; when namespaces cannot be built, a
        *fresh* process takes the next level down (nothing half-entered is ever reused)."""
        levels = ["namespaces", "process"] if isolation == "auto" else [isolation]
        if isolation not in ("auto", "namespaces", "process"):
            raise ValueError(f"isolation must be auto, namespaces or process, not {isolation!r}")
        for lvl in levels:
            try:
                return self._start(kind, dict(cfg, isolation=lvl), src)
            except RuntimeError as e:
                if lvl == levels[-1]:
                    raise
                if kind == "candidate":
                    self.why_not_ns = str(e).split(" failed: ", 1)[-1]
                    log.warning("sandbox: per-candidate namespaces unavailable here (%s); using process isolation",
                                self.why_not_ns)
        raise AssertionError("unreachable")

    def _start(self, kind: str, cfg: dict, src: str) -> tuple[socket.socket, dict]:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        boot = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
                "from plumcode.sandbox import _zygote; _zygote.main()")
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
        p = subprocess.Popen([sys.executable, "-I", "-c", boot, src, kind, str(theirs.fileno()), json.dumps(cfg)],
                             pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL,
                             cwd="/", close_fds=True)
        theirs.close()
        mine.settimeout(60)
        try:
            hello = json.loads(mine.recv(1 << 20) or b"{}")
        except (OSError, ValueError) as e:
            hello = {"error": f"no answer ({e})"}
        mine.settimeout(None)
        if not hello.get("ok"):
            mine.close()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            raise RuntimeError(f"sandbox {kind} zygote ({cfg['isolation']}) failed: {hello.get('error', 'exited')}")
        self.procs.append(p)
        return mine, dict(hello.get("report") or {}, level=hello["level"])

    def alive(self) -> bool:
        return os.getpid() == self.pid and all(p.poll() is None for p in self.procs)

    def new_uid(self) -> int:
        with self.lock:
            self.uid_next = (self.uid_next + 1) % 60000
            return self.uid_base + self.uid_next

    def spawn_candidate(self, limits: dict) -> tuple[socket.socket, int]:
        """Returns (J's RPC socket, J's lifeline fd) for a fresh candidate."""
        j_rpc, c_rpc = socket.socketpair()
        j_life, p_life = socket.socketpair()
        msg = json.dumps({"limits": limits, "uid": self.new_uid()}).encode()
        socket.send_fds(self.cz, [msg], [c_rpc.fileno(), p_life.fileno()])
        c_rpc.close()
        p_life.close()
        return j_rpc, j_life.detach()

    @staticmethod
    def _job_memfd(job: dict, limits: dict) -> int:
        memfd = os.memfd_create("plumcode-job")
        data = pickle.dumps(dict(job, limits=limits), 5)
        view = memoryview(data)
        while view:
            view = view[os.write(memfd, view):]
        return memfd

    def send_job(self, m_sock: socket.socket, job: dict, limits: dict,
                 cand: tuple[socket.socket, int] | None = None) -> None:
        """Hand a waiting (reusable) judge its next job and a fresh candidate."""
        memfd = self._job_memfd(dict(job, persistent=True), limits)
        rpc, life = cand or self.spawn_candidate(limits)
        m_sock.setblocking(True)
        try:
            _wire.send_frame(m_sock, b"{}", [memfd, rpc.fileno(), life])
        finally:
            m_sock.setblocking(False)
            os.close(memfd)
            rpc.close()
            os.close(life)

    def spawn_judge(self, job: dict, limits: dict,
                    cand: tuple[socket.socket, int] | None = None) -> tuple[socket.socket, socket.socket]:
        memfd = self._job_memfd(job, limits)
        m_sock, j_sock = socket.socketpair()
        m_life, z_life = socket.socketpair()
        j_rpc, j_clife = cand or self.spawn_candidate(limits)
        socket.send_fds(self.jz, [b"{}"], [memfd, j_sock.fileno(), z_life.fileno(), j_rpc.fileno(), j_clife])
        for s in (j_sock, z_life, j_rpc):
            s.close()
        os.close(memfd)
        os.close(j_clife)
        return m_sock, m_life

    def close(self) -> None:
        for s in (getattr(self, "cz", None), getattr(self, "jz", None)):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []


_POOLS: dict[tuple, _Pool] = {}
_POOLS_LOCK = threading.Lock()


class _Starter:
    """Starts zygotes from one long-lived thread: PR_SET_PDEATHSIG fires when the *thread*
    that forked a process exits, so a pool first used from a short-lived worker thread must not
    be parented to that thread."""

    def __init__(self) -> None:
        import queue
        self.q: queue.Queue = queue.Queue()
        self.t = threading.Thread(target=self._loop, name="plumcode-sandbox-starter", daemon=True)
        self.t.start()

    def _loop(self) -> None:
        while True:
            fn, box, ev = self.q.get()
            try:
                box.append((True, fn()))
            except BaseException as e:  # noqa: BLE001
                box.append((False, e))
            ev.set()

    def call(self, fn: Any) -> Any:
        box: list = []
        ev = threading.Event()
        self.q.put((fn, box, ev))
        ev.wait()
        ok, v = box[0]
        if not ok:
            raise v
        return v


_STARTER: _Starter | None = None


def _acquire_pool(config: SandboxConfig) -> tuple[_Pool, bool]:
    """The warm pool for this isolation setting, shared by every caller and thread (spawn
    requests are single datagrams on the zygotes' control sockets, so threads may interleave)."""
    global _STARTER
    key = (config.isolation, config.tmp_mb, tuple(config.read_paths), tuple(sorted(denied_features())))
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is not None and not pool.alive():
            if os.getpid() == pool.pid:
                pool.close()
            _POOLS.pop(key, None)
            pool = None
        if pool is None:
            if _STARTER is None or not _STARTER.t.is_alive() or _STARTER_PID != os.getpid():
                _set_starter(_Starter())
            assert _STARTER is not None
            pool = _STARTER.call(lambda: _Pool(config.isolation, config.tmp_mb, tuple(config.read_paths)))
            _POOLS[key] = pool
    return pool, True


_STARTER_PID = 0


def _set_starter(s: _Starter) -> None:
    global _STARTER, _STARTER_PID
    _STARTER, _STARTER_PID = s, os.getpid()


def _release_pool(pool: _Pool, shared: bool) -> None:
    if not shared:
        pool.close()


class _LazyPool:
    def __init__(self, config: SandboxConfig):
        self._config, self._pool = config, None

    def __getattr__(self, name: str) -> Any:
        if self._pool is None:
            self._pool, _ = _acquire_pool(self._config)
        return getattr(self._pool, name)


def shutdown() -> None:
    """Stop the cached zygotes (also registered with atexit)."""
    with _POOLS_LOCK:
        for pool in _POOLS.values():
            if os.getpid() == pool.pid:
                pool.close()
        _POOLS.clear()


atexit.register(shutdown)


def denied_features() -> set[str]:
    """Kernel features the zygotes must behave as if missing (``PLUMCODE_SANDBOX_DENY``, e.g.
    ``userns`` to test the fallback a container without user namespaces gets)."""
    from plumcode.sandbox._linux import DENIABLE

    raw = os.environ.get("PLUMCODE_SANDBOX_DENY", "")
    out = {x.strip() for x in raw.replace(",", " ").split() if x.strip()}
    bad = out - set(DENIABLE)
    if bad:
        raise ValueError(f"PLUMCODE_SANDBOX_DENY: unknown feature(s) {sorted(bad)}; known: {', '.join(DENIABLE)}")
    return out


def isolation_report(config: SandboxConfig | None = None) -> dict:
    """What the candidates' isolation enforces here: ``level``, ``why_not_namespaces``,
    ``why`` (layer -> reason it is off), ``read_roots``, ``hidden``, ``landlock_abi``..."""
    config = config or SandboxConfig()
    pool, shared = _acquire_pool(config)
    try:
        return dict(pool.report)
    finally:
        _release_pool(pool, shared)


def isolation_level(config: SandboxConfig | None = None) -> str:
    """The isolation actually active for candidates here, e.g. ``namespaces+seccomp+landlock``."""
    config = config or SandboxConfig()
    pool, shared = _acquire_pool(config)
    try:
        return pool.level
    finally:
        _release_pool(pool, shared)


# ---------------------------------------------------------------- jobs
@dataclass
class _Job:
    job: dict
    n: int
    deadline_s: float
    on_done: Any
    results: dict[int, dict] = field(default_factory=dict)
    started: float = 0.0
    done: bool = False


class _Judge:
    """M's end of one judge process. A judge that ran no test code (call/stdio tests, oracle
    runs) is kept and handed the next job, saving a fork; one that ran assert-test code (which
    may be model-written) is used once."""

    def __init__(self, m_sock: socket.socket, m_life: socket.socket):
        self.m_sock, self.m_life = m_sock, m_life
        self.m_sock.setblocking(False)
        self.buf = bytearray()
        self.job: _Job | None = None
        self.reusable = False
        self.last_key: str | None = None

    def close(self) -> None:
        self.m_sock.close()
        self.m_life.close()  # the judge zygote kills J's process group; J's candidate goes with it


def _reusable(job: dict) -> bool:
    return job["mode"] != "tests" or not job["has_assert"]


def _run_jobs(pool: _Pool, jobs: Iterator[_Job], workers: int, limits: dict) -> Iterator[_Job]:
    """Keep ``workers`` jobs running; call each job's on_done(job) and yield it when it finishes."""
    sel = selectors.DefaultSelector()
    running: dict[int, _Judge] = {}
    idle: list[_Judge] = []
    finished: list[_Job] = []
    spares: list[tuple[socket.socket, int]] = []  # candidates forked ahead of their job
    nxt: list[_Job] = []  # one job of lookahead: spares are made only when more work is queued

    def candidate() -> tuple[socket.socket, int]:
        return spares.pop(0) if spares else pool.spawn_candidate(limits)

    def pull() -> _Job | None:
        if nxt:
            return nxt.pop()
        return next(jobs, None)

    def start(j: _Job) -> None:
        reuse = _reusable(j.job)
        judge = None
        if reuse and idle:  # prefer a judge that already holds this problem's tests
            key = j.job.get("tests_key")
            judge = next((x for x in idle if x.last_key == key), idle[-1])
            idle.remove(judge)
        if judge is not None:
            job = j.job
            if job.get("tests_key") is not None and job["tests_key"] == judge.last_key:
                job = {k: v for k, v in job.items() if k != "tests_blob"}  # the judge has it
            try:
                pool.send_job(judge.m_sock, job, limits, candidate())
            except OSError:
                judge.close()
                judge = None
        if judge is None:
            judge = _Judge(*pool.spawn_judge(dict(j.job, persistent=reuse), limits, candidate()))
            sel.register(judge.m_sock, selectors.EVENT_READ, judge)
        judge.job, judge.reusable = j, reuse
        judge.last_key = j.job.get("tests_key")
        j.started = time.monotonic()
        running[judge.m_sock.fileno()] = judge

    def finish(judge: _Judge, why: str = "") -> None:
        j = judge.job
        running.pop(judge.m_sock.fileno(), None)
        judge.job = None
        if why or not judge.reusable:
            sel.unregister(judge.m_sock)
            judge.close()
        else:
            idle.append(judge)
        if j is None or j.done:
            return
        j.done = True
        finished.append(j)
        if why:
            for i in range(j.n):
                if i not in j.results:
                    j.results[i] = {"s": why, "m": "judge stopped" if why == "crash" else
                                    "time budget for this sample exhausted", "d": 0.0,
                                    "ok": False, "e": why}
        j.on_done(j)

    def handle(judge: _Judge) -> None:
        try:
            chunk = judge.m_sock.recv(1 << 20)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            if judge in idle:
                idle.remove(judge)
                sel.unregister(judge.m_sock)
                judge.close()
            else:
                finish(judge, "crash")
            return
        judge.buf += chunk
        while len(judge.buf) >= 8:
            (n,) = _wire._HDR.unpack_from(judge.buf)
            if len(judge.buf) < 8 + n:
                break
            data = bytes(judge.buf[8:8 + n])
            del judge.buf[:8 + n]
            j = judge.job
            try:
                msg = _wire._RestrictedUnpickler(data, None).load()
                if type(msg) is not dict or j is None:
                    raise TypeError("unexpected message")
            except Exception:  # noqa: BLE001
                if judge in idle:
                    idle.remove(judge)
                    sel.unregister(judge.m_sock)
                    judge.close()
                else:
                    finish(judge, "crash")
                return
            t = msg.get("t")
            if t == "res":
                for r in msg["items"]:
                    if type(r) is dict and type(r.get("i")) is int and 0 <= r["i"] < j.n:
                        j.results[r["i"]] = r
            elif t == "respawn":
                rpc, life = candidate()
                judge.m_sock.setblocking(True)
                try:
                    _wire.send_frame(judge.m_sock, b"{}", [rpc.fileno(), life])
                finally:
                    judge.m_sock.setblocking(False)
                    rpc.close()
                    os.close(life)
            elif t == "done":
                if _TRACE is not None and type(msg.get("trace")) is dict:
                    _TRACE.append(dict(msg["trace"], m_start=j.started, m_done=time.monotonic()))
                finish(judge)
                return

    try:
        while True:
            while len(running) < workers:
                j = pull()
                if j is None:
                    break
                start(j)
            if not nxt:
                j = next(jobs, None)
                if j is not None:
                    nxt.append(j)
            while nxt and len(spares) < workers and not _NO_SPARES:
                spares.append(pool.spawn_candidate(limits))
            if not running:
                break
            now = time.monotonic()
            next_deadline = min(jd.job.started + jd.job.deadline_s for jd in running.values() if jd.job)
            events = sel.select(timeout=max(0.0, next_deadline - now) + 0.01)
            for key, _ in events:
                handle(key.data)
            now = time.monotonic()
            for jd in list(running.values()):
                if jd.job is not None and now > jd.job.started + jd.job.deadline_s:
                    finish(jd, "timeout")
            while finished:
                yield finished.pop(0)
    finally:
        for rpc, life in spares:
            rpc.close()
            os.close(life)
        for jd in idle + list(running.values()):
            try:
                sel.unregister(jd.m_sock)
            except (KeyError, ValueError):
                pass
            jd.close()
        sel.close()


def _job_for(problem: Problem, code: str, config: SandboxConfig, tests_key: str,
             blobs: dict[str, bytes]) -> tuple[dict, float]:
    """The judge's job. Tests travel pre-pickled (once per problem); a reused judge keeps the
    last problems' decoded tests by ``tests_key`` and skips decoding them again."""
    timeouts = [(t.timeout_s or config.timeout_s) * config.timeout_factor + config.timeout_grace_s
                 for t in problem.tests]
    load_to = config.load_timeout_s or config.timeout_s
    blob = blobs.get(tests_key)
    if blob is None:
        if len(blobs) > 64:
            blobs.clear()
        blob = blobs[tests_key] = pickle.dumps(problem.tests, 5)
    job = {"mode": "tests", "code": code, "entry_point": problem.entry_point, "setup": problem.setup,
           "tests_blob": blob, "tests_key": tests_key, "has_assert": any(t.kind == "assert" for t in problem.tests),
           "timeouts": timeouts, "fail_fast": config.fail_fast,
           "load_timeout": load_to, "job_timeout": config.job_timeout_s}
    # the master's backstop: J enforces everything itself; this only catches a stuck judge
    deadline = min(sum(timeouts) + load_to * (1 + len(timeouts)), config.job_timeout_s) + 10 + 0.01 * len(timeouts)
    return job, deadline


def _verdict(sample: Sample, results: dict[int, dict], n: int, duration: float, level: str,
             key: str) -> Verdict:
    tests = []
    for i in range(n):
        r = results.get(i) or {"s": "crash", "m": "no result", "d": 0.0}
        st = r.get("s") if r.get("s") in _STATUSES else "crash"
        tests.append(TestResult(st, str(r.get("m", ""))[:300], float(r.get("d", 0.0) or 0.0)))
    passed = n > 0 and all(t.status == "pass" for t in tests)
    if passed:
        status = "pass"
    elif any(t.status == "syntax_error" for t in tests):
        status = "syntax_error"
    elif n == 0:
        status = "error"
    else:
        status = next(t.status for t in tests if t.status != "pass")
    return Verdict(sample.problem_id, sample.sample_id, passed, status, tests, round(duration, 6), level, key)


_NO_SPARES = bool(os.environ.get("PLUMCODE_NO_SPARES"))
_TRACE: list[dict] | None = [] if os.environ.get("PLUMCODE_SANDBOX_TRACE") else None
_STATUSES = {"pass", "fail", "error", "syntax_error", "timeout", "memory", "crash", "skipped"}


def execute_local(problems: Iterable[Problem] | Mapping[str, Problem], samples: Iterable[Sample],
                  config: SandboxConfig | None = None, progress: bool = False) -> Iterator[Verdict]:
    """Run each sample against its problem's tests in this machine's pool; yields exactly one
    verdict per sample, in completion order. Identical (code, tests) pairs run once (cache).
    Unknown problem ids raise ``KeyError`` naming the sample before anything runs for it."""
    config = config or SandboxConfig()
    probs = dict(problems) if isinstance(problems, Mapping) else {p.id: p for p in problems}
    cache = VerdictCache(config.cache_path)
    fingerprints: dict[str, str] = {}
    blobs: dict[str, bytes] = {}
    limits = config.limits()
    ready: list[Verdict] = []
    waiting: dict[str, list[Sample]] = {}  # cache key -> samples waiting on the same run
    bar = None
    if progress:
        try:
            from tqdm import tqdm
            bar = tqdm(desc="execute", unit="sample", total=getattr(samples, "__len__", lambda: None)())
        except ImportError:
            bar = None

    pool: Any = _LazyPool(config)  # all cache hits: no process is ever started

    def key_for(s: Sample, p: Problem) -> str:
        fp = fingerprints.get(p.id)
        if fp is None:
            fp = fingerprints[p.id] = problem_fingerprint(p)
        return cache_key(s.code, fp, config, SANDBOX_VERSION)

    def jobs() -> Iterator[_Job]:
        for s in samples:
            if not isinstance(s, Sample):
                raise TypeError(f"expected Sample, got {type(s).__name__}")
            p = probs.get(s.problem_id)
            if p is None:
                raise KeyError(f"sample {s.sample_id!r}: unknown problem_id {s.problem_id!r}")
            key = key_for(s, p)
            hit = cache.get(key)
            if hit is not None:
                ready.append(_rekey(hit, s))
                continue
            if key in waiting:
                waiting[key].append(s)
                continue
            waiting[key] = [s]
            job, deadline = _job_for(p, s.code, config, fingerprints[p.id], blobs)

            def done(j: _Job, s: Sample = s, key: str = key, n: int = len(p.tests)) -> None:
                v = _verdict(s, j.results, n, time.monotonic() - j.started, pool.level, key)
                cache.put(key, v)
                for other in waiting.pop(key, [s]):
                    ready.append(v if other is s else _rekey(v, other))

            yield _Job(job, len(p.tests), deadline, done)

    try:
        for _ in _run_jobs(pool, jobs(), config.workers or os.cpu_count() or 1, limits):
            while ready:
                if bar is not None:
                    bar.update(1)
                yield ready.pop(0)
        while ready:
            if bar is not None:
                bar.update(1)
            yield ready.pop(0)
    finally:
        cache.close()
        if bar is not None:
            bar.close()


def _rekey(v: Verdict, s: Sample) -> Verdict:
    return Verdict(s.problem_id, s.sample_id, v.passed, v.status, list(v.tests),  # results are shared
                   v.duration_s, v.isolation, v.cache_key, True)


# ---------------------------------------------------------------- the oracle
def _reference(mode: str, program: str, entry_point: str | None, items: list, config: SandboxConfig | None,
               setup: str | None) -> list[CallOutcome]:
    config = config or SandboxConfig()
    code = (setup + "\n" + program) if setup else program
    job = {"mode": mode, "code": code, "entry_point": entry_point, "items": items, "timeout": config.timeout_s,
           "load_timeout": config.load_timeout_s or config.timeout_s}
    n = len(items)
    deadline = (config.timeout_s + 1) * (n + 1) + 10
    holder: list[_Job] = []
    pool, shared = _acquire_pool(config)
    try:
        j = _Job(job, n, deadline, holder.append)
        limits = dict(config.limits(), cpu_s=int(config.timeout_s * (n + 1)) + 10)
        for _ in _run_jobs(pool, iter([j]), 1, limits):
            pass
    finally:
        _release_pool(pool, shared)
    out = []
    for i in range(n):
        r = holder[0].results.get(i) if holder else None
        if not r:
            out.append(CallOutcome(False, None, "no result (judge stopped)", 0.0))
        else:
            out.append(CallOutcome(bool(r.get("ok")), r.get("v"), str(r.get("e", "")), float(r.get("d", 0.0))))
    return out


def call_reference(program: str, entry_point: str, args_list: Sequence[tuple], *, setup: str | None = None,
                   config: SandboxConfig | None = None) -> list[CallOutcome]:
    """Run a trusted reference on each argument tuple (fresh copies, one sandboxed process) and
    return its outputs as plain values: the oracle for expected outputs."""
    return _reference("ref_call", program, entry_point, [tuple(a) for a in args_list], config, setup)


def stdio_reference(program: str, inputs: Sequence[str], *, config: SandboxConfig | None = None) -> list[CallOutcome]:
    """Run a trusted stdin/stdout program on each input; ``value`` is its stdout."""
    return _reference("ref_stdio", program, None, list(inputs), config, None)
