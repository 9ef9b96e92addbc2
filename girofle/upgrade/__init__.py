"""Upgrades along GitLab's required stops."""
