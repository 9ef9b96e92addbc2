"""Girofle's API token on an instance, and what the API says the instance holds."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

from girofle.backup.manifest import ProjectEntry
from girofle.errors import BackupError, DockerError
from girofle.home import write_private
from girofle.lifecycle.app import App

TOKEN_FILE = "api_token"
# GitLab's documented way to create a personal access token non-interactively. It goes to
# `gitlab-rails runner -` on stdin, so the token never shows on a command line. With Admin
# Mode on, a token without `admin_mode` acts as a non-admin and misses other users'
# projects (valid since GitLab 15.8).
TOKEN_SCRIPT = (
    "token = User.find_by_username('root').personal_access_tokens.create("
    "scopes: ['api', 'read_repository', 'admin_mode'], name: 'girofle', "
    "expires_at: 365.days.from_now); "
    "token.set_token('{token}'); token.save!"
)
PER_PAGE = 100  # GitLab's maximum page size


@dataclass(frozen=True)
class ApiAnswer:
    """One API response: status, lower-cased headers, and the decoded JSON body."""

    status: int
    headers: dict[str, str]
    body: object


def _request(
    app: App, container: str, token: str, path: str, form: dict[str, str] | None = None
) -> ApiAnswer:
    # curl reads the header from stdin (-H @-), keeping the token out of `ps`; -D - puts
    # the response headers before the body, for the status and the pagination headers.
    # A ``form`` makes it a PUT of those fields (none of them secret).
    fields = [arg for k, v in (form or {}).items() for arg in ("--data-urlencode", f"{k}={v}")]
    method = ["-X", "PUT", *fields] if form is not None else []
    out = app.engine.exec(
        container,
        ["curl", "-sS", "-D", "-", "-H", "@-", *method, f"http://localhost/api/v4{path}"],
        stdin=f"PRIVATE-TOKEN: {token}\n",
    )
    head, _, body = out.replace("\r\n", "\n").partition("\n\n")
    while head.startswith("HTTP/") and " 100 " in head.split("\n", 1)[0]:
        head, _, body = body.partition("\n\n")  # an interim 100 Continue
    lines = head.split("\n")
    try:
        status = int(lines[0].split()[1])
        decoded = json.loads(body) if body.strip() else None
    except (IndexError, ValueError):
        raise BackupError(f"the API of {container} answered {path} with no JSON") from None
    headers = {}
    for line in lines[1:]:
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip().lower()] = value.strip()
    return ApiAnswer(status, headers, decoded)


def _get_all(app: App, container: str, token: str, path: str) -> list[dict[str, object]]:
    """Every item of a paginated listing, following X-Next-Page to the end."""
    items: list[dict[str, object]] = []
    page = "1"
    while page:
        separator = "&" if "?" in path else "?"
        answer = _request(
            app, container, token, f"{path}{separator}per_page={PER_PAGE}&page={page}"
        )
        if answer.status != 200 or not isinstance(answer.body, list):
            raise BackupError(f"the API of {container} answered {path} with {answer.status}")
        items += answer.body
        page = answer.headers.get("x-next-page", "")
    return items


def api_token(app: App, name: str) -> str:
    """A working token for instance ``name``: the stored one, or a new one made now."""
    container = app.target.container(name)
    stored = app.home.instance_secret_file(name, TOKEN_FILE)
    if stored.exists():
        token = stored.read_text().strip()
        try:
            if _request(app, container, token, "/version").status == 200:
                return token
        except (DockerError, BackupError):
            pass
        # unknown to this database (a restore replaced it): make a new one
    token = new_token(app, container)
    write_private(stored, token + "\n")
    return token


def put_settings(app: App, name: str, settings: dict[str, str]) -> None:
    """Change application settings of instance ``name`` (PUT /application/settings)."""
    container = app.target.container(name)
    answer = _request(app, container, api_token(app, name), "/application/settings", settings)
    if answer.status != 200:
        raise DockerError(
            f"the API of {container} refused the application settings ({answer.status})"
        )


def _wiki_pages(
    app: App, container: str, token: str, project: dict[str, object]
) -> list[str] | None:
    """The slugs of a project's wiki pages, or None when its wiki is disabled (the API then
    answers 403, to admins too: ProjectPolicy prevents every wiki ability)."""
    if project.get("wiki_access_level") == "disabled" or project.get("wiki_enabled") is False:
        return None
    answer = _request(app, container, token, f"/projects/{project['id']}/wikis")
    if answer.status in (403, 404):
        return None
    if answer.status != 200 or not isinstance(answer.body, list):
        raise BackupError(
            f"the API of {container} answered the wiki of {project['path_with_namespace']} "
            f"with {answer.status}"
        )
    return sorted(str(page["slug"]) for page in answer.body)


def projects(app: App, name: str) -> list[ProjectEntry]:
    """Every project of an instance (every page of the listing) with its wiki pages."""
    return projects_in(app, app.target.container(name), api_token(app, name))


def new_token(app: App, container: str) -> str:
    """A new API token for root, made through `gitlab-rails runner` (on stdin)."""
    token = "glpat-" + secrets.token_urlsafe(24)
    app.engine.exec(
        container, ["gitlab-rails", "runner", "-"], stdin=TOKEN_SCRIPT.format(token=token)
    )
    return token


def projects_in(app: App, container: str, token: str) -> list[ProjectEntry]:
    """Every project GitLab in ``container`` lists, with its wiki pages."""
    listed = _get_all(app, container, token, "/projects?order_by=id&sort=asc")
    return [
        ProjectEntry(
            path=str(project["path_with_namespace"]),
            wiki_pages=_wiki_pages(app, container, token, project),
            id=int(str(project["id"])),
        )
        for project in listed
    ]
