"""The ring between the audio callback and the worker: order kept across wrap-around, overflow counted, never blocks."""

from __future__ import annotations

import threading

import numpy as np

from daemon.ring import Ring


def test_wraps_and_keeps_order():
    r = Ring(10)
    out = []
    x = np.arange(37, dtype=np.float32)
    for i in range(0, 37, 3):
        assert r.write(x[i:i + 3]) == len(x[i:i + 3])
        out.append(r.read(2))
        out.append(r.read())
    assert np.array_equal(np.concatenate(out), x)
    assert r.overflows == 0


def test_overflow_is_counted_and_write_never_blocks():
    r = Ring(8)
    assert r.write(np.ones(5)) == 5
    assert r.write(np.ones(5)) == 3
    assert r.overflows == 2
    assert r.available() == 8 and r.free() == 0
    assert r.write(np.ones(4)) == 0 and r.overflows == 6
    assert r.read(3).size == 3 and r.write(np.arange(3)) == 3


def test_one_producer_one_consumer_threads_lose_nothing_when_there_is_room():
    r = Ring(4096)
    n = 200_000
    src = np.arange(n, dtype=np.float32)
    got = []

    def produce():
        i = 0
        while i < n:
            w = r.write(src[i:i + 97]) if r.free() >= 97 else 0
            i += w

    t = threading.Thread(target=produce)
    t.start()
    total = 0
    while total < n:
        if r.wait(0.5):
            chunk = r.read(1000)
            got.append(chunk)
            total += chunk.size
    t.join()
    assert np.array_equal(np.concatenate(got), src)
    assert r.overflows == 0
