"""SDP rewriting for rtpproxy: the new text of the m=, c=, o= and a=rtcp: lines of a relayed
stream. The SDP itself is parsed by sipcore.msg.sdp; these functions only compute line text.

Runs in: SIP workers (pure functions over str). Shared state: none.
"""
from __future__ import annotations


def _family(ip: str) -> str:
    return "IP6" if ":" in ip else "IP4"


def with_media_port(text: str, port: int) -> str:
    """m=<media> <port>[/<count>] ... with the relay's PORT (the port count kept)."""
    head, _, rest = text.partition(" ")
    old_port, _, tail = rest.partition(" ")
    count = old_port[old_port.index("/"):] if "/" in old_port else ""
    return f"{head} {port}{count} {tail}".rstrip()


def with_conn(text: str, ip: str) -> str:
    """c=IN IP4 <addr>[/ttl] with IP (the multicast suffix kept); a c= line with fewer than
    three fields is left as it is."""
    parts = text[2:].split()
    if len(parts) < 3:
        return text
    suffix = parts[2][parts[2].index("/"):] if "/" in parts[2] else ""
    return f"c=IN {_family(ip)} {ip}{suffix}"


def with_origin(text: str, ip: str) -> str:
    """o= with IP as the address (a line with fewer than six fields is left as it is)."""
    parts = text[2:].split()
    if len(parts) < 6:
        return text
    parts[4], parts[5] = _family(ip), ip
    return "o=" + " ".join(parts)


def with_rtcp(text: str, port: int, ip: str) -> str:
    """a=rtcp:PORT [IN IP4 addr] -> the relay's RTCP port (RTP port + 1) and address."""
    parts = text[len("a=rtcp:"):].split()
    if len(parts) >= 4 and parts[1] == "IN":
        return f"a=rtcp:{port} IN {_family(ip)} {ip}"
    return f"a=rtcp:{port}"


def is_null(ip: str | None) -> bool:
    return ip in ("0.0.0.0", "::")
