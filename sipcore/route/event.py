"""Event routes run outside a received message (Kamailio's faked message): `core:worker-one-init`,
`htable:mod-init`, `usrloc:contact-expired`, rtimer and pike routes.

Runs in: whichever process raises the event (the first SIP worker, the timer process, the
master). No shared state.
"""
from __future__ import annotations

from typing import Any, Optional

from sipcore.msg import parse_msg
from sipcore.net.addr import RecvInfo
from sipcore.route.ctx import RouteCtx, RouteType

# Kamailio's faked_msg.c request: an OPTIONS to and from nobody
FAKED_REQUEST = (b"OPTIONS sip:you@127.0.0.1 SIP/2.0\r\n"
                 b"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKf\r\n"
                 b"From: <sip:you@127.0.0.1>;tag=1\r\nTo: <sip:you@127.0.0.1>\r\n"
                 b"Call-ID: faked\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")


def faked_ctx(core: Any, route_type: RouteType = RouteType.EVENT) -> RouteCtx:
    """A RouteCtx over the faked request, for routes run without a received message."""
    ctx = RouteCtx(msg=parse_msg(FAKED_REQUEST), rcv=RecvInfo(), core=core,
                   route_type=route_type)
    ctx.faked = True
    return ctx


def run_route(cfg: Any, core: Any, kind: str, name: str,
              route_type: RouteType = RouteType.EVENT) -> Optional[int]:
    """Run route KIND[NAME] of the compiled config CFG on a faked request; its return value,
    None when the config has no such route."""
    if cfg is None or not cfg.has_route(kind, name):
        return None
    return int(cfg.run(kind, name, faked_ctx(core, route_type)))
