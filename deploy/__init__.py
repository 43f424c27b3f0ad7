"""Deploy stage: the Triton model repository, the bundled Triton launcher and the local stack."""
