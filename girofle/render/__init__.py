"""Rendering: an instance (or the edge) mapped to the files of its stack.

Only this package knows what a stack's files look like; ``girofle.targets`` applies them
(the Compose target renders through ``render.compose``).
"""
