"""gitlab-psql -c QUERY: the one table Girofle reads, batched_background_migrations, with
the query GitLab documents (doc/update/background_migrations.md) and the same query with
`status` or `id` among its columns. Any other SQL is refused: the double has no database
engine, and a query it cannot answer must not look answered."""

from __future__ import annotations

import re
import sys

from standin import common

COLUMNS = ("id", "job_class_name", "table_name", "column_name", "job_arguments", "status")
QUERY = re.compile(
    r"^\s*SELECT\s+(?P<columns>[\w\s,]+?)\s+FROM\s+batched_background_migrations"
    r"(?:\s+WHERE\s+status\s+NOT\s+IN\s*\((?P<statuses>[\d\s,]+)\))?\s*;?\s*$",
    re.IGNORECASE,
)


def aligned(columns: list[str], rows: list[list[str]]) -> str:
    """psql's default (aligned) output, footer included."""
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    header = "|".join(f" {c.center(w)} " for c, w in zip(columns, widths, strict=True))
    rule = "+".join("-" * (w + 2) for w in widths)
    body = ["|".join(f" {v.ljust(w)} " for v, w in zip(r, widths, strict=True)) for r in rows]
    footer = f"({len(rows)} row{'' if len(rows) == 1 else 's'})"
    # psql ends its aligned output with an empty line after the footer.
    return "\n".join([header.rstrip(), rule, *(b.rstrip() for b in body), footer]) + "\n\n"


def main(argv: list[str]) -> int:
    if "-c" not in argv or argv.index("-c") + 1 >= len(argv):
        common.die("gitlab-psql (test double): only -c QUERY is modelled")
    match = QUERY.match(argv[argv.index("-c") + 1])
    columns = [c.strip().lower() for c in match.group("columns").split(",")] if match else []
    if match is None or not columns or any(c not in COLUMNS for c in columns):
        common.die("ERROR:  the test double does not model this query", 1)
    excluded = {int(s) for s in (match.group("statuses") or "").replace(" ", "").split(",") if s}
    with common.database() as db:
        rows = [
            m for m in db.get("batched_background_migrations", []) if m["status"] not in excluded
        ]
    print(aligned(columns, [[str(m[c]) for c in columns] for m in rows]), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
