"""tracedrill: drive load at an instrumented service, then prove its telemetry arrived."""

__version__ = "0.1.0"
