"""What the sidecar runs when: backups and restore drills on their own schedules."""

from __future__ import annotations

import datetime as dt

from girofle.backup.schedule import due_jobs

START = dt.datetime(2026, 11, 22, 0, 0, tzinfo=dt.UTC)  # a Sunday
SCHEDULES: dict[str, str | None] = {"backup": "0 */4 * * *", "drill": "30 3 * * 0"}


def test_each_job_is_due_on_its_own_schedule() -> None:
    last = {"backup": START, "drill": START}
    assert due_jobs(SCHEDULES, last, START + dt.timedelta(hours=1)) == (
        [],
        START + dt.timedelta(hours=3, minutes=30),
    )
    due, upcoming = due_jobs(SCHEDULES, last, START + dt.timedelta(hours=3, minutes=31))
    assert (due, upcoming) == (["drill"], START + dt.timedelta(hours=4))


def test_a_backup_due_with_a_drill_runs_first_so_the_drill_tests_it() -> None:
    last = {"backup": START, "drill": START}
    later = START + dt.timedelta(days=7, hours=5)
    assert due_jobs(SCHEDULES, last, later)[0] == ["backup", "drill"]


def test_no_drill_schedule_means_no_drill() -> None:
    last = {"backup": START, "drill": START}
    later = START + dt.timedelta(days=30)
    assert due_jobs({**SCHEDULES, "drill": None}, last, later)[0] == ["backup"]
