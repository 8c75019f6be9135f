"""What the trainer and the daemon both use: audio I/O, the feature frontend, the segmenter, bundles, events."""
