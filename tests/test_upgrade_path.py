"""The upgrade path Girofle plans from the shipped copy of GitLab's upgrade_path.yml."""

from __future__ import annotations

from pathlib import Path

import pytest

from girofle.errors import UserError
from girofle.upgrade.path import UpgradePaths, image_for, parse_version, show


def hops(current: str, target: str) -> list[str]:
    paths = UpgradePaths.load()
    return [show(v) for v in paths.plan(parse_version(current), parse_version(target))]


def test_each_required_stop_at_its_latest_patch_then_the_target() -> None:
    assert hops("18.8.11", "19.0.1") == ["18.11.11", "19.0.1"]
    # GitLab's file lists 16.3, 16.7, 16.11, 17.1 (conditional, taken), 17.3, 17.5, ...
    assert hops("16.2.0", "17.4.1") == [
        "16.3.9",
        "16.7.10",
        "16.11.10",
        "17.1.8",
        "17.3.7",
        "17.4.1",
    ]


def test_a_non_latest_patch_of_a_stop_goes_to_its_latest_first() -> None:
    assert hops("18.8.2", "18.11.11") == ["18.8.11", "18.11.11"]


def test_stops_newer_than_the_copy_follow_the_documented_rule() -> None:
    # upgrade_path.yml ends at 18.11; 19.3's image requires 19.2 (upgrade_check.rb).
    assert hops("18.11.11", "19.3.0") == ["19.2.4", "19.3.0"]


def test_same_version_is_no_hop() -> None:
    assert hops("18.11.11", "18.11.11") == []


@pytest.mark.parametrize(
    ("current", "target", "said"),
    [
        ("19.0.1", "18.11.11", "is older than 19.0.1"),
        ("18.11.11", "19.0.99", "not a version Girofle knows"),
        ("18.11.11", "25.1.0", "not a version Girofle knows"),
        ("18.11.11", "19.0", "is not a GitLab version"),
    ],
)
def test_refusals(current: str, target: str, said: str) -> None:
    with pytest.raises(UserError, match=said):
        hops(current, target)


def test_images_keep_their_repository_and_edition() -> None:
    assert (
        image_for("gitlab/gitlab-ee:18.8.11-ee.0", (18, 11, 11)) == "gitlab/gitlab-ee:18.11.11-ee.0"
    )
    with pytest.raises(UserError, match="cannot tell this one's version"):
        image_for("gitlab/gitlab-ce:latest", (18, 11, 11))


def test_newer_copies_can_be_given(tmp_path: Path) -> None:
    path_file, versions = tmp_path / "path.yml", tmp_path / "versions.yml"
    path_file.write_text("- {major: 19, minor: 1}\n")
    versions.write_text("latest_patch: {'19.0': 8, '19.1': 9, '19.2': 1}\n")
    paths = UpgradePaths.load(path_file, versions)
    assert [show(v) for v in paths.plan((19, 0, 1), (19, 2, 1))] == ["19.1.9", "19.2.1"]
    versions.write_text("latest_patch: [1, 2]\n")
    with pytest.raises(UserError, match="not in the expected form"):
        UpgradePaths.load(path_file, versions)
