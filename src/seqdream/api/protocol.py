"""The HTTP/1.1 protocol the server speaks: uvicorn's httptools protocol with limits on the head.

A request line longer than MAX_URL_BYTES is answered 414, a head (request line and headers)
longer than MAX_HEAD_BYTES or with more than MAX_HEADERS header lines 431, in the API's JSON
envelope, before the rest is parsed: the bytes are counted as they arrive, so neither one huge
header nor many small ones can cost the server more than the limit's worth of parsing.
"""

from __future__ import annotations

from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from seqdream.api.envelope import render_error
from seqdream.api.security_headers import COMMON, NON_HTML_POLICY

MAX_URL_BYTES = 8 * 1024
MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 100
LINGER_S = 2.0
_REASONS = {414: b"URI Too Long", 431: b"Request Header Fields Too Large"}


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class BoundedHttpProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_open = True  # between requests, and until a request's headers are complete
        self._head_bytes = 0
        self._tail = b""  # the last bytes seen of a head, to find a blank line split across reads
        self._header_count = 0
        self._refused: _Refused | None = None
        self._lingering = False

    def data_received(self, data: bytes) -> None:
        if self._lingering:  # refused: the rest of what the client sends is read and dropped, unparsed
            return
        if self._head_open:  # count the head's bytes up to its blank line, before any parsing
            window = self._tail + data
            end = window.find(b"\r\n\r\n")
            self._head_bytes += len(data) if end < 0 else end + 4 - len(self._tail)
            self._tail = window[-3:]
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse(_Refused(431, f"request headers are larger than {MAX_HEAD_BYTES} bytes"))
                return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self._refused is not None:
                self._refuse(self._refused)
                return
            message = "Invalid HTTP request received."
            self.logger.warning(message)
            self.send_400_response(message)
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count = 0

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > MAX_URL_BYTES:
            raise self._stop(_Refused(414, f"the request line's URL is longer than {MAX_URL_BYTES} bytes"))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > MAX_HEADERS:
            raise self._stop(_Refused(431, f"a request may carry at most {MAX_HEADERS} headers"))
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_open, self._head_bytes, self._tail = False, 0, b""
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._head_open = True
        super().on_message_complete()

    def _stop(self, refused: _Refused) -> _Refused:
        self._refused = refused  # the parser wraps what a callback raises; this is read back after
        return refused

    def _refuse(self, refused: _Refused) -> None:
        self.logger.info("refused a request: %s", refused.message)
        path = (getattr(self, "url", None) or b"/").split(b"?", 1)[0].decode("latin-1")  # none before a request line
        body = bytes(render_error(path, refused.status, refused.message).body)
        head = [b"HTTP/1.1 %d %s\r\n" % (refused.status, _REASONS[refused.status])]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head += [f"{name}: {value}\r\n".encode() for name, value in COMMON.items()]
        head.append(f"content-security-policy: {NON_HTML_POLICY}\r\n".encode())
        head.append(b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body))
        self.transport.write(b"".join(head) + body)
        # Closing at once, with the client still sending, would reset the connection and lose the
        # answer; instead read and drop its remaining bytes for a moment (a "lingering close").
        self._lingering = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_S, self.transport.close)
