"""Three daemons publish into one hub; two subscribers on the hub each see every event of every daemon, in order."""

from __future__ import annotations

import time

from daemon.hub import Hub
from daemon.replay import replay_events
from tests.daemon_support import FIXTURES, Collector, endpoint, plumbing_models, popen_daemon  # noqa: F401

DEMO = FIXTURES / "demo.wav"


def test_three_daemons_two_subscribers_through_a_hub(plumbing_models):
    xsub, xpub = endpoint(), endpoint()
    hub = Hub(xsub, xpub)
    hub.start()
    subs = [Collector(xpub, until_stopping=3) for _ in range(2)]
    time.sleep(0.5)  # let both subscribers attach to the hub before anything is published
    models = sum((["-m", m] for m in plumbing_models), [])
    procs = [popen_daemon("--connect", xsub, "--input", str(DEMO), "--fast", "--control", "", "--source-id", f"d{i}",
                          "--wait-subscriber", "10", *models) for i in range(3)]
    try:
        for p in procs:
            assert p.wait(timeout=60) == 0, p.stderr.read()
        results = [s.wait(20) for s in subs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        hub.stop()
    expected = [(e.topic, getattr(e, "word", None), e.seq) for e in replay_events(DEMO, plumbing_models)]
    assert expected
    for got in results:
        for i in range(3):
            mine = [(e["type"], e.get("word"), e["seq"]) for e in got if e["source"] == f"d{i}" and e["type"] != "status"]
            assert mine == expected, f"daemon d{i}"
            assert [e["state"] for e in got if e["source"] == f"d{i}" and e["type"] == "status"][-1] == "stopping"
