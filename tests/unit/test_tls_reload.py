"""modules/tls in one process: mod_init builds the contexts, tls.reload checks before it
switches, a worker that sees a newer generation adopts it, a bad file changes nothing."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.services import import_or_skip

import_or_skip("cryptography")           # before the imports below, which need it

from modules import tls  # noqa: E402
from sipcore.errors import RpcFault  # noqa: E402
from sipcore.mod.context import CoreContext  # noqa: E402
from sipcore.net.addr import SocketInfo  # noqa: E402
from tests.integration.test_tls import make_cert  # noqa: E402


def _context():
    """The context mod_init gets in a server without TCP workers and shared memory."""
    return CoreContext(cfg=None, core=None).for_module(tls.mod)


@pytest.fixture
def module(tmp_path) -> Iterator:
    tls.mod.reset_params()
    yield tls
    tls.mod.reset_params()
    tls._st.__init__()


def test_reload_and_adoption(module, tmp_path):
    c1, k1, _ = make_cert(tmp_path, "one.test")
    cfgfile = tmp_path / "tls.cfg"
    cfgfile.write_text(f"[server:default]\ncertificate = {c1}\nprivate_key = {k1}\n")
    tls.mod.set_param("config", str(cfgfile))
    tls.mod_init(_context())
    prov = tls._st.provider
    assert prov is not None
    si = SocketInfo("tls", "127.0.0.1", 5061)
    first = prov.server_context(si)
    prov.refresh()
    assert prov.server_context(si) is first          # nothing changed: same context
    c2, k2, _ = make_cert(tmp_path, "two.test")
    cfgfile.write_text(f"[server:default]\ncertificate = {c2}\nprivate_key = {k2}\n")
    assert "reloaded" in tls.rpc_reload()
    gen = tls._st.generation
    assert gen == 1 and prov.server_context(si) is not first
    # another process still at generation 0 adopts on its next refresh
    tls._st.generation = 0
    tls._st.contexts = {"server:default": first, "client:default": first}
    prov.refresh()
    assert tls._st.generation == gen and prov.server_context(si) is not first
    # a broken file: the RPC fails and the running contexts stay
    current = prov.server_context(si)
    cfgfile.write_text("[server:default]\ncertificate = /nonexistent\n")
    with pytest.raises(RpcFault, match="unchanged"):
        tls.rpc_reload()
    assert prov.server_context(si) is current and tls._st.generation == gen
    opts = tls.rpc_options()
    assert opts["generation"] == gen and opts["config"] == str(cfgfile)


def test_mod_init_fails_on_a_bad_file(module, tmp_path):
    from sipcore.errors import ModuleError

    bad = tmp_path / "tls.cfg"
    bad.write_text("[server:default]\nnonsense = 1\n")
    tls.mod.set_param("config", str(bad))
    with pytest.raises(ModuleError, match="unknown setting"):
        tls.mod_init(_context())
