"""gitlab-backup create|restore, after GitLab's backup_gitlab.md and restore_gitlab.md."""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator

from standin import common, repos, ssh
from standin.common import event

SUFFIX = "_gitlab_backup.tar"


def say(message: str, cron: bool) -> None:
    if not cron:
        print(f"{dt.datetime.now():%Y-%m-%d %H:%M:%S} UTC -- {message}", flush=True)


@contextlib.contextmanager
def backup_lock(cron: bool) -> Iterator[None]:
    """GitLab's lock_backup (lib/tasks/gitlab/backup.rb): a pid file in Rails' tmp/; a
    second backup or restore while its process lives exits 1. Its message goes to the
    progress output, which is a StringIO under CRON=1: the text is lost there."""
    pid_file = common.BACKUP_PID_FILE
    os.makedirs(os.path.dirname(pid_file), exist_ok=True)
    try:
        with open(pid_file) as f:
            other = int(f.read().strip())
        os.kill(other, 0)
    except (OSError, ValueError):
        other = 0
    if other:
        event("gitlab-backup", f"refused: backup or restore in progress pid={other}")
        if not cron:
            print(
                "Backup and restore in progress:\n"
                f"  There is a backup and restore task in progress (PID {other}). "
                "Try to run the current task once the previous one ends.",
                flush=True,
            )
        sys.exit(1)
    with open(pid_file, "w") as f:
        f.write(str(os.getpid()))
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(pid_file)


def _repositories(workdir: str, skip: set[str], strategy: str, cron: bool) -> list[str]:
    """Bundle every repository (wikis included) into workdir/repositories."""
    if "repositories" in skip:
        return []
    say("Dumping repositories ...", cron)
    source = common.REPOS
    if strategy == "copy":
        # STRATEGY=copy: copy first so that a live write cannot change what tar reads.
        source = os.path.join(workdir, "copy")
        shutil.copytree(common.REPOS, source, symlinks=True)
    names = []
    for repo in sorted(glob.glob(os.path.join(source, "@hashed", "*", "*", "*.git"))):
        rel = os.path.relpath(repo, source)[: -len(".git")]
        target = os.path.join(workdir, "repositories", rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if repos.has_commits(repo):
            repos.git(repo, "bundle", "create", "-q", target + ".bundle", "--all")
        else:
            open(target + ".empty", "w").close()
        names.append(rel)
        say(f"  * {rel} ... [DONE]", cron)
    if strategy == "copy":
        shutil.rmtree(source)
    say("Dumping repositories ... done", cron)
    return names


def create(args: dict[str, str]) -> int:
    cron = args.get("CRON") == "1"
    skip = set(filter(None, args.get("SKIP", "").split(",")))
    version = common.version()
    now = dt.datetime.now(dt.UTC)
    # Real CE ids carry no edition suffix: strftime('%s_%Y_%m_%d_') + Gitlab::VERSION.
    backup_id = args.get("BACKUP") or f"{int(now.timestamp())}_{now:%Y_%m_%d}_{version}"
    event(
        "gitlab-backup",
        f"create start id={backup_id} skip={','.join(sorted(skip))} strategy={args.get('STRATEGY', '')}"
        f" gzip_rsyncable={args.get('GZIP_RSYNCABLE', '')}",
    )
    os.makedirs(common.BACKUPS, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="tmp-", dir=common.BACKUPS)
    try:
        if "db" not in skip:
            say("Dumping database ... ", cron)
            os.makedirs(os.path.join(workdir, "db"))
            with common.database() as db:
                dump = json.dumps(db, sort_keys=True).encode()
            # Backup::Dump::Postgres pipes the dump through gzip, with --rsyncable when
            # GZIP_RSYNCABLE=yes.
            rsyncable = ["--rsyncable"] if args.get("GZIP_RSYNCABLE") == "yes" else []
            with open(os.path.join(workdir, "db", "database.sql.gz"), "wb") as f:
                subprocess.run(["gzip", "-c", "-1", *rsyncable], input=dump, stdout=f, check=True)
            say("Dumping database ... done", cron)
        names = _repositories(workdir, skip, args.get("STRATEGY", ""), cron)
        info = {
            "backup_created_at": now.isoformat(),
            "gitlab_version": version,
            "skipped": ",".join(sorted(skip)),
            "repositories": names,
            "installation_type": "gitlab-docker",
        }
        with open(os.path.join(workdir, "backup_information.yml"), "w") as f:
            for key, value in info.items():
                f.write(f":{key}: {json.dumps(value)}\n")
        archive = os.path.join(common.BACKUPS, backup_id + SUFFIX)
        say(f"Creating backup archive: {os.path.basename(archive)} ... ", cron)
        # Backup::Manager#pack opens the final name directly (no temporary name), so a
        # reader sees the archive grow, and a killed run leaves it truncated.
        fd = os.open(archive, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        common.chown_git(archive)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w") as tar:
            for name in sorted(os.listdir(workdir)):
                if name != "copy":
                    tar.add(os.path.join(workdir, name), arcname=name)
            raw.flush()
            # GITLAB_STANDIN_BACKUP_SECONDS: a big instance's archive takes this long.
            time.sleep(common.switch("backup_seconds", 0))
        say("Creating backup archive: done", cron)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    _prune(archive)
    say(f"Backup {backup_id} is done.", cron)
    event("gitlab-backup", f"create done id={backup_id}")
    return 0


def _prune(keep_archive: str) -> None:
    keep = int(common.setting(common.load_config(), "gitlab_rails", "backup_keep_time", 0))
    if keep <= 0:
        return
    limit = time.time() - keep
    for path in glob.glob(os.path.join(common.BACKUPS, "*" + SUFFIX)):
        if path != keep_archive and os.path.getmtime(path) < limit:
            os.unlink(path)


def _read_info(tar: tarfile.TarFile) -> dict[str, object]:
    member = tar.extractfile("backup_information.yml")
    assert member is not None
    info: dict[str, object] = {}
    for line in io.TextIOWrapper(member):
        key, _, value = line.strip().lstrip(":").partition(": ")
        info[key] = json.loads(value)
    return info


def restore(args: dict[str, str]) -> int:
    backup_id = args.get("BACKUP")
    if not backup_id:
        found = sorted(glob.glob(os.path.join(common.BACKUPS, "*" + SUFFIX)))
        if len(found) != 1:
            common.die(
                "Found more than one backup or none: please specify which one to restore with BACKUP="
            )
        backup_id = os.path.basename(found[0])[: -len(SUFFIX)]
    archive = os.path.join(common.BACKUPS, backup_id + SUFFIX)
    event("gitlab-backup", f"restore start id={backup_id}")
    if not os.path.exists(archive):
        common.die(f"The backup file {os.path.basename(archive)} does not exist!")
    with tarfile.open(archive) as tar:
        info = _read_info(tar)
        current = common.version()
        wanted = str(info["gitlab_version"])
        if current != wanted:
            event(
                "gitlab-backup",
                f"restore refused version mismatch current={current} backup={wanted}",
            )
            common.die(
                "GitLab version mismatch:\n"
                f"  Your current GitLab version ({current}) differs from the GitLab version in the backup!\n"
                "  Please switch to the following version and try again:\n"
                f"  version: {wanted}\n\n"
                "  Hint: git checkout v" + str(info["gitlab_version"])
            )
        running = [s for s in ("puma", "sidekiq") if common.service_pid(s) is not None]
        if running:
            event("gitlab-backup", f"restore refused running={','.join(running)}")
            common.die(
                f"GitLab processes that connect to the database are running ({', '.join(running)}): "
                "stop them first with `gitlab-ctl stop puma` and `gitlab-ctl stop sidekiq`"
            )
        if not (os.environ.get("GITLAB_ASSUME_YES") == "1" or args.get("force") == "yes"):
            print("This task will now rebuild the authorized_keys file.")
            print("Do you want to continue (yes/no)? ", end="", flush=True)
            answer = sys.stdin.readline().strip()
            if answer != "yes":
                print("Quitting...")
                event("gitlab-backup", "restore quit at prompt")
                return 1
        with tempfile.TemporaryDirectory(dir=common.BACKUPS) as workdir:
            tar.extractall(workdir)  # our own archive; bookworm's 3.11.2 has no filter=
            _restore_database(workdir, info)
            # Between the database and the repositories, as GitLab orders them: a restore
            # stopped here leaves the data half-restored (a test switch makes it last).
            time.sleep(common.switch("restore_seconds", 0))
            _restore_repositories(workdir, info)
    print("Restore task is done.")
    event("gitlab-backup", f"restore done id={backup_id}")
    return 0


def _restore_database(workdir: str, info: dict[str, object]) -> None:
    if "db" in str(info["skipped"]).split(","):
        return
    print("Restoring database ... ", flush=True)
    with gzip.open(os.path.join(workdir, "db", "database.sql.gz")) as f:
        dump = f.read().decode()
    with common.database(write=True) as db:
        db.clear()
        db.update(json.loads(dump))
    print("This task will now rebuild the authorized_keys file.", flush=True)
    with common.database() as db:
        ssh.write_authorized_keys(db)
    print("Restoring database ... done", flush=True)


def _restore_repositories(workdir: str, info: dict[str, object]) -> None:
    if "repositories" in str(info["skipped"]).split(","):
        return
    print("Restoring repositories ...", flush=True)
    shutil.rmtree(common.REPOS, ignore_errors=True)
    os.makedirs(common.REPOS)
    for rel in info["repositories"]:  # type: ignore[attr-defined]
        target = os.path.join(common.REPOS, rel + ".git")
        repos.init_bare(target)
        bundle = os.path.join(workdir, "repositories", rel + ".bundle")
        if os.path.exists(bundle):
            subprocess.run(
                ["git", f"--git-dir={target}", "fetch", "-q", bundle, "+refs/*:refs/*"], check=True
            )
        print(f" * {rel} ... [DONE]", flush=True)
    print("Restoring repositories ... done", flush=True)


def main(argv: list[str]) -> int:
    command = argv[0] if argv and "=" not in argv[0] else "create"
    rest = argv[1:] if argv and "=" not in argv[0] else argv
    args = common.kv_args(rest)
    cron = args.get("CRON") == "1"
    if command == "create":
        with backup_lock(cron):
            return create(args)
    if command == "restore":
        with backup_lock(cron):
            return restore(args)
    common.die(f"gitlab-backup: unknown command {command}")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
