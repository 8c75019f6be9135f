"""A short soak (~2 minutes of generated audio) through the daemon with two subscribers on real ZeroMQ: no crash,
`seq` gap-free, nothing dropped, RSS and open file descriptors flat. The long run is `python -m bench.soak`."""

from __future__ import annotations

from bench.soak import soak, summary_line
from tests.daemon_support import plumbing_models  # noqa: F401  (fixture)


def test_short_soak_is_gap_free_and_flat(plumbing_models):
    r = soak(2.0 / 60, plumbing_models, sample_s=0.2, log=lambda m: None)
    print(summary_line(r))
    assert not r.crashed and r.exit_code == 0
    assert r.hours_audio >= 0.033
    assert r.seq_gaps == 0 and r.drops == 0 and r.overflows == 0
    assert sum(r.events.values()) > 50 and r.events.get("status", 0) >= 2
    assert r.fds_end <= r.fds_start + 2  # no descriptor leak
    assert r.rss_mb_end - r.rss_mb_start < 30  # generous: allocator noise, not a leak
