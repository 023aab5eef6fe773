"""lamina with other tools: ONNX export (:mod:`~lamina.interop.onnx`) and scikit-learn
estimators (:mod:`~lamina.interop.sklearn`). Each imports its tool only when used."""
