"""Offline stand-ins for Honeycomb, AWS X-Ray (+ daemon), CloudWatch Logs and Rollbar.

Each backend package has the same shape:
    store.py  durable SQLite store (everything accepted survives a restart)
    api.py    ``create_app(store, settings) -> WSGI app`` speaking the real wire protocol
plus, where the service has one, the query language module (query.py, filter_expression.py,
filter_pattern.py). ``stack.py`` starts them all on loopback.
"""
