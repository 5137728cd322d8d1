"""tls.cfg parsing and context building (modules/tls)."""
from __future__ import annotations

import ssl

import pytest

from modules.tls import build_context
from modules.tls.tls_cfg import TlsCfgError, TlsProfile, parse_tls_cfg


def test_sections_defaults_and_lookup(tmp_path):
    text = """
# comment
[server:default]
method = TLSv1.2+
certificate = cert.pem
private_key = /abs/key.pem
verify_certificate = yes
require_certificate = no

[client:default]
verify_certificate = off
server_name = sip.example.com

[server:127.0.0.1:5062]
certificate = other.pem

[client:[::1]:5061]
method = TLSv1.3
"""
    path = tmp_path / "tls.cfg"
    conf = parse_tls_cfg(text, TlsProfile(cipher_list="HIGH"), str(path))
    sd = conf.profiles["server:default"]
    assert sd.certificate == str(tmp_path / "cert.pem")      # relative to tls.cfg
    assert sd.private_key == "/abs/key.pem"
    assert sd.verify_certificate and not sd.require_certificate
    assert sd.cipher_list == "HIGH"                          # from the module parameters
    assert conf.server("127.0.0.1", 5062).certificate == str(tmp_path / "other.pem")
    assert conf.server("127.0.0.1", 5061).name == "server:default"
    assert conf.client("::1", 5061).method == "TLSv1.3"
    assert conf.client("10.0.0.1", 5061).server_name == "sip.example.com"


def test_default_profiles_always_exist():
    conf = parse_tls_cfg("", TlsProfile())
    assert set(conf.profiles) == {"server:default", "client:default"}
    assert conf.profiles["client:default"].role == "client"


@pytest.mark.parametrize("text, needle", [
    ("method = x\n", "before any [section]"),
    ("[server:nowhere]\n", "bad section"),
    ("[server:default]\nbogus = 1\n", "unknown setting"),
    ("[server:default]\nverify_certificate = maybe\n", "yes or no"),
    ("[server:default]\n[server:default]\n", "defined twice"),
])
def test_errors_name_file_and_line(text, needle):
    with pytest.raises(TlsCfgError) as ei:
        parse_tls_cfg(text, TlsProfile(), "/etc/tls.cfg")
    assert needle in str(ei.value) and "tls.cfg" in str(ei.value)


def test_build_context_modes():
    client = build_context(TlsProfile(role="client", method="TLSv1.3"))
    assert client.minimum_version == ssl.TLSVersion.TLSv1_3
    assert client.verify_mode == ssl.CERT_NONE
    with pytest.raises(TlsCfgError, match="needs a certificate"):
        build_context(TlsProfile(role="server"))
    with pytest.raises(TlsCfgError, match="unknown method"):
        build_context(TlsProfile(role="client", method="TLSv9"))
    with pytest.raises(TlsCfgError, match="server:default"):
        build_context(TlsProfile(role="server", certificate="/nonexistent.pem"))
