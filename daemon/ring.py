"""A single-producer/single-consumer ring of float32 samples between the audio callback and the worker thread.

The producer (PortAudio's callback) must never block or allocate, so `write` copies into a preallocated array and, when
the ring is full, drops what does not fit and counts it: losing audio is better than stalling the sound card. The two
positions are plain monotonically increasing ints, each written by one side only (the GIL makes the stores atomic),
and each side publishes its position only after its copy is done, so no lock is needed.
"""

from __future__ import annotations

import threading

import numpy as np


class Ring:
    """Fixed-capacity sample ring; `write` from one thread, `read` from another."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("ring capacity must be positive")
        self.capacity = int(capacity)
        self._buf = np.zeros(self.capacity, dtype=np.float32)
        self._w = 0  # total samples ever written (producer-owned)
        self._r = 0  # total samples ever read (consumer-owned)
        self.overflows = 0  # samples dropped because the ring was full (producer-owned)
        self._data = threading.Event()  # a hint for the consumer; set() never blocks

    @property
    def written(self) -> int:
        """Samples accepted so far (the producer's clock)."""
        return self._w

    def available(self) -> int:
        return self._w - self._r

    def free(self) -> int:
        return self.capacity - (self._w - self._r)

    def write(self, x: np.ndarray) -> int:
        """Copy as much of `x` as fits; count the rest as overflow. Returns the samples written. Never blocks."""
        x = np.asarray(x, dtype=np.float32).reshape(-1)
        n = min(x.size, self.free())
        if n < x.size:
            self.overflows += x.size - n
        if n:
            i = self._w % self.capacity
            first = min(n, self.capacity - i)
            self._buf[i:i + first] = x[:first]
            if n > first:
                self._buf[:n - first] = x[first:n]
            self._w += n  # publish after the copy
            self._data.set()
        return n

    def read(self, max_samples: int | None = None) -> np.ndarray:
        """Take up to `max_samples` (default all) available samples as a new array; empty if none."""
        n = self.available()
        if max_samples is not None:
            n = min(n, max_samples)
        if n <= 0:
            return np.zeros(0, np.float32)
        i = self._r % self.capacity
        first = min(n, self.capacity - i)
        out = np.empty(n, np.float32)
        out[:first] = self._buf[i:i + first]
        if n > first:
            out[first:] = self._buf[:n - first]
        self._r += n  # publish after the copy: the producer may now reuse the space
        return out

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for data; True if some is available."""
        if self.available():
            return True
        self._data.clear()
        if self.available():  # written between the check and the clear
            return True
        return self._data.wait(timeout)
