"""Plan, then apply: the files a change would write, with diffs, and the actions it takes."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from girofle.home import atomic_write

FileStatus = Literal["new", "changed", "identical"]


@dataclass(frozen=True)
class FileChange:
    path: Path
    status: FileStatus
    diff: str


@dataclass
class Plan:
    """What an operation would do; ``--dry-run`` prints it and applies nothing."""

    files: list[FileChange] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)

    @property
    def nothing_to_do(self) -> bool:
        return not self.actions and all(f.status == "identical" for f in self.files)

    def render(self) -> str:
        """The plan as text for people: actions, then each file with its diff."""
        if self.nothing_to_do:
            return "nothing to do\n"
        lines = [f"- {action}" for action in self.actions]
        for change in self.files:
            lines.append(f"{change.status:>9}  {change.path}")
            if change.diff:
                lines.append(change.diff.rstrip("\n"))
        return "\n".join(lines) + "\n"


def compare(path: Path, content: bytes) -> FileChange:
    """How writing ``content`` to ``path`` would change it."""
    try:
        current = path.read_bytes()
    except FileNotFoundError:
        return FileChange(path, "new", "")
    if current == content:
        return FileChange(path, "identical", "")
    diff = difflib.unified_diff(
        current.decode(errors="replace").splitlines(keepends=True),
        content.decode(errors="replace").splitlines(keepends=True),
        fromfile=str(path),
        tofile=str(path),
    )
    return FileChange(path, "changed", "".join(diff))


def plan_files(directory: Path, files: dict[str, bytes]) -> list[FileChange]:
    return [compare(directory / name, content) for name, content in sorted(files.items())]


def write_files(directory: Path, files: dict[str, bytes]) -> list[FileChange]:
    """Write each file whose bytes change (atomically); return what changed."""
    changes = plan_files(directory, files)
    directory.mkdir(parents=True, exist_ok=True)
    for change in changes:
        if change.status != "identical":
            atomic_write(change.path, files[str(change.path.relative_to(directory))])
    return changes
