"""Girofle's API token on an instance, and what the API says the instance holds."""

from __future__ import annotations

import json
import secrets

from girofle.backup.manifest import ProjectEntry
from girofle.errors import DockerError
from girofle.home import write_private
from girofle.lifecycle.app import App
from girofle.render import model

TOKEN_FILE = "api_token"
# GitLab's documented way to create a personal access token non-interactively. It goes to
# `gitlab-rails runner -` on stdin, so the token never shows on a command line.
TOKEN_SCRIPT = (
    "token = User.find_by_username('root').personal_access_tokens.create("
    "scopes: ['api', 'read_repository'], name: 'girofle', expires_at: 365.days.from_now); "
    "token.set_token('{token}'); token.save!"
)


def _get(app: App, container: str, token: str, path: str) -> object:
    # curl reads the header from stdin (-H @-), keeping the token out of `ps`.
    out = app.engine.exec(
        container,
        ["curl", "-sf", "-H", "@-", f"http://localhost/api/v4{path}"],
        stdin=f"PRIVATE-TOKEN: {token}\n",
    )
    return json.loads(out)


def api_token(app: App, name: str) -> str:
    """A working token for instance ``name``: the stored one, or a new one made now."""
    container = model.container_name(name)
    stored = app.home.secret_file(name, TOKEN_FILE)
    if stored.exists():
        token = stored.read_text().strip()
        try:
            _get(app, container, token, "/version")
            return token
        except DockerError:
            pass  # unknown to this database (a restore replaced it): make a new one
    token = "glpat-" + secrets.token_urlsafe(24)
    app.engine.exec(
        container, ["gitlab-rails", "runner", "-"], stdin=TOKEN_SCRIPT.format(token=token)
    )
    write_private(stored, token + "\n")
    return token


def projects(app: App, name: str) -> list[ProjectEntry]:
    """Every project of an instance with its wiki pages, as the API lists them."""
    container = model.container_name(name)
    token = api_token(app, name)
    listed = _get(app, container, token, "/projects?per_page=100")
    assert isinstance(listed, list)
    result = []
    for project in listed:
        pages = _get(app, container, token, f"/projects/{project['id']}/wikis")
        assert isinstance(pages, list)
        result.append(
            ProjectEntry(
                path=project["path_with_namespace"], wiki_pages=sorted(p["slug"] for p in pages)
            )
        )
    return result
