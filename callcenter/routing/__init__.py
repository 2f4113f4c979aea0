"""The ACD bound to Asterisk: the daemon side of the pure routing core in ``acd/``."""
