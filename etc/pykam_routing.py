"""PyKam default routing in Python (KEMI): the same logic as etc/pykam.cfg.

Loaded by etc/pykam-python.cfg (cfgengine "python"), in the manner of Kamailio's app_python3:
mod_init() returns the routing object, whose ksr_*_route(self, msg) methods the server calls.
Stateless proxy: OPTIONS keepalives to the proxy are answered, malformed requests dropped,
requests for local users get 404 until the registrar milestone lands, everything else is
relayed with forward(). Reload without restart: pykamcmd app_python3.reload
"""
import KSR

EXIT = -255       # helper methods return it to say "stop routing" (Kamailio's convention)


def mod_init():
    return PykamRouting()


class PykamRouting:
    def child_init(self, rank):
        return 0

    # request_route
    def ksr_request_route(self, msg):
        if self.ksr_route_reqinit(msg) == EXIT:
            return 1

        if KSR.is_OPTIONS() and KSR.is_myself_ruri() and KSR.pv.is_null("$rU"):
            KSR.sl.sl_send_reply(200, "Keepalive")
            return 1

        if KSR.is_myself_ruri():
            if KSR.is_ACK():
                return 1
            KSR.info(f"no local user for {KSR.pv.get('$ru')} ({KSR.pv.get('$rm')} from "
                     f"{KSR.pv.gete('$fu')})\n")
            KSR.sl.sl_send_reply(404, "Not Found")
            return 1

        self.ksr_route_relay(msg)
        return 1

    # route[REQINIT]
    def ksr_route_reqinit(self, msg):
        KSR.force_rport()
        if KSR.maxfwd.mf_process_maxfwd_header(10) < 0:
            KSR.sl.sl_send_reply(483, "Too Many Hops")
            return EXIT
        if KSR.sanity.sanity_check(17895, 7) < 0:
            KSR.warn(f"malformed SIP request from {KSR.pv.get('$si')}:{KSR.pv.get('$sp')}\n")
            return EXIT
        return 1

    # route[RELAY]
    def ksr_route_relay(self, msg):
        if KSR.forward() < 0:
            KSR.err(f"cannot forward {KSR.pv.get('$rm')} to {KSR.pv.get('$ru')}\n")
            if not KSR.is_ACK():
                KSR.sl.sl_send_reply(503, "Service Unavailable")
        return EXIT

    # reply_route: replies are relayed statelessly by their Via headers afterwards
    def ksr_reply_route(self, msg):
        KSR.dbg(f"reply {KSR.pv.gete('$rs')} {KSR.pv.gete('$rr')} for {KSR.pv.gete('$ci')}\n")
        return 1
