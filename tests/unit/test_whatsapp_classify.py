"""Error classification, phone normalization and the shared ApiGate (no I/O, injected clock)."""

from __future__ import annotations

import threading

import pytest

from wch_bridge.errors import ApiError, ConfigError, ShutdownRequested
from wch_bridge.whatsapp import ApiGate, WhatsAppClient, classify, normalize_phone

TABLE = {
    "throttle": [130429, 4, 80007, 80014, 132015],
    "pair": [131056],
    "template": [131047],
    "recipient": [131026, 131049, 131050],
    "retry": [131000, 131016, 1, 2, 131057],
    "halt": [190, 0, 3, 10, 200, 250, 299, 368, 131005, 131031, 131037, 131042, 133010, 131048],
    "fix": [
        100,
        132016,
        131008,
        131009,
        131051,
        131021,
        131052,
        131053,
        132000,
        132001,
        132005,
        132007,
        132012,
        132018,
    ],
}


@pytest.mark.parametrize(
    ("code", "category"), [(code, cat) for cat, codes in TABLE.items() for code in codes]
)
@pytest.mark.parametrize("http_status", [None, 400, 401, 403, 429, 500, 503])
def test_code_decides_whatever_the_status(code: int, category: str, http_status: int | None) -> None:
    assert classify(code, http_status) == category


@pytest.mark.parametrize(
    ("code", "http_status", "category"),
    [
        (None, None, "retry"),  # timeout / connection error
        (None, 500, "retry"),
        (None, 502, "retry"),
        (None, 503, "retry"),
        (999999, 504, "retry"),
        (None, 429, "throttle"),
        (None, 400, "fix"),
        (None, 404, "fix"),
        (999999, 400, "fix"),
        (999999, None, "fix"),
        (300, 400, "fix"),  # just outside the 200-299 permission range
        (199, 400, "fix"),
    ],
)
def test_unknown_codes_fall_back_to_http_status(
    code: int | None, http_status: int | None, category: str
) -> None:
    assert classify(code, http_status) == category


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+16505551234", "+16505551234"),
        ("16505551234", "+16505551234"),
        ("+1 (650) 555-1234", "+16505551234"),
        ("0044 7911 123456", "+447911123456"),
        ("  +91.98765.43210 ", "+919876543210"),
        (447911123456, "+447911123456"),
    ],
)
def test_normalize_phone(raw: object, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", None, "abc", "+0123456789", "12", "+1234567890123456", "phone: 555", "07911"]
)
def test_normalize_phone_rejects_junk_without_echoing_it(raw: object) -> None:
    with pytest.raises(ApiError) as info:
        normalize_phone(raw)
    assert info.value.category == "recipient"
    assert "+16505551234" in str(info.value)  # the example, not the input
    if raw and len(str(raw)) > 4:  # short strings could occur in the example by chance
        assert str(raw) not in str(info.value)


# ---------------------------------------------------------------------------------------------- ApiGate


class FakeClock:
    """Time only moves when someone sleeps; every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float, event: threading.Event) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_gate(mps: float = 5, burst: float = 1) -> tuple[ApiGate, FakeClock]:
    clock = FakeClock()
    return ApiGate(mps, burst, clock=clock.time, sleep=clock.sleep), clock


def test_limiter_paces_20_tokens_at_5_per_second() -> None:
    gate, clock = make_gate(5)
    waits = [gate.acquire() for _ in range(20)]
    assert waits[0] == 0.0
    assert waits[1:] == pytest.approx([0.2] * 19)
    assert sum(clock.sleeps) == pytest.approx(19 * 0.2)
    assert gate.rate_limit_waits == 19
    assert gate.rate_limit_wait_seconds == pytest.approx(3.8)
    assert gate.acquired == 20


def test_limiter_burst_lets_the_first_tokens_through() -> None:
    gate, clock = make_gate(5, burst=5)
    for _ in range(20):
        gate.acquire()
    assert sum(clock.sleeps) == pytest.approx(15 * 0.2)  # 5 free, then 5/s


def test_limiter_refills_while_idle() -> None:
    gate, clock = make_gate(5, burst=5)
    for _ in range(5):
        gate.acquire()
    clock.now += 10  # idle long enough to refill, but never beyond the burst
    for _ in range(5):
        assert gate.acquire() == 0.0
    assert gate.acquire() == pytest.approx(0.2)


def test_catalog_calls_do_not_use_message_tokens() -> None:
    gate, clock = make_gate(1)
    gate.acquire()
    assert gate.acquire(token=False) == 0.0
    assert clock.sleeps == []


def test_pause_holds_every_acquire_until_it_passes() -> None:
    gate, clock = make_gate(1000, burst=10)
    gate.pause_for(7, "rate limit hit")
    assert gate.paused_for() == pytest.approx(7)
    assert gate.acquire() == pytest.approx(7)
    assert gate.pauses == [(7.0, "rate limit hit")]
    assert gate.throttle_events == 1
    assert gate.pause_wait_seconds == pytest.approx(7)
    assert gate.acquire() == 0.0  # pause over


def test_shorter_pause_does_not_shorten_a_longer_one() -> None:
    gate, clock = make_gate(1000, burst=10)
    gate.pause_for(30, "a")
    gate.pause_for(5, "b")
    assert gate.acquire() == pytest.approx(30)
    assert [p for p, _ in gate.pauses] == [30, 5]


def test_halt_refuses_sends_until_resume() -> None:
    gate, clock = make_gate()
    gate.halt("WhatsApp API error 190 (halt): Access token has expired", code=190)
    assert gate.halted and gate.halt_code == 190
    with pytest.raises(ApiError) as info:
        gate.acquire()
    assert info.value.category == "halt"
    assert "Access token has expired" in str(info.value)
    with pytest.raises(ApiError):
        gate.sleep(1)
    gate.resume()
    assert not gate.halted and gate.halt_reason is None
    gate.acquire()


def test_close_turns_waits_into_shutdown() -> None:
    gate, clock = make_gate()
    gate.close()
    with pytest.raises(ShutdownRequested):
        gate.acquire()


def test_close_interrupts_a_real_wait() -> None:
    gate = ApiGate(1000)  # default sleep waits on the gate's event
    gate.pause_for(3600, "long pause")
    errors: list[BaseException] = []

    def waiter() -> None:
        try:
            gate.acquire()
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    thread = threading.Thread(target=waiter)
    thread.start()
    gate.close()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], ShutdownRequested)


def test_sleep_records_backoff_time() -> None:
    gate, clock = make_gate()
    gate.sleep(1.5)
    assert clock.sleeps == [1.5]
    assert gate.backoff_sleep_seconds == pytest.approx(1.5)
    assert gate.stats()["sleep_seconds"] == pytest.approx(1.5)


def test_gate_is_thread_safe() -> None:
    gate = ApiGate(1e9, burst=1e9)
    threads = [threading.Thread(target=lambda: [gate.acquire() for _ in range(200)]) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert gate.acquired == 1600


def test_many_waiting_senders_each_sleep_once_until_their_slot() -> None:
    """A broadcast keeps hundreds of sender threads waiting on the limit. Each must sleep once, until the send slot
    it reserved, and go out in order of arrival: waiters that wake up to find the token gone and sleep again burn
    the worker's CPU (a shared bucket polled by every waiter: about 2,500 wake-ups for these 100 sends)."""
    calls: list[float] = []
    lock = threading.Lock()

    def counting_sleep(seconds: float, event: threading.Event) -> None:
        with lock:
            calls.append(seconds)
        event.wait(max(0.0, seconds))

    gate = ApiGate(400, sleep=counting_sleep)
    order: list[int] = []
    start = threading.Barrier(50)

    def sender(n: int) -> None:
        start.wait()
        for _ in range(2):
            gate.acquire()
        with lock:
            order.append(n)

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert gate.acquired == 100 and len(order) == 50
    assert gate.rate_limit_waits == 99  # every send but the first waited for its slot
    assert len(calls) <= 99 + 5, f"{len(calls)} sleeps for 99 waits"  # +5: spurious early wake-ups


@pytest.mark.parametrize(("mps", "burst"), [(0, 1), (-1, 1), (5, 0.5)])
def test_gate_rejects_bad_settings(mps: float, burst: float) -> None:
    with pytest.raises(ConfigError):
        ApiGate(mps, burst)


# ---------------------------------------------------------------------------------------------- client config

TOKEN = "EAAG-SECRET-TOKEN-123"


def test_client_repr_hides_the_token() -> None:
    client = WhatsAppClient(phone_number_id="106540352242922", token=TOKEN)
    assert TOKEN not in repr(client)
    assert TOKEN not in str(vars(client))
    assert "***" in repr(client)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"phone_number_id": "1", "token": ""},
        {"phone_number_id": "", "token": TOKEN},
        {"phone_number_id": "1/../2", "token": TOKEN},
        {"phone_number_id": "1", "token": TOKEN, "api_version": "21"},
        {"phone_number_id": "1", "token": TOKEN, "max_attempts": 0},
    ],
)
def test_client_rejects_bad_config(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as info:
        WhatsAppClient(**kwargs)  # type: ignore[arg-type]
    assert TOKEN not in str(info.value)
