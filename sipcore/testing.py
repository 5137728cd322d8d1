"""In-process harness: run a compiled config against SIP messages without sockets.

Runs in: tests and benchmarks only. `RecordingCore` stands in for the network: everything the
routes would send is recorded as (Dest, bytes). `Harness` compiles a config once and feeds it
messages as a UDP worker would (parse, run request_route or reply_route, collect output).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from sipcore.mod.exports import RouteType
from sipcore.net.addr import Dest, RecvInfo, SocketInfo
from sipcore.net.node import CoreApi
from sipcore.route.ctx import RouteCtx


def to_wire(raw: bytes | str) -> bytes:
    """Test messages may be written with bare LF; SIP wants CRLF. Bytes with CR pass unchanged."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if b"\r\n" not in raw:
        raw = raw.replace(b"\n", b"\r\n")
    return raw


class RecordingCore(CoreApi):
    """A CoreApi whose send() records instead of sending."""

    def __init__(self, sockets: Optional[list[SocketInfo]] = None, **kw: Any) -> None:
        super().__init__(sockets=sockets if sockets is not None
                         else [SocketInfo("udp", "127.0.0.1", 5060)], **kw)
        self.sent: list[tuple[Dest, bytes]] = []
        self.fail_sends = False     # tests of send errors
        self.tcp_aliases: list[tuple[int, int, str]] = []   # force_tcp_alias() calls

    def add_tcp_alias(self, conn_id: int, port: int, proto: str) -> bool:
        self.tcp_aliases.append((conn_id, port, proto))
        return True

    def send(self, dest: Dest, data: bytes) -> bool:
        if self.fail_sends:
            return False
        self.sent.append((dest, bytes(data)))
        return True


def make_ctx(raw: bytes | str, core: Optional[CoreApi] = None,
             src: tuple[str, int] = ("127.0.0.1", 5080), proto: str = "udp",
             dst: Optional[tuple[str, int]] = None,
             route_type: RouteType = RouteType.REQUEST) -> RouteCtx:
    """Parse RAW and wrap it in a RouteCtx as a worker would on receipt."""
    from sipcore.msg import parse_msg

    core = core if core is not None else RecordingCore()
    if dst is None:
        s = core.sockets[0] if core.sockets else SocketInfo(proto, "127.0.0.1", 5060)
        dst = (s.ip, s.port)
    rcv = RecvInfo(proto=proto, src_ip=src[0], src_port=src[1], dst_ip=dst[0], dst_port=dst[1],
                   af=6 if ":" in src[0] else 4)
    return RouteCtx(msg=parse_msg(to_wire(raw)), rcv=rcv, core=core, route_type=route_type)


@dataclass
class Result:
    """What one message produced."""

    rc: int
    ctx: RouteCtx
    sent: list[tuple[Dest, bytes]] = field(default_factory=list)

    @property
    def dropped(self) -> bool:
        return self.ctx.dropped

    def parsed(self) -> list[Any]:
        from sipcore.msg import parse_msg

        return [parse_msg(b) for _, b in self.sent]

    @property
    def replies(self) -> list[Any]:
        return [m for m in self.parsed() if m.is_reply]

    @property
    def requests(self) -> list[Any]:
        return [m for m in self.parsed() if m.is_request]


class Harness:
    """A compiled config plus a RecordingCore; `request()`/`reply()` run one message each."""

    def __init__(self, cfg: Any, core: Optional[RecordingCore] = None) -> None:
        from sipcore import timer
        from sipcore.mod.context import CoreContext
        from sipcore.net.listen import core_from_config
        from sipcore.rpc.env import RpcEnv
        from sipcore.shm import ShmContext

        self.cfg = cfg
        self.core = core if core is not None else core_from_config(cfg, RecordingCore)
        self.core.routes = cfg
        self.shm = ShmContext.private()     # modules create their shm tables in mod_init
        timer.reset()
        timer.init(self.shm)
        cfg.setup_process()
        self.rpc = RpcEnv(cfg=cfg, sockets=self.core.sockets, aliases=self.core.aliases)
        cfg.modules.init_all(CoreContext(cfg, self.core, self.shm, timer, self.rpc))
        cfg.modules.child_init_all(1)
        self.timers = timer.local_loop()    # this process runs the timers: run_timers()

    def run_timers(self) -> int:
        """Run every timer job that is due now (retransmissions, expiry...)."""
        return self.timers.run_due()

    @classmethod
    def from_text(cls, text: str, defines: Optional[dict[str, Optional[str]]] = None,
                  filename: str = "<test>") -> "Harness":
        from sipcore.cfg import compile_text

        return cls(compile_text(text, filename=filename, defines=defines))

    @classmethod
    def from_file(cls, path: str, defines: Optional[dict[str, Optional[str]]] = None
                  ) -> "Harness":
        from sipcore.cfg import load_config

        return cls(load_config(path, defines=defines))

    def _run(self, raw: bytes | str, kind: str, src: tuple[str, int], proto: str) -> Result:
        from sipcore.receive import receive_msg

        before = len(self.core.sent)
        ctx = receive_msg(self.cfg, self.core, to_wire(raw),
                          RecvInfo(proto=proto, src_ip=src[0], src_port=src[1],
                                   dst_ip=self.core.sockets[0].ip,
                                   dst_port=self.core.sockets[0].port,
                                   af=6 if ":" in src[0] else 4))
        rc = ctx.rc if ctx is not None else -1
        return Result(rc, ctx, self.core.sent[before:])

    def request(self, raw: bytes | str, src: tuple[str, int] = ("127.0.0.1", 5080),
                proto: str = "udp") -> Result:
        return self._run(raw, "request", src, proto)

    def reply(self, raw: bytes | str, src: tuple[str, int] = ("127.0.0.1", 5090),
              proto: str = "udp") -> Result:
        return self._run(raw, "reply", src, proto)
