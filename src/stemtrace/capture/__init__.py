"""The capture library: signal handlers, payload safety and the background publisher.

Loaded by ``stemtrace.init`` on first call, never by ``import stemtrace``.
"""
