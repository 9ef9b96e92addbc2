"""Names are validated whole: a trailing newline is not a name (`$` would accept it)."""

from __future__ import annotations

import pytest

from girofle.errors import UserError
from girofle.lifecycle import validate


@pytest.mark.parametrize("name", ["nl\n", "ok\n", "a" * 41, "Upper", "-lead"])
def test_names_are_matched_whole(name: str) -> None:
    with pytest.raises(UserError):
        validate.instance_name(name)
    with pytest.raises(UserError):
        validate.project_name(name)


@pytest.mark.parametrize("name", ["edge", "proxy", "ca", "dashboard", "restic", "alpha-backup"])
def test_names_the_home_uses_for_itself_are_refused(name: str) -> None:
    with pytest.raises(UserError, match="the home uses it for its own objects"):
        validate.new_instance_name(name)
    assert validate.instance_name(name) == name  # one made earlier can still be removed
