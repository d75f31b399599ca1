"""Network faults on 127.0.0.1 for the connection tests: a listener that never answers, and a
proxy in front of a real server that stalls or cuts the connection once a query goes by."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def _serving(on_accept: Callable[[socket.socket], None], stop: threading.Event,
             opened: list[socket.socket]) -> Iterator[int]:
    """A listener on 127.0.0.1 whose accepted connections go to `on_accept`, until the block
    ends; yields its port, then stops accepting and closes every socket in `opened`."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    opened.append(server)

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            on_accept(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for sock in opened:
            try:
                sock.close()
            except OSError:
                pass


@contextmanager
def silent_listener() -> Iterator[int]:
    """A port that accepts connections and never sends a byte."""
    held: list[socket.socket] = []
    with _serving(held.append, threading.Event(), held) as port:
        yield port


@contextmanager
def faulty_proxy(target_port: int, trigger: bytes, *, mode: str, after: int = 0) -> Iterator[int]:
    """Forward to 127.0.0.1:target_port until the client sends bytes containing `trigger`; then
    mode "stall": stop forwarding the server's answer (the connection stays open), or
    mode "cut": forward `after` more bytes of the answer, then close both sides."""
    stop = threading.Event()
    sockets: list[socket.socket] = []

    def pipe_client(client: socket.socket, upstream: socket.socket, triggered: threading.Event) -> None:
        try:
            while data := client.recv(65536):
                if trigger in data:
                    triggered.set()
                upstream.sendall(data)
        except OSError:
            pass

    def pipe_server(client: socket.socket, upstream: socket.socket, triggered: threading.Event) -> None:
        sent_after = 0
        try:
            while data := upstream.recv(65536):
                if triggered.is_set():
                    if mode == "stall":
                        stop.wait()
                        return
                    data = data[:max(0, after - sent_after)]
                    sent_after += len(data)
                    client.sendall(data)
                    if sent_after >= after:
                        client.shutdown(socket.SHUT_RDWR)
                        client.close()
                        upstream.close()
                        return
                    continue
                client.sendall(data)
        except OSError:
            pass

    def connect(client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", target_port))
        sockets.extend([client, upstream])
        triggered = threading.Event()
        for fn in (pipe_client, pipe_server):
            threading.Thread(target=fn, args=(client, upstream, triggered), daemon=True).start()

    with _serving(connect, stop, sockets) as port:
        yield port
