"""Keep glibc from handing the heap back to the kernel after every chunk of a stream.

Every stage of a backup stream allocates and frees a buffer of about 1 MiB per chunk (a read, an
inflated block, a ciphertext block). glibc returns the free top of the heap to the kernel once
more than M_TRIM_THRESHOLD is free there, and the next chunk faults 256 fresh pages back in:
inflating a 220 MB snapshot in 1 MiB steps measured 0.56 s that way, 0.11 s without
(scripts/bench/backup_stream.py's machine). So a streaming command keeps up to 64 MiB of free
heap (what the pipeline holds at its peak anyway: the RSS target counts it) and serves blocks
up to 32 MiB from the heap rather than fresh mappings. Setting one of them turns glibc's own
adaptive thresholds off, hence both. Elsewhere (musl, macOS) this does nothing.
"""

from __future__ import annotations

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
_done = False


def keep_heap() -> None:
    """Idempotent; called by the stream loops (pipeline, verify_chunks) before their first chunk."""
    global _done
    if _done:
        return
    _done = True
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(M_TRIM_THRESHOLD, 64 << 20)
    except (OSError, AttributeError):
        pass
