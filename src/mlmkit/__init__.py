"""mlmkit: Earth-observation ML models described by STAC MLM, trainable and runnable anywhere."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """`mlmkit.predict_xarray`, imported on first use: it needs the optional `xarray` extra."""
    if name == "predict_xarray":
        from mlmkit.inference.arrays import predict_xarray

        return predict_xarray
    raise AttributeError(f"module 'mlmkit' has no attribute {name!r}")
