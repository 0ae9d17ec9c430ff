"""Run any model described by an MLM Item over STAC imagery: `predict(model, inputs, output, options)`."""

from mlmkit.inference.pipeline import PredictOptions, predict

__all__ = ["PredictOptions", "predict"]
