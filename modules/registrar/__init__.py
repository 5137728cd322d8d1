"""registrar: REGISTER processing and location lookup (declared only).

Complete Kamailio 5.6 export table - save/lookup/registered/... with arities, fixups and
route types, every parameter with its default, $ulc - so configs check. Needs usrloc, which
is not built yet: the server refuses to start with this module and every function raises
ModuleError.
"""
from __future__ import annotations

from typing import Optional

from sipcore.core.declared import declare_functions, declare_params, pending_pv
from sipcore.mod import ANY_ROUTE, FAILURE_ROUTE, ONREPLY_ROUTE, REQUEST_ROUTE, Fx, Module

mod = Module("registrar", summary="REGISTER processing (save) and location lookup.",
             depends=("usrloc",), implemented=False,
             pending_note="needs the usrloc contact store: runtime issue (usrloc/registrar)")

RF = REQUEST_ROUTE | FAILURE_ROUTE
RFO = REQUEST_ROUTE | FAILURE_ROUTE | ONREPLY_ROUTE
TABLE = Fx.STR      # usrloc domain (table) name, static as in Kamailio's fixup

declare_functions(mod, [
    ("save", (TABLE,), RFO, "Process the REGISTER: update the bindings and reply."),
    ("save", (TABLE, Fx.IGP), RFO, "Same with flags (0x01 memory only, 0x02 no reply, "
     "0x04 single contact, 0x08 no expires ranges, 0x10 prepare reply headers)."),
    ("save", (TABLE, Fx.IGP, Fx.SPVE), RFO, "Same for AoR URI instead of the To URI."),
    ("lookup", (TABLE,), RF, "R-URI = highest-q contact of the R-URI AoR, others branches."),
    ("lookup", (TABLE, Fx.SPVE), RF, "Same for AoR URI."),
    ("lookup_to_dset", (TABLE,), RF, "Add all contacts as branches, R-URI unchanged."),
    ("lookup_to_dset", (TABLE, Fx.SPVE), RF, "Same for AoR URI."),
    ("lookup_branches", (TABLE,), RF, "lookup on the R-URI and every plain branch."),
    ("registered", (TABLE,), ANY_ROUTE, "True if the R-URI AoR has contacts."),
    ("registered", (TABLE, Fx.SPVE), ANY_ROUTE, "True if AoR URI has contacts."),
    ("registered", (TABLE, Fx.SPVE, Fx.IGP), ANY_ROUTE, "Same with match_option bits."),
    ("registered", (TABLE, Fx.SPVE, Fx.IGP, Fx.IGP), ANY_ROUTE,
     "Same with match_option and match_action."),
    ("add_sock_hdr", (Fx.STR,), REQUEST_ROUTE, "Add a header with the receiving socket."),
    ("unregister", (TABLE, Fx.SPVE), ANY_ROUTE, "Remove all contacts of AoR URI."),
    ("unregister", (TABLE, Fx.SPVE, Fx.SPVE), ANY_ROUTE, "Remove the contact with RUID."),
    ("reg_fetch_contacts", (TABLE, Fx.SPVE, Fx.STR), ANY_ROUTE,
     "Load the contacts of AoR URI into $ulc(PROFILE=>...)."),
    ("reg_free_contacts", (Fx.STR,), ANY_ROUTE, "Free $ulc profile PROFILE."),
    ("reg_send_reply", (), RF, "Send the reply that save(..., 0x02) skipped."),
])

declare_params(mod, [
    ("default_expires", int, 3600, "Expires when the REGISTER has none."),
    ("default_expires_range", int, 0, "% randomisation below default_expires."),
    ("expires_range", int, 0, "% randomisation of the requested expires."),
    ("min_expires", int, 60, "Lower bound (0: off)."),
    ("min_expires_mode", int, 0, "0 raise to min_expires, 1 reply 423."),
    ("max_expires", int, 0, "Upper bound (0: off)."),
    ("default_q", int, 0, "q x 1000 for contacts without q."),
    ("realm_prefix", str, None, "Prefix stripped from the domain."),
    ("append_branches", int, 1, "lookup(): extra contacts as branches."),
    ("case_sensitive", int, 0, "Case-sensitive AoR."),
    ("received_avp", str, None, "AVP stored as the contact's received address."),
    ("received_param", str, "received", "Contact param carrying the received URI."),
    ("max_contacts", int, 0, "Max contacts per AoR (0: unlimited)."),
    ("retry_after", int, 0, "Retry-After on 5xx replies (0: none)."),
    ("sock_flag", int, -1, "Flag: take the socket from sock_hdr_name."),
    ("sock_hdr_name", str, None, "Header carrying the socket."),
    ("sock_mode", int, 0, "1: store the advertised address as socket."),
    ("method_filtering", int, 0, "lookup() returns only contacts allowing the method."),
    ("use_path", int, 0, "Handle the Path header."),
    ("path_mode", int, 2, "0 store, 1 store + reply if supported, 2 require support."),
    ("path_use_received", int, 0, "Use the received param of the first Path URI."),
    ("path_check_local", int, 0, "lookup: drop the first Path hop if local."),
    ("xavp_cfg", str, None, "XAVP with runtime overrides."),
    ("xavp_rcd", str, None, "XAVP filled with record details."),
    ("xavp_rcd_mask", int, 0, "Fields skipped in xavp_rcd."),
    ("gruu_enabled", int, 1, "GRUU when +sip.instance is present."),
    ("outbound_mode", int, 0, "0 no outbound, 1 supported, 2 required."),
    ("regid_mode", int, 0, "1: always use reg-id."),
    ("flow_timer", int, 0, "Flow-Timer header value (outbound)."),
    ("contact_max_size", int, 512, "Max Contact URI length."),
    ("event_callback", str, None, "KEMI function for usrloc:contact-expired."),
    ("lookup_filter_mode", int, 0, "1 filter by rlf_bflags, 2 only active TCP."),
    ("use_expired_contacts", int, 0, "Allow expired contacts in lookup."),
    ("tcp_persistent_flag", int, -1, "Flag keeping the TCP connection for the contact."),
])


def _ulc_inner(inner: Optional[str]) -> None:
    if not inner or "=>" not in inner:
        raise ValueError("$ulc(profile=>attr) expected")


pending_pv(mod, "ulc", "$ulc(profile=>attr): contacts fetched by reg_fetch_contacts().",
           _ulc_inner)
