"""Image filter service: convolution and pooling over HTTP."""

__version__ = "0.1.0"
