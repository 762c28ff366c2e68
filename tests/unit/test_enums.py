"""Result kinds and ledger statuses are ``StrEnum``s whose text is exactly the strings stored and logged before."""

from __future__ import annotations

import json

from wch_bridge.models import LedgerStatus, ResultKind
from wch_bridge.store import ledger


def test_ledger_statuses_are_the_stored_strings() -> None:
    assert [s.value for s in LedgerStatus] == ["pending", "sending", "sent", "retry", "failed", "unknown"]
    constants = (ledger.PENDING, ledger.SENDING, ledger.SENT, ledger.RETRY, ledger.FAILED, ledger.UNKNOWN)
    assert constants == tuple(LedgerStatus)
    for status in LedgerStatus:
        assert status == status.value and str(status) == status.value and f"{status}" == status.value
        assert json.dumps({status: [status]}) == json.dumps({status.value: [status.value]})
        assert hash(status) == hash(status.value)  # dict lookups by the plain string a row carries still hit


def test_ledger_groups_are_built_from_the_enum() -> None:
    assert ledger.SENDABLE == (LedgerStatus.PENDING, LedgerStatus.RETRY)
    assert ledger.IN_DOUBT == (LedgerStatus.SENDING, LedgerStatus.UNKNOWN)
    assert ledger.RESENDABLE == (LedgerStatus.UNKNOWN, LedgerStatus.FAILED)
    assert "sending" in ledger.IN_DOUBT and "sent" in ledger.SENT_STATUSES


def test_result_kinds() -> None:
    assert [k.value for k in ResultKind] == ["complete", "failed", "release"]
    assert ResultKind.RELEASE == "release" and f"{ResultKind.COMPLETE}" == "complete"
