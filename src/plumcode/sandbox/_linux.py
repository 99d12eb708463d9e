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
    """Map one uid/gid into a freshly unshared user namespace (the process's own ids)."""
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"{inside} {outside_uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"{inside} {outside_gid} 1")


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


_SECCOMP_PROG: bytes | None = None


def seccomp_filter() -> bool:
    """Install a deny-list seccomp filter (EPERM): tracing/peeking other processes, mounting,
    namespaces, kernel keyrings/bpf/io_uring, and every socket family but AF_UNIX."""
    global _SECCOMP_PROG
    if _MACHINE != "x86_64":
        return False
    if _SECCOMP_PROG is None:
        _SECCOMP_PROG = _seccomp_program()
    buf = ctypes.create_string_buffer(_SECCOMP_PROG)
    fprog = struct.pack("HxxxxxxQ", len(_SECCOMP_PROG) // 8, ctypes.addressof(buf))
    no_new_privs()
    _check(_libc.syscall(_NR["seccomp"], ctypes.c_uint(1), ctypes.c_uint(0), ctypes.c_char_p(fprog)),
           "seccomp")
    return True


def _seccomp_program() -> bytes:
    BPF_LD_W_ABS, BPF_JEQ_K, BPF_JGE_K, BPF_RET_K = 0x20, 0x15, 0x35, 0x06
    ALLOW, KILL, ERRNO_EPERM = 0x7FFF0000, 0x80000000, 0x00050000 | 1
    ins: list[tuple[int, int, int, int]] = []

    def op(code: int, jt: int, jf: int, k: int) -> None:
        ins.append((code, jt, jf, k))

    op(BPF_LD_W_ABS, 0, 0, 4)  # arch
    op(BPF_JEQ_K, 1, 0, _AUDIT_ARCH_X86_64)
    op(BPF_RET_K, 0, 0, KILL)
    op(BPF_LD_W_ABS, 0, 0, 0)  # nr
    op(BPF_JGE_K, 0, 1, 0x40000000)  # x32 ABI
    op(BPF_RET_K, 0, 0, ERRNO_EPERM)
    for nr in sorted(_X86_64_DENY):
        op(BPF_JEQ_K, 0, 1, nr)
        op(BPF_RET_K, 0, 0, ERRNO_EPERM)
    op(BPF_JEQ_K, 0, 4, _X86_SOCKET)
    op(BPF_LD_W_ABS, 0, 0, 16)  # args[0] low word: the address family
    op(BPF_JEQ_K, 1, 0, 1)  # AF_UNIX
    op(BPF_RET_K, 0, 0, 0x00050000 | 97)  # EAFNOSUPPORT
    op(BPF_RET_K, 0, 0, ALLOW)
    op(BPF_RET_K, 0, 0, ALLOW)
    return b"".join(struct.pack("HBBI", *i) for i in ins)
