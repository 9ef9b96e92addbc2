"""Girofle's operations on a host: init, new-stack, ls, start/stop, reconfigure, rm, doctor.

Nothing here imports Click: the CLI, the tests and the backup sidecar call these functions.
"""
