"""`girofle up` (what `make up` runs): converge a home to a running fleet, from nothing or
from wherever an earlier, failed run stopped. A fleet that is up already is left alone."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from girofle.config import GirofleConfig
from girofle.inventory import read_inventory
from girofle.lifecycle import commission, power
from girofle.lifecycle.app import App
from girofle.lifecycle.fleet import fleet_status
from girofle.lifecycle.init import init_home, start_edge
from girofle.render import model


@dataclass
class UpReport:
    """What `up` did (nothing when the fleet was up), and what it brought up."""

    changed: list[str] = field(default_factory=list)
    dashboard_password: str | None = None
    instances: list[str] = field(default_factory=list)


def bring_up(app: App, new_config: Callable[[], GirofleConfig], first_instance: str) -> UpReport:
    """Init the home if it has no girofle.yml (``new_config`` makes one), start the edge if
    it is not healthy, commission ``first_instance`` when the fleet has no instance (or
    resume its interrupted commission), and start every instance that is not running."""
    report = UpReport()
    if not app.home.config_file.exists():
        report.dashboard_password = init_home(app, new_config())
        report.changed.append(f"initialised {app.home.root}")
    app.engine.ping()
    config = app.config
    if config.routing == "traefik":
        edge = app.engine.health(model.traefik_container(config.home_id))
        if edge.status != "healthy":
            password = start_edge(app)
            report.dashboard_password = report.dashboard_password or password
            report.changed.append("started the edge")
    inventory = read_inventory(app.home)
    live = {n: i for n, i in inventory.instances.items() if i.state != "decommissioned"}
    unfinished = [n for n, i in live.items() if i.state in ("creating", "failed")]
    if not live:
        unfinished = [first_instance]
    for name in unfinished:
        commission.new_stack(app, commission.NewStackRequest(name=name))
        report.changed.append(f"commissioned {name}")
    running = {row.name for row in fleet_status(app) if row.state == "healthy"}
    for name in sorted(set(live) - set(unfinished) - running):
        power.start(app, name)
        report.changed.append(f"started {name}")
    after = read_inventory(app.home).instances.values()
    report.instances = sorted(i.name for i in after if i.state != "decommissioned")
    return report
