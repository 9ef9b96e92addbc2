"""The labels Girofle puts on what it makes on the engine, by which it finds them again."""

from __future__ import annotations

HOME_LABEL = "io.girofle.home"
INSTANCE_LABEL = "io.girofle.instance"
ROLE_LABEL = "io.girofle.role"
