"""Girofle's API token on an instance, and what the API says the instance holds."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from girofle.backup.manifest import ProjectEntry
from girofle.errors import BackupError, DockerError
from girofle.home import write_private
from girofle.lifecycle.app import App
from girofle.lifecycle.converge import GITLAB_VERSION_FILE

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
# Wikis read at once: each request waits on GitLab (puma serves several), not on the reader.
WIKI_READERS = 4
# Every read a backup makes of an instance, in one exec: a `docker exec` costs about 0.1 s,
# and there used to be one per page of projects and one per wiki. Ruby is the language
# GitLab's image runs (omnibus-gitlab's config/software/ruby.rb installs it in
# /opt/gitlab/embedded/bin, which the image's PATH holds). The token comes on stdin, the
# version file as ARGV[0], the page size as ARGV[1], as ARGV[2] "token" when only the token
# is to be checked, and as ARGV[3] how many wikis to read at once; nothing else reaches
# the script, which is a constant. It prints
# one JSON document: the version, /version's status for the token (401: unknown), the
# projects (every page, in id order), each project's wiki page slugs (null when the wiki
# is disabled: the API then answers 403, to admins too, since ProjectPolicy prevents every
# wiki ability), or an error naming what GitLab answered badly.
READS = """
require 'json'
require 'net/http'
Thread.report_on_exception = false  # join re-raises it, and the JSON says it
token = STDIN.read.strip
per_page = Integer(ARGV[1])
token_only = ARGV[2] == 'token'
out = {'version' => (File.read(ARGV[0]).strip rescue nil)}
begin
  # A connection per request: localhost connections cost nothing, and a kept-alive one
  # can stall on delayed ACKs (40 ms a request measured on a server without TCP_NODELAY).
  get = lambda do |path|
    request = Net::HTTP::Get.new('/api/v4' + path)
    request['PRIVATE-TOKEN'] = token
    Net::HTTP.start('localhost', 80, read_timeout: 600) { |http| http.request(request) }
  end
  answer = get.call('/version')
  out['token'] = answer.code.to_i
  if answer.code == '200' && !token_only
    listed = []
    page = '1'
    until page.nil? || page.empty?
      answer = get.call("/projects?order_by=id&sort=asc&per_page=#{per_page}&page=#{page}")
      raise "/projects with #{answer.code}" unless answer.code == '200'
      listed.concat(JSON.parse(answer.body))
      page = answer['X-Next-Page']
    end
    # The wikis, WIKI_READERS requests at a time (each waits on GitLab, not on Ruby).
    wiki_pages = lambda do |project|
      next nil if project['wiki_access_level'] == 'disabled' || project['wiki_enabled'] == false
      reply = get.call("/projects/#{project['id']}/wikis")  # a name of its own: threads
      if reply.code == '200'
        JSON.parse(reply.body).map { |wiki_page| wiki_page['slug'].to_s }.sort
      elsif %w[403 404].include?(reply.code)
        nil
      else
        raise "the wiki of #{project['path_with_namespace']} with #{reply.code}"
      end
    end
    pages = {}
    queue = Queue.new
    listed.each { |project| queue << project }
    readers = Array.new([Integer(ARGV[3] || 1), listed.size].min) do
      Thread.new do
        while (project = (queue.pop(true) rescue nil))
          pages[project['id']] = wiki_pages.call(project)
        end
      end
    end
    readers.each(&:join)  # raises what a reader raised
    out['projects'] = listed.map do |project|
      {'id' => project['id'], 'path' => project['path_with_namespace'],
       'wiki_pages' => pages[project['id']]}
    end
  end
rescue RuntimeError => e
  out['error'] = e.message
end
puts JSON.generate(out)
"""


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


@dataclass(frozen=True)
class Reading:
    """What one exec read of an instance: its version, and its projects with their wikis
    (none when the token was refused: ``token_status`` says how)."""

    token_status: int
    version: str | None
    projects: list[ProjectEntry]


def reads_arguments(projects: bool = True) -> list[str]:
    """READS's arguments: the version file, the page size, the mode ("token": the token's
    check alone) and how many wikis to read at once."""
    mode = "projects" if projects else "token"
    return [GITLAB_VERSION_FILE, str(PER_PAGE), mode, str(WIKI_READERS)]


def parse_reading(container: str, out: str) -> Reading:
    """The Reading READS printed (one JSON document), or a BackupError in one line."""
    try:
        answer = json.loads(out)
        if answer.get("error"):
            raise BackupError(f"the API of {container} answered {answer['error']}")
        return Reading(
            int(answer["token"]),
            answer.get("version") or None,
            [
                ProjectEntry(path=str(p["path"]), wiki_pages=p["wiki_pages"], id=int(p["id"]))
                for p in answer.get("projects") or []
            ],
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        raise BackupError(f"the reading of {container}'s API gave no usable answer") from None


def read_instance(app: App, container: str, token: str, projects: bool = True) -> Reading:
    """GitLab's version and every project with its wiki pages (none without ``projects``:
    the token's check alone), in one exec (READS)."""
    argv = ["ruby", "-e", READS, *reads_arguments(projects)]
    return parse_reading(container, app.engine.exec(container, argv, stdin=token))


class TokenChecked(Protocol):
    """A result of an exec that used Girofle's token: how GitLab's /version answered it."""

    @property
    def token_status(self) -> int: ...


Checked = TypeVar("Checked", bound=TokenChecked)


def with_token(app: App, name: str, attempt: Callable[[str], Checked]) -> Checked:
    """``attempt`` with Girofle's token for instance ``name``: the stored one, or, when
    GitLab does not know it (a restore replaced the database), a new one made now."""
    container = app.target.container(name)
    stored = app.home.instance_secret_file(name, TOKEN_FILE)
    if stored.exists():
        result = attempt(stored.read_text().strip())
        if result.token_status == 200:
            return result
        if result.token_status != 401:
            raise _answered(container, "/version", result.token_status)
    token = new_token(app, container)
    write_private(stored, token + "\n")
    result = attempt(token)
    if result.token_status != 200:
        raise BackupError(
            f"the API of {container} refused Girofle's new token ({result.token_status})"
        )
    return result


def read(app: App, name: str, projects: bool = True) -> Reading:
    """One reading of instance ``name`` (READS) with Girofle's token."""
    container = app.target.container(name)
    return with_token(app, name, lambda token: read_instance(app, container, token, projects))


def api_token(app: App, name: str) -> str:
    """A working token for instance ``name`` (checked, made when needed)."""
    read(app, name, projects=False)
    return app.home.instance_secret_file(name, TOKEN_FILE).read_text().strip()


def put_settings(app: App, name: str, settings: dict[str, str]) -> None:
    """Change application settings of instance ``name`` (PUT /application/settings)."""
    container = app.target.container(name)
    answer = _request(app, container, api_token(app, name), "/application/settings", settings)
    if answer.status != 200:
        raise DockerError(
            f"the API of {container} refused the application settings ({answer.status})"
        )


def projects(app: App, name: str) -> list[ProjectEntry]:
    """Every project of an instance (every page of the listing) with its wiki pages."""
    return read(app, name).projects


def new_token(app: App, container: str) -> str:
    """A new API token for root, made through `gitlab-rails runner` (on stdin)."""
    token = "glpat-" + secrets.token_urlsafe(24)
    app.engine.exec(
        container, ["gitlab-rails", "runner", "-"], stdin=TOKEN_SCRIPT.format(token=token)
    )
    return token


def projects_in(app: App, container: str, token: str) -> list[ProjectEntry]:
    """Every project GitLab in ``container`` lists, with its wiki pages."""
    reading = read_instance(app, container, token)
    if reading.token_status != 200:
        raise _answered(container, "/version", reading.token_status)
    return reading.projects


def _answered(container: str, path: str, status: int) -> BackupError:
    return BackupError(f"the API of {container} answered {path} with {status}")
