"""The functional tier: real components in process (onnxruntime, TensorFlow for the export
tests, moto in process). A test here that needs the moto server over HTTP is e2e: the root
conftest marks it so, and ``make test-fast`` skips it."""
