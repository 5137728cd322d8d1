"""db_mysql: the MySQL/MariaDB connector, as Kamailio's stock config loads it (WITH_MYSQL).

Runs in: nowhere per message. In PyKam every module with a `db_url` reaches its database
through sipcore.db (SQLAlchemy Core, one engine per process after fork); a `mysql://` URL uses
the PyMySQL driver. Loading this module keeps Kamailio configs valid and carries its
connection parameters.
"""
from sipcore.mod import Module

mod = Module("db_mysql", summary="MySQL/MariaDB connector (mysql:// db_url through PyMySQL)")
mod.param("ping_interval", int, 300, doc="Seconds between connection checks (PyKam checks a "
          "pooled connection before each use: pool_pre_ping).")
mod.param("timeout_interval", int, 2, doc="Connect/read/write timeout in seconds.")
mod.param("auto_reconnect", int, 1, doc="Reconnect after the server closed the connection.")
mod.param("insert_delayed", int, 0, doc="Accepted for compatibility; INSERT DELAYED is not used.")
mod.param("update_affected_found", int, 0, doc="Accepted for compatibility.")
mod.param("opt_ssl_mode", int, 0, doc="Accepted for compatibility; TLS to the server is not "
          "configured by PyKam yet.")
