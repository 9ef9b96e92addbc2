"""Read-only commands that must answer fast, built on the standard library alone.

Nothing here imports click, pydantic, PyYAML or an engine client: `girofle ls` starts in
the time Python takes to start. What these modules read was validated by the full path
(see ``view``), and the full commands print their rows with the same functions.
"""
