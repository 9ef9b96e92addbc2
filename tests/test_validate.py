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
