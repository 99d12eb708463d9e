"""Zygotes: clean, exec-started processes that fork judges (J) and candidates (C) cheaply.

Started once per pool with an empty environment, they never see test data except what the
master hands to a *judge* child over a memfd. The candidate zygote forks, per job, a small
keeper P that builds the candidate's isolation and forks C; P watches the lifeline socket held
by the judge and kills C (and with it C's whole pid namespace) as soon as the judge closes it
or dies. Run as ``python -I -c ... <kind> <ctl_fd> <config-json>``.
"""

from __future__ import annotations

import json
import os
import select
import selectors
import signal
import socket
import sys
import time
from typing import Any

from plumcode.sandbox import _fsview
from plumcode.sandbox import _linux as L

NOBODY = 65534
JUDGE_UID = 65533


# ---------------------------------------------------------------- the judge's filesystem view
def _needed_paths(extra: list[str]) -> list[str]:
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    paths.update(p for p in sys.path if p)
    paths.update(extra)
    real = sorted({os.path.realpath(p) for p in paths if os.path.exists(p)})
    out: list[str] = []
    for p in real:  # drop paths inside another needed path
        if not any(p.startswith(q.rstrip("/") + "/") for q in out):
            out.append(p)
    return out


def judge_view(extra: list[str]) -> None:
    """The judge's mount namespace (it holds the expected values anyway, and imports plumcode):
    directories an unprivileged user cannot enter (e.g. a 0700 /root holding the interpreter)
    hidden behind a tmpfs with only the interpreter's paths bound back, /dev/shm emptied, every
    other mount read-only."""
    L.mount(None, "/", None, L.MS_REC | L.MS_PRIVATE)
    covers: dict[str, list[str]] = {}
    for p in _needed_paths(extra):
        parts = p.split("/")
        for i in range(2, len(parts) + 1):
            a = "/".join(parts[:i])
            if not os.stat(a).st_mode & 0o001:
                covers.setdefault(a, []).append(p)
                break
    for a, subs in covers.items():
        fds = [(s, os.open(s, os.O_PATH)) for s in subs if s != a]
        L.mount("tmpfs", a, "tmpfs", L.MS_NOSUID | L.MS_NODEV, "size=1m,mode=0755")
        for s, fd in fds:
            os.makedirs(s, mode=0o755, exist_ok=True)
            L.mount(f"/proc/self/fd/{fd}", s, None, L.MS_BIND | L.MS_REC)
            os.close(fd)
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mounts.append(line.split()[4].replace("\\040", " "))
    for m in mounts:
        if m == "/proc" or m.startswith(("/proc/", "/sys", "/dev")):
            continue
        try:
            L.mount(None, m, None, L.MS_REMOUNT | L.MS_BIND | L.MS_RDONLY)
        except OSError:
            pass
    if os.path.isdir("/dev/shm"):
        L.mount("tmpfs", "/dev/shm", "tmpfs", L.MS_NOSUID | L.MS_NODEV | L.MS_RDONLY, "size=4k")


def _python_readable_by_others() -> bool:
    for p in _needed_paths([]):
        parts = p.split("/")
        for i in range(2, len(parts) + 1):
            if not os.stat("/".join(parts[:i])).st_mode & 0o001:
                return False
    return True


def _step(what: str, fn: Any, *args: Any) -> Any:
    """Run one isolation step; an OSError names the step (it becomes the reported reason)."""
    try:
        return fn(*args)
    except OSError as e:
        raise OSError(e.errno, f"{what}: {e.strerror or e}") from None


def _children(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (a /proc scan: CONFIG_PROC_CHILDREN is often off)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            out.append(int(d))
    return out


def _tasks_of(uid: int) -> int:
    """Tasks (threads included) of ``uid``: what RLIMIT_NPROC counts (by real uid; a /proc/<pid>
    dir is owned by the effective one, the same for an ordinary user's processes)."""
    n = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            if os.stat(f"/proc/{d}").st_uid == uid:
                n += len(os.listdir(f"/proc/{d}/task"))
        except OSError:
            continue
    return n


def _over(path: str, cap_bytes: int, cap_entries: int = 10_000) -> bool:
    """Does the tree under ``path`` hold more than ``cap_bytes`` or ``cap_entries``? (stops
    counting as soon as it does)"""
    total = entries = 0
    stack = [path]
    while stack:
        try:
            it = os.scandir(stack.pop())
        except OSError:
            continue
        with it:
            for e in it:
                entries += 1
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                total += st.st_blocks * 512
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                if total > cap_bytes or entries > cap_entries:
                    return True
    return False


def _rmtree(path: str) -> None:
    """Remove a candidate's temp dir even where it made directories unreadable to us."""
    import shutil

    for root, dirs, _files in os.walk(path):
        for d in dirs:
            try:
                os.chmod(os.path.join(root, d), 0o700, follow_symlinks=False)
            except (OSError, NotImplementedError):
                pass
    shutil.rmtree(path, ignore_errors=True)


PROBE_CODE = ("import os, threading, calendar, zlib\n"
              "with open('probe.txt', 'w') as f:\n    f.write('ok')\n"
              "assert open('probe.txt').read() == 'ok'\n"
              "t = threading.Thread(target=len, args=((),))\nt.start()\nt.join()\n")


# ---------------------------------------------------------------- zygote loop
class Zygote:
    def __init__(self, kind: str, ctl: socket.socket, cfg: dict):
        self.kind, self.ctl, self.cfg = kind, ctl, cfg
        self.sel = selectors.DefaultSelector()
        self.children: dict[int, tuple[int, int | None, int]] = {}  # pid -> (pidfd, lifeline, pgid)
        self.level = cfg["isolation"]  # "namespaces" or "process": the master retries a fresh zygote one level down
        self.root = os.geteuid() == 0
        self.uid_drop = False
        self.seccomp = False
        self.landlock = 0
        self.pidns: int | None = None  # root: fork C straight into a fresh pid namespace
        self.policy: _fsview.ReadPolicy | None = None
        self.read_fds: list[int] = []  # O_PATH fds of what a candidate may read (landlock rules)
        self.read_layer: int | None = None  # process level: a ruleset fd of the exact read paths
        self.dev_fds: list[tuple[int, int]] = []
        self.why: dict[str, str] = {}  # layer -> why it is off here
        self.parent_only: list[int] = []  # the probe's own ends: a child must not hold them open

    # ---- setup
    def setup(self) -> None:
        L.set_pdeathsig(signal.SIGKILL)
        deny = set(self.cfg.get("deny") or ())
        if deny:
            L.deny_features(deny)
        if self.kind == "candidate":
            self._setup_candidate()
        else:
            self._setup_judge()

    def _setup_candidate(self) -> None:
        L.prctl(L.PR_SET_CHILD_SUBREAPER, 1)
        self.policy = _fsview.read_policy(self.cfg.get("read_paths") or [])
        if self.level == "namespaces":
            if self.root:
                _step("unshare(mount+network namespaces)", L.unshare, L.CLONE_NEWNS | L.CLONE_NEWNET)
            else:
                uid, gid = os.getuid(), os.getgid()
                _step("unshare(user+mount+network namespaces)", L.unshare,
                      L.CLONE_NEWUSER | L.CLONE_NEWNS | L.CLONE_NEWNET)
                _step("user namespace id maps", L.write_id_maps, 0, uid, gid)
            _step("filesystem view", _fsview.build_view, self.policy)
            if self.root:
                self.pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
            self.uid_drop = self.root
        else:
            import tempfile

            tempfile.tempdir = self.cfg.get("tmpdir") or None
            tempfile.gettempdir()  # fails here, reported, if no temp dir is usable
            self.uid_drop = self.root and _python_readable_by_others()
            if self.root and not self.uid_drop:
                self.why["uid"] = ("the Python runtime is not readable by other users (a 0700 directory on "
                                   "its path), so candidates keep uid 0 without capabilities")
        self.landlock = L.landlock_abi()
        if not self.landlock:
            self.why["landlock"] = "landlock is not available (kernel < 5.13, not enabled, or blocked)"
        self.seccomp = L._MACHINE == "x86_64"
        if self.seccomp:
            L._SECCOMP_PROGS[True] = L._seccomp_program(True)  # built once, inherited by every fork
        else:
            self.why["seccomp"] = f"the seccomp filter is x86_64 only (this is {L._MACHINE})"
        self.read_fds = _fsview.open_paths(self.policy.roots)
        for d in _fsview.DEVICES:
            fds = _fsview.open_paths([d])
            if fds:
                access = L.LL_FS_READ_FILE | (L.LL_FS_WRITE_FILE | L.LL_FS_TRUNCATE if d in ("/dev/null", "/dev/full")
                                              else 0)
                self.dev_fds.append((fds[0], access))
        if self.landlock and self.level == "process":
            try:
                self._read_layer()
            except OSError as e:
                self.why["landlock"] = f"its read layer cannot be built here: {e}"
                self.landlock = 0
        self._probe_with_fallbacks()

    def _read_layer(self) -> None:
        """Without a view, the hidden packages sit inside readable roots, and landlock can only
        allow: the roots minus what is hidden become hundreds of rules. They go in a read-only
        layer built once here; each candidate enforces it (one syscall) under its own small
        layer (the coarse roots, its temp dir): every layer must allow a read."""
        assert self.policy is not None
        import tempfile

        fds = _fsview.open_paths(_fsview.cover(self.policy.roots, self.policy.hidden) + [tempfile.gettempdir()])
        try:
            rules = [(fd, L.LL_FS_READ) for fd in fds] + [(fd, L.LL_FS_READ_FILE) for fd, _ in self.dev_fds]
            self.read_layer = L.landlock_ruleset(rules, self.landlock, L.LL_FS_READ)
        finally:
            for fd in fds:
                os.close(fd)

    def _setup_judge(self) -> None:
        src = self.cfg.get("paths", [])
        if self.level == "namespaces":
            if self.root:
                _step("unshare(mount+network namespaces)", L.unshare, L.CLONE_NEWNS | L.CLONE_NEWNET)
                _step("judge filesystem view", judge_view, src)
            else:
                uid, gid = os.getuid(), os.getgid()
                _step("unshare(user+network namespaces)", L.unshare, L.CLONE_NEWUSER | L.CLONE_NEWNET)
                _step("user namespace id maps", L.write_id_maps, uid, uid, gid)
        if self.root and (self.level == "namespaces" or _python_readable_by_others()):
            os.setgroups([])
            os.setresgid(JUDGE_UID, JUDGE_UID, JUDGE_UID)
            os.setresuid(JUDGE_UID, JUDGE_UID, JUDGE_UID)
        L.prctl(L.PR_SET_DUMPABLE, 0)
        try:
            self.landlock = L.landlock_restrict(["/dev/null"])
        except OSError:
            self.landlock = 0
        try:
            self.seccomp = L.seccomp_filter()
        except OSError:
            self.seccomp = False
        import plumcode.sandbox._judge  # noqa: F401  (warm: imported once, before forks)

    def _probe_with_fallbacks(self) -> None:
        """Start one real candidate through this zygote before taking jobs, so a layer that
        cannot be built here is dropped (and reported) instead of crashing every sample."""
        why = self._probe()
        if why and self.landlock:
            self.why["landlock"] = f"a candidate could not start under it: {why}"
            self.landlock = 0
            self.read_layer = None
            why = self._probe()
        if why and self.seccomp:
            self.why["seccomp"] = f"a candidate could not start under it: {why}"
            self.seccomp = False
            why = self._probe()
        if why:
            raise OSError(0, f"no candidate can start at the {self.level} level: {why}")

    def _probe(self) -> str | None:
        import pickle

        from plumcode.sandbox import _wire

        mine, theirs = socket.socketpair()
        life_mine, life_theirs = socket.socketpair()
        limits = {"memory_mb": 1024, "cpu_s": 20, "fsize_mb": 1, "nofile": 64, "nproc": 16, "tmp_mb": 1}
        self.parent_only = [mine.fileno(), life_mine.fileno()]
        pid = self.spawn({"limits": limits, "uid": int(self.cfg.get("probe_uid", NOBODY))},
                         [theirs.detach(), life_theirs.detach()])
        try:
            mine.settimeout(30)
            _wire.send_frame(mine, pickle.dumps(("load", PROBE_CODE), 5))
            data, _ = _wire.recv_frame(mine)
            r = _wire.loads_value(data)
            if r[0] == "ok":
                return None
            if r[0] == "setup":
                return str(r[1])
            return f"the probe program failed: {r!r}"[:300]
        except (OSError, EOFError, _wire.ProtocolError) as e:
            return f"the probe candidate died ({type(e).__name__}: {e})"
        finally:
            self.parent_only = []
            mine.close()
            life_mine.close()
            ent = self.children.get(pid)
            if ent is not None and ent[1] is not None:
                self.kill(pid)
            if ent is not None:
                select.select([ent[0]], [], [], 10)
                self.reap(pid)

    def level_string(self) -> str:
        parts = [self.level]
        if self.kind == "candidate" and self.uid_drop:
            parts.append("uid")
        if self.seccomp:
            parts.append("seccomp")
        if self.landlock:
            parts.append("landlock")
        return "+".join(parts)

    def report(self) -> dict:
        """What each layer enforces here (``plumcode sandbox check`` prints it)."""
        p = self.policy
        return {"level": self.level_string(), "root": self.root, "userns": self.level == "namespaces" and not self.root,
                "uid_drop": self.uid_drop, "landlock_abi": self.landlock, "seccomp": self.seccomp,
                "read_roots": p.roots if p else [], "hidden": p.hidden if p else [], "why": self.why}

    # ---- main loop
    def run(self) -> None:
        self.ctl.sendall(json.dumps({"ok": True, "level": self.level_string(), "report": self.report()}).encode())
        self.sel.register(self.ctl, selectors.EVENT_READ, ("ctl", 0))
        while True:
            for key, _ in self.sel.select():
                what, pid = key.data
                if what == "ctl":
                    try:
                        msg, fds, _f, _a = socket.recv_fds(self.ctl, 1 << 16, 16)
                    except OSError:
                        msg, fds = b"", []
                    if not msg:
                        self.shutdown()
                        return
                    self.spawn(json.loads(msg), fds)
                elif what == "exit":
                    self.reap(pid)
                elif what == "life":
                    self.kill(pid)

    def shutdown(self) -> None:
        """Judges die at once; keepers get a moment to clean up after their candidates (their
        lifelines close when the judges die), then everything left is killed."""
        for pid, (_pfd, life, _pg) in list(self.children.items()):
            if life is not None:  # judges and directly forked candidates: no cleanup of their own
                self.kill(pid)
        deadline = time.monotonic() + 3
        while self.children and time.monotonic() < deadline:
            for pid in list(self.children):
                try:
                    p, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    p = pid
                if p:
                    self.children.pop(pid, None)
            time.sleep(0.01)
        for pid in list(self.children):
            self.kill(pid)
        os._exit(0)

    def kill(self, pid: int) -> None:
        """SIGKILL a child through its pidfd (never a recycled pid); a judge's whole group."""
        ent = self.children.get(pid)
        if not ent:
            return
        pidfd, life, pgid = ent
        if life is not None:
            self.sel.unregister(life)
            os.close(life)
            self.children[pid] = (pidfd, None, pgid)
        if self.kind == "judge":
            try:  # the group id cannot be recycled while J (unreaped) is in it
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        except (ProcessLookupError, OSError):
            pass

    def reap(self, pid: int) -> None:
        pidfd, life, pgid = self.children.pop(pid)
        if self.kind == "judge":
            try:
                os.killpg(pgid, signal.SIGKILL)  # anything the judge's test code left behind
            except (ProcessLookupError, PermissionError):
                pass
        self.sel.unregister(pidfd)
        os.close(pidfd)
        if life is not None:
            self.sel.unregister(life)
            os.close(life)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        self.reap_orphans()

    def reap_orphans(self) -> None:
        """Reap processes re-parented to us (we are a subreaper), never a tracked child: those
        are reaped only through their pidfd event, so their pids cannot be recycled under us."""
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None or info.si_pid in self.children:
                return
            try:
                os.waitpid(info.si_pid, 0)
            except ChildProcessError:
                return

    def spawn(self, msg: dict, fds: list[int]) -> int:
        direct = self.kind == "candidate" and self.level == "namespaces" and self.pidns is not None
        pid = self._fork_in_new_pidns() if direct else os.fork()
        if pid == 0:
            code = 1
            try:
                L.set_pdeathsig(signal.SIGKILL)
                self.ctl.close()
                self.sel.close()
                for pfd, life, _ in self.children.values():
                    os.close(pfd)
                    if life is not None:
                        os.close(life)
                for fd in self.parent_only:
                    os.close(fd)
                if self.kind == "judge":
                    os.setpgid(0, 0)
                    from plumcode.sandbox import _judge
                    _judge.main(msg, fds)
                    code = 0
                elif direct:
                    os.close(fds[1])
                    self.candidate(msg, fds[0], None, msg.get("uid", NOBODY), direct=True)
                else:
                    code = self.keeper(msg, fds)
            except BaseException:  # noqa: BLE001
                import traceback
                traceback.print_exc()
            finally:
                os._exit(code)
        if self.kind == "judge":
            try:
                os.setpgid(pid, pid)
            except OSError:
                pass
            life = fds[2]
            keep = {life}
        elif direct:
            life = fds[1]
            keep = {life}
        else:
            life = None
            keep = set()
        for fd in fds:
            if fd not in keep:
                os.close(fd)
        pidfd = os.pidfd_open(pid)
        self.children[pid] = (pidfd, life, pid)
        self.sel.register(pidfd, selectors.EVENT_READ, ("exit", pid))
        if life is not None:
            self.sel.register(life, selectors.EVENT_READ, ("life", pid))
        return pid

    # ---- the keeper P and the candidate C
    def _fork_in_new_pidns(self) -> int:
        """fork() whose child is pid 1 of a new pid namespace; the zygote's own pid namespace
        for children is restored right after, so the next call can do it again."""
        L.unshare(L.CLONE_NEWPID)
        try:
            pid = os.fork()
        finally:
            if os.getpid() != 1:
                L.setns(self.pidns, L.CLONE_NEWPID)
        return pid

    def keeper(self, msg: dict, fds: list[int]) -> int:
        """P: build C's isolation, fork C, kill it (and everything it started) when the judge
        lets go of the lifeline or C ends. A failure here is sent to the judge as C's answer."""
        sock_fd, life_fd = fds
        ns = self.level == "namespaces"
        uid = msg.get("uid", NOBODY)
        lim = msg["limits"]
        tmp = None
        nproc = None
        try:
            if ns:  # unprivileged: C is pid 1 of its own user+pid+mount+ipc+uts namespaces
                outside = os.geteuid(), os.getegid()  # (unmapped, i.e. 65534, once unshared)
                _step("unshare(per-candidate user+pid+mount+ipc+uts namespaces)", L.unshare,
                      L.CLONE_NEWUSER | L.CLONE_NEWPID | L.CLONE_NEWNS | L.CLONE_NEWIPC | L.CLONE_NEWUTS)
                _step("per-candidate id maps", L.write_id_maps, 0, *outside)
            else:
                import tempfile
                L.prctl(L.PR_SET_CHILD_SUBREAPER, 1)  # escapees that leave C's group come back to us
                tmp = _step("candidate temp dir", tempfile.mkdtemp, "", "plumcode-c-")
                if self.uid_drop:
                    os.chown(tmp, uid, uid)
                else:  # C shares our uid: RLIMIT_NPROC counts the user's every task
                    nproc = _tasks_of(os.getuid()) + lim["nproc"]
        except BaseException as e:  # noqa: BLE001
            _setup_failed(sock_fd, e)
            return 1
        c = os.fork()
        if c == 0:
            try:
                os.close(life_fd)
                self.candidate(msg, sock_fd, tmp, uid, nproc=nproc)
            finally:
                os._exit(1)
        os.close(sock_fd)
        sel = selectors.DefaultSelector()
        cfd = os.pidfd_open(c)
        sel.register(cfd, selectors.EVENT_READ)
        sel.register(life_fd, selectors.EVENT_READ)
        if tmp is None:
            sel.select()
        else:  # no private tmpfs without namespaces: watch the size of C's temp dir
            cap = lim["tmp_mb"] << 20
            while not sel.select(0.25) and not _over(tmp, cap):
                pass
        try:
            os.kill(c, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(c, 0)
        if not ns:
            try:
                os.killpg(c, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if self.uid_drop:
                self._sweep_uid(uid)
            self._sweep_descendants()
            _rmtree(tmp)
        return 0

    @staticmethod
    def _sweep_uid(uid: int) -> None:
        """Kill every process of a per-job uid (escapees that left the process group). kill(-1)
        as that uid reaches exactly its processes; repeated so a fork racing the first pass dies."""
        k = os.fork()
        if k == 0:
            try:
                os.setresuid(uid, uid, uid)
                for _ in range(4):
                    os.kill(-1, signal.SIGKILL)
            finally:
                os._exit(0)
        os.waitpid(k, 0)

    @staticmethod
    def _sweep_descendants() -> None:
        """Kill whatever C started and left behind (``setsid`` + double fork): as a subreaper the
        keeper inherits every orphan of its subtree, so it kills its children until it has none
        (a cheap waitpid tells when there are none, the usual case)."""
        me = os.getpid()
        for _ in range(1000):
            try:
                if os.waitpid(-1, os.WNOHANG) != (0, 0):
                    continue  # reaped one; look again
            except ChildProcessError:
                return
            kids = _children(me)
            for k in kids:
                try:
                    os.kill(k, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            for k in kids:
                try:
                    os.waitpid(k, 0)
                except ChildProcessError:
                    pass

    def candidate(self, msg: dict, sock_fd: int, tmp: str | None, uid: int, direct: bool = False,
                  nproc: int | None = None) -> None:
        L.set_pdeathsig(signal.SIGKILL)
        try:
            self._isolate(msg["limits"], sock_fd, tmp, uid, direct, nproc)
        except BaseException as e:  # noqa: BLE001
            _setup_failed(3 if self._sock_moved else sock_fd, e)
            os._exit(1)
        sock = socket.socket(fileno=3)
        from plumcode.sandbox import _candidate
        _candidate.serve(sock)

    _sock_moved = False

    def _isolate(self, lim: dict, sock_fd: int, tmp: str | None, uid: int, direct: bool, nproc: int | None) -> None:
        """Everything between fork and running candidate code; fails closed (C never runs with
        less isolation than the zygote reported)."""
        if direct:  # root: pid 1 of a fresh pid namespace, then a per-job unprivileged uid
            _step("unshare(per-candidate mount+ipc+uts namespaces)", L.unshare,
                  L.CLONE_NEWNS | L.CLONE_NEWIPC | L.CLONE_NEWUTS)
            _step("mount the candidate's /tmp", L.mount, "tmpfs", "/tmp", "tmpfs", L.MS_NOSUID | L.MS_NODEV,
                  f"size={lim['tmp_mb']}m,mode=0777")
            _step("mount the candidate's /proc", L.mount, "proc", "/proc", "proc",
                  L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC)
            tmp = "/tmp"
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            L.drop_capabilities()
        elif tmp is None:  # namespaces via a user namespace: pid 1 of a fresh pid namespace
            _step("mount the candidate's /tmp", L.mount, "tmpfs", "/tmp", "tmpfs", L.MS_NOSUID | L.MS_NODEV,
                  f"size={lim['tmp_mb']}m,mode=0777")
            _step("mount the candidate's /proc", L.mount, "proc", "/proc", "proc",
                  L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC)
            tmp = "/tmp"
            L.drop_capabilities()
        else:
            os.setsid()
            if self.uid_drop:
                os.setgroups([])
                os.setresgid(uid, uid, uid)
                os.setresuid(uid, uid, uid)
            elif self.root:
                L.drop_capabilities()
        os.chdir(tmp)
        devnull = os.open("/dev/null", os.O_RDWR)
        for i in range(3):
            os.dup2(devnull, i)
        os.close(devnull)
        if sock_fd != 3:
            os.dup2(sock_fd, 3)
            os.close(sock_fd)
        self._sock_moved = True
        os.environ.clear()
        os.environ.update({"HOME": tmp, "TMPDIR": tmp, "PATH": "/usr/local/bin:/usr/bin:/bin",
                           "LANG": "C.UTF-8"})
        import tempfile
        tempfile.tempdir = None
        L.no_new_privs()
        if self.landlock:
            if self.read_layer is not None:
                _step("landlock (read layer)", L.landlock_enforce, self.read_layer)
            rules = [(fd, L.LL_FS_READ) for fd in self.read_fds] + list(self.dev_fds)
            own = [os.open(tmp, os.O_PATH | os.O_CLOEXEC)]
            rules.append((own[0], L.LL_FS_READ | L.LL_FS_WRITE_ANY | L.LL_FS_REFER | L.LL_FS_TRUNCATE))
            if self.level == "namespaces":  # its own pid namespace's /proc
                own.append(os.open("/proc", os.O_PATH | os.O_CLOEXEC))
                rules.append((own[-1], L.LL_FS_READ_FILE | L.LL_FS_READ_DIR))
            _step("landlock", L.landlock_confine, rules, self.landlock)
        if self.seccomp:
            _step("seccomp", L.seccomp_filter, True)
        L.close_fds_from(4)
        L.set_rlimits(memory_mb=lim["memory_mb"], cpu_s=lim["cpu_s"], fsize_mb=lim["fsize_mb"],
                      nofile=lim["nofile"], nproc=nproc or lim["nproc"])
        L.prctl(L.PR_SET_DUMPABLE, 1)  # its own /proc/self/* stays readable (uid changes clear it)


def _setup_failed(fd: int, e: BaseException) -> None:
    """Tell the judge (or the zygote's probe) why this candidate cannot run, as C's first
    answer, then wait for the request it answers so the judge reads it rather than a broken pipe."""
    import pickle

    from plumcode.sandbox import _wire
    data = pickle.dumps(("setup", f"{type(e).__name__}: {e}"[:500]), 5)
    try:
        os.write(fd, _wire._HDR.pack(len(data)) + data)
        select.select([fd], [], [], 30)
    except OSError:
        pass


PRELOAD = ("os sys re math itertools functools collections heapq bisect string random json typing "
           "dataclasses fractions decimal statistics copy operator datetime array numbers enum "
           "threading io types hashlib textwrap unicodedata cmath queue struct pickle socket "
           "traceback abc contextlib tempfile shutil")


def main() -> None:
    kind, ctl_fd, cfg = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
    ctl = socket.socket(fileno=ctl_fd)
    if kind == "candidate":
        import importlib
        for m in PRELOAD.split():
            try:
                importlib.import_module(m)
            except ImportError:
                pass
        from plumcode.sandbox import _candidate  # noqa: F401
    z = Zygote(kind, ctl, cfg)
    try:
        z.setup()
    except BaseException as e:  # noqa: BLE001
        err = e.strerror if isinstance(e, OSError) and not e.errno and e.strerror else f"{type(e).__name__}: {e}"
        ctl.sendall(json.dumps({"ok": False, "error": err}).encode())
        os._exit(1)
    z.run()


if __name__ == "__main__":
    main()
