"""Thin ctypes wrappers for the Linux isolation primitives the sandbox uses.

Python 3.11 exposes none of unshare/mount/capset/seccomp/landlock, and we want no compiled
extension, so these call libc / raw syscalls. Every function raises ``OSError`` on failure so
callers can fall back to a weaker level and *report* it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import resource
import signal
import stat
import struct

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.syscall.restype = ctypes.c_long

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36

_MACHINE = platform.machine()
# syscall numbers that differ per architecture
_NR = {
    "x86_64": dict(capset=126, seccomp=317, landlock_create=444, landlock_add=445, landlock_restrict=446),
    "aarch64": dict(capset=91, seccomp=277, landlock_create=444, landlock_add=445, landlock_restrict=446),
}.get(_MACHINE, {})


def _check(rc: int, what: str) -> int:
    if rc < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")
    return rc


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(_libc.prctl(option, ctypes.c_ulong(arg2), ctypes.c_ulong(arg3), ctypes.c_ulong(arg4),
                              ctypes.c_ulong(arg5)), "prctl")


def set_pdeathsig(sig: int = signal.SIGKILL) -> None:
    """Die with the parent: the whole process tree goes when the master goes."""
    prctl(PR_SET_PDEATHSIG, sig)


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def setns(fd: int, nstype: int) -> None:
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), "setns")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    def enc(s: str | None) -> bytes | None:
        return s.encode() if s is not None else None

    _check(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount {target}")


def write_id_maps(inside: int, outside_uid: int, outside_gid: int) -> None:
    """Map one uid/gid into a freshly unshared user namespace (the process's own ids).

    gid_map goes first: in a user namespace nested in another one, an unprivileged process
    that has already written its uid_map is refused its gid_map (EPERM), which made every
    per-candidate namespace fail for non-root users."""
    for name, text in (("setgroups", "deny"), ("gid_map", f"{inside} {outside_gid} 1"),
                       ("uid_map", f"{inside} {outside_uid} 1")):
        try:
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
        except OSError as e:
            raise OSError(e.errno, f"writing /proc/self/{name} ({text!r}): {os.strerror(e.errno or 0)}") from None


def drop_capabilities() -> None:
    """Empty the bounding, effective, permitted and inheritable capability sets."""
    for cap in range(64):
        try:
            prctl(PR_CAPBSET_DROP, cap)
        except OSError:
            break  # EINVAL past the last capability
    if "capset" not in _NR:
        raise OSError(0, "capset: unsupported architecture")
    hdr = struct.pack("Ii", 0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = bytes(24)
    _check(_libc.syscall(_NR["capset"], ctypes.c_char_p(hdr), ctypes.c_char_p(data)), "capset")


def no_new_privs() -> None:
    prctl(PR_SET_NO_NEW_PRIVS, 1)


MNT_DETACH = 2
_NR_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(_MACHINE)


def pivot_root(new_root: str, put_old: str) -> None:
    if _NR_PIVOT_ROOT is None:
        raise OSError(0, "pivot_root: unsupported architecture")
    _check(_libc.syscall(_NR_PIVOT_ROOT, new_root.encode(), put_old.encode()), "pivot_root")


def umount2(target: str, flags: int) -> None:
    _check(_libc.umount2(target.encode(), ctypes.c_int(flags)), f"umount {target}")


_ST_TO_MS = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
             (os.ST_NOATIME, 1024), (os.ST_NODIRATIME, 2048), (os.ST_RELATIME, 1 << 21))


def remount_bind_readonly(target: str) -> None:
    """Make a bind mount read-only, repeating the flags it already has: inside a user namespace
    the kernel refuses a remount that would clear a locked nosuid/nodev/noexec/atime flag."""
    have = os.statvfs(target).f_flag
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY
    for st, ms in _ST_TO_MS:
        if have & st:
            flags |= ms
    mount(None, target, None, flags)


def set_rlimits(*, memory_mb: int | None, cpu_s: int | None, fsize_mb: int | None, nofile: int | None,
                nproc: int | None) -> None:
    def lim(which: int, value: int) -> None:
        soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))

    if memory_mb:
        lim(resource.RLIMIT_AS, memory_mb << 20)
    if cpu_s:
        lim(resource.RLIMIT_CPU, cpu_s)
    if fsize_mb:
        lim(resource.RLIMIT_FSIZE, fsize_mb << 20)
    if nofile:
        lim(resource.RLIMIT_NOFILE, nofile)
    if nproc:
        lim(resource.RLIMIT_NPROC, nproc)
    lim(resource.RLIMIT_CORE, 0)


# ---------------------------------------------------------------- landlock
LL_FS_EXECUTE = 1 << 0
LL_FS_WRITE_FILE = 1 << 1
LL_FS_READ_FILE = 1 << 2
LL_FS_READ_DIR = 1 << 3
LL_FS_WRITE_ANY = sum(1 << i for i in (1, 4, 5, 6, 7, 8, 9, 10, 11, 12))  # write + remove + make_*
LL_FS_REFER = 1 << 13
LL_FS_TRUNCATE = 1 << 14
LL_FS_READ = LL_FS_READ_FILE | LL_FS_READ_DIR | LL_FS_EXECUTE
LL_FS_FILE_RIGHTS = LL_FS_EXECUTE | LL_FS_WRITE_FILE | LL_FS_READ_FILE | LL_FS_TRUNCATE
LL_NET_ALL = 1 | 2  # bind_tcp | connect_tcp
LL_SCOPE_ALL = 1 | 2  # abstract unix sockets | signals


def landlock_abi() -> int:
    if "landlock_create" not in _NR:
        return 0
    rc = _libc.syscall(_NR["landlock_create"], None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(rc, 0)


def landlock_restrict(writable: list[str], abi: int | None = None) -> int:
    """Forbid every filesystem write outside ``writable`` (plus TCP and, from ABI 6, signals and
    abstract sockets leaving this domain). Returns the ABI used; 0 when unavailable."""
    abi = landlock_abi() if abi is None else abi
    if abi <= 0:
        return 0
    handled = LL_FS_WRITE_ANY
    if abi >= 2:
        handled |= LL_FS_REFER
    if abi >= 3:
        handled |= LL_FS_TRUNCATE
    net = LL_NET_ALL if abi >= 4 else 0
    scoped = LL_SCOPE_ALL if abi >= 6 else 0
    attr = struct.pack("QQQ", handled, net, scoped)
    size = 8 if abi < 4 else (16 if abi < 6 else 24)
    fd = _check(_libc.syscall(_NR["landlock_create"], ctypes.c_char_p(attr[:size]), ctypes.c_size_t(size),
                              ctypes.c_uint32(0)), "landlock_create_ruleset")
    try:
        for path in writable:
            try:
                pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                allowed = handled
                if not os.path.isdir(path):
                    allowed = LL_FS_WRITE_FILE | (LL_FS_TRUNCATE if abi >= 3 else 0)
                rule = struct.pack("=Qi", allowed, pfd)
                _check(_libc.syscall(_NR["landlock_add"], ctypes.c_int(fd), ctypes.c_int(1),
                                     ctypes.c_char_p(rule), ctypes.c_uint32(0)), "landlock_add_rule")
            finally:
                os.close(pfd)
        _check(_libc.syscall(_NR["landlock_restrict"], ctypes.c_int(fd), ctypes.c_uint32(0)),
               "landlock_restrict_self")
    finally:
        os.close(fd)
    return abi


def landlock_ruleset(rules: list[tuple[int, int]], abi: int, handled: int | None = None) -> int:
    """A landlock ruleset fd allowing ``rules`` ((O_PATH fd, access) pairs) and refusing every
    other access in ``handled`` (default: reads, executes and writes; then also TCP and, from ABI
    6, signals and abstract sockets leaving the domain). The caller keeps the rule fds."""
    full = handled is None
    if handled is None:
        handled = LL_FS_WRITE_ANY | LL_FS_READ
        if abi >= 2:
            handled |= LL_FS_REFER
        if abi >= 3:
            handled |= LL_FS_TRUNCATE
    net = LL_NET_ALL if abi >= 4 and full else 0
    scoped = LL_SCOPE_ALL if abi >= 6 and full else 0
    attr = struct.pack("QQQ", handled, net, scoped)
    size = 8 if abi < 4 else (16 if abi < 6 else 24)
    fd = _check(_libc.syscall(_NR["landlock_create"], ctypes.c_char_p(attr[:size]), ctypes.c_size_t(size),
                              ctypes.c_uint32(0)), "landlock_create_ruleset")
    try:
        for pfd, allowed in rules:
            allowed &= handled
            if not stat.S_ISDIR(os.fstat(pfd).st_mode):
                allowed &= LL_FS_FILE_RIGHTS
            rule = struct.pack("=Qi", allowed, pfd)
            _check(_libc.syscall(_NR["landlock_add"], ctypes.c_int(fd), ctypes.c_int(1),
                                 ctypes.c_char_p(rule), ctypes.c_uint32(0)), "landlock_add_rule")
    except BaseException:
        os.close(fd)
        raise
    return fd


def landlock_enforce(ruleset_fd: int) -> None:
    """Restrict this process by a ruleset (a new layer: every layer must allow an access). Needs
    no_new_privs (or CAP_SYS_ADMIN)."""
    _check(_libc.syscall(_NR["landlock_restrict"], ctypes.c_int(ruleset_fd), ctypes.c_uint32(0)),
           "landlock_restrict_self")


def landlock_confine(rules: list[tuple[int, int]], abi: int) -> None:
    """Restrict this process to ``rules`` (see :func:`landlock_ruleset`)."""
    fd = landlock_ruleset(rules, abi)
    try:
        landlock_enforce(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------- seccomp
_X86_64_DENY = {
    101: "ptrace", 310: "process_vm_readv", 311: "process_vm_writev", 165: "mount", 166: "umount2",
    155: "pivot_root", 161: "chroot", 250: "keyctl", 248: "add_key", 249: "request_key", 321: "bpf",
    298: "perf_event_open", 272: "unshare", 308: "setns", 425: "io_uring_setup", 426: "io_uring_enter",
    427: "io_uring_register", 246: "kexec_load", 175: "init_module", 313: "finit_module",
    167: "swapon", 169: "reboot", 134: "uselib", 139: "sysfs", 304: "open_by_handle_at",
    323: "userfaultfd", 428: "open_tree", 429: "move_mount", 430: "fsopen", 431: "fsconfig",
    432: "fsmount", 433: "fspick", 442: "mount_setattr",
}
_X86_SOCKET = 41
_AUDIT_ARCH_X86_64 = 0xC000003E


def close_fds_from(lowfd: int) -> None:
    """close_range(lowfd, ~0) in one syscall (os.closerange loops over 65536 fds here)."""
    if _libc.syscall(436, ctypes.c_uint(lowfd), ctypes.c_uint(0xFFFFFFFF), ctypes.c_uint(0)) < 0:
        os.closerange(lowfd, 1 << 16)


_SECCOMP_PROGS: dict[bool, bytes] = {}


def seccomp_filter(candidate: bool = False) -> bool:
    """Install a deny-list seccomp filter (EPERM): tracing/peeking other processes, mounting,
    namespaces, kernel keyrings/bpf/io_uring, and every socket family but AF_UNIX. With
    ``candidate`` no socket can be created at all (socketpair still works): without namespaces a
    path-named unix socket (the user's D-Bus session, ssh-agent, docker.sock) is otherwise
    reachable, and landlock does not guard connect()."""
    if _MACHINE != "x86_64":
        return False
    prog = _SECCOMP_PROGS.get(candidate)
    if prog is None:
        prog = _SECCOMP_PROGS[candidate] = _seccomp_program(candidate)
    _install(prog)
    return True


def _install(prog: bytes) -> None:
    buf = ctypes.create_string_buffer(prog)
    fprog = struct.pack("HxxxxxxQ", len(prog) // 8, ctypes.addressof(buf))
    no_new_privs()
    _check(_libc.syscall(_NR["seccomp"], ctypes.c_uint(1), ctypes.c_uint(0), ctypes.c_char_p(fprog)),
           "seccomp")


_BPF_LD_W_ABS, _BPF_JEQ_K, _BPF_JGE_K, _BPF_JSET_K, _BPF_RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW, _KILL = 0x7FFF0000, 0x80000000


def _errno(e: int) -> int:
    return 0x00050000 | e


def _seccomp_program(candidate: bool = False) -> bytes:
    ins: list[tuple[int, int, int, int]] = []

    def op(code: int, jt: int, jf: int, k: int) -> None:
        ins.append((code, jt, jf, k))

    op(_BPF_LD_W_ABS, 0, 0, 4)  # arch
    op(_BPF_JEQ_K, 1, 0, _AUDIT_ARCH_X86_64)
    op(_BPF_RET_K, 0, 0, _KILL)
    op(_BPF_LD_W_ABS, 0, 0, 0)  # nr
    op(_BPF_JGE_K, 0, 1, 0x40000000)  # x32 ABI
    op(_BPF_RET_K, 0, 0, _errno(1))
    for nr in sorted(_X86_64_DENY):
        op(_BPF_JEQ_K, 0, 1, nr)
        op(_BPF_RET_K, 0, 0, _errno(1))
    if candidate:
        op(_BPF_JEQ_K, 0, 1, _X86_SOCKET)
        op(_BPF_RET_K, 0, 0, _errno(97))  # EAFNOSUPPORT
        op(_BPF_RET_K, 0, 0, _ALLOW)
    else:
        op(_BPF_JEQ_K, 0, 4, _X86_SOCKET)
        op(_BPF_LD_W_ABS, 0, 0, 16)  # args[0] low word: the address family
        op(_BPF_JEQ_K, 1, 0, 1)  # AF_UNIX
        op(_BPF_RET_K, 0, 0, _errno(97))  # EAFNOSUPPORT
        op(_BPF_RET_K, 0, 0, _ALLOW)
        op(_BPF_RET_K, 0, 0, _ALLOW)
    return b"".join(struct.pack("HBBI", *i) for i in ins)


# ---------------------------------------------------------------- emulating a stricter host
DENIABLE = ("userns", "namespaces", "mount", "landlock", "seccomp")
_NS_FLAGS = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | 0x02000000
_X86_NR = {"unshare": 272, "setns": 308, "clone": 56, "clone3": 435, "landlock_create": 444, "seccomp": 317,
           "mount": 165}


def deny_features(features: set[str] | frozenset[str]) -> None:
    """Make this process (and everything it starts) see a host without the given kernel
    features, the way container runtimes do it: ``userns``: unshare/clone with CLONE_NEWUSER get
    EPERM (clone3 ENOSYS, so libc falls back to clone); ``namespaces``: the same for every
    namespace flag and setns; ``mount``: mount() gets EPERM (namespaces are entered, then
    building the view fails: the half-built case); ``landlock``: landlock_create_ruleset gets
    ENOSYS; ``seccomp``: later seccomp() calls get EINVAL. For testing the fallbacks
    (PLUMCODE_SANDBOX_DENY)."""
    bad = set(features) - set(DENIABLE)
    if bad:
        raise ValueError(f"unknown feature(s) to deny: {sorted(bad)} (known: {', '.join(DENIABLE)})")
    if not features:
        return
    if _MACHINE != "x86_64":
        raise OSError(0, "denying kernel features is only implemented on x86_64")
    mask = CLONE_NEWUSER if "userns" in features else 0
    if "namespaces" in features:
        mask |= _NS_FLAGS
    ins: list[tuple[int, int, int, int]] = []

    def op(code: int, jt: int, jf: int, k: int) -> None:
        ins.append((code, jt, jf, k))

    op(_BPF_LD_W_ABS, 0, 0, 4)
    op(_BPF_JEQ_K, 1, 0, _AUDIT_ARCH_X86_64)
    op(_BPF_RET_K, 0, 0, _ALLOW)
    op(_BPF_LD_W_ABS, 0, 0, 0)
    if mask:
        op(_BPF_JEQ_K, 0, 1, _X86_NR["clone3"])
        op(_BPF_RET_K, 0, 0, _errno(38))  # ENOSYS
        for name in ("unshare", "clone"):
            op(_BPF_JEQ_K, 0, 4, _X86_NR[name])
            op(_BPF_LD_W_ABS, 0, 0, 16)  # args[0] low word: the flags
            op(_BPF_JSET_K, 0, 1, mask)
            op(_BPF_RET_K, 0, 0, _errno(1))
            op(_BPF_RET_K, 0, 0, _ALLOW)
        if "namespaces" in features:
            op(_BPF_JEQ_K, 0, 1, _X86_NR["setns"])
            op(_BPF_RET_K, 0, 0, _errno(1))
    if "mount" in features:
        op(_BPF_JEQ_K, 0, 1, _X86_NR["mount"])
        op(_BPF_RET_K, 0, 0, _errno(1))
    if "landlock" in features:
        op(_BPF_JEQ_K, 0, 1, _X86_NR["landlock_create"])
        op(_BPF_RET_K, 0, 0, _errno(38))
    if "seccomp" in features:
        op(_BPF_JEQ_K, 0, 1, _X86_NR["seccomp"])
        op(_BPF_RET_K, 0, 0, _errno(22))
    op(_BPF_RET_K, 0, 0, _ALLOW)
    _install(b"".join(struct.pack("HBBI", *i) for i in ins))
