"""The clinic's staff: the roster (names, roles, Telegram ids, active or not), dashboard passwords
and the login throttle. Every roster change is audited and ends the person's dashboard sessions."""
