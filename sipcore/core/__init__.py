"""The core's own cfg functions and their helpers.

* funcs.py     - `core_module`: forward*, flags, R-URI rewriting, branches, Via/socket controls,
                 log/error, cfg_select/cfg_reset (config-language.md section 11)
* ruri.py      - R-URI rewrite operations (rewritehost, strip, prefix, ...)
* sockets.py   - `[proto:]addr[:port]` socket specs and their lookup among listen sockets
* sendlumps.py - header lines rendered per outgoing socket (Record-Route, double RR)
* errcodes.py  - Kamailio's negative error codes ($rc after a failing core function)
* declared.py  - helpers for declared-only modules (complete tables, loud failures)

Runs in: the master (declarations, fixups) and SIP workers (functions). No shared state.
"""
