"""Count byte strings in another process's memory (/proc/PID/maps + /proc/PID/mem).

The counting process holds the needles, so the process looked at never needs a copy of what is
searched for. Reading another process's memory needs the same user and a ptrace scope that lets a
parent read its child (Yama ptrace_scope <= 1), or root.
"""

from __future__ import annotations

CHUNK = 64 << 20
SKIP = ("[vvar]", "[vsyscall]", "[vvar_vclock]")


def regions(pid: int) -> list[tuple[int, int, str]]:
    out = []
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            parts = line.split(maxsplit=5)
            perms, path = parts[1], (parts[5].strip() if len(parts) > 5 else "")
            if "r" not in perms or path in SKIP:
                continue
            start, end = (int(x, 16) for x in parts[0].split("-"))
            out.append((start, end, path))
    return out


def count(pid: int, needles: dict[str, bytes]) -> dict[str, int]:
    """How many times each needle occurs in the readable memory of *pid* (overlapping chunks)."""
    found = dict.fromkeys(needles, 0)
    overlap = max(len(n) for n in needles.values()) - 1
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for start, end, _path in regions(pid):
            pos = start
            while pos < end:
                size = min(CHUNK, end - pos)
                try:
                    mem.seek(pos)
                    data = mem.read(size + min(overlap, end - pos - size))
                except (OSError, OverflowError):
                    break
                for name, needle in needles.items():
                    found[name] += _count_starting_before(data, needle, size)
                pos += size
    return found


def _count_starting_before(data: bytes, needle: bytes, limit: int) -> int:
    """Occurrences that start in data[:limit] (the tail overlaps the next chunk)."""
    n, at = 0, data.find(needle)
    while 0 <= at < limit:
        n += 1
        at = data.find(needle, at + 1)
    return n
