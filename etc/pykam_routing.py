"""PyKam default routing in Python (KEMI), loaded by etc/pykam-python.cfg (cfgengine "python").

The routing of etc/pykam.cfg (OPTIONS keepalive, Max-Forwards and sanity checks, relay of
requests for other domains) with the stateful logic of Kamailio's stock kamailio.cfg now that
tm and registrar are implemented: REGISTER saved to the location table, requests to local
users looked up there (404 when not registered), record-route, in-dialog routing with
loose_route, CANCEL/ACK matched to transactions, t_relay with branch/reply/failure routes. No
authentication or NAT handling (the stock defaults without WITH_AUTH/WITH_NAT). etc/pykam.lua
is the same logic in Lua. In the manner of Kamailio's app_python3: mod_init() returns the
routing object whose ksr_*(self, msg) methods the server calls; helpers return -255 to stop.
Reload: pykamcmd app_python3.reload
"""
import KSR

EXIT = -255       # a helper says "stop routing" (Kamailio's KEMI Python convention)

FLT_ACC = 1
FLT_ACCMISSED = 2
FLT_ACCFAILED = 3


def mod_init():
    return PykamRouting()


class PykamRouting:
    def child_init(self, rank):
        return 0

    # request_route
    def ksr_request_route(self, msg):
        if self.ksr_route_reqinit(msg) == EXIT:
            return 1

        # CANCEL processing
        if KSR.is_CANCEL():
            if KSR.tm.t_check_trans() > 0:
                self.ksr_route_relay(msg)
            return 1

        # retransmissions are absorbed by their transaction
        if not KSR.is_ACK():
            if KSR.tmx.t_precheck_trans() > 0:
                KSR.tm.t_check_trans()
                return 1
            if KSR.tm.t_check_trans() == 0:
                return 1

        if self.ksr_route_withindlg(msg) == EXIT:
            return 1

        # dialog starting requests
        KSR.hdr.remove("Route")
        if KSR.is_method_in("IS"):
            KSR.rr.record_route()
        if KSR.is_INVITE():
            KSR.setflag(FLT_ACC)

        if self.ksr_route_registrar(msg) == EXIT:
            return 1

        if KSR.is_myself_ruri():
            if KSR.pv.is_null("$rU"):
                KSR.sl.sl_send_reply(484, "Address Incomplete")
                return 1
            self.ksr_route_location(msg)
            return 1

        # requests for other domains are relayed (as etc/pykam.cfg does)
        self.ksr_route_relay(msg)
        return 1

    # route[RELAY]: stateful relay with the transaction routes armed
    def ksr_route_relay(self, msg):
        if KSR.is_method_in("IBSU") and KSR.tm.t_is_set("branch_route") < 0:
            KSR.tm.t_on_branch("ksr_branch_manage")
        if KSR.is_method_in("ISU") and KSR.tm.t_is_set("onreply_route") < 0:
            KSR.tm.t_on_reply("ksr_onreply_manage")
        if KSR.is_INVITE() and KSR.tm.t_is_set("failure_route") < 0:
            KSR.tm.t_on_failure("ksr_failure_manage")
        if KSR.tm.t_relay() < 0:
            KSR.sl.sl_reply_error()
        return EXIT

    # route[REQINIT]: per-request checks
    def ksr_route_reqinit(self, msg):
        KSR.set_reply_no_connect()
        KSR.force_rport()
        if KSR.maxfwd.mf_process_maxfwd_header(10) < 0:
            KSR.sl.sl_send_reply(483, "Too Many Hops")
            return EXIT
        if KSR.is_OPTIONS() and KSR.is_myself_ruri() and KSR.pv.is_null("$rU"):
            KSR.sl.sl_send_reply(200, "Keepalive")
            return EXIT
        if KSR.sanity.sanity_check(17895, 7) < 0:
            KSR.warn(f"malformed SIP request from {KSR.pv.get('$si')}:{KSR.pv.get('$sp')}\n")
            return EXIT
        return 1

    # route[WITHINDLG]: requests inside a dialog
    def ksr_route_withindlg(self, msg):
        if KSR.siputils.has_totag() < 0:
            return 1
        if KSR.rr.loose_route() > 0:
            if KSR.is_BYE():
                KSR.setflag(FLT_ACC)
                KSR.setflag(FLT_ACCFAILED)
            elif KSR.is_NOTIFY():
                KSR.rr.record_route()
            return self.ksr_route_relay(msg)
        if KSR.is_ACK():
            if KSR.tm.t_check_trans() > 0:
                self.ksr_route_relay(msg)
            return EXIT
        KSR.sl.sl_send_reply(404, "Not here")
        return EXIT

    # route[REGISTRAR]: REGISTER for local users
    def ksr_route_registrar(self, msg):
        if not KSR.is_REGISTER():
            return 1
        if KSR.registrar.save("location") < 0:
            KSR.sl.sl_reply_error()
        return EXIT

    # route[LOCATION]: local users, by the location table
    def ksr_route_location(self, msg):
        rc = KSR.registrar.lookup("location")
        if rc < 0:
            KSR.tm.t_newtran()
            if rc in (-1, -3):
                KSR.sl.send_reply(404, "Not Found")
                return EXIT
            if rc == -2:
                KSR.sl.send_reply(405, "Method Not Allowed")
                return EXIT
        if KSR.is_INVITE():
            KSR.setflag(FLT_ACCMISSED)
        return self.ksr_route_relay(msg)

    # branch_route[MANAGE_BRANCH]
    def ksr_branch_manage(self, msg):
        KSR.dbg(f"new branch [{KSR.pv.gete('$T_branch_idx')}] to {KSR.pv.gete('$ru')}\n")
        return 1

    # onreply_route[MANAGE_REPLY]
    def ksr_onreply_manage(self, msg):
        KSR.dbg(f"incoming reply {KSR.pv.gete('$rs')}\n")
        return 1

    # failure_route[MANAGE_FAILURE]: the best reply is relayed upstream
    def ksr_failure_manage(self, msg):
        if KSR.tm.t_is_canceled() > 0:
            return 1
        KSR.info(f"call to {KSR.pv.gete('$ru')} failed with {KSR.pv.gete('$T_reply_code')}\n")
        return 1

    # reply_route: replies that match no transaction are relayed statelessly afterwards
    def ksr_reply_route(self, msg):
        KSR.dbg(f"reply {KSR.pv.gete('$rs')} {KSR.pv.gete('$rr')} for {KSR.pv.gete('$ci')}\n")
        return 1
