"""The model description: the MLM Item read into typed objects, built for a model file, checked beyond its schema."""
