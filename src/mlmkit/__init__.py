"""mlmkit: Earth-observation ML models described by STAC MLM, trainable and runnable anywhere."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """Top-level names loaded on first use, so `import mlmkit` stays light."""
    if name == "match":
        from mlmkit.matching import match

        return match
    if name == "predict_xarray":  # needs the optional `xarray` extra
        from mlmkit.inference.arrays import predict_xarray

        return predict_xarray
    if name == "quantize":
        from mlmkit.training.quantize import quantize

        return quantize
    raise AttributeError(f"module 'mlmkit' has no attribute {name!r}")
