"""Facts about the ledger that ``status`` and the report read inside their own transaction: are sends paused by
an auth error, how many messages are in doubt."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Connection

from wch_bridge.store.ledger.entry import IN_DOUBT, SENDING, SENT, UNKNOWN

#: Ledger error codes that mean the access token / app is not authorized (Graph 190, auth 0).
AUTH_ERROR_CODES = (0, 190)
SENT_STATUSES = (SENT, "delivered", "read")
HALT_STATUSES = ("halted", "paused")


def auth_pause(conn: Connection, m: Any, since: datetime | None = None) -> dict[str, Any]:
    """Are sends paused by an auth error? True when the latest ledger row that was held back by an auth error
    (0/190, not sent) is newer than the latest sent message. Read by ``status`` and the report."""
    bad = and_(m.c.error_code.in_(AUTH_ERROR_CODES), m.c.status.notin_(SENT_STATUSES)) | m.c.status.in_(
        HALT_STATUSES
    )
    last_bad = conn.execute(select(func.max(m.c.updated_at)).where(bad)).scalar()
    last_sent = conn.execute(select(func.max(m.c.updated_at)).where(m.c.status.in_(SENT_STATUSES))).scalar()
    detail = None
    if last_bad is not None:
        detail = conn.execute(
            select(m.c.error_code, m.c.error_text).where(bad, m.c.updated_at == last_bad).limit(1)
        ).first()
    in_window = 0
    if since is not None:
        in_window = int(conn.execute(select(func.count()).where(bad, m.c.updated_at >= since)).scalar_one())
    return {
        "paused": last_bad is not None and (last_sent is None or last_bad >= last_sent),
        "last_auth_error_gmt": last_bad,
        "last_sent_gmt": last_sent,
        "auth_errors_in_window": in_window,
        "error_code": None if detail is None or detail[0] is None else int(detail[0]),
        "error_text": None if detail is None else (detail[1] or "")[:300],
    }


def in_doubt_counts(conn: Connection, m: Any) -> dict[str, Any]:
    """Messages in doubt (``sending``: on the wire or left so by a stopped run; ``unknown``): how many of each
    and since when (the oldest ``updated_at``). Read by ``status`` and the report (index ``status_updated_at``)."""
    rows = conn.execute(
        select(m.c.status, func.count(), func.min(m.c.updated_at))
        .where(m.c.status.in_(IN_DOUBT))
        .group_by(m.c.status)
    ).all()
    by = {str(s): (int(n), oldest) for s, n, oldest in rows}
    oldest = min((o for _n, o in by.values() if o is not None), default=None)
    return {
        "count": sum(n for n, _o in by.values()),
        "sending": by.get(SENDING, (0, None))[0],
        "unknown": by.get(UNKNOWN, (0, None))[0],
        "oldest_gmt": oldest,
    }
