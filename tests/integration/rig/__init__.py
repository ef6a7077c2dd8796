"""Real SIP peers on loopback for integration tests (RIG.md).

Each peer is a subprocess on free loopback ports, waited for until it is really
listening, and stopped by its own PID at teardown (SIGTERM, then SIGKILL) — never by name.
"""
