"""Gateway stage: the REST API in front of Triton that keeps every input and output in S3."""
