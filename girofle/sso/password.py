"""Whether GitLab's own password sign-in stays on an instance's web sign-in page: an
application setting, not a gitlab.rb one, so Girofle sets it through the API once the
instance runs (doc/api/settings.md, password_authentication_enabled_for_web)."""

from __future__ import annotations

from girofle.lifecycle.app import App


def apply_password_sign_in(app: App, name: str) -> None:
    """Set the instance's password sign-in as sso.password_sign_in says (nothing without
    sso: the instance's own choice stays)."""
    sso = app.config.sso
    if sso is None or not sso.providers(name):
        return
    from girofle.backup.api import put_settings  # the API client lives with backups

    value = "true" if sso.password_sign_in else "false"
    app.progress(f"{name}: password sign-in on the web {'on' if sso.password_sign_in else 'off'}")
    put_settings(app, name, {"password_authentication_enabled_for_web": value})
