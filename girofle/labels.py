"""The labels Girofle puts on what it makes on the engine, by which it finds them again."""

from __future__ import annotations

HOME_LABEL = "io.girofle.home"
INSTANCE_LABEL = "io.girofle.instance"
ROLE_LABEL = "io.girofle.role"
NODE_LABEL = "io.girofle.node"  # on an instance's service: the ID of the node it is pinned to
# On an instance's service (a swarm): its inventory record, so the swarm holds the fleet.
RECORD_LABEL = "io.girofle.record"
