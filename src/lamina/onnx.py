"""``lamina.onnx``: export to ONNX; the code lives in :mod:`lamina.interop.onnx`."""

from lamina.interop.onnx import MIN_OPSET, export

__all__ = ["MIN_OPSET", "export"]
