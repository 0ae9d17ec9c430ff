"""mlmkit: Earth-observation ML models described by STAC MLM, trainable and runnable anywhere."""

__version__ = "0.2.0"
