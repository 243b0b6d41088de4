import os

# TensorFlow's C++ start-up notes (CPU features, missing CUDA) are noise in FRID's logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
