"""Girofle: run a fleet of self-hosted GitLab instances on a Docker host."""

__version__ = "0.1.0"
