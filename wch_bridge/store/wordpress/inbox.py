"""The plugin's inbox: ``{prefix}wch_conversations`` / ``{prefix}wch_messages`` and, for order messages,
``{prefix}wch_notification_log`` (docs/plugin-contracts.md, "Inbox"). Every message the bridge sends is recorded
as the plugin records its own outbound messages, so the shop's inbox shows it and the plugin's status webhooks
(which look rows up by ``wa_message_id``) update it.

* conversation: the customer's latest ``active``/``escalated`` one (head ``ConversationRepository::findOrCreate``),
  matched on the phone as stored (``+digits`` or the webhook's bare digits); else a new ``active`` one (``state``
  ``idle`` where the column exists) under the webhook's bare-digits form;
* message: ``direction`` ``outbound``, ``type`` (head) or ``message_type`` (f46ecdf; ``interactive``/``template``/
  ``text``), ``wa_message_id``, ``content`` JSON, ``status`` ``sent``, times site-local (``current_time('mysql')``);
  ``updated_at``/``sent_at`` where the columns exist; the conversation's ``last_message_at`` (and
  ``message_count``) move on;
* notification log: ``{order_id, notification_type, customer_phone, template_name, wa_message_id, status 'sent',
  sent_at, created_at, updated_at}`` (f46ecdf ``class-wch-order-notifications.php``).

Columns are discovered once per table (both schema generations); a site without these tables records nothing."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from sqlalchemy import Column, MetaData, Table, insert, inspect, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from wch_bridge.store.engine import retry_transient, translate_errors
from wch_bridge.store.tables import WpDate
from wch_bridge.store.wordpress.base import WpBase

#: Message kinds the plugin's ENUM knows (both generations); anything else is recorded as ``text``.
_KINDS = {"text", "interactive", "image", "document", "template"}
_TYPES = {"conversations": "wch_conversations", "messages": "wch_messages", "notification_log": "wch_notification_log"}
_DATES = {"last_message_at", "created_at", "updated_at", "sent_at", "delivered_at", "read_at"}


class InboxMixin(WpBase):
    _inbox_tables: dict[str, Table | None] | None = None

    @translate_errors
    def _inbox(self, name: str) -> Table | None:
        """The table ``name`` as it exists (reflected columns, dates as site-local ``WpDate``), or None."""
        if self._inbox_tables is None:
            self._inbox_tables = {}
        if name not in self._inbox_tables:
            full = f"{self.prefix}{_TYPES[name]}"
            insp = inspect(self.engine)
            if full not in insp.get_table_names():
                self._inbox_tables[name] = None
            else:
                cols = [Column(c["name"], WpDate if c["name"] in _DATES else c["type"], primary_key=c["name"] == "id")
                        for c in insp.get_columns(full)]
                self._inbox_tables[name] = Table(full, MetaData(), *cols)
        return self._inbox_tables[name]

    def inbox_available(self) -> bool:
        return self._inbox("conversations") is not None and self._inbox("messages") is not None

    @retry_transient
    @translate_errors
    def record_outbound(self, phone: str, kind: str, content: dict[str, Any], wa_message_id: str,
                        when_local: datetime) -> int | None:
        """Record one sent message in the inbox; returns the ``wch_messages`` id (None: no inbox tables, or the
        message is already recorded)."""
        conv_t, msg_t = self._inbox("conversations"), self._inbox("messages")
        if conv_t is None or msg_t is None or not wa_message_id:
            return None
        digits = re.sub(r"\D", "", phone or "")
        with self.engine.begin() as conn:
            if conn.execute(select(msg_t.c.id).where(msg_t.c.wa_message_id == wa_message_id)).first():
                return None
            conv_id = self._conversation(conn, conv_t, digits, when_local)
            values: dict[str, Any] = {"conversation_id": conv_id, "direction": "outbound",
                                      "wa_message_id": wa_message_id, "content": json.dumps(content),
                                      "status": "sent", "created_at": when_local}
            kind_col = "type" if "type" in msg_t.c else "message_type"
            values[kind_col] = kind if kind in _KINDS else "text"
            for col in ("updated_at", "sent_at"):
                if col in msg_t.c:
                    values[col] = when_local
            try:
                new_id = int(conn.execute(insert(msg_t).values(**values)).inserted_primary_key[0])
            except IntegrityError:  # recorded meanwhile (UNIQUE wa_message_id)
                return None
            bump: dict[str, Any] = {"last_message_at": when_local}
            if "updated_at" in conv_t.c:
                bump["updated_at"] = when_local
            if "message_count" in conv_t.c:
                bump["message_count"] = conv_t.c.message_count + 1
            conn.execute(update(conv_t).where(conv_t.c.id == conv_id).values(**bump))
        return new_id

    def _conversation(self, conn: Connection, conv_t: Table, digits: str, when_local: datetime) -> int:
        forms = [f for f in (f"+{digits}", digits) if f != "+"]
        cond = conv_t.c.customer_phone.in_(forms)
        if "status" in conv_t.c:
            cond = cond & conv_t.c.status.in_(["active", "escalated"])
        row = conn.execute(select(conv_t.c.id).where(cond).order_by(conv_t.c.id.desc()).limit(1)).first()
        if row is not None:
            return int(row[0])
        values: dict[str, Any] = {"customer_phone": digits, "wa_conversation_id": "", "status": "active",
                                  "context": "[]", "last_message_at": when_local, "created_at": when_local,
                                  "updated_at": when_local}
        if "state" in conv_t.c:
            values["state"] = "idle"
        return int(conn.execute(insert(conv_t).values(**values)).inserted_primary_key[0])

    @retry_transient
    @translate_errors
    def log_notification(self, *, order_id: int, notification_type: str, phone: str, wa_message_id: str,
                         when_local: datetime, template_name: str | None = None) -> int | None:
        """One ``wch_notification_log`` row for a sent order message (None when the table is missing)."""
        t = self._inbox("notification_log")
        if t is None:
            return None
        values = {"order_id": int(order_id), "notification_type": notification_type, "customer_phone": phone,
                  "template_name": template_name, "wa_message_id": wa_message_id, "status": "sent",
                  "retry_count": 0, "sent_at": when_local, "created_at": when_local, "updated_at": when_local}
        with self.engine.begin() as conn:
            return int(conn.execute(insert(t).values(**values)).inserted_primary_key[0])
