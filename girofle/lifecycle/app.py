"""The application object: the home, its settings and the engine, built once per command."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from girofle.config import GirofleConfig, parse_config, read_config_source
from girofle.home import Home, needs_migration
from girofle.quick import view
from girofle.render.model import quick_settings

if TYPE_CHECKING:  # imported when first used: `girofle ls` needs neither
    from girofle.docker.gateway import Engine
    from girofle.targets import Target


def _silent(message: str) -> None:
    """Default progress sink: say nothing."""


@dataclass
class App:
    """What every operation needs; the CLI makes one, tests can make their own."""

    home: Home
    progress: Callable[[str], None] = field(default=_silent)
    # girofle.yml's bytes as `config` read them.
    config_source: bytes = field(default=b"", init=False, repr=False)

    @cached_property
    def config(self) -> GirofleConfig:
        source = read_config_source(self.home.config_file)
        config = parse_config(source, self.home.config_file)
        self.config_source = source
        # A home an older Girofle laid out is moved to today's layout on first use.
        if needs_migration(self.home):
            from girofle.home_layout import migrate_secrets

            for entry in migrate_secrets(self.home):
                self.progress(f"moved secrets/{entry} to Girofle's layout of secrets")
        return config

    def remember_quick_view(self) -> None:
        """Leave what `girofle ls`'s quick path needs of girofle.yml as this command read it
        (called by a full `ls` that succeeded: nothing else writes it)."""
        settings = quick_settings(self.config)  # reads girofle.yml, if no one has yet
        view.remember(self.home, self.config_source, settings)

    @cached_property
    def engine(self) -> Engine:
        from girofle.docker.gateway import Engine

        return Engine()

    @cached_property
    def target(self) -> Target:
        """Where this home's instances run (girofle.yml's ``target``)."""
        from girofle.targets import make_target

        return make_target(self.config, self.home, lambda: self.engine, self.progress)
