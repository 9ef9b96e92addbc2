"""The stand-in's web side ("puma"): health, a slice of the REST API, and git smart HTTP."""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import http.client
import http.cookies
import ipaddress
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standin import common, repos, ssh, upgrade
from standin.common import event

STARTED = time.monotonic()
READY_AFTER = float(os.environ.get("GITLAB_STANDIN_READY_SECONDS", "3"))
NEVER_HEALTHY = os.environ.get("GITLAB_STANDIN_NEVER_HEALTHY") == "1"
CONFIG = common.effective_config()
EXTERNAL_URL = str(CONFIG["external_url"]).rstrip("/")
ALLOWLIST = [
    ipaddress.ip_network(n, strict=False)
    for n in common.setting(
        CONFIG, "gitlab_rails", "monitoring_whitelist", ["127.0.0.0/8", "::1/128"]
    )
]
TRUSTED = [
    ipaddress.ip_network(n, strict=False)
    for n in common.setting(CONFIG, "nginx", "real_ip_trusted_addresses", [])
]
SSH_PORT = int(common.setting(CONFIG, "gitlab_rails", "gitlab_shell_ssh_port", 22))
# The sign-in app (omniauth/app.rb, GitLab's OmniAuth strategies in Ruby) listens here when
# gitlab.rb configures providers; this server forwards the sign-in paths to it.
OMNIAUTH_PORT = 8181
OMNIAUTH_PROVIDERS = common.setting(CONFIG, "gitlab_rails", "omniauth_providers", []) or []
SIGN_IN_PATHS = re.compile(r"^/users/(sign_in|auth/[a-z_]+(/callback)?)$")
SESSION_COOKIE = "_gitlab_session"
GIT_PATH = re.compile(r"^/root/([\w.-]+?)(\.wiki)?\.git(/.*)$")
PROJECT_PATH = re.compile(r"^/api/v4/projects/([^/]+)(/wikis)?/?$")


def ready() -> bool:
    return not NEVER_HEALTHY and time.monotonic() - STARTED >= READY_AFTER


def in_networks(
    address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def batched_background_migrations() -> list[dict[str, object]]:
    """GET /admin/batched_background_migrations: the last 20, newest first
    (doc/api/admin/batched_background_migrations.md)."""
    with common.database() as db:
        rows = list(db.get("batched_background_migrations", []))
    return [
        {
            "id": m["id"],
            "job_class_name": m["job_class_name"],
            "table_name": m["table_name"],
            "column_name": m["column_name"],
            "status": upgrade.STATUS_NAMES[m["status"]],
            "progress": upgrade.progress(m),
            "created_at": m["queued_at"],
        }
        for m in sorted(rows, key=lambda m: -int(m["id"]))[:20]
    ]


def user_json(user: dict[str, Any]) -> dict[str, Any]:
    """A user as the API shows it (doc/api/users.md), identities included."""
    return {
        "id": user.get("id"),
        "username": user.get("username"),
        "name": user.get("name"),
        "email": user.get("email"),
        "state": user.get("state", "active"),
        "identities": user.get("identities", []),
    }


def start_sign_in_app() -> subprocess.Popen[bytes] | None:
    """The OmniAuth app, when gitlab.rb configures providers; its output in the logs."""
    if not OMNIAUTH_PROVIDERS:
        return None
    secret = common.load_secrets()["gitlab_rails"]["secret_key_base"]
    env = {
        **os.environ,
        "STANDIN_EFFECTIVE_CONFIG": common.EFFECTIVE_CONFIG,
        "STANDIN_OMNIAUTH_PORT": str(OMNIAUTH_PORT),
        "STANDIN_SESSION_SECRET": secret,
        "STANDIN_DB_FILE": common.DB_FILE,
        "SSL_CERT_FILE": common.CA_BUNDLE,
    }
    os.makedirs(f"{common.LOGS}/standin", exist_ok=True)
    log = open(f"{common.LOGS}/standin/omniauth.log", "ab")  # the child writes it
    event("puma", f"starting the sign-in app for {len(OMNIAUTH_PROVIDERS)} provider(s)")
    return subprocess.Popen(
        ["ruby", "/opt/standin/omniauth/app.rb"], env=env, stdout=log, stderr=log
    )


def project_json(project: dict[str, Any]) -> dict[str, Any]:
    host = urllib.parse.urlsplit(EXTERNAL_URL).hostname
    path = f"root/{project['path']}"
    ssh = f"git@{host}:{path}.git" if SSH_PORT == 22 else f"ssh://git@{host}:{SSH_PORT}/{path}.git"
    return {
        **{
            k: project[k] for k in ("id", "name", "path", "description", "created_at", "visibility")
        },
        "path_with_namespace": path,
        "name_with_namespace": f"Administrator / {project['name']}",
        "namespace": {
            "id": 1,
            "name": "Administrator",
            "path": "root",
            "kind": "user",
            "full_path": "root",
        },
        "default_branch": "main" if repos.has_commits(repos.repo_dir(project)) else None,
        "http_url_to_repo": f"{EXTERNAL_URL}/{path}.git",
        "ssh_url_to_repo": ssh,
        "web_url": f"{EXTERNAL_URL}/{path}",
        "wiki_enabled": wiki_access_level(project) != "disabled",
        "wiki_access_level": wiki_access_level(project),
        "last_activity_at": project["created_at"],
    }


def wiki_access_level(project: dict[str, Any]) -> str:
    return str(project.get("wiki_access_level", "enabled"))


WIKI_LEVELS = ("disabled", "private", "enabled")


def page_window(params: dict[str, Any]) -> tuple[int, int]:
    """Offset pagination as lib/api/helpers/pagination: per_page 20 by default, at most
    100; a page past the end is empty. Returns (page, per_page)."""
    try:
        per_page = int(params.get("per_page", 20))
        page = int(params.get("page", 1))
    except ValueError:
        per_page, page = 20, 1
    per_page = min(max(per_page, 1), 100)
    return max(page, 1), per_page


class Handler(BaseHTTPRequestHandler):
    server_version = "nginx"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        sys.stdout.write(f"{common.now()} {self.client_address[0]} {format % args}\n")
        sys.stdout.flush()

    # --- plumbing ------------------------------------------------------------------

    def client_ip(self) -> str:
        """Like Rails' request.ip: the right-most X-Forwarded-For hop that is not trusted."""
        ip = self.client_address[0]
        forwarded = self.headers.get("X-Forwarded-For")
        if forwarded and in_networks(ip, TRUSTED):
            for hop in reversed([h.strip() for h in forwarded.split(",")]):
                ip = hop
                if not in_networks(hop, TRUSTED):
                    break
        return ip

    def body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def send(
        self, code: int, payload: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def json(self, code: int, data: Any, headers: dict[str, str] | None = None) -> None:
        self.send(code, json.dumps(data).encode(), "application/json", headers)

    def params(self, raw: bytes) -> dict[str, Any]:
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
        if self.headers.get("Content-Type", "").startswith("application/json") and raw:
            query.update(json.loads(raw))
        elif raw:
            query.update(urllib.parse.parse_qsl(raw.decode()))
        return query

    def token_user(self) -> dict[str, Any] | None:
        token = self.headers.get("PRIVATE-TOKEN")
        auth = self.headers.get("Authorization", "")
        if token is None and auth.startswith("Bearer "):
            token = auth[len("Bearer ") :]
        if not token:
            # The API takes the web session's cookie for reads (lib/api/helpers.rb,
            # find_user_from_warden: other methods need a CSRF token, not modelled).
            return self.session_user() if self.command in ("GET", "HEAD") else None
        return self.user_for_token(token)

    def session_user(self) -> dict[str, Any] | None:
        cookies = http.cookies.SimpleCookie(self.headers.get("Cookie", ""))
        if SESSION_COOKIE not in cookies:
            return None
        digest = common.token_digest(cookies[SESSION_COOKIE].value)
        with common.database() as db:
            for row in db.get("sessions", []):
                if hmac.compare_digest(row["digest"], digest):
                    return next(u for u in db["users"] if u["id"] == row["user_id"])
        return None

    @staticmethod
    def user_for_token(token: str) -> dict[str, Any] | None:
        digest = common.token_digest(token)
        with common.database() as db:
            for row in db["tokens"]:
                if hmac.compare_digest(row["digest"], digest):
                    return next(u for u in db["users"] if u["id"] == row["user_id"])
        return None

    def basic_user(self) -> dict[str, Any] | None:
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Basic "):
            return None
        username, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        with common.database() as db:
            user = next((u for u in db["users"] if u["username"] == username), None)
        if user and hmac.compare_digest(
            user["password"], common.hash_password(password, user["salt"])
        ):
            return user
        return self.user_for_token(password)

    # --- routes --------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        self.route(b"")

    def do_POST(self) -> None:
        self.route(self.body())

    def do_PUT(self) -> None:
        self.route(self.body())

    def route(self, raw: bytes) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path in ("/-/health", "/-/readiness", "/-/liveness"):
            return self.probe(path)
        if not ready():
            return self.send(502, b"GitLab is not responding\n", "text/plain")
        if path == "/help":
            page = f'<html><title>Help</title><body>GitLab Community Edition {common.version()}\n<a href="{EXTERNAL_URL}">{EXTERNAL_URL}</a></body></html>\n'
            return self.send(200, page.encode(), "text/html; charset=utf-8")
        if SIGN_IN_PATHS.match(path):
            return self.sign_in(raw)
        if m := GIT_PATH.match(path):
            return self.git_http(m.group(1), bool(m.group(2)), m.group(3), raw)
        if path.startswith("/api/v4/"):
            return self.api(path, raw)
        return self.send(404, b"Not Found\n", "text/plain")

    def probe(self, path: str) -> None:
        if not in_networks(self.client_ip(), ALLOWLIST):
            return self.send(404, b"", "text/plain")  # GitLab's EMPTY_RESPONSE
        ok = ready()
        if path == "/-/health":
            return self.send(
                200 if ok else 503,
                b"GitLab OK" if ok else b"GitLab is not responding",
                "text/plain",
            )
        if path == "/-/liveness":
            return self.json(200, {"status": "ok"})
        status = "ok" if ok else "failed"
        return self.json(
            200 if ok else 503, {"status": status, "master_check": [{"status": status}]}
        )

    def api(self, path: str, raw: bytes) -> None:
        if self.token_user() is None:
            return self.json(401, {"message": "401 Unauthorized"})
        if path == "/api/v4/version":
            return self.json(
                200, {"version": common.version(), "revision": "standin", "enterprise": False}
            )
        if path.rstrip("/") == "/api/v4/admin/batched_background_migrations":
            return self.json(200, batched_background_migrations())
        if path.rstrip("/") == "/api/v4/application/settings":
            return self.application_settings(self.token_user() or {}, raw)
        if path.rstrip("/") == "/api/v4/user":
            return self.json(200, user_json(self.token_user() or {}))
        if path.rstrip("/") == "/api/v4/users":
            return self.list_users(self.token_user() or {})
        if path.rstrip("/") == "/api/v4/user/keys":
            return self.list_keys() if self.command == "GET" else self.add_key(self.params(raw))
        if path.rstrip("/") == "/api/v4/projects":
            return (
                self.list_projects()
                if self.command == "GET"
                else self.create_project(self.params(raw))
            )
        if m := PROJECT_PATH.match(path):
            with common.database() as db:
                key = urllib.parse.unquote(m.group(1))
                project = next(
                    (
                        p
                        for p in db["projects"]
                        if str(p["id"]) == key or f"root/{p['path']}" == key
                    ),
                    None,
                )
            if project is None:
                return self.json(404, {"message": "404 Project Not Found"})
            if not m.group(2):
                if self.command == "PUT":
                    return self.edit_project(project["id"], self.params(raw))
                return self.json(200, project_json(project))
            if wiki_access_level(project) == "disabled":
                # lib/api/wikis.rb authorize! :read_wiki; ProjectPolicy prevents every
                # wiki ability when the feature is disabled, for admins too.
                return self.json(403, {"message": "403 Forbidden"})
            if self.command == "GET":
                return self.list_wikis(project, self.params(b""))
            return self.create_wiki(project, self.params(raw))
        return self.json(404, {"error": "404 Not Found"})

    def application_settings(self, caller: dict[str, Any], raw: bytes) -> None:
        """GET and PUT /application/settings, for administrators (doc/api/settings.md);
        only the settings Girofle changes are modelled, and a PUT of another is refused."""
        if caller.get("id") != 1:
            return self.json(403, {"message": "403 Forbidden"})
        known = {"password_authentication_enabled_for_web"}
        with common.database(write=self.command == "PUT") as db:
            settings = db.setdefault("application_settings", {})
            if self.command == "PUT":
                asked = self.params(raw)
                if set(asked) - known:
                    return self.json(400, {"error": f"not modelled: {sorted(set(asked) - known)}"})
                for key, value in asked.items():
                    settings[key] = str(value).lower() in ("true", "1")
                event("api", f"application settings {sorted(asked.items())}")
            shown = {"password_authentication_enabled_for_web": True, **settings}
        self.json(200, shown)

    def list_users(self, caller: dict[str, Any]) -> None:
        """GET /users; extern_uid and provider are for administrators (doc/api/users.md)."""
        params = self.params(b"")
        with common.database() as db:
            users = list(db["users"])
        if "extern_uid" in params or "provider" in params:
            if caller.get("id") != 1:
                return self.json(403, {"message": "403 Forbidden"})
            users = [
                u
                for u in users
                if any(
                    i["provider"] == params.get("provider")
                    and i["extern_uid"] == params.get("extern_uid")
                    for i in u.get("identities", [])
                )
            ]
        self.json(200, [user_json(u) for u in users])

    def sign_in(self, raw: bytes) -> None:
        """Forward the sign-in paths to the OmniAuth app; GitLab without providers has no
        /users/auth routes (Devise's omniauth routes exist per configured provider)."""
        if not OMNIAUTH_PROVIDERS:
            return self.send(404, b"Not Found\n", "text/plain")
        headers = {
            k: v
            for k, v in self.headers.items()
            if k.lower() not in ("connection", "transfer-encoding", "content-length")
        }
        headers["Content-Length"] = str(len(raw))
        deadline = time.monotonic() + 20
        while True:  # the Ruby app loads its gems for a second or two after a start
            connection = http.client.HTTPConnection("127.0.0.1", OMNIAUTH_PORT, timeout=60)
            try:
                connection.request(self.command, self.path, body=raw, headers=headers)
                response = connection.getresponse()
                break
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    return self.send(502, b"GitLab is not responding\n", "text/plain")
                time.sleep(0.2)
        payload = response.read()
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in (
                "content-length",
                "connection",
                "transfer-encoding",
                "server",
                "date",
            ):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def list_projects(self) -> None:
        params = self.params(b"")
        with common.database() as db:
            rows = sorted(db["projects"], key=lambda p: -int(p["id"]))  # order_by id desc
        page, per_page = page_window(params)
        total_pages = max(1, -(-len(rows) // per_page))
        window = rows[(page - 1) * per_page : page * per_page]
        base = f"{EXTERNAL_URL}/api/v4/projects"

        def link(number: int) -> str:
            query = urllib.parse.urlencode({**params, "page": number, "per_page": per_page})
            return f"<{base}?{query}>"

        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Prev-Page": str(page - 1) if page > 1 else "",
            "X-Next-Page": str(page + 1) if page < total_pages else "",
            "X-Total": str(len(rows)),
            "X-Total-Pages": str(total_pages),
        }
        links = []
        if page > 1:
            links.append(f'{link(page - 1)}; rel="prev"')
        if page < total_pages:
            links.append(f'{link(page + 1)}; rel="next"')
        links += [f'{link(1)}; rel="first"', f'{link(total_pages)}; rel="last"']
        headers["Link"] = ", ".join(links)
        self.json(200, [project_json(p) for p in window], headers)

    def list_keys(self) -> None:
        with common.database() as db:
            keys = [{k: row[k] for k in ("id", "title", "key")} for row in db.get("keys", [])]
        self.json(200, keys)

    def add_key(self, params: dict[str, Any]) -> None:
        """POST /user/keys: the key goes to gitlab-shell's authorized_keys at once."""
        title, key = params.get("title"), str(params.get("key", "")).strip()
        if not title or not re.fullmatch(
            r"(ssh-(ed25519|rsa)|ecdsa-sha2-nistp\d+) [A-Za-z0-9+/=]+( \S+)?", key
        ):
            return self.json(400, {"message": {"key": ["is invalid"]}})
        with common.database(write=True) as db:
            keys = db.setdefault("keys", [])
            if any(row["key"].split()[:2] == key.split()[:2] for row in keys):
                return self.json(400, {"message": {"key": ["has already been taken"]}})
            row = {"id": max((k["id"] for k in keys), default=0) + 1, "title": title, "key": key}
            keys.append(row)
            ssh.write_authorized_keys(db)
        event("api", f"ssh key id={row['id']} added")
        return self.json(201, row)

    def edit_project(self, project_id: int, params: dict[str, Any]) -> None:
        level = params.get("wiki_access_level")
        if level is None and "wiki_enabled" in params:
            level = (
                "enabled" if str(params["wiki_enabled"]).lower() in ("1", "true") else "disabled"
            )
        if level is not None and level not in WIKI_LEVELS:
            return self.json(400, {"error": "wiki_access_level does not have a valid value"})
        with common.database(write=True) as db:
            project = next(p for p in db["projects"] if p["id"] == project_id)
            if level is not None:
                project["wiki_access_level"] = level
        event("api", f"edited project id={project_id} wiki_access_level={level}")
        return self.json(200, project_json(project))

    def create_project(self, params: dict[str, Any]) -> None:
        name = params.get("name") or params.get("path")
        if not name:
            return self.json(
                400,
                {
                    "error": "name is missing, path is missing, at least one parameter must be provided"
                },
            )
        path = params.get("path") or re.sub(r"[^\w.-]+", "-", name.strip()).lower()
        if params.get("wiki_access_level", "enabled") not in WIKI_LEVELS:
            return self.json(400, {"error": "wiki_access_level does not have a valid value"})
        with common.database(write=True) as db:
            if any(p["path"] == path for p in db["projects"]):
                return self.json(
                    400,
                    {
                        "message": {
                            "path": ["has already been taken"],
                            "name": ["has already been taken"],
                        }
                    },
                )
            project = {
                "id": db["next_project_id"],
                "name": name,
                "path": path,
                "description": params.get("description", ""),
                "visibility": params.get("visibility", "private"),
                "wiki_access_level": params.get("wiki_access_level", "enabled"),
                "created_at": dt.datetime.now(dt.UTC).isoformat(),
            }
            db["next_project_id"] += 1
            db["projects"].append(project)
            repos.write_project_paths(db)
        repos.init_bare(repos.repo_dir(project))
        event("api", f"created project id={project['id']} path=root/{path}")
        return self.json(201, project_json(project))

    def list_wikis(self, project: dict[str, Any], params: dict[str, Any]) -> None:
        with_content = str(params.get("with_content", "")).lower() in ("1", "true")
        pages = []
        for slug, content in repos.wiki_pages(repos.repo_dir(project, wiki=True)):
            page = {
                "format": "markdown",
                "slug": slug,
                "title": slug.replace("-", " "),
                "encoding": "UTF-8",
            }
            if with_content:
                page["content"] = content
            pages.append(page)
        self.json(200, pages)

    def create_wiki(self, project: dict[str, Any], params: dict[str, Any]) -> None:
        title, content = params.get("title"), params.get("content")
        if not title or content is None:
            return self.json(400, {"error": "title is missing, content is missing"})
        slug = re.sub(r"\s+", "-", title.strip())
        repos.write_wiki_page(repos.repo_dir(project, wiki=True), slug, content)
        event("api", f"wiki page {slug!r} in root/{project['path']}")
        return self.json(
            201,
            {
                "content": content,
                "format": params.get("format", "markdown"),
                "slug": slug,
                "title": title,
                "encoding": "UTF-8",
            },
        )

    def git_http(self, project_path: str, wiki: bool, rest: str, raw: bytes) -> None:
        user = self.basic_user()
        if user is None:
            return self.send(
                401,
                b"HTTP Basic: Access denied\n",
                "text/plain",
                {"WWW-Authenticate": 'Basic realm="GitLab"'},
            )
        project = repos.find_project(project_path)
        repo = repos.repo_dir(project, wiki) if project else ""
        if not repo or not os.path.isdir(repo):
            return self.send(
                404, b"The project you were looking for could not be found.\n", "text/plain"
            )
        url = urllib.parse.urlsplit(self.path)
        env = {
            "PATH": os.environ["PATH"],
            "GIT_PROJECT_ROOT": os.path.dirname(repo),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": f"/{os.path.basename(repo)}{rest}",
            "QUERY_STRING": url.query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(raw)),
            "REMOTE_USER": user["username"],
            "REMOTE_ADDR": self.client_address[0],
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
        }
        proc = subprocess.run(
            ["git", "http-backend"], input=raw, capture_output=True, env=env, check=False
        )
        head, _, payload = proc.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = proc.stdout.partition(b"\n\n")
        status, headers = 200, {}
        for line in head.decode(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.split()[0])
            elif key.lower() != "content-length":
                headers[key.strip()] = value.strip()
        content_type = headers.pop("Content-Type", "application/octet-stream")
        if rest.endswith("git-receive-pack"):
            event("git", f"push to root/{project_path}{'.wiki' if wiki else ''}")
        self.send(status, payload, content_type, headers)


def main() -> None:
    port = int(common.setting(CONFIG, "nginx", "listen_port", 80))
    server = ThreadingHTTPServer(("", port), Handler)
    server.daemon_threads = True
    event("puma", f"listening on {port} ready_after={READY_AFTER}s never_healthy={NEVER_HEALTHY}")
    import signal

    sign_in_app = start_sign_in_app()

    def stop(*_: object) -> None:
        if sign_in_app is not None:
            sign_in_app.terminate()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    server.serve_forever()


if __name__ == "__main__":
    main()
