"""Every kind of bad config file gets one clear line naming the file and the key (never a traceback)."""

from __future__ import annotations

import subprocess

import pytest

from daemon.config import ConfigError, build_config, load_toml
from tests.daemon_support import daemon_cmd

CASES = [
    ("bogus = 1", "unknown key 'bogus'"),
    ("[wat]\nx = 1", "unknown key 'wat'"),
    ('reject = "yes"', "key 'reject': expected bool"),
    ("sndhwm = 1.5", "key 'sndhwm': expected int"),
    ("sndhwm = true", "key 'sndhwm': expected int, got a boolean"),
    ("status_interval = \"5\"", "key 'status_interval': expected int or float"),
    ("model = \"models/digits\"", "key 'model': expected list"),
    ("model = [1]", "key 'model': expected a list of bundle folders"),
    ("model = [\"\"]", "key 'model': expected a list of bundle folders"),
    ("device = 1.5", "key 'device': expected str or int"),
    ("segmenter = 3", "key 'segmenter': expected dict"),
    ('pub = "http://x"', "key 'pub'"),
    ('control = "5557"', "key 'control'"),
    ('connect = "udp://1.2.3.4:5"', "key 'connect'"),
    ("status_interval = 0", "key 'status_interval': must be positive"),
    ("ring_seconds = -1", "key 'ring_seconds': must be positive"),
    ("sndhwm = 0", "key 'sndhwm': must be at least 1"),
    ("top_k = 0", "key 'top_k': must be at least 1"),
    ("block_ms = -5", "key 'block_ms': must be at least 1"),
    ("device_rate = 100", "key 'device_rate': must be 0 or 4000-192000 Hz"),
    ("sndbuf = -1", "key 'sndbuf': must not be negative"),
    ("wait_subscriber = -2", "key 'wait_subscriber': must not be negative"),
    ("[segmenter]\nwhat = 1", "key 'segmenter.what': unknown segmenter setting"),
    ('[segmenter]\non_db = "x"', "key 'segmenter.on_db': expected float"),
    ("[segmenter]\nhangover_ms = true", "key 'segmenter.hangover_ms'"),
    ("[segmenter]\ncap_resets_floor = 1", "key 'segmenter.cap_resets_floor': expected bool"),
    ("curve = 5", "key 'curve': expected str"),
    ("threshold = 0.5", "key 'threshold': expected dict"),
    ('[threshold]\ndigits = "high"', "key 'threshold.digits': expected a number"),
    ("[threshold]\ndigits = true", "key 'threshold.digits': expected a number"),
    ("this is = not toml [", "not valid TOML"),
]


@pytest.mark.parametrize("text, needle", CASES)
def test_each_bad_setting_is_one_line(tmp_path, text, needle):
    f = tmp_path / "bad.toml"
    f.write_text(text + "\n")
    with pytest.raises(ConfigError) as err:
        load_toml(f)
    msg = str(err.value)
    assert msg.startswith(str(f)) and needle in msg and "\n" not in msg


def test_cross_key_rules(tmp_path):
    for kwargs, needle in (({"fast": True}, "key 'fast'"), ({"pub": "tcp://0.0.0.0:1"}, "key 'pub'"),
                           ({"pub": "tcp://10.1.1.1:1", "curve": str(tmp_path / "nokeys")}, "key 'curve'")):
        with pytest.raises(ConfigError) as err:
            build_config(None, **kwargs)
        assert needle in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="no such config file"):
        build_config(tmp_path / "missing.toml")
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="unreadable|not valid TOML"):
        build_config(tmp_path / "bin.toml")


def test_the_daemon_prints_one_line_and_exits_2(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text("[segmenter]\non_db = \"loud\"\n")
    p = subprocess.run(daemon_cmd("--config", str(f)), capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert lines == [f"wordstamp: error: {f}: key 'segmenter.on_db': expected float"]
