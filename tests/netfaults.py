"""Misbehaving TCP peers on 127.0.0.1 for connection tests: a listener that
accepts and never answers, and a forwarder that can be switched on later."""

from __future__ import annotations

import socket
import threading
from typing import List, Optional, Tuple


def _stop_listening(listener: socket.socket) -> None:
    """Close a listener and wake a thread blocked in its accept() (close alone does not)."""
    try:
        listener.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    listener.close()


class HungServer:
    """Accepts connections on 127.0.0.1 and never sends or reads a byte."""

    def __init__(self, port: int = 0) -> None:
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.accepted: List[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        _stop_listening(self.listener)
        for conn in self.accepted:
            conn.close()
        self._thread.join(5)

    def __enter__(self) -> HungServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Forwarder:
    """127.0.0.1:``port`` -> ``target``, byte for byte, until :meth:`close`."""

    def __init__(self, port: int, target: Tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(64)
        self.port = port
        self._sockets: List[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        self._threads: List[threading.Thread] = []
        self._spawn(self._accept)

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                conn.close()
                continue
            with self._lock:
                if self._closed:
                    conn.close()
                    upstream.close()
                    return
                self._sockets += [conn, upstream]
            self._spawn(self._pump, conn, upstream)
            self._spawn(self._pump, upstream, conn)

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sockets, self._sockets = self._sockets, []
        _stop_listening(self.listener)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for thread in self._threads:
            thread.join(5)

    def __enter__(self) -> Forwarder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def wait_for(predicate, timeout: float, interval: float = 0.2) -> Optional[float]:
    """Seconds until ``predicate()`` was true, or None after ``timeout``."""
    import time

    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if predicate():
            return time.monotonic() - t0
        time.sleep(interval)
    return None
