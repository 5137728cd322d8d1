"""rr: Record-Route insertion and Route processing (declared only).

Complete Kamailio 5.6 export table (functions with arities, fixups and route types, every
parameter with its default, $route_uri) so configs check. Not built yet: the server refuses
to start with this module and every function raises ModuleError.
"""
from __future__ import annotations

from typing import Optional

from sipcore.core.declared import declare_functions, declare_params, pending_pv
from sipcore.mod import (ANY_ROUTE, BRANCH_ROUTE, FAILURE_ROUTE, REQUEST_ROUTE, Custom, Fx,
                         Module)

mod = Module("rr", summary="Record-Route and Route header processing (RFC 3261 16.6, 16.12).",
             implemented=False, pending_note="record/loose routing: rr issue")

RBF = REQUEST_ROUTE | BRANCH_ROUTE | FAILURE_ROUTE


def _direction(text: str) -> str:
    t = text.strip().lower()
    if t not in ("upstream", "downstream"):
        raise ValueError(f"is_direction: \"{text}\" (upstream or downstream expected)")
    return t


declare_functions(mod, [
    ("loose_route", (), REQUEST_ROUTE, "Process the Route set (loose/strict routing)."),
    ("loose_route_preloaded", (), REQUEST_ROUTE, "1 only for a preloaded Route set."),
    ("loose_route_mode", (Fx.IGP,), REQUEST_ROUTE, "1: loose routing only."),
    ("record_route", (), RBF, "Add a Record-Route header."),
    ("record_route", (Fx.SPVE,), RBF, "Add a Record-Route header with extra URI params."),
    ("remove_record_route", (), REQUEST_ROUTE | FAILURE_ROUTE, "Undo record_route()."),
    ("record_route_preset", (Fx.SPVE,), RBF, "Record-Route with the given address/URI."),
    ("record_route_preset", (Fx.SPVE, Fx.SPVE), RBF, "Two Record-Routes (double RR)."),
    ("record_route_advertised_address", (Fx.SPVE,), RBF,
     "Record-Route with the given advertised address."),
    ("add_rr_param", (Fx.SPVE,), RBF, "Add ;name=value to our Record-Route URI."),
    ("check_route_param", (Fx.REGEX,), REQUEST_ROUTE,
     "After loose_route: regex on our Route URI params."),
    ("is_direction", (Custom(_direction, name="direction"),), REQUEST_ROUTE,
     "After loose_route: upstream or downstream (needs append_fromtag)."),
    ("rr_next_hop_route", (), ANY_ROUTE, "True if a Route header remains for the next hop."),
])

declare_params(mod, [
    ("enable_full_lr", int, 0, "Write ;lr=on instead of ;lr."),
    ("append_fromtag", int, 1, "Add ftag=<From-tag> to the RR URI."),
    ("enable_double_rr", int, 1, "Two RRs when the in/out socket or protocol differ "
     "(2: always)."),
    ("add_username", int, 0, "Put the R-URI user into the RR URI."),
    ("enable_socket_mismatch_warning", int, 1, "Warn if a preset RR host is not local."),
    ("custom_user_avp", str, None, "AVP used as RR user when add_username=1."),
    ("force_send_socket", int, 0, "On loose routing, force the local socket for single RR."),
    ("ignore_sips", int, 0, "Always build RR with sip:."),
    ("sockname_mode", int, 0, "Put the socket name into the sn RR param."),
])


def _no_inner(inner: Optional[str]) -> None:
    if inner:
        raise ValueError("$route_uri takes no inner name")


pending_pv(mod, "route_uri", "URI of the top Route header.", _no_inner)
