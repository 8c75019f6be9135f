"""The daemon room's commands: `daemon`, `listen`, `replay`, `hub`, `resynth`.

Errors are one line, never a traceback."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Optional

import typer

def _known_errors() -> tuple[type[BaseException], ...]:
    from daemon.config import ConfigError
    from daemon.service import DaemonError
    from daemon.source import SourceError
    from shared.audio import AudioError
    from shared.bundle import BundleError
    from shared.events import EventError

    return (ConfigError, DaemonError, SourceError, AudioError, BundleError, EventError, OSError, ValueError)


def fail(msg: str, code: int = 2) -> None:
    print(f"wordstamp: error: {msg.splitlines()[0] if msg else 'failed'}", file=sys.stderr)
    raise typer.Exit(code)


def daemon(
    model: Optional[list[str]] = typer.Option(None, "--model", "-m", help="Bundle folder (repeat for several). "
                                              "Default: models/digits and models/animals if present."),
    device: Optional[str] = typer.Option(None, "--device", "-d", help="Microphone: name substring or index."),
    device_rate: Optional[int] = typer.Option(None, "--device-rate", help="Open the microphone at this rate "
                                              "(resampled to 16 kHz) [16000 if possible]."),
    input: Optional[str] = typer.Option(None, "--input", "-i", help="Read this audio file instead of a microphone."),
    fast: Optional[bool] = typer.Option(None, "--fast/--paced", help="With --input: as fast as possible."),
    pub: Optional[str] = typer.Option(None, "--pub", help="PUB endpoint to bind [tcp://127.0.0.1:5556]."),
    connect: Optional[str] = typer.Option(None, "--connect", help="Publish by connecting to a hub's XSUB instead."),
    control: Optional[str] = typer.Option(None, "--control", help="Control REP endpoint [tcp://127.0.0.1:5557]; "
                                          "'' disables."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML file; keys are the option names."),
    reject: Optional[bool] = typer.Option(None, "--reject/--no-reject", help="Also publish reject events."),
    replay_audio: Optional[bool] = typer.Option(None, "--replay-audio/--no-replay-audio",
                                                help="Play each recognised word, resynthesised from its stamp."),
    replay_dir: Optional[str] = typer.Option(None, "--replay-dir", help="Write <seq>_<word>.wav resyntheses here."),
    source_id: Optional[str] = typer.Option(None, "--source-id", help="The events' source field [host name]."),
    status_interval: Optional[float] = typer.Option(None, "--status-interval", help="Seconds between heartbeats [5]."),
    sndhwm: Optional[int] = typer.Option(None, "--sndhwm", help="Messages queued per subscriber before drops [1000]."),
    sndbuf: Optional[int] = typer.Option(None, "--sndbuf", help="Kernel send buffer per connection, bytes [OS]."),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="Alternatives per event [3]."),
    wait_subscriber: Optional[float] = typer.Option(None, "--wait-subscriber",
                                                    help="With --input: wait up to N s for a subscriber first."),
    ring_seconds: Optional[float] = typer.Option(None, "--ring-seconds", help="Ring buffer length [10]."),
    block_ms: Optional[int] = typer.Option(None, "--block-ms", help="Audio block size in ms [20]."),
    curve: Optional[str] = typer.Option(None, "--curve", help="CURVE key folder (wordstamp keys DIR); needed to "
                                        "bind or connect anywhere but loopback."),
    threshold: Optional[list[str]] = typer.Option(None, "--threshold", help="MODEL=VALUE: that model's reject "
                                                  "threshold instead of its calibrated one (repeat)."),
) -> None:
    """Recognise words from a microphone (or a file) and publish them as ZeroMQ events until stopped."""
    errors = _known_errors()
    try:
        from daemon.config import build_config, parse_thresholds
        from daemon.service import Daemon

        cfg = build_config(config, model=model, device=device, device_rate=device_rate, input=input, fast=fast,
                           pub=pub, connect=connect, control=control, reject=reject, replay_audio=replay_audio, replay_dir=replay_dir,
                           source_id=source_id, status_interval=status_interval, sndhwm=sndhwm, sndbuf=sndbuf,
                           top_k=top_k,
                           wait_subscriber=wait_subscriber, ring_seconds=ring_seconds, block_ms=block_ms,
                           curve=curve, threshold=parse_thresholds(threshold))
        d = Daemon(cfg)
    except errors as exc:
        fail(str(exc))
    code = d.run()
    raise typer.Exit(code)


def listen(
    endpoint: str = typer.Argument("tcp://127.0.0.1:5556", help="PUB (or hub XPUB) endpoint to connect to."),
    topic: Optional[list[str]] = typer.Option(None, "--topic", "-t", help="word, reject, vad, status (repeat); "
                                              "default all."),
    json_: bool = typer.Option(False, "--json", help="Print each event's JSON as received."),
    count: Optional[int] = typer.Option(None, "--count", "-n", help="Stop after N events."),
    curve: Optional[str] = typer.Option(None, "--curve", help="CURVE key folder (server.key, client.key_secret)."),
) -> None:
    """Print the events a daemon (or hub) publishes."""
    from daemon.listen import listen as run
    from shared.events import TOPICS

    for t in topic or []:
        if t not in TOPICS:
            fail(f"unknown topic {t!r} (known: {', '.join(TOPICS)})")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        run(endpoint, list(topic or []), as_json=json_, stop=stop, count=count, curve=curve)
    except Exception as exc:  # zmq errors for bad endpoints
        fail(f"{endpoint}: {exc}")


def replay(
    file: Path = typer.Argument(..., help="Audio file (wav/ogg/flac, any rate)."),
    model: Optional[list[str]] = typer.Option(None, "--model", "-m", help="Bundle folder (repeat)."),
    json_: bool = typer.Option(True, "--json/--text", help="JSON lines as published (default) or readable lines."),
    reject: bool = typer.Option(False, "--reject", help="Also print reject events."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="A daemon TOML file (models, segmenter, ...)."),
    source_id: Optional[str] = typer.Option(None, "--source-id", help="The events' source field [host name]."),
    threshold: Optional[list[str]] = typer.Option(None, "--threshold", help="MODEL=VALUE: that model's reject "
                                                  "threshold instead of its calibrated one (repeat)."),
) -> None:
    """Run the daemon's pipeline over a file as fast as possible; print the events it would publish."""
    errors = _known_errors()
    try:
        from daemon.config import build_config, parse_thresholds
        from daemon.listen import format_event
        from daemon.replay import replay_events

        cfg = build_config(config, model=model, reject=reject or None, source_id=source_id,
                           threshold=parse_thresholds(threshold))
        for ev in replay_events(file, cfg.models(), reject=cfg.reject, top_k=cfg.top_k, source_id=cfg.source_id,
                                segmenter=cfg.segmenter, thresholds=cfg.threshold):
            print(ev.to_json() if json_ else format_event(ev), flush=True)
    except errors as exc:
        fail(str(exc))
    except BrokenPipeError:
        pass


def hub(
    xsub: str = typer.Option("tcp://127.0.0.1:5558", "--xsub", help="Daemons connect here (daemon --connect)."),
    xpub: str = typer.Option("tcp://127.0.0.1:5559", "--xpub", help="Subscribers connect here."),
    curve: Optional[str] = typer.Option(None, "--curve", help="CURVE key folder (server.key_secret, "
                                        "authorized_clients/); needed for non-loopback endpoints."),
) -> None:
    """Forward events from many daemons to many subscribers (zmq proxy XSUB -> XPUB) until stopped."""
    from daemon.hub import Hub

    try:
        h = Hub(xsub, xpub, curve=curve)
    except (OSError, ValueError) as exc:
        fail(str(exc))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    h.start()
    print(f"wordstamp hub: daemons -> {xsub}, subscribers -> {xpub}", file=sys.stderr, flush=True)
    while not stop.wait(0.1):
        pass
    h.stop()


def resynth(
    clip: Path = typer.Argument(..., help="A word clip (audio file), or a .npy of log-mel frames (T, 40)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output wav (16 kHz)."),
    iterations: int = typer.Option(60, "--iterations", help="Griffin-Lim iterations."),
    whole: bool = typer.Option(False, "--whole", help="Resynthesise the whole clip, not just its word."),
) -> None:
    """Hear what the model hears: the word's log-mel frames turned back into audio (mel inversion + Griffin-Lim)."""
    errors = _known_errors()
    try:
        import numpy as np

        from shared.audio import read_audio, write_wav_atomic
        from shared.features import Frontend
        from shared.resynth import resynthesise
        from shared.segment import segment_mel, word_span

        fe = Frontend()
        if clip.suffix == ".npy":
            try:
                mel = np.load(clip, allow_pickle=False)
            except Exception as exc:
                raise ValueError(f"{clip}: not a numpy array file ({type(exc).__name__})") from None
        else:
            mel, energy = fe.compute(read_audio(clip))
            if not whole:
                a, b = word_span(mel, energy, fe.cfg)
                mel = segment_mel(mel, a, b, fe.cfg)
        audio = resynthesise(mel, fe.cfg, n_iter=iterations)
        write_wav_atomic(out, audio, fe.cfg.sample_rate, overwrite=True)
        print(f"{out}: {audio.size / fe.cfg.sample_rate:.2f} s from {mel.shape[0]} frames")
    except errors as exc:
        fail(str(exc))


def keys(folder: Path = typer.Argument(..., help="Folder for the key pairs (created; existing keys are kept).")
         ) -> None:
    """Make CURVE key pairs (server, client) for exposing the daemon or hub beyond loopback; secrets mode 0600."""
    from daemon.security import CurveError, create_keys

    try:
        made = create_keys(folder)
    except (CurveError, OSError) as exc:
        fail(str(exc))
    print(f"server: {made['server_secret']} (keep on the daemon/hub host), {made['server_public']} (give to clients)")
    print(f"client: {made['client_secret']} + {made['server_public']} (give to a subscriber); its public key is in "
          f"{made['authorized']}/ (the server accepts every .key there)")


def register(app: typer.Typer) -> None:
    """Add this room's commands to the `wordstamp` app."""
    app.command("daemon")(daemon)
    app.command("listen")(listen)
    app.command("replay")(replay)
    app.command("hub")(hub)
    app.command("resynth")(resynth)
    app.command("keys")(keys)
