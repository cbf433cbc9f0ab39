"""A tiny TLS server for tests: serves CERT/KEY on PORT, reloads them on SIGHUP.

Like OpenBao: if the new pair does not load (e.g. key/cert mismatch) it keeps
serving the old one. With --ignore-hup it never reloads (a node that does not
reload). Usage: tls_server.py PORT CERT KEY [--ignore-hup]
"""

from __future__ import annotations

import signal
import socket
import ssl
import sys
import threading


def load(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def main() -> None:
    port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    state = {"ctx": load(cert, key)}

    def on_hup(_sig: int, _frame: object) -> None:
        try:
            state["ctx"] = load(cert, key)
            print("reloaded", flush=True)
        except (OSError, ssl.SSLError) as exc:
            print(f"error encountered reloading listener: {exc}", flush=True)

    signal.signal(signal.SIGHUP, signal.SIG_IGN if "--ignore-hup" in sys.argv else on_hup)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    srv = socket.create_server(("127.0.0.1", port))
    print("ready", flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(state["ctx"], conn), daemon=True).start()


def serve(ctx: ssl.SSLContext, conn: socket.socket) -> None:
    conn.settimeout(5)
    try:
        with ctx.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1)
    except (OSError, ssl.SSLError):
        pass
    finally:
        conn.close()


if __name__ == "__main__":
    main()
