"""mlmkit: Earth-observation ML models described by STAC MLM, trainable and runnable anywhere.

The verbs (`describe`, `validate`, `predict`, `train`, `search`, `publish`, `run`, `stage_in`, `stage_out`) are
defined in `mlmkit.api` and loaded on first use, so that `import mlmkit` stays fast and imports neither onnxruntime
nor torch.
"""

__version__ = "0.2.0"

__all__ = ["__version__", "describe", "validate", "predict", "train", "search", "publish", "run", "stage_in",
           "stage_out"]


def __getattr__(name: str):
    if name in __all__:
        from mlmkit import api

        return getattr(api, name)
    raise AttributeError(f"module 'mlmkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
