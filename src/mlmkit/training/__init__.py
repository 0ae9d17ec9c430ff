"""Training: STAC training catalogs in, an ONNX model described by an MLM Item out.

chips/eurosat build the training catalog, catalog_reader/dataset load it, stats/models/trainer/metrics
train, export writes and checks the ONNX file, output writes the MLM catalog.
"""
