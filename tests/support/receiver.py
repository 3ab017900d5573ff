"""A webhook receiver on loopback that records every request, raw, as a receiver's server sees it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    started: float  # time.time() when the request arrived
    finished: float  # ... and when it was answered


class Receiver:
    """Answers each POST with the next of `statuses` (the last one repeats), after `delay_s`; with
    `endless_answer`, a body that never ends (bytes every 50 ms until the sender hangs up or `close`)."""

    def __init__(
        self, statuses: tuple[int, ...] = (200,), delay_s: float = 0.0, port: int = 0, endless_answer: bool = False
    ) -> None:
        self.statuses = list(statuses)
        self.delay_s = delay_s
        self.endless_answer = endless_answer
        self.closed = False
        self.received: list[Received] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                started = time.time()
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                time.sleep(receiver.delay_s)
                status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                self.send_response(status)
                headers = {name.lower(): value for name, value in self.headers.items()}
                if receiver.endless_answer:
                    self.send_header("content-length", str(2**40))
                    self.end_headers()
                    receiver.received.append(Received(self.path, headers, body, started, time.time()))
                    try:
                        while not receiver.closed:
                            self.wfile.write(b"x" * 1024)
                            time.sleep(0.05)
                    except OSError:  # the sender hung up
                        return
                self.send_header("content-length", "0")
                self.end_headers()
                receiver.received.append(Received(self.path, headers, body, started, time.time()))

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 60) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"received {len(self.received)} webhook(s), expected {count}")
            time.sleep(0.05)
        return self.received

    def close(self) -> None:
        self.closed = True  # an endless answer ends
        self.server.shutdown()
        self.server.server_close()
