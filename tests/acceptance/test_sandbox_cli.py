"""``wch-bridge sandbox`` as a user runs it (issue 16.6): it says "listening" once, logs each request it receives
at info level, and takes a fault rule posted without a JSON Content-Type (``curl -d '{...}'``, or none)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

WCH = str(Path(sys.executable).parent / "wch-bridge")
RULE = {"rules": [{"recipients": ["+15550001111"], "code": 131026, "times": 1}]}


def test_sandbox_listens_once_logs_requests_and_takes_rules_without_content_type() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WCH_BRIDGE_")}
    proc = subprocess.Popen([WCH, "sandbox", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in first, first
        url = first.split("listening on ", 1)[1].split(" ", 1)[0]
        host, port = url[len("http://"):].split(":")
        # curl -d '{...}': the body is JSON, the header says form
        req = urllib.request.Request(url + "/_sandbox/faults", data=json.dumps(RULE).encode(), method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert json.load(resp) == {"ok": True, "rules": 1}
        conn = http.client.HTTPConnection(host, int(port), timeout=10)  # no Content-Type header at all
        conn.request("POST", "/_sandbox/faults", body=json.dumps(RULE).encode())
        answer = conn.getresponse()
        assert answer.status == 200 and json.loads(answer.read()) == {"ok": True, "rules": 2}
        conn.close()
        body = json.dumps({"messaging_product": "whatsapp", "to": "+15550001111", "type": "text",
                           "text": {"body": "hi"}}).encode()
        req = urllib.request.Request(url + "/v21.0/123/messages", data=body, method="POST",
                                     headers={"Authorization": "Bearer t", "Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req, timeout=10)
            raise AssertionError("the fault rule did not apply")
        except urllib.error.HTTPError as exc:
            assert json.load(exc)["error"]["code"] == 131026
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    text = first + out + err
    assert text.count("listening") == 1, text
    logged = [line for line in err.splitlines() if "POST /v21.0/123/messages" in line]
    assert len(logged) == 1 and " INFO " in logged[0], err
