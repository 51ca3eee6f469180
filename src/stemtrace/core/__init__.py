"""The pure domain core: event schema, task state machine, workflow reconstruction.

**Rule:** imports only the standard library; no I/O, no clock reads.
"""
