"""Seconds per training epoch of the recipe's network, fed two ways side by side in one process: numpy arrays handed
to `model.fit` (how trainer/train.py feeds it) and a `tf.data` pipeline with autotuning off and one private thread.

Why: on a 2-core machine the recipe's epochs run at two speeds, the slow one no faster than one thread (models/README,
Rounds 20-21). Epochs alternate between the feeds, so both see the same machine state; each feed trains its own copy
of the network (same seed) on random stamps of the recipe's shape. Run: `python -m bench.epoch_feed [--rounds 8]
[--intra N] [--inter N]` (and `TF_ENABLE_ONEDNN_OPTS=0` before it for TensorFlow without oneDNN).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

FEEDS = ("numpy", "dataset")


def recipe_net(seed: int = 0):
    """The recipe's training model (served + side softmax) with the recipe's losses and weights; Adam at a fixed
    rate in place of the recipe's cosine schedule, which costs nothing per step."""
    import keras

    from trainer.nets import NetConfig, build_aux

    keras.utils.set_random_seed(seed)
    model, _ = build_aux((98, 40), 12, 163, NetConfig())
    ce = keras.losses.CategoricalCrossentropy()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=[None, ce, ce], loss_weights=[1.0, 1.0, 0.5],
                  metrics=[None, ["accuracy"], None])
    return model


def random_batch(n: int, seed: int = 0) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """Random stamps and one-hot targets of the recipe's shapes (the embedding output has no loss)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 98, 40)).astype(np.float32)
    y = np.eye(12, dtype=np.float32)[rng.integers(0, 12, n)]
    yf = np.eye(163, dtype=np.float32)[rng.integers(0, 163, n)]
    return x, [np.zeros((n, 64), np.float32), y, yf], np.ones(n, np.float32)


def one_epoch(model, feed: str, x: np.ndarray, targets: list[np.ndarray], weights: np.ndarray,
              batch: int) -> tuple[float, float]:
    """Train one epoch in order (Keras's own shuffle off: the trainer permutes first); returns its wall seconds and
    its mean training loss."""
    t0 = time.perf_counter()
    if feed == "numpy":  # as trainer/train.py feeds it (which also lets Keras shuffle the permuted stamps again)
        h = model.fit(x, targets, sample_weight=weights, batch_size=batch, epochs=1, verbose=0, shuffle=False)
    elif feed == "dataset":
        import tensorflow as tf

        opts = tf.data.Options()
        opts.autotune.enabled = False
        opts.threading.private_threadpool_size = 1
        ds = tf.data.Dataset.from_tensor_slices((x, tuple(targets), weights)).batch(batch).prefetch(1)
        h = model.fit(ds.with_options(opts), epochs=1, verbose=0, shuffle=False)
    else:
        raise ValueError(f"unknown feed {feed!r}; one of {FEEDS}")
    return time.perf_counter() - t0, float(h.history["loss"][-1])


def measure(rounds: int = 8, n: int = 9000, batch: int = 64, intra: int = 0, inter: int = 0) -> dict:
    """Alternate one epoch of each feed `rounds` times (the order swapping every round); the first round is warm-up.
    Per feed: every epoch's seconds, their median and mean after warm-up (the two speeds move the mean, not always
    the median), and how many epochs took 1.4 x the fastest or more. `intra`/`inter` > 0 set TensorFlow's thread
    pools (0: its default, as the trainer runs); `TF_ENABLE_ONEDNN_OPTS=0` in the environment turns oneDNN off."""
    import tensorflow as tf

    if intra:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
    if inter:
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    x, targets, weights = random_batch(n)
    models = {f: recipe_net() for f in FEEDS}
    times: dict[str, list[float]] = {f: [] for f in FEEDS}
    for r in range(rounds):
        for f in (FEEDS if r % 2 == 0 else FEEDS[::-1]):
            times[f].append(one_epoch(models[f], f, x, targets, weights, batch)[0])
    fastest = min(min(v[1:] or v) for v in times.values())
    out = {f: {"epochs_s": [round(t, 2) for t in v], "median_s": float(np.median(v[1:] or v)),
               "mean_s": float(np.mean(v[1:] or v)),
               "slow_epochs": int(sum(t >= 1.4 * fastest for t in v[1:]))} for f, v in times.items()}
    return {"stamps": n, "batch": batch, "rounds": rounds, "intra": intra, "inter": inter, "feeds": out,
            "numpy_over_dataset": {k: out["numpy"][k] / out["dataset"][k] for k in ("median_s", "mean_s")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--stamps", type=int, default=9000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--intra", type=int, default=0, help="TensorFlow intra-op threads (0: its default)")
    ap.add_argument("--inter", type=int, default=0, help="TensorFlow inter-op threads (0: its default)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    r = measure(a.rounds, a.stamps, a.batch, a.intra, a.inter)
    if a.json:
        print(json.dumps(r))
        return
    for f, v in r["feeds"].items():
        print(f"{f:8s} median {v['median_s']:6.2f} s, mean {v['mean_s']:6.2f} s an epoch of {r['stamps']} stamps; "
              f"{v['slow_epochs']} of {r['rounds'] - 1} at 1.4 x the fastest or slower; epochs {v['epochs_s']}")
    ratio = r["numpy_over_dataset"]
    print(f"numpy / dataset: median {ratio['median_s']:.2f}, mean {ratio['mean_s']:.2f}")


if __name__ == "__main__":
    main()
