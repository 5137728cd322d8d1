"""SDP as rtpproxy needs it: media streams with their address and port, and rewriting them.

Runs in: SIP workers (pure functions over bytes). Shared state: none.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Line:
    text: str
    eol: str


@dataclass
class Stream:
    m_index: int                    # index of the m= line in Sdp.lines
    port: int
    c_index: int | None          # media-level c= line, if any
    rtcp_index: int | None = None


@dataclass
class Sdp:
    lines: list[Line]
    session_c: int | None = None
    origin: int | None = None
    streams: list[Stream] = field(default_factory=list)

    def eol(self) -> str:
        return next((ln.eol for ln in self.lines if ln.eol), "\r\n")

    def addr_of(self, st: Stream) -> str | None:
        idx = st.c_index if st.c_index is not None else self.session_c
        return None if idx is None else conn_addr(self.lines[idx].text)

    def to_bytes(self) -> bytes:
        return "".join(ln.text + ln.eol for ln in self.lines).encode("utf-8", "surrogateescape")

    def has_line(self, text: str) -> bool:
        return any(ln.text == text for ln in self.lines)

    def add_session_line(self, text: str) -> None:
        """Insert at the end of the session-level part (before the first m=)."""
        pos = self.streams[0].m_index if self.streams else len(self.lines)
        if pos == len(self.lines) and self.lines and not self.lines[-1].eol:
            self.lines[-1].eol = self.eol()
        self.lines.insert(pos, Line(text, self.eol()))
        for st in self.streams:
            st.m_index += 1
            if st.c_index is not None:
                st.c_index += 1
            if st.rtcp_index is not None:
                st.rtcp_index += 1


def conn_addr(text: str) -> str | None:
    parts = text[2:].split()
    if len(parts) < 3 or parts[0] != "IN":
        return None
    return parts[2].split("/", 1)[0]


def parse(body: bytes) -> Sdp:
    text = body.decode("utf-8", "surrogateescape")
    lines: list[Line] = []
    pos = 0
    while pos < len(text):
        nl = text.find("\n", pos)
        if nl < 0:
            raw, eol, pos = text[pos:], "", len(text)
        else:
            raw, eol, pos = text[pos:nl], "\n", nl + 1
            if raw.endswith("\r"):
                raw, eol = raw[:-1], "\r\n"
        lines.append(Line(raw, eol))
    sdp = Sdp(lines)
    cur: Stream | None = None
    for i, ln in enumerate(lines):
        t = ln.text
        if t.startswith("m="):
            parts = t[2:].split()
            try:
                port = int(parts[1].split("/", 1)[0])
            except (IndexError, ValueError):
                raise ValueError(f"bad SDP media line {t!r}") from None
            cur = Stream(i, port, None)
            sdp.streams.append(cur)
        elif t.startswith("c="):
            if cur is None:
                sdp.session_c = i
            else:
                cur.c_index = i
        elif t.startswith("o=") and cur is None:
            sdp.origin = i
        elif t.startswith("a=rtcp:") and cur is not None:
            cur.rtcp_index = i
    return sdp


def _family(ip: str) -> str:
    return "IP6" if ":" in ip else "IP4"


def set_conn(line: Line, ip: str) -> None:
    parts = line.text[2:].split()
    suffix = parts[2][parts[2].index("/"):] if "/" in parts[2] else ""
    line.text = f"c=IN {_family(ip)} {ip}{suffix}"


def set_media_port(line: Line, port: int) -> None:
    head, _, rest = line.text.partition(" ")
    old_port, _, tail = rest.partition(" ")
    count = old_port[old_port.index("/"):] if "/" in old_port else ""
    line.text = f"{head} {port}{count} {tail}".rstrip()


def set_origin(line: Line, ip: str) -> None:
    parts = line.text[2:].split()
    if len(parts) >= 6:
        parts[4], parts[5] = _family(ip), ip
        line.text = "o=" + " ".join(parts)


def set_rtcp(line: Line, port: int, ip: str) -> None:
    """a=rtcp:PORT [IN IP4 addr] -> the relay's RTCP port (RTP port + 1) and address."""
    parts = line.text[len("a=rtcp:"):].split()
    if len(parts) >= 4 and parts[1] == "IN":
        line.text = f"a=rtcp:{port} IN {_family(ip)} {ip}"
    else:
        line.text = f"a=rtcp:{port}"


def is_null(ip: str | None) -> bool:
    return ip in ("0.0.0.0", "::")
