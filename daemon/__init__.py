"""The daemon: microphone or file -> ring buffer -> segments -> LiteRT -> ZeroMQ events. Never imports TensorFlow."""
