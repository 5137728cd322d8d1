"""PyKam core: a Kamailio-compatible SIP server written in Python.

Importing this package must stay cheap: no shm, sockets or C extension loading here.
"""
__version__ = "0.1.0"
KAMAILIO_COMPAT = "5.6.3"
