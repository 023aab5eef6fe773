"""The model file format, in one place (DESIGN §6; notes §1.10 "State").

- :mod:`~lamina.saving.archive`: the zip container and its limits;
- :mod:`~lamina.saving.tensors`: safetensors members, headers checked before any array exists;
- :mod:`~lamina.saving.model_config`: config.json, field by field;
- :mod:`~lamina.saving.model_file`: whole models, saved only when they load back.
"""

from lamina.saving.model_file import load_model, save_model

__all__ = ["load_model", "save_model"]
