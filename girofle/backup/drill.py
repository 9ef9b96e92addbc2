"""Restore drills: a backup restored into a throwaway GitLab nobody can reach, checked, and
removed, so that every backup is known to restore before the day it must.

The throwaway instance runs on the backup's exact version in its own internal network,
with no published port, no route and no DNS record; its data lives in anonymous volumes
that go with it. It is checked against the manifest the backup wrote: every project there,
each repository's branches, tags and commit count as recorded, `git fsck` clean, every wiki
page listed, and gitlab:doctor:secrets without a failure. The live instance is never touched.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from girofle.backup import api
from girofle.backup.instance import BackupRef, find_backup, require_secrets
from girofle.backup.manifest import Manifest, read_manifest, verify
from girofle.backup.repos import disk_path, repository_states
from girofle.backup.restore import config_archive, fetch_remote_backup, restore_into
from girofle.docker.isolated import IsolatedSpec, isolated
from girofle.errors import (
    BackupError,
    ConflictError,
    EngineUnavailableError,
    GirofleError,
    UserError,
)
from girofle.home import host_lock
from girofle.inventory import DrillRecord, editing, now
from girofle.lifecycle import validate
from girofle.lifecycle.app import App
from girofle.memory import refuse_unless_it_fits
from girofle.render import model
from girofle.targets.on_node import delegated, run_there
from girofle.timing import timed

DRILL_LABEL = "io.girofle.drill"
# What the throwaway GitLab is told: nothing of the live instance's hostnames; the probes
# answer only from inside, as for instances.
DRILL_OMNIBUS_CONFIG = (
    "external_url 'http://localhost'; "
    "gitlab_rails['monitoring_whitelist'] = ['127.0.0.0/8', '::1/128']"
)
HEALTH_CMD = (
    "test -f /opt/gitlab/etc/gitlab-healthcheck-rc && "
    "exec /opt/gitlab/bin/gitlab-healthcheck --fail --max-time 10"
)


@dataclass
class DrillReport:
    instance: str
    backup_id: str
    source: str
    ok: bool
    detail: str
    durations: dict[str, float] = field(default_factory=dict)


def drill_name(app: App, name: str) -> str:
    """The throwaway container and network: apart from every instance's (gitlab-*)."""
    return f"girofle-drill-{app.config.home_id}-{name}"


def drill_workdir(app: App, name: str) -> Path:
    """Where a remote backup is fetched to: inside the instance's directory, which its
    sidecar has mounted at the same path as the host."""
    return model.InstancePaths.of(app.config.data_root, name).root / ".drill"


def _backup(app: App, name: str, backup_id: str, source: str, workdir: Path) -> BackupRef:
    """The backup to drill: a local one, or one fetched from the remote into ``workdir``
    (never into the instance's own backups)."""
    if source == "local":
        return find_backup(app, name, backup_id)
    chosen = fetch_remote_backup(app, name, backup_id, workdir)
    return BackupRef(name, chosen, workdir / chosen, read_manifest(workdir / chosen))


def check_restored(app: App, container: str, manifest: Manifest) -> list[str]:
    """What the restored GitLab lacks against the manifest, first failure first."""
    failures: list[str] = []
    restored = {p.path: p for p in api.projects_in(app, container, api.new_token(app, container))}
    for project in manifest.projects:
        found = restored.get(project.path)
        if found is None:
            failures.append(f"project {project.path} is missing")
            continue
        missing_pages = sorted(set(project.wiki_pages or []) - set(found.wiki_pages or []))
        if missing_pages:
            failures.append(f"{project.path}: wiki page(s) {', '.join(missing_pages)} missing")
    recorded = [p for p in manifest.projects if p.id is not None and p.path in restored]
    paths = {p.path: disk_path(p.id) for p in recorded if p.id is not None}
    states = repository_states(app, container, list(paths.values()))
    for project in recorded:
        state = states.get(paths[project.path])
        if state is None or state.missing:
            failures.append(f"{project.path}: its repository is missing")
        elif state.fsck != "ok":
            failures.append(f"{project.path}: git fsck fails ({state.fsck})")
        elif project.refs is not None and state.refs != project.refs:
            changed = sorted(set(state.refs.items()) ^ set(project.refs.items()))
            failures.append(f"{project.path}: refs differ from the backup's ({changed[0][0]})")
        elif project.commits is not None and state.commits != project.commits:
            failures.append(
                f"{project.path}: {state.commits} commits, the backup recorded {project.commits}"
            )
    return failures


def _run(app: App, ref: BackupRef, report: DrillReport) -> None:
    manifest = ref.manifest
    if manifest.image is None:
        raise BackupError(f"backup {ref.backup_id} does not say which image made it")
    settings = app.config.gitlab
    spec = IsolatedSpec(
        name=drill_name(app, ref.instance),
        image=manifest.image,
        labels={model.HOME_LABEL: app.config.home_id, DRILL_LABEL: ref.instance},
        env={"GITLAB_OMNIBUS_CONFIG": DRILL_OMNIBUS_CONFIG},
        health_cmd=HEALTH_CMD,
        health_interval=settings.healthcheck.interval,
        health_timeout=settings.healthcheck.timeout,
        health_retries=settings.healthcheck.retries,
        health_start_period=settings.healthcheck.start_period,
        shm_size=settings.shm_size,
    )
    label = f"drill of {ref.instance}"

    def wait_healthy() -> None:
        app.engine.wait_healthy(spec.name, settings.health_timeout, stop_on_crash=True)

    def restart() -> str:
        container = app.engine.container(spec.name)
        assert container is not None
        app.engine.restart(container, settings.stop_grace_period)
        wait_healthy()
        return spec.name

    with isolated(app.engine, spec) as container:
        with timed(report.durations, "boot"):
            app.progress(f"{label}: booting GitLab {manifest.gitlab_version} apart from the fleet")
            wait_healthy()
        with timed(report.durations, "restore"):
            restore_into(app, ref, manifest, container, label, restart, report.durations)
        with timed(report.durations, "checks"):
            app.progress(f"{label}: comparing projects, refs, commits and wikis; git fsck")
            failures = check_restored(app, container, manifest)
        app.progress(f"{label}: removing the throwaway instance and its data")
    if failures:
        raise BackupError("; ".join(failures[:3]) + (" (and more)" if len(failures) > 3 else ""))


def drill(app: App, name: str, source: str = "local", backup_id: str = "latest") -> DrillReport:
    """Drill one backup of ``name`` (the latest by default); record and return the verdict.

    A failed drill is a report with ``ok`` False, not an exception: the error is the
    finding. Only what keeps the drill from running at all (no engine, no such backup, not
    enough memory) raises.
    """
    validate.instance_name(name)
    if delegated(app.config):
        return _record(app, name, _drill_on_node(app, name, source, backup_id))
    app.engine.ping()
    refuse_unless_it_fits(app.config.gitlab, f"a drill of {name}")
    started = time.monotonic()
    workdir = drill_workdir(app, name)
    instance_root_existed = workdir.parent.exists()
    report = DrillReport(name, backup_id, source, ok=False, detail="")
    # One drill at a time on this host, whichever home asks: each is a whole GitLab.
    with host_lock(app.progress, "drill"):
        try:
            with timed(report.durations, "fetch"):
                ref = _backup(app, name, backup_id, source, workdir)
                report.backup_id = ref.backup_id
                verify(ref.path)
                require_secrets(config_archive(ref))
            _run(app, ref, report)
            report.ok, report.detail = True, "ok"
        except (UserError, ConflictError, EngineUnavailableError):
            raise  # the drill could not run: nothing was learnt of the backup
        except GirofleError as err:  # damaged, not booting, not restoring, not matching
            report.detail = str(err)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            if not instance_root_existed:  # a home that never had it keeps nothing of it
                with contextlib.suppress(OSError):
                    workdir.parent.rmdir()  # only if empty: never what another made since
    report.durations["total"] = round(time.monotonic() - started, 3)
    return _record(app, name, report)


def _record(app: App, name: str, report: DrillReport) -> DrillReport:
    """Record a drill's verdict (`girofle ls` shows it); the report."""
    with editing(app.home) as inventory:
        inventory.drills[name] = DrillRecord(
            at=now(),
            backup_id=report.backup_id,
            source="remote" if report.source == "remote" else "local",
            ok=report.ok,
            detail=report.detail,
            seconds=report.durations["total"],
        )
    return report


def _drill_on_node(app: App, name: str, source: str, backup_id: str) -> DrillReport:
    """The drill run by Girofle on the instance's swarm node, where its backups are (and,
    for a remote one, the room to fetch it): a failed drill is a report there too."""
    argv = ["drill", name, "--from", source, "--backup", backup_id, "--json"]
    app.progress(f"{name}: drilling its backup on its node (a job there)")
    (answer,) = json.loads(run_there(app.target, name, argv, accept=(BackupError.exit_code,)))
    return DrillReport(
        answer["instance"],
        answer["backup"],
        answer["source"],
        answer["ok"],
        answer["detail"],
        answer["durations"],
    )
