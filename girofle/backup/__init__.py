"""Backups and restores of instances and of Girofle's own home."""
