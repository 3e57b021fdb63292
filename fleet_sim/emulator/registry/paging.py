"""Keyset pagination for the registry's listings, with opaque ``marker`` strings.

A marker encodes the sort key of the last item returned, so a page is stable while other
callers insert or delete rows (unlike an offset). Markers are base64url JSON; anything else
given as a marker is an :class:`InvalidRequest`.
"""

from __future__ import annotations

import base64
import binascii
import json
import sqlite3
from collections.abc import Sequence

from fleet_sim.errors import InvalidRequest

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 250

SqlValue = str | int | float | None


def check_page_size(page_size: int) -> int:
    """``page_size`` when it is within AWS's 1–250.

    Raises:
        InvalidRequest: it is not.
    """
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidRequest(f"page size must be 1–{MAX_PAGE_SIZE}, got {page_size}")
    return page_size


def encode_marker(key: Sequence[SqlValue]) -> str:
    """The marker for a page that ends at sort key ``key``."""
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def decode_marker(marker: str, width: int) -> list[SqlValue]:
    """The sort key inside ``marker``.

    Raises:
        InvalidRequest: ``marker`` did not come from :func:`encode_marker` with ``width`` keys.
    """
    try:
        raw = base64.urlsafe_b64decode(marker + "=" * (-len(marker) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"invalid marker {marker!r}") from None
    if (
        not isinstance(key, list)
        or len(key) != width
        or not all(isinstance(part, str | int | float) for part in key)
    ):
        raise InvalidRequest(f"invalid marker {marker!r}")
    return key


def fetch_page(
    conn: sqlite3.Connection,
    *,
    select: str,
    where: Sequence[str] = (),
    params: Sequence[SqlValue] = (),
    key: Sequence[str],
    marker: str | None,
    page_size: int,
    ascending: bool = True,
) -> tuple[list[sqlite3.Row], str | None]:
    """One page of ``select`` ordered by the ``key`` columns.

    Args:
        conn: the connection (inside a read transaction).
        select: ``SELECT <columns> FROM <tables>`` (no WHERE/ORDER/LIMIT); it must select
            every ``key`` column under the same name.
        where: extra conditions, ANDed (with ``?`` placeholders).
        params: values for ``where``'s placeholders.
        key: columns that order the rows and together identify one (e.g. ``created, id``).
        marker: where the previous page ended, or None for the first page.
        page_size: how many rows at most (1–250).
        ascending: sort direction.

    Returns:
        The rows and the marker for the next page (None on the last page).
    """
    check_page_size(page_size)
    conditions = list(where)
    values: list[SqlValue] = list(params)
    columns = ", ".join(key)
    if marker is not None:
        placeholders = ", ".join("?" for _ in key)
        comparison = ">" if ascending else "<"
        conditions.append(f"({columns}) {comparison} ({placeholders})")
        values.extend(decode_marker(marker, len(key)))
    direction = "ASC" if ascending else "DESC"
    order = ", ".join(f"{column} {direction}" for column in key)
    sql = select
    if conditions:
        sql += " WHERE " + " AND ".join(f"({condition})" for condition in conditions)
    sql += f" ORDER BY {order} LIMIT ?"
    values.append(page_size + 1)
    rows = conn.execute(sql, values).fetchall()
    if len(rows) <= page_size:
        return rows, None
    rows = rows[:page_size]
    last = rows[-1]
    return rows, encode_marker([last[column.split(".")[-1]] for column in key])
