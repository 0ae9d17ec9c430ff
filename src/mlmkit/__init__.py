"""mlmkit: Earth-observation ML models described by STAC MLM, trainable and runnable anywhere.

The verbs (`describe`, `validate`, `predict`, `predict_xarray`, `train`, `quantize`, `match`, `search`, `publish`,
`run`, `stage_in`, `stage_out`) live in `mlmkit.api`, which imports what each needs only when it is called: `import mlmkit`
stays fast and loads neither onnxruntime nor torch.
"""

__version__ = "0.2.0"

from mlmkit.api import (describe, match, predict, predict_xarray, publish, quantize, run, search,  # noqa: E402
                        stage_in, stage_out, train, validate)

__all__ = ["__version__", "describe", "validate", "predict", "predict_xarray", "train", "quantize", "match", "search",
           "publish", "run", "stage_in", "stage_out"]
