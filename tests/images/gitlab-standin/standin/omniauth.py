"""Who a provider's user is in GitLab, by GitLab's rules (lib/gitlab/auth/o_auth/user.rb):
found by identity (provider, extern_uid); else linked to the user with the same email when
omniauth_auto_link_user allows the provider; else created when omniauth_allow_single_sign_on
allows it, blocked pending approval when omniauth_block_auto_created_users (GitLab's default:
true); else refused. A signed-in user gets a session, as Devise's sign_in does.

Run by the sign-in app (omniauth/app.rb) with the provider's answer on stdin as JSON
{provider, extern_uid, email, name, nickname}, or a password sign-in's {login, password};
prints {"session": TOKEN} or {"message": ...}.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import sys
from typing import Any

from standin import common
from standin.common import event

PENDING = (
    "Your account is pending approval from your GitLab administrator and hence blocked. "
    "Please contact your GitLab administrator if you think this is an error."
)


def _allows(setting: Any, provider: str) -> bool:
    """GitLab's settings that take true/false or a list of provider names."""
    return setting is True or (isinstance(setting, list) and provider in setting)


def _username(db: dict[str, Any], identity: dict[str, Any]) -> str:
    base = identity.get("nickname") or str(identity.get("email") or "user").split("@")[0]
    base = re.sub(r"[^A-Za-z0-9_.-]", "", base) or "user"
    taken = {u["username"] for u in db["users"]}
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}{n}"
    return name


def new_session(db: dict[str, Any], user: dict[str, Any]) -> str:
    """A web session for ``user`` (its token; the database keeps only a digest)."""
    token = secrets.token_urlsafe(32)
    db.setdefault("sessions", []).append(
        {"digest": common.token_digest(token), "user_id": user["id"]}
    )
    return token


def sign_in(identity: dict[str, Any]) -> dict[str, Any]:
    rails = common.effective_config().get("gitlab_rails", {})
    provider, uid = str(identity["provider"]), str(identity["extern_uid"])
    email = identity.get("email")
    with common.database(write=True) as db:
        users = db["users"]
        user = next(
            (
                u
                for u in users
                for i in u.get("identities", [])
                if i["provider"] == provider and i["extern_uid"] == uid
            ),
            None,
        )
        # omniauth_auto_link_user does not apply to SAML: omniauth_auto_link_saml_user does
        # (doc/integration/saml.md).
        link = (
            rails.get("omniauth_auto_link_saml_user") is True
            if provider == "saml"
            else _allows(rails.get("omniauth_auto_link_user"), provider)
        )
        if user is None and email and link:
            user = next((u for u in users if u.get("email") == email), None)
            if user is not None:
                user.setdefault("identities", []).append({"provider": provider, "extern_uid": uid})
                event("omniauth", f"linked {provider} {uid} to {user['username']}")
        if user is None:
            if not _allows(rails.get("omniauth_allow_single_sign_on", False), provider):
                return {
                    "message": f"Signing in using your {provider} account without a "
                    "pre-existing GitLab account is not allowed."
                }
            if not email:
                return {"message": "Email can't be blank"}
            if any(u.get("email") == email for u in users):
                return {"message": "Email has already been taken"}
            blocked = rails.get("omniauth_block_auto_created_users", True) is not False
            user = {
                "id": max(u["id"] for u in users) + 1,
                "username": _username(db, identity),
                "name": identity.get("name") or email,
                "email": email,
                "state": "blocked_pending_approval" if blocked else "active",
                "identities": [{"provider": provider, "extern_uid": uid}],
            }
            users.append(user)
            event("omniauth", f"created {user['username']} for {provider} {uid} ({user['state']})")
        if user.get("state", "active") == "blocked_pending_approval":
            return {"message": PENDING}
        if user.get("state", "active") != "active":
            return {"message": "Your account has been blocked."}
        event("omniauth", f"signed in {user['username']} through {provider}")
        return {"session": new_session(db, user)}


def web_password_enabled(db: dict[str, Any]) -> bool:
    """The password_authentication_enabled_for_web application setting (default true)."""
    return bool(
        db.get("application_settings", {}).get("password_authentication_enabled_for_web", True)
    )


def password_sign_in(login: str, password: str) -> dict[str, Any]:
    """Devise's database authentication, which GitLab allows only while
    password_authentication_enabled_for_web is on (User#allow_password_authentication_for_web?);
    every refusal says the same, as Devise does."""
    with common.database(write=True) as db:
        user = next((u for u in db["users"] if login in (u["username"], u.get("email"))), None)
        valid = (
            user is not None
            and "password" in user
            and hmac.compare_digest(user["password"], common.hash_password(password, user["salt"]))
        )
        if not (web_password_enabled(db) and valid and user is not None):
            event("sign-in", f"password sign-in refused for {login!r}")
            return {"message": "Invalid login or password."}
        event("sign-in", f"signed in {user['username']} with a password")
        return {"session": new_session(db, user)}


if __name__ == "__main__":
    asked = json.load(sys.stdin)
    if "password" in asked:
        print(json.dumps(password_sign_in(str(asked["login"]), str(asked["password"]))))
    else:
        print(json.dumps(sign_in(asked)))
