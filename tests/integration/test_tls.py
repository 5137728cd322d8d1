"""The real server over TLS (children=2, tcp_children=2) on 127.0.0.1 with certificates made
here (cryptography, into tmp_path; nothing is committed): OPTIONS answered over TLS, a client
without a certificate refused when require_certificate is on, and tls.reload switching the
certificate for new connections while an open connection keeps working."""
from __future__ import annotations

import datetime
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from sipcore.msg import parse_msg
from sipcore.msg.framing import ReceiveBuffer
from tests.services import import_or_skip, require_sipp

from .conftest import ROOT

pytestmark = pytest.mark.integration

crypto = import_or_skip("cryptography")


def make_cert(directory: Path, name: str, ca: tuple | None = None) -> tuple[Path, Path, object]:
    """A key + certificate for CN=name (self-signed, or signed by CA=(cert, key)); returns
    (cert path, key path, (cert, key))."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_cert, issuer_key = ca if ca else (None, key)
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer_cert.subject if issuer_cert else subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.SubjectAlternativeName(
                   [x509.DNSName(name), x509.IPAddress(__import__("ipaddress")
                                                       .ip_address("127.0.0.1"))]),
                   critical=False)
               .add_extension(x509.BasicConstraints(ca=ca is None, path_length=None),
                              critical=True))
    cert = builder.sign(issuer_key, hashes.SHA256())
    cpath, kpath = directory / f"{name}.pem", directory / f"{name}.key"
    cpath.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kpath.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
    os.chmod(kpath, 0o600)
    return cpath, kpath, (cert, key)


CFG = """#!KAMAILIO
debug=2
log_stderror=yes
children=2
tcp_children=2
enable_tls=yes
listen=udp:127.0.0.1:{port}
listen=tls:127.0.0.1:{tlsport}
loadmodule "pv"
loadmodule "sl"
loadmodule "textops"
loadmodule "tls"
modparam("tls", "config", "{tlscfg}")
request_route {
    if (is_method("OPTIONS")) {
        append_to_reply("X-Proto: $pr\\r\\nX-Tls: $tls_version $tls_peer_verified $tls_peer_subject_cn\\r\\n");
        sl_send_reply("200", "Keepalive");
        exit;
    }
    sl_send_reply("404", "Not Found");
}
"""


def _free_tcp_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _options(port: int) -> bytes:
    cid = uuid.uuid4().hex
    return (f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK{cid[:12]}\r\n"
            f"From: <sip:t@127.0.0.1>;tag={cid[:6]}\r\nTo: <sip:127.0.0.1>\r\n"
            f"Call-ID: {cid}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()


def _tls_connect(port: int, cafile: Path | None = None, cert: tuple | None = None
                 ) -> ssl.SSLSocket:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if cafile:
        ctx.load_verify_locations(cafile)
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(*cert)
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def _ask(s: ssl.SSLSocket, port: int) -> int:
    return _ask_msg(s, port)[0]


def _ask_msg(s: ssl.SSLSocket, port: int) -> tuple[int, object]:
    s.sendall(_options(port))
    rb = ReceiveBuffer()
    s.settimeout(5)
    while True:
        data = s.recv(65535)
        if not data:
            return 0, None
        rb.feed(data)
        for m in rb.messages():
            msg = parse_msg(m)
            return msg.status, msg


def _peer_cn(s: ssl.SSLSocket) -> str:
    from cryptography import x509

    cert = x509.load_der_x509_certificate(s.getpeercert(binary_form=True))
    return cert.subject.rfc4514_string()


def _rpc(srv, method: str) -> object:
    out = subprocess.run([sys.executable, "-m", "sipcore.cli.ctl", "-s",
                          str(srv.rundir / "pykam_ctl"), "--json", method], cwd=ROOT,
                         timeout=15, capture_output=True, text=True, check=False,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout) if out.stdout.strip() else None


def _start(start_server, tmp_path: Path, tlscfg_text: str) -> tuple[object, int]:
    tlscfg = tmp_path / "tls.cfg"
    tlscfg.write_text(tlscfg_text)
    tlsport = _free_tcp_port()
    srv = start_server(CFG.replace("{tlsport}", str(tlsport)).replace("{tlscfg}", str(tlscfg)))
    return srv, tlsport


def test_options_over_tls_and_reload_for_new_connections(start_server, tmp_path):
    c1, k1, _ = make_cert(tmp_path, "first.test")
    srv, port = _start(start_server, tmp_path,
                       f"[server:default]\nmethod = TLSv1.2+\ncertificate = {c1}\n"
                       f"private_key = {k1}\n\n[client:default]\nverify_certificate = no\n")
    old = _tls_connect(port, cafile=c1)
    assert "first.test" in _peer_cn(old)
    status, rpl = _ask_msg(old, port)
    assert status == 200 and rpl.header("X-Tls").value == f"{old.version()} 0 <null>"
    assert _rpc(srv, "tls.info")["opened_connections"] == 1
    # rotate: the same file names get a new certificate, then tls.reload
    c2, k2, _ = make_cert(tmp_path, "second.test")
    (tmp_path / "tls.cfg").write_text(f"[server:default]\ncertificate = {c2}\n"
                                      f"private_key = {k2}\n")
    _rpc(srv, "tls.reload")
    deadline = time.monotonic() + 5
    while True:
        new = _tls_connect(port)
        cn = _peer_cn(new)
        if "second.test" in cn or time.monotonic() > deadline:
            break
        new.close()
        time.sleep(0.1)
    assert "second.test" in cn
    assert _ask(new, port) == 200
    assert _ask(old, port) == 200               # the open connection was not cut
    assert "first.test" in _peer_cn(old)
    opts = _rpc(srv, "tls.options")
    assert opts["generation"] >= 1
    new.close()
    old.close()


def test_bad_reload_keeps_configuration(start_server, tmp_path):
    c1, k1, _ = make_cert(tmp_path, "first.test")
    srv, port = _start(start_server, tmp_path,
                       f"[server:default]\ncertificate = {c1}\nprivate_key = {k1}\n")
    (tmp_path / "tls.cfg").write_text("[server:default]\ncertificate = /nonexistent.pem\n")
    out = subprocess.run([sys.executable, "-m", "sipcore.cli.ctl", "-s",
                          str(srv.rundir / "pykam_ctl"), "tls.reload"], cwd=ROOT, timeout=15,
                         capture_output=True, text=True, check=False,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode != 0 and "unchanged" in (out.stdout + out.stderr)
    s = _tls_connect(port, cafile=c1)
    assert _ask(s, port) == 200
    s.close()


def test_require_certificate_refuses_clients_without_one(start_server, tmp_path):
    ca_c, _ca_k, ca = make_cert(tmp_path, "ca.test")
    sc, sk, _ = make_cert(tmp_path, "server.test", ca=ca)
    cc, ck, _ = make_cert(tmp_path, "client.test", ca=ca)
    srv, port = _start(start_server, tmp_path,
                       f"[server:default]\ncertificate = {sc}\nprivate_key = {sk}\n"
                       f"ca_list = {ca_c}\nrequire_certificate = yes\n"
                       "verify_certificate = yes\n")
    good = _tls_connect(port, cafile=ca_c, cert=(cc, ck))
    status, rpl = _ask_msg(good, port)
    assert status == 200
    assert rpl.header("X-Tls").value == f"{good.version()} 1 client.test"
    assert rpl.header("X-Proto").value == "tls"
    good.close()
    refused = False
    try:
        bad = _tls_connect(port, cafile=ca_c)
        refused = _ask(bad, port) == 0        # TLS 1.3: the alert comes after the handshake
    except (ssl.SSLError, ConnectionError, OSError):
        refused = True
    assert refused
    assert srv.alive()


FWD_CFG = CFG.replace('if (is_method("OPTIONS")) {', 'if (is_method("OPTIONS") && $rU == $null) {'
                      ).replace('    sl_send_reply("404", "Not Found");\n',
                      '    $du = "sip:" + $rd + ":" + $rp + ";transport=tls";\n'
                      '    if (!forward()) { sl_send_reply("503", "Service Unavailable"); }\n')


def test_udp_request_forwarded_over_outbound_tls_connection(start_server, tmp_path):
    import select

    from .conftest import UA

    sc, sk, _ = make_cert(tmp_path, "server.test")
    uc, uk, _ = make_cert(tmp_path, "ua.test")
    tlscfg = tmp_path / "tls.cfg"
    tlscfg.write_text(f"[server:default]\ncertificate = {sc}\nprivate_key = {sk}\n\n"
                      f"[client:default]\nverify_certificate = yes\nca_list = {uc}\n"
                      "server_name = ua.test\n")
    tlsport = _free_tcp_port()
    srv = start_server(FWD_CFG.replace("{tlsport}", str(tlsport))
                       .replace("{tlscfg}", str(tlscfg)))
    # the callee: a TLS server with the certificate pykam's client profile trusts
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(uc, uk)
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)
    callee_port = lsock.getsockname()[1]
    caller = UA()
    conns = []
    try:
        for n in range(2):
            cid = uuid.uuid4().hex
            caller.send(f"OPTIONS sip:bob@127.0.0.1:{callee_port} SIP/2.0\r\n"
                        f"Via: SIP/2.0/UDP 127.0.0.1:{caller.port};branch=z9hG4bK{cid[:10]}"
                        f";rport\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\n"
                        f"Call-ID: {cid}\r\nCSeq: {n + 1} OPTIONS\r\nContent-Length: 0\r\n\r\n",
                        srv.port)
            if n == 0:
                r, _, _ = select.select([lsock], [], [], 5)
                assert r, srv.log()
                raw, _ = lsock.accept()
                raw.settimeout(5)
                conns.append(sctx.wrap_socket(raw, server_side=True))
            rb = ReceiveBuffer()
            got: list[bytes] = []
            while not got:
                rb.feed(conns[0].recv(65535))
                got = list(rb.messages())
            fwd = parse_msg(got[0])
            assert fwd.callid == cid and fwd.vias[0].transport.upper() == "TLS"
        lsock.settimeout(0.3)
        with pytest.raises(OSError):
            lsock.accept()                  # the second request reused the connection
        assert _rpc(srv, "tls.list")[0]["outbound"] == 1
    finally:
        caller.close()
        for c in conns:
            c.close()
        lsock.close()


def test_sni_selects_the_server_any_profile(start_server, tmp_path):
    c1, k1, _ = make_cert(tmp_path, "default.test")
    c2, k2, _ = make_cert(tmp_path, "other.test")
    _srv, port = _start(start_server, tmp_path,
                       f"[server:default]\ncertificate = {c1}\nprivate_key = {k1}\n\n"
                       f"[server:any]\nserver_name = other.test\ncertificate = {c2}\n"
                       f"private_key = {k2}\n")

    def cn_for(sni: str) -> str:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname=sni) as s:
            assert _ask(s, port) == 200
            return _peer_cn(s)

    assert "other.test" in cn_for("other.test")
    assert "default.test" in cn_for("unknown.test")


CALLS_CFG = """#!KAMAILIO
debug=2
log_stderror=yes
children=2
tcp_children=2
enable_tls=yes
listen=udp:127.0.0.1:{port}
listen=tls:127.0.0.1:{tlsport}
loadmodule "sl"
loadmodule "tm"
loadmodule "maxfwd"
loadmodule "tls"
modparam("tls", "config", "{tlscfg}")
request_route {
    if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
    if (!t_relay()) { sl_reply_error(); }
    exit;
}
"""


class TlsUac:
    """SIPp's built-in uac (INVITE, ACK, BYE) over one TLS connection, CONCURRENT calls in
    flight: stands in for `sipp -t l1` where SIPp is built without OpenSSL (Debian's is)."""

    def __init__(self, sock: ssl.SSLSocket, proxy_port: int, uas_port: int) -> None:
        self.sock = sock
        self.lport = sock.getsockname()[1]
        self.proxy_port, self.uas_port = proxy_port, uas_port
        self.rb = ReceiveBuffer()
        self.calls: dict[str, str] = {}     # Call-ID -> "invite" | "bye"
        self.ok = 0
        self.failed: list[str] = []

    def _send(self, method: str, ruri: str, cid: str, cseq: int, to_tag: str = "") -> None:
        to = f"<sip:service@127.0.0.1:{self.uas_port}>" + (f";tag={to_tag}" if to_tag else "")
        self.sock.sendall(
            (f"{method} {ruri} SIP/2.0\r\n"
             f"Via: SIP/2.0/TLS 127.0.0.1:{self.lport};branch=z9hG4bK{uuid.uuid4().hex[:16]}\r\n"
             f"Max-Forwards: 70\r\nFrom: <sip:uac@127.0.0.1>;tag=u{cid[:8]}\r\nTo: {to}\r\n"
             f"Call-ID: {cid}\r\nCSeq: {cseq} {method}\r\n"
             f"Contact: <sip:uac@127.0.0.1:{self.lport};transport=tls>\r\n"
             "Content-Length: 0\r\n\r\n").encode())

    def start_call(self) -> None:
        cid = uuid.uuid4().hex
        self.calls[cid] = "invite"
        self._send("INVITE", f"sip:service@127.0.0.1:{self.uas_port}", cid, 1)

    def _on_reply(self, raw: bytes) -> None:
        m = parse_msg(raw)
        state = self.calls.get(m.callid)
        if state is None or m.status < 200:
            return
        if m.status >= 300:
            self.failed.append(f"{m.callid}: {m.status} to {m.cseq.method}")
            del self.calls[m.callid]
        elif state == "invite" and m.cseq.method == "INVITE":
            contact = m.contact_uri or f"sip:127.0.0.1:{self.uas_port}"
            self._send("ACK", contact, m.callid, 1, m.to_tag or "")
            self._send("BYE", contact, m.callid, 2, m.to_tag or "")
            self.calls[m.callid] = "bye"
        elif state == "bye" and m.cseq.method == "BYE":
            del self.calls[m.callid]
            self.ok += 1

    def run(self, total: int, concurrent: int, timeout: float) -> None:
        started = 0
        deadline = time.monotonic() + timeout
        self.sock.settimeout(0.5)
        while (started < total or self.calls) and time.monotonic() < deadline:
            while started < total and len(self.calls) < concurrent:
                self.start_call()
                started += 1
            try:
                data = self.sock.recv(65535)
            except (TimeoutError, ssl.SSLWantReadError):
                continue
            if not data:
                self.failed.append("connection closed by the proxy")
                return
            self.rb.feed(data)
            for raw in self.rb.messages():
                self._on_reply(raw)


def test_200_calls_over_tls_through_pykam_to_a_udp_sipp_uas(start_server, tmp_path):
    """Acceptance (TLS): 200 calls from a client over one TLS connection, verifying pykam's
    certificate against the test CA, relayed by t_relay to a SIPp uas over UDP; 0 failures.
    Replies reach the TLS connection from the UDP workers through its owner."""
    from .conftest import free_udp_port
    from .test_sipp import UAS_XML, _spawn, _stop, _tail

    require_sipp()
    ca_cert, _, ca = make_cert(tmp_path, "test-ca")
    sc, sk, _ = make_cert(tmp_path, "127.0.0.1", ca=ca)
    tlscfg = tmp_path / "tls.cfg"
    tlscfg.write_text(f"[server:default]\ncertificate = {sc}\nprivate_key = {sk}\n")
    tlsport = _free_tcp_port()
    srv = start_server(CALLS_CFG.replace("{tlsport}", str(tlsport))
                       .replace("{tlscfg}", str(tlscfg)))
    uas_port, uas_log = free_udp_port(), tmp_path / "uas.log"
    uas = _spawn(["sipp", "-sf", str(UAS_XML), "-d", "20", "-i", "127.0.0.1", "-t", "u1",
                  "-p", str(uas_port), "-bind_local", "-nostdin"], tmp_path, uas_log)
    s = None
    try:
        time.sleep(0.3)
        assert uas.poll() is None, _tail(uas_log)
        s = _tls_connect(tlsport, cafile=ca_cert)       # verifies pykam against the test CA
        uac = TlsUac(s, tlsport, uas_port)
        uac.run(200, concurrent=20, timeout=60)
        assert uac.ok == 200 and not uac.failed, (
            f"ok={uac.ok} failed={uac.failed[:5]} pending={len(uac.calls)}\n"
            f"uas:\n{_tail(uas_log, 1500)}\npykam:\n{srv.log()[-3000:]}")
        tls_conns = _rpc(srv, "tls.list")
        assert len(tls_conns) == 1                       # all calls on the one connection
        assert "Traceback" not in srv.log()
    finally:
        if s is not None:
            s.close()
        _stop(uas)
