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
import selectors
import signal
import socket
import sys
import time

from plumcode.sandbox import _linux as L

NOBODY = 65534
JUDGE_UID = 65533


# ---------------------------------------------------------------- the filesystem view
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


def build_view(extra: list[str], tmp_mb: int | None) -> None:
    """In a fresh mount namespace: hide directories an unprivileged user cannot enter (e.g. a
    0700 /root holding the interpreter) behind a tmpfs with only the interpreter's paths bound
    back, give /tmp and /dev/shm private tmpfs, and make every other mount read-only."""
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
    if tmp_mb:
        L.mount("tmpfs", "/tmp", "tmpfs", L.MS_NOSUID | L.MS_NODEV, f"size={tmp_mb}m,mode=1777")


def _python_readable_by_others() -> bool:
    for p in _needed_paths([]):
        parts = p.split("/")
        for i in range(2, len(parts) + 1):
            if not os.stat("/".join(parts[:i])).st_mode & 0o001:
                return False
    return True


# ---------------------------------------------------------------- zygote loop
class Zygote:
    def __init__(self, kind: str, ctl: socket.socket, cfg: dict):
        self.kind, self.ctl, self.cfg = kind, ctl, cfg
        self.sel = selectors.DefaultSelector()
        self.children: dict[int, tuple[int, int | None, int]] = {}  # pid -> (pidfd, lifeline, pgid)
        self.level = "process"
        self.root = os.geteuid() == 0
        self.uid_drop = False
        self.seccomp = False
        self.landlock = 0
        self.tmpdir: str | None = None
        self.pidns: int | None = None  # root: fork C straight into a fresh pid namespace

    # ---- setup
    def setup(self) -> None:
        L.set_pdeathsig(signal.SIGKILL)
        want_ns = self.cfg["isolation"] in ("auto", "namespaces")
        src = self.cfg.get("paths", [])
        if self.kind == "candidate":
            L.prctl(L.PR_SET_CHILD_SUBREAPER, 1)
            if want_ns:
                try:
                    if self.root:
                        L.unshare(L.CLONE_NEWNS | L.CLONE_NEWNET)
                    else:
                        uid, gid = os.getuid(), os.getgid()
                        L.unshare(L.CLONE_NEWUSER | L.CLONE_NEWNS | L.CLONE_NEWNET)
                        L.write_id_maps(0, uid, gid)
                    build_view(src, None)
                    if self.root:
                        self.pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
                    self._probe_candidate_ns()
                    self.level = "namespaces"
                except OSError as e:
                    if self.cfg["isolation"] == "namespaces":
                        raise
                    self.level = "process"
                    self.cfg["why_not_ns"] = str(e)
            if self.level == "process":
                view = False
                if self.root:
                    try:
                        L.unshare(L.CLONE_NEWNS)
                        build_view(src, self.cfg.get("tmp_mb", 256) * 4)
                        view = True
                    except OSError:
                        pass
                self.uid_drop = self.root and (view or _python_readable_by_others())
            self.landlock = L.landlock_abi()
            self.seccomp = L._MACHINE == "x86_64"
            if self.seccomp:
                L._SECCOMP_PROG = L._seccomp_program()  # built once, inherited by every fork
        else:  # judge
            try:
                if want_ns:
                    if self.root:
                        L.unshare(L.CLONE_NEWNS | L.CLONE_NEWNET)
                        build_view(src, None)
                    else:
                        uid, gid = os.getuid(), os.getgid()
                        L.unshare(L.CLONE_NEWUSER | L.CLONE_NEWNET)
                        L.write_id_maps(uid, uid, gid)
                    self.level = "namespaces"
            except OSError:
                self.level = "process"
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

    def _probe_candidate_ns(self) -> None:
        """Fail fast (so 'auto' can fall back) if per-candidate namespaces do not work here."""
        if self.pidns is not None:
            pid = self._fork_in_new_pidns()
            if pid == 0:
                try:
                    self._direct_ns_mounts(1)
                    os._exit(0)
                except BaseException:  # noqa: BLE001
                    os._exit(1)
        else:
            pid = os.fork()
            if pid == 0:
                try:
                    self._enter_candidate_ns(probe=True)
                    os._exit(0)
                except BaseException:  # noqa: BLE001
                    os._exit(1)
        _, st = os.waitpid(pid, 0)
        if st != 0:
            raise OSError(0, "per-candidate namespaces unavailable")

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

    @staticmethod
    def _direct_ns_mounts(tmp_mb: int) -> None:
        L.unshare(L.CLONE_NEWNS | L.CLONE_NEWIPC | L.CLONE_NEWUTS)
        L.mount("tmpfs", "/tmp", "tmpfs", L.MS_NOSUID | L.MS_NODEV, f"size={tmp_mb}m,mode=0777")
        L.mount("proc", "/proc", "proc", L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC)

    def _enter_candidate_ns(self, probe: bool = False) -> None:
        if self.root:
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            L.prctl(L.PR_SET_DUMPABLE, 1)  # so we may write our own uid_map
        outside = os.geteuid()
        L.unshare(L.CLONE_NEWUSER | L.CLONE_NEWPID | L.CLONE_NEWNS | L.CLONE_NEWIPC | L.CLONE_NEWUTS)
        L.write_id_maps(0, outside, os.getegid())
        if probe:
            pid = os.fork()
            if pid == 0:
                try:
                    L.mount("tmpfs", "/tmp", "tmpfs", L.MS_NOSUID | L.MS_NODEV, "size=1m")
                    L.mount("proc", "/proc", "proc", L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC)
                    os._exit(0)
                except BaseException:  # noqa: BLE001
                    os._exit(1)
            _, st = os.waitpid(pid, 0)
            if st != 0:
                raise OSError(0, "mount in candidate namespace failed")

    def level_string(self) -> str:
        parts = [self.level]
        if self.kind == "candidate" and self.level == "process" and self.uid_drop:
            parts.append("uid")
        if self.seccomp:
            parts.append("seccomp")
        if self.landlock:
            parts.append("landlock")
        return "+".join(parts)

    # ---- main loop
    def run(self) -> None:
        self.ctl.sendall(json.dumps({"ok": True, "level": self.level_string(),
                                     "why_not_ns": self.cfg.get("why_not_ns", "")}).encode())
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

    def spawn(self, msg: dict, fds: list[int]) -> None:
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

    # ---- the keeper P and the candidate C
    def keeper(self, msg: dict, fds: list[int]) -> int:
        """P: build C's isolation, fork C, kill it when the judge lets go of the lifeline."""
        sock_fd, life_fd = fds
        ns = self.level == "namespaces"
        uid = msg.get("uid", NOBODY)
        tmp = None
        if ns:
            self._enter_candidate_ns()
        else:
            import tempfile
            tmp = tempfile.mkdtemp(prefix="plumcode-c-")
            if self.uid_drop:
                os.chown(tmp, uid, uid)
        c = os.fork()
        if c == 0:
            try:
                os.close(life_fd)
                self.candidate(msg, sock_fd, tmp, uid)
            finally:
                os._exit(1)
        os.close(sock_fd)
        sel = selectors.DefaultSelector()
        cfd = os.pidfd_open(c)
        sel.register(cfd, selectors.EVENT_READ)
        sel.register(life_fd, selectors.EVENT_READ)
        sel.select()
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
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
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

    def candidate(self, msg: dict, sock_fd: int, tmp: str | None, uid: int, direct: bool = False) -> None:
        L.set_pdeathsig(signal.SIGKILL)
        lim = msg["limits"]
        if direct:  # root: pid 1 of a fresh pid namespace, then a per-job unprivileged uid
            self._direct_ns_mounts(lim["tmp_mb"])
            tmp = "/tmp"
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            L.drop_capabilities()
        elif tmp is None:  # namespaces via a user namespace: pid 1 of a fresh pid namespace
            L.mount("tmpfs", "/tmp", "tmpfs", L.MS_NOSUID | L.MS_NODEV, f"size={lim['tmp_mb']}m,mode=0777")
            L.mount("proc", "/proc", "proc", L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC)
            tmp = "/tmp"
            L.drop_capabilities()
        else:
            os.setsid()
            if self.uid_drop:
                os.setgroups([])
                os.setresgid(uid, uid, uid)
                os.setresuid(uid, uid, uid)
        os.chdir(tmp)
        devnull = os.open("/dev/null", os.O_RDWR)
        for i in range(3):
            os.dup2(devnull, i)
        os.close(devnull)
        if sock_fd != 3:
            os.dup2(sock_fd, 3)
            os.close(sock_fd)
        L.close_fds_from(4)
        os.environ.clear()
        os.environ.update({"HOME": tmp, "TMPDIR": tmp, "PATH": "/usr/local/bin:/usr/bin:/bin",
                           "LANG": "C.UTF-8"})
        import tempfile
        tempfile.tempdir = None
        L.no_new_privs()
        if self.landlock:
            L.landlock_restrict([tmp, "/dev/null"], self.landlock)
        L.seccomp_filter()
        L.set_rlimits(memory_mb=lim["memory_mb"], cpu_s=lim["cpu_s"], fsize_mb=lim["fsize_mb"],
                      nofile=lim["nofile"], nproc=lim["nproc"])
        L.prctl(L.PR_SET_DUMPABLE, 1)  # its own /proc/self/* stays readable (uid changes clear it)
        sock = socket.socket(fileno=3)
        from plumcode.sandbox import _candidate
        _candidate.serve(sock)


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
        ctl.sendall(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}).encode())
        os._exit(1)
    z.run()


if __name__ == "__main__":
    main()
