"""The daemon's settings: one dataclass, filled from defaults, then a TOML file, then the command line.

Every command-line option has a key of the same name (dashes become underscores) in the TOML file; an unknown key or
a value of the wrong kind is refused with one line naming the key, before anything starts.
"""

from __future__ import annotations

import dataclasses
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.segment import SegmenterConfig, StreamSegmenter

DEFAULT_MODELS = ("models/digits", "models/animals")
ENDPOINT_SCHEMES = ("tcp://", "ipc://", "inproc://")


class ConfigError(Exception):
    """A bad setting; str() is one line naming the key."""


@dataclass
class DaemonConfig:
    """Everything `wordstamp daemon` can be told. Field names are the TOML keys."""

    model: list[str] = field(default_factory=list)  # bundle folders; empty: models/digits, models/animals if there
    device: str | None = None  # microphone name (substring) or index; None = the default input
    device_rate: int = 0  # open the microphone at this rate (Hz; resampled to 16 kHz); 0: 16 kHz if it can, else its own
    input: str | None = None  # read this audio file instead of a microphone
    fast: bool = False  # with `input`: as fast as possible instead of real time
    pub: str = "tcp://127.0.0.1:5556"  # PUB endpoint to bind
    connect: str | None = None  # publish by connecting here (a hub's XSUB) instead of binding `pub`
    control: str = "tcp://127.0.0.1:5557"  # REP endpoint for describe/status/reload; "" disables it
    reject: bool = False  # also publish `reject` events
    replay_audio: bool = False  # play each recognised word, resynthesised from its stamp, on the default output
    replay_dir: str | None = None  # write each recognised word's resynthesis as <seq>_<word>.wav here
    source_id: str = field(default_factory=socket.gethostname)  # the `source` field of every event
    status_interval: float = 5.0  # seconds between status heartbeats
    sndhwm: int = 1000  # ZeroMQ send high-water mark (messages queued per subscriber before drops)
    sndbuf: int = 0  # kernel send buffer per subscriber connection in bytes; 0 = the OS default
    top_k: int = 3  # alternatives in each event
    wait_subscriber: float = 0.0  # with `input`: wait up to this many seconds for a first subscriber before reading
    ring_seconds: float = 10.0  # ring buffer length between the audio callback and the worker
    block_ms: int = 20  # audio block size asked of the device / read from a file
    segmenter: dict = field(default_factory=dict)  # overrides of the bundle's segmenter settings (a [segmenter] table)
    threshold: dict = field(default_factory=dict)  # reject threshold per model name (a [threshold] table: digits = 0.9)
    curve: str | None = None  # CURVE key folder (`wordstamp keys DIR`); needed for any non-loopback endpoint

    def models(self) -> list[str]:
        """The bundles to load: the configured ones, or the shipped ones that exist."""
        return list(self.model) if self.model else [m for m in DEFAULT_MODELS if Path(m).is_dir()]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_KINDS: dict[str, tuple[type, ...]] = {
    "model": (list,), "device": (str, int), "device_rate": (int,), "input": (str,), "fast": (bool,), "pub": (str,), "connect": (str,),
    "control": (str,), "reject": (bool,), "replay_audio": (bool,), "replay_dir": (str,), "source_id": (str,),
    "status_interval": (int, float), "sndhwm": (int,), "sndbuf": (int,), "top_k": (int,),
    "wait_subscriber": (int, float),
    "ring_seconds": (int, float), "block_ms": (int,), "segmenter": (dict,), "threshold": (dict,), "curve": (str,),
}


def _check(key: str, value: Any, where: str) -> Any:
    kinds = _KINDS[key]
    if isinstance(value, bool) and bool not in kinds:
        raise ConfigError(f"{where}: key '{key}': expected {' or '.join(k.__name__ for k in kinds)}, got a boolean")
    if not isinstance(value, kinds):
        raise ConfigError(f"{where}: key '{key}': expected {' or '.join(k.__name__ for k in kinds)}, "
                          f"got {type(value).__name__}")
    if key == "model" and not all(isinstance(m, str) and m for m in value):
        raise ConfigError(f"{where}: key 'model': expected a list of bundle folders")
    if key in ("pub", "connect") or (key == "control" and value):
        if not value.startswith(ENDPOINT_SCHEMES):
            raise ConfigError(f"{where}: key '{key}': {value!r} is not a ZeroMQ endpoint (tcp://, ipc://, inproc://)")
    if key in ("status_interval", "ring_seconds") and not value > 0:
        raise ConfigError(f"{where}: key '{key}': must be positive")
    if key in ("sndhwm", "top_k", "block_ms") and value < 1:
        raise ConfigError(f"{where}: key '{key}': must be at least 1")
    if key == "device_rate" and value and not 4000 <= value <= 192000:
        raise ConfigError(f"{where}: key 'device_rate': must be 0 or 4000-192000 Hz")
    if key in ("wait_subscriber", "sndbuf") and value < 0:
        raise ConfigError(f"{where}: key '{key}': must not be negative")
    if key == "segmenter":
        defaults = SegmenterConfig().to_dict()
        for k, v in value.items():
            if k not in defaults:
                raise ConfigError(f"{where}: key 'segmenter.{k}': unknown segmenter setting")
            want = type(defaults[k])
            if (isinstance(v, bool) != (want is bool)) or not (isinstance(v, want) or (want is float and isinstance(v, int))):
                raise ConfigError(f"{where}: key 'segmenter.{k}': expected {want.__name__}")
        try:
            StreamSegmenter(SegmenterConfig(**{**defaults, **value}))
        except (TypeError, ValueError, ImportError) as exc:
            raise ConfigError(f"{where}: key 'segmenter': {str(exc).splitlines()[0]}") from None
    if key == "threshold":
        for k, v in value.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ConfigError(f"{where}: key 'threshold.{k}': expected a number")
    if key == "device" and isinstance(value, int):
        return str(value)
    return value


def parse_thresholds(items: list[str] | None) -> dict[str, float] | None:
    """`--threshold NAME=VALUE` options (repeatable) -> {name: value}; None when none were given."""
    if not items:
        return None
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            if not sep or not name:
                raise ValueError
            out[name] = float(value)
        except ValueError:
            raise ConfigError(f"command line: --threshold {item!r}: expected MODEL=NUMBER, e.g. digits=0.9") from None
    return out


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read and check a TOML config file; returns only the keys it sets."""
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: unreadable ({type(exc).__name__})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML ({str(exc).splitlines()[0]})") from None
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in _KINDS:
            raise ConfigError(f"{p}: unknown key '{key}'")
        out[key] = _check(key, value, str(p))
    return out


def build_config(config_file: str | Path | None = None, **cli: Any) -> DaemonConfig:
    """Defaults, overridden by the TOML file, overridden by command-line values that were given (not None)."""
    values: dict[str, Any] = load_toml(config_file) if config_file else {}
    for key, value in cli.items():
        if key not in _KINDS:
            raise ConfigError(f"command line: unknown option '{key}'")
        if value is None or (key == "model" and not value):
            continue
        values[key] = _check(key, value, "command line")
    cfg = DaemonConfig(**values)
    if cfg.fast and not cfg.input:
        raise ConfigError("key 'fast': only makes sense with 'input' (a file)")
    check_network(cfg)
    return cfg


def check_network(cfg: DaemonConfig) -> None:
    """Loopback only unless CURVE keys are given; a given key folder must hold what this daemon's role needs."""
    from daemon.security import Curve, CurveError, require_keys

    try:
        require_keys({"connect": cfg.connect} if cfg.connect else {"pub": cfg.pub} | {"control": cfg.control},
                     cfg.curve)
        if cfg.connect:
            require_keys({"control": cfg.control}, cfg.curve)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if cfg.curve:
        try:
            c = Curve.load(cfg.curve)
            if cfg.connect:
                c.check_client()
            if not cfg.connect or cfg.control:
                c.check_server()
        except CurveError as exc:
            raise ConfigError(f"key 'curve': {exc}") from None
