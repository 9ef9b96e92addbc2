"""Bare git repositories of projects and their wikis, as git-data/repositories holds them:
in hashed storage, GitLab's only layout since 14.0 (app/models/storage/hashed.rb:
@hashed/<h[0..1]>/<h[2..3]>/<h>.git with h = SHA-256 of the project id; the wiki beside it
as <h>.wiki.git)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile

from standin import common

NAMESPACE = "root"


def disk_path(project_id: int) -> str:
    digest = hashlib.sha256(str(project_id).encode()).hexdigest()
    return f"@hashed/{digest[0:2]}/{digest[2:4]}/{digest}"


def repo_dir(project: dict[str, object], wiki: bool = False) -> str:
    suffix = ".wiki.git" if wiki else ".git"
    return os.path.join(common.REPOS, disk_path(int(project["id"])) + suffix)  # type: ignore[call-overload]


# What gitlab-shell learns from GitLab's internal API (/api/v4/internal/allowed answers
# gitaly.repository.relative_path): the double keeps it in a file git can read, since git
# cannot read the double's database.
PROJECT_PATHS = f"{common.DATA}/gitlab-shell/standin-project-paths.json"


def find_project(path: str) -> dict[str, object] | None:
    """The project at root/<path>, from the database."""
    with common.database() as db:
        return next((p for p in db["projects"] if p["path"] == path), None)


def write_project_paths(db: dict[str, object]) -> None:
    """root/<path> -> its repository's relative path, for every project (root writes it)."""
    mapping = {p["path"]: disk_path(int(p["id"])) for p in db.get("projects", [])}  # type: ignore[attr-defined]
    os.makedirs(os.path.dirname(PROJECT_PATHS), exist_ok=True)
    common.write_private(PROJECT_PATHS, json.dumps(mapping), mode=0o644)


def shell_repo(path: str) -> str:
    """The repository gitlab-shell serves for root/<path>, or "" (as the git user)."""
    try:
        with open(PROJECT_PATHS) as f:
            relative = json.load(f).get(path)
    except (OSError, ValueError):
        return ""
    return os.path.join(common.REPOS, relative + ".git") if relative else ""


def git(repo: str, *args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        ["git", f"--git-dir={repo}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=True,
    )
    return proc.stdout


def init_bare(repo: str) -> None:
    if not os.path.isdir(repo):
        os.makedirs(os.path.dirname(repo), exist_ok=True)
        subprocess.run(["git", "init", "-q", "--bare", "--initial-branch=main", repo], check=True)
        git(repo, "config", "http.receivepack", "true")


def has_commits(repo: str) -> bool:
    return bool(git(repo, "for-each-ref", "--count=1", "--format=%(refname)").strip())


def wiki_pages(repo: str) -> list[tuple[str, str]]:
    """(slug, content) for each page on the wiki's main branch."""
    if not os.path.isdir(repo) or not has_commits(repo):
        return []
    pages = []
    for name in git(repo, "ls-tree", "--name-only", "main").split():
        if name.endswith(".md"):
            pages.append((name[:-3], git(repo, "show", f"main:{name}")))
    return pages


def write_wiki_page(repo: str, slug: str, content: str) -> None:
    """Commit one page to the wiki repository, the way GitLab's wiki writes through git."""
    init_bare(repo)
    env = {
        "GIT_AUTHOR_NAME": "Administrator",
        "GIT_AUTHOR_EMAIL": "admin@example.com",
        "GIT_COMMITTER_NAME": "Administrator",
        "GIT_COMMITTER_EMAIL": "admin@example.com",
    }
    with tempfile.TemporaryDirectory() as tmp:
        env["GIT_INDEX_FILE"] = os.path.join(tmp, "index")
        parent = has_commits(repo)
        if parent:
            git(repo, "read-tree", "main", env=env)
        blob = git(repo, "hash-object", "-w", "--stdin", stdin=content).strip()
        git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{slug}.md", env=env)
        tree = git(repo, "write-tree", env=env).strip()
        args = ["commit-tree", tree, "-m", f"Create {slug}"]
        if parent:
            args += ["-p", "main"]
        commit = git(repo, *args, env=env).strip()
        git(repo, "update-ref", "refs/heads/main", commit)
