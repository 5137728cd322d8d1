"""Address facts nathelper needs: private ranges, Contact URI surgery, alias encoding.

Runs in: SIP workers and the timer process (pure functions, no shared state).
"""
from __future__ import annotations

import ipaddress

# nat_addr_mode 0: RFC 1918 only; 1 (default): also RFC 6598 (carrier-grade NAT) and the
# RFC 6333 DS-Lite range, as Kamailio's nets_1918 table
_RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12",
                                                   "192.168.0.0/16"))
_EXTRA = tuple(ipaddress.ip_network(n) for n in ("100.64.0.0/10", "192.0.0.0/29"))

# alias proto numbers (Kamailio PROTO_* values used in ;alias=ip~port~proto)
PROTO_NUM = {"udp": 1, "tcp": 2, "tls": 3, "sctp": 4, "ws": 5, "wss": 6}
NUM_PROTO = {v: k for k, v in PROTO_NUM.items()}


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    t = text.strip()
    if t.startswith("[") and t.endswith("]"):
        t = t[1:-1]
    try:
        return ipaddress.ip_address(t)
    except ValueError:
        return None


def is_private(text: str, mode: int = 1) -> bool:
    """True for an IPv4 literal in the private ranges (hostnames and IPv6 are not)."""
    ip = parse_ip(text)
    if not isinstance(ip, ipaddress.IPv4Address):
        return False
    nets = _RFC1918 + _EXTRA if mode else _RFC1918
    return any(ip in n for n in nets)


def same_ip(a: str, b: str) -> bool:
    """Address equality with IPv6 normalisation; a hostname never equals an address."""
    ia, ib = parse_ip(a), parse_ip(b)
    if ia is None or ib is None:
        return False
    return ia == ib


def host_text(ip: str) -> str:
    """An address as it goes into a URI host (IPv6 in brackets)."""
    return f"[{ip}]" if ":" in ip and not ip.startswith("[") else ip


def hostport_span(uri: str) -> tuple[int, int]:
    """[start, end) of "host[:port]" in a SIP URI text ("sip:u@h:p;x" -> span of "h:p")."""
    colon = uri.find(":")
    if colon < 0:
        raise ValueError(f"no scheme in URI {uri!r}")
    start = colon + 1
    # userinfo ends at the last '@' before any ';' '?' of the host part (RFC 3261 19.1.1)
    end_search = len(uri)
    at = uri.rfind("@", start, end_search)
    if at >= 0:
        start = at + 1
    end = start
    if end < len(uri) and uri[end] == "[":
        close = uri.find("]", end)
        if close < 0:
            raise ValueError(f"unterminated IPv6 reference in {uri!r}")
        end = close + 1
    while end < len(uri) and uri[end] not in ";?>":
        end += 1
    return start, end


def replace_hostport(uri: str, ip: str, port: int) -> str:
    s, e = hostport_span(uri)
    return f"{uri[:s]}{host_text(ip)}:{port}{uri[e:]}"


def uri_params_span(uri: str) -> tuple[int, int]:
    """[start, end) of the ";params" part of a URI (empty span at the end when none)."""
    _, e = hostport_span(uri)
    q = uri.find("?", e)
    end = q if q >= 0 else len(uri)
    return e, end


def remove_uri_param(uri: str, name: str, which: str = "all") -> tuple[str, list[str]]:
    """Remove ;NAME[=value] params from URI. which: "first", "last" or "all". Returns the new
    URI and the values removed (in URI order)."""
    s, e = uri_params_span(uri)
    parts = uri[s:e].split(";")[1:]
    idx = [i for i, p in enumerate(parts) if p.split("=", 1)[0].strip().lower() == name.lower()]
    if which == "first":
        idx = idx[:1]
    elif which == "last":
        idx = idx[-1:]
    values = [parts[i].split("=", 1)[1] if "=" in parts[i] else "" for i in idx]
    kept = [p for i, p in enumerate(parts) if i not in set(idx)]
    params = "".join(";" + p for p in kept)
    return uri[:s] + params + uri[e:], values


def encode_alias(ip: str, port: int, proto: str) -> str:
    return f"{ip}~{port}~{PROTO_NUM.get(proto.lower(), 1)}"


def decode_alias(value: str) -> tuple[str, int, str]:
    """"ip~port~proto" -> (ip, port, proto name); ValueError when malformed."""
    parts = value.split("~")
    if len(parts) != 3:
        raise ValueError(f"bad alias value {value!r}")
    ip, port_s, proto_s = parts
    if parse_ip(ip) is None:
        raise ValueError(f"bad alias address {ip!r}")
    port = int(port_s)
    if not 0 < port < 65536:
        raise ValueError(f"bad alias port {port_s!r}")
    proto = NUM_PROTO.get(int(proto_s))
    if proto is None:
        raise ValueError(f"bad alias proto {proto_s!r}")
    return ip.strip("[]"), port, proto


def transport_uri(ip: str, port: int, proto: str) -> str:
    """sip:ip:port[;transport=x] (no transport parameter for UDP)."""
    base = f"sip:{host_text(ip)}:{port}"
    return base if proto.lower() == "udp" else f"{base};transport={proto.lower()}"


def element_uri_span(elem: str) -> tuple[int, int, bool]:
    """[start, end) of the URI inside one name-addr/addr-spec element, and whether it is in
    angle brackets."""
    lt = -1
    quoted = False
    for i, ch in enumerate(elem):
        if ch == '"':
            quoted = not quoted
        elif ch == "<" and not quoted:
            lt = i
            break
    if lt >= 0:
        gt = elem.find(">", lt)
        if gt < 0:
            raise ValueError(f"unterminated '<' in {elem!r}")
        return lt + 1, gt, True
    # addr-spec: the URI ends at the first ';' after the host part (params are header params)
    _, hp_end = hostport_span(elem)
    return 0, hp_end, False
