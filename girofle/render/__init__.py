"""Rendering: an instance (or the edge) mapped to the files of its stack.

Only this package knows what a stack's files look like. ``ComposeTarget`` renders Compose
files for one Docker host; a Swarm target can sit beside it with the same interface.
"""
