"""Control server pieces in one process: address parsing, listen addresses from the ctl and
jsonrpcs params, and a CtlServer polled in-process (stream + datagram)."""
from __future__ import annotations

import json
import os
import socket
import stat

import pytest

from sipcore.mod.loader import import_module_decl
from sipcore.rpc.env import RpcEnv
from sipcore.rpc.registry import RpcRegistry
from sipcore.rpc.server import (
    CtlError,
    CtlServer,
    ListenAddr,
    SocketOwner,
    listen_addresses,
    parse_address,
)


@pytest.mark.parametrize("spec,addr", [
    ("unix:/run/x/ctl", ListenAddr("unix", path="/run/x/ctl")),
    ("unixs:/run/x/ctl", ListenAddr("unix", path="/run/x/ctl")),
    ("/run/x/ctl", ListenAddr("unix", path="/run/x/ctl")),
    ("unix:ctl", ListenAddr("unix", path="/rd/ctl")),
    ("ctl", ListenAddr("unix", path="/rd/ctl")),
    ("unixd:rpc.sock", ListenAddr("unixd", path="/rd/rpc.sock")),
    ("tcp:127.0.0.1:2049", ListenAddr("tcp", host="127.0.0.1", port=2049)),
    ("tcp:[::1]:2049", ListenAddr("tcp", host="::1", port=2049)),
    ("udp:127.0.0.1:2046", ListenAddr("udp", host="127.0.0.1", port=2046)),
    ("127.0.0.1:2046", ListenAddr("udp", host="127.0.0.1", port=2046)),
])
def test_parse_address(spec, addr):
    assert parse_address(spec, "/rd") == addr


@pytest.mark.parametrize("spec", ["tcp:127.0.0.1", "tcp:127.0.0.1:0", "tcp::99",
                                  "udp:h:70000", "unix:"])
def test_parse_address_errors(spec):
    with pytest.raises(CtlError):
        parse_address(spec, "/rd")


def test_listen_addresses_default_and_params():
    assert listen_addresses(RpcEnv(rundir="/rd")) == [ListenAddr("unix", path="/rd/pykam_ctl")]
    ctl = import_module_decl("ctl")
    js = import_module_decl("jsonrpcs")
    ctl.reset_params()
    js.reset_params()
    try:
        ctl.set_param("binrpc", "tcp:127.0.0.1:2049")
        js.set_param("transport", 4)
        env = RpcEnv(rundir="/rd", extra_modules=[ctl, js])
        assert listen_addresses(env) == [ListenAddr("tcp", host="127.0.0.1", port=2049),
                                         ListenAddr("unixd", path="/rd/kamailio_rpc.sock")]
        assert SocketOwner.from_env(env).mode == 0o660
    finally:
        ctl.reset_params()
        js.reset_params()


def test_in_process_server_stream_and_datagram(tmp_path):
    env = RpcEnv(rundir=str(tmp_path))
    addrs = [ListenAddr("unix", path=str(tmp_path / "ctl")),
             ListenAddr("unixd", path=str(tmp_path / "rpc.sock")),
             ListenAddr("tcp", host="127.0.0.1", port=0)]          # any free port
    srv = CtlServer(RpcRegistry.build(env, []), addrs, SocketOwner(mode=0o600))
    srv.open()
    try:
        assert stat.S_IMODE(os.stat(tmp_path / "ctl").st_mode) == 0o600
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(str(tmp_path / "ctl"))
        c.sendall(b'{"jsonrpc":"2.0","method":"core.echo","params":[1],"id":1}\n')
        for _ in range(5):
            srv.poll(0.05)
        c.settimeout(1)
        assert json.loads(c.recv(65536)) == {"jsonrpc": "2.0", "result": [1], "id": 1}
        assert len(srv.who()) == 1 and srv.served == 1
        c.close()
        d = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        d.bind(str(tmp_path / "client.sock"))
        d.sendto(b'{"jsonrpc":"2.0","method":"core.echo","params":["d"],"id":2}',
                 str(tmp_path / "rpc.sock"))
        for _ in range(5):
            srv.poll(0.05)
        d.settimeout(1)
        assert json.loads(d.recv(65536))["result"] == ["d"]
        d.close()
        tcp = next(a for a in srv.bound() if a.kind == "tcp")
        assert tcp.port > 0
        assert {x["transport"] for x in srv.listen_info()} == {"unix_stream", "unix_dgram",
                                                               "tcp"}
    finally:
        srv.close()
    assert not (tmp_path / "ctl").exists() and not (tmp_path / "rpc.sock").exists()


def test_a_regular_file_in_the_way_is_not_deleted(tmp_path):
    path = tmp_path / "ctl"
    path.write_text("precious")
    srv = CtlServer(RpcRegistry.build(RpcEnv(), []), [ListenAddr("unix", path=str(path))])
    with pytest.raises(CtlError):
        srv.open()
    srv.close()
    assert path.read_text() == "precious"
