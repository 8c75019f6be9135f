"""The trainer: recordings -> word clips -> stamp datasets -> CNN -> int8 bundle -> SVM heads. May import TensorFlow."""
