"""Child process for test_share_memory.py: one checked ceremony submission against a Vault over HTTP.

    python share_memory_child.py ADDRESS MANIFEST JOURNAL MODE    (the share arrives on stdin)

MODE `buffer`: the share is read from stdin straight into a bytearray (os.readv, no bytes or str
object) and handed to UnsealCeremony.submit(), then wiped, as the console does after reading its input.
MODE `line`: the same through submit_line(), as 'alice: <share>' (the upgrade's --share-stdin lines).
MODE `str`: the share is handed over as a str, as `--share-stdin` reads it (a copy vaultops cannot
wipe). MODE `tui`: the live unseal screen (prompt_toolkit, pipe input) gets Enter, the share and
Enter as keystrokes, written into its input pipe straight from the bytearray; it keeps running.
The child then prints `ready` and waits until killed, while the test reads its memory. It never
holds the needles the test searches for: the parent process does.

MEMTEST_HOLD (seconds, default 0) is the ceremony's hold_for: with it the checked share is kept for
re-sending (services/ceremony/held.py); on SIGUSR1 the child finishes the ceremony (which zeroes it)
and prints `finished`.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
import time


def main() -> None:
    address, manifest_path, journal_path, mode = sys.argv[1:5]
    from vaultops.journal import Journal
    from vaultops.services.ceremony.unseal import UnsealCeremony
    from vaultops.services.ceremony.manifest import Manifest
    from vaultops.vault import NodeClient

    ceremony = UnsealCeremony([NodeClient("node1", address)], manifest=Manifest.load(manifest_path),
                              journal=Journal(journal_path, cluster="memtest"),
                              hold_for=float(os.environ.get("MEMTEST_HOLD", "0")))
    ceremony.start()
    buf = bytearray(128)
    got = os.readv(0, [buf])
    share = bytearray(got)  # exact length, preallocated: no partial copy is left behind
    share[:] = memoryview(buf)[:got]
    buf[:] = bytes(len(buf))
    if mode == "tui":
        run_tui(ceremony, share)
        return
    try:
        if mode == "buffer":
            sub = ceremony.submit(share)
        elif mode == "line":
            sub = ceremony.submit_line(share)
        else:
            sub = ceremony.submit(share.decode("ascii"))
    finally:
        share[:] = bytes(got)
    print("submitted", sub.keyholder, [s.outcome.value for s in sub.sends], flush=True)
    gc.collect()
    finish = threading.Event()
    signal.signal(signal.SIGUSR1, lambda *_: finish.set())
    print("ready", flush=True)
    if finish.wait(600):
        ceremony.finish()
        gc.collect()
        print("finished", flush=True)
        time.sleep(600)


def run_tui(ceremony: object, share: bytearray) -> None:
    import asyncio

    from prompt_toolkit.application import create_app_session
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from vaultops.tui.app import build_app
    from vaultops.tui.unseal_screen import UnsealScreen

    with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
        screen = UnsealScreen(ceremony, refresh_interval=0.5)  # type: ignore[arg-type]
        app, _shell = build_app([screen], title="memtest")

        async def until(cond: object) -> None:
            while not cond():  # type: ignore[operator]
                await asyncio.sleep(0.01)

        async def keyholder() -> None:
            await until(lambda: screen.state.snapshot is not None)
            os.write(pipe.pipe.write_fd, b"\r")  # pick alice
            await asyncio.sleep(0.1)
            os.write(pipe.pipe.write_fd, share)
            share[:] = bytes(len(share))
            await asyncio.sleep(0.1)
            os.write(pipe.pipe.write_fd, b"\r")
            await until(lambda: screen.state.submissions == 1)
            await asyncio.sleep(float(os.environ.get("MEMTEST_LINGER", "1")))  # the screen goes on refreshing
            gc.collect()
            print("submitted; live references", live_references(int(os.environ["NEEDLE_HASH"])), flush=True)
            print("ready", flush=True)
            await asyncio.sleep(600)

        async def main() -> None:
            task = asyncio.ensure_future(app.run_async())
            await keyholder()
            await task
        asyncio.run(main())


def live_references(needle_hash: int) -> int:
    """Objects the gc can reach that refer to a 44-character str with this hash (PYTHONHASHSEED=0).

    Untracked containers (a dict or tuple of str only) are looked into one level down. hash() reads
    the str in place: nothing is copied.
    """
    def hit(obj: object) -> bool:
        return type(obj) is str and len(obj) == 44 and hash(obj) == needle_hash

    found = 0
    for holder in gc.get_objects():
        for ref in gc.get_referents(holder):
            if hit(ref):
                found += 1
            elif type(ref) in (dict, tuple) and not gc.is_tracked(ref):
                found += sum(1 for inner in gc.get_referents(ref) if hit(inner))
    return found


if __name__ == "__main__":
    main()
