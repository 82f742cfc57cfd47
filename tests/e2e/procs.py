"""What the end-to-end tests read of processes in /proc: state, name, parent, children,
descendants, and what a GDB process holds (descriptors, children, temporary files)."""

from __future__ import annotations

import glob
import os


def stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name (state first, then ppid...), or None when
    the process is gone (reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def state(pid: int) -> str:
    """R, S, T, t, Z ... or "gone"."""
    fields = stat_fields(pid)
    return fields[0] if fields else "gone"


def alive(pid: int) -> bool:
    """pid is a process that has not ended (a zombie has)."""
    return state(pid) not in ("Z", "gone")


def comm(pid: int) -> str:
    """The program a process runs: its executable's name (ttd-stub for a rematerialized
    process, whose command name is its recorded thread's), else its command name."""
    try:
        return os.path.basename(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def _parents() -> dict[int, tuple[int, str]]:
    """{pid: (ppid, state)} of every process."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = stat_fields(int(entry))
            if fields is not None:
                out[int(entry)] = (int(fields[1]), fields[0])
    return out


def children(pid: int) -> list[int]:
    """The direct children of `pid`, zombies included."""
    return sorted(child for child, (ppid, _) in _parents().items() if ppid == pid)


def descendants(pid: int) -> dict[int, str]:
    """{pid: state} of every process below `pid` (zombies included)."""
    parents = _parents()
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, (ppid, child_state) in parents.items():
            if ppid == parent and child not in found:
                found[child] = child_state
                frontier.append(child)
    return found


def living_children_names(pid: int) -> list[str]:
    """Sorted names of the living (not zombie) children of `pid`."""
    return sorted(comm(child) for child in children(pid) if state(child) not in ("Z", "gone"))


def started_at(pid: int) -> float:
    """When process `pid` started, in seconds since the epoch (its stat's start time,
    in clock ticks after boot, plus the boot time); 0 when it is gone."""
    fields = stat_fields(pid)
    if fields is None:
        return 0.0
    with open("/proc/stat") as f:
        boot = next(int(line.split()[1]) for line in f if line.startswith("btime "))
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def temp_files(gdb_pid: int) -> list[str]:
    """ttd's temporary files of this GDB: call sessions' directories (/tmp/ttd-GDBPID-*)
    and the gdbserver logs of older versions (/tmp/ttd-gdbserver-GDBPID-*). Other GDBs'
    files (other tests running at the same time) are not this GDB's, nor those made
    before it started (another GDB of that process id, earlier; once it has ended, every
    file with its id counts)."""
    since = started_at(gdb_pid) - 1  # the start time is in clock ticks, btime in seconds
    found = []
    for where in ("/tmp", "/dev/shm"):
        for prefix in (f"ttd-{gdb_pid}-", f"ttd-gdbserver-{gdb_pid}-"):
            found += [p for p in glob.glob(f"{where}/{prefix}*") if _changed_at(p) >= since]
    return sorted(found)


def _changed_at(path: str) -> float:
    try:
        return os.stat(path).st_ctime
    except OSError:  # removed meanwhile
        return 0.0


def footprint(gdb_pid: int) -> dict:
    """What a call could leave behind: GDB's descriptors, its processes, temporary files."""
    fd_dir = f"/proc/{gdb_pid}/fd"
    fds = []
    for fd in os.listdir(fd_dir):
        try:
            fds.append(os.readlink(f"{fd_dir}/{fd}"))
        except OSError:  # closed meanwhile (the listing's own descriptor)
            pass
    return {"fds": sorted(fds), "processes": descendants(gdb_pid), "temp": temp_files(gdb_pid)}
