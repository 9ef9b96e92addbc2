"""gitlab-ctl: reconfigure, status, start, stop, restart, backup-etc."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time

from standin import common
from standin.common import event
from standin.reconfigure import reconfigure


def _services(args: list[str]) -> tuple[str, ...]:
    if not args:
        return common.SERVICES
    unknown = [s for s in args if s not in common.SERVICES]
    if unknown:
        common.die(f"{unknown[0]}: unknown service", 1)
    return tuple(args)


def status(args: list[str]) -> int:
    down = 0
    for service in _services(args):
        pid = common.service_pid(service)
        if pid is None:
            print(f"down: {service}: 0s, normally up")
            down += 1
        else:
            print(f"run: {service}: (pid {pid}) 1s; run: log: (pid 1) 1s")
    return 3 if down else 0


def start(args: list[str]) -> int:
    for service in _services(args):
        pid = common.service_pid(service)
        if common.start_service(service):
            print(f"ok: run: {service}: (pid {common.service_pid(service)}) 0s")
        else:
            print(f"ok: run: {service}: (pid {pid}) already running")
    return 0


def stop(args: list[str]) -> int:
    for service in _services(args):
        common.stop_service(service)
        print(f"ok: down: {service}: 0s, normally up")
    return 0


def backup_etc(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gitlab-ctl backup-etc")
    parser.add_argument("-p", "--backup-path", default=None)
    parser.add_argument("--delete-old-backups", dest="delete", action="store_true", default=None)
    parser.add_argument("--no-delete-old-backups", dest="delete", action="store_false")
    parser.add_argument("path", nargs="?")
    opts = parser.parse_args(args)
    directory = opts.backup_path or opts.path or f"{common.ETC}/config_backup"
    print("Running configuration backup")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    archive = os.path.join(
        directory, f"gitlab_config_{int(now.timestamp())}_{now.strftime('%Y_%m_%d')}.tar"
    )
    print(f"Creating configuration backup archive: {os.path.basename(archive)}")
    # The real command, from omnibus lib/gitlab_ctl/backup.rb.
    proc = subprocess.run(
        [
            "tar",
            "--absolute-names",
            "--dereference",
            "--verbose",
            "--create",
            "--file",
            archive,
            "--exclude",
            directory,
            "--",
            common.ETC,
        ],
        check=False,
    )
    if proc.returncode != 0:
        event("backup-etc", f"failed rc={proc.returncode}")
        return proc.returncode
    os.chmod(archive, 0o600)
    keep = common.setting(common.load_config(), "gitlab_rails", "backup_keep_time", 0)
    if opts.delete is not False and int(keep) > 0:
        limit = time.time() - int(keep)
        for name in os.listdir(directory):
            path = os.path.join(directory, name)
            if (
                name.startswith("gitlab_config_")
                and path != archive
                and os.path.getmtime(path) < limit
            ):
                os.unlink(path)
                print(f"Removing configuration backup: {name}")
    print(f"Configuration backup archive complete: {archive}")
    event("backup-etc", f"done {archive}")
    return 0


def main(argv: list[str]) -> int:
    if not argv:
        common.die("usage: gitlab-ctl COMMAND [ARGS]", 1)
    command, rest = argv[0], argv[1:]
    event("gitlab-ctl", " ".join(argv))
    if command == "reconfigure":
        try:
            reconfigure(source="exec")
        except common.ConfigError as exc:
            # omnibus prints the Chef run's FATAL line and exits 1.
            print(f"FATAL: {exc}", file=sys.stderr)
            return 1
        print("gitlab Reconfigured!")
        return 0
    if command == "status":
        return status(rest)
    if command == "start":
        return start(rest)
    if command == "stop":
        return stop(rest)
    if command == "restart":
        stop(rest)
        return start(rest)
    if command == "backup-etc":
        return backup_etc(rest)
    print(f"gitlab-ctl: the test double does not implement '{command}'", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
