"""The model file format, in one place (notes §1.10 "State").

- :mod:`~lamina.saving.archive`: the zip container and its limits;
- :mod:`~lamina.saving.tensors`: safetensors members, headers checked before any array exists;
- :mod:`~lamina.saving.model_config`: config.json, field by field;
- :mod:`~lamina.saving.model_file`: whole models, saved only when they load back;
- :mod:`~lamina.saving.weights`: parameters alone.

The package sits below ``lamina.model``: it reads and writes a model through its public
attributes and builds one through the class it is given (``lamina.load_model`` gives
``Model``), so that nothing here imports the model.
"""
