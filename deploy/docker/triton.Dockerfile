# syntax=docker/dockerfile:1.7
# Pastiche's Triton: NVIDIA's serving image plus the engine step (pastiche-engines), so that
# TensorRT plans are built by the very TensorRT that serves them.
# Build from the repository root (the tag comes from deploy/versions/versions.env):
#   docker build -f deploy/docker/triton.Dockerfile \
#     --build-arg TRITON_TAG="$(sed -n 's/^TRITON_TAG=//p' deploy/versions/versions.env)" -t pastiche/triton .
ARG TRITON_TAG

FROM nvcr.io/nvidia/tritonserver:${TRITON_TAG}
ARG TRITON_TAG
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# PASTICHE_IMAGE_TRITON_TAG lets the engine step refuse a repository named for another image.
ENV PASTICHE_IMAGE_TRITON_TAG=${TRITON_TAG} \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The pastiche CLI lives in its own virtualenv: the python backend keeps the image's packages.
COPY constraints.txt deploy/docker/triton-engines-requirements.txt /tmp/pastiche/
RUN python3 -m virtualenv /opt/pastiche \
    && /opt/pastiche/bin/pip install -c /tmp/pastiche/constraints.txt \
        -r /tmp/pastiche/triton-engines-requirements.txt
COPY . /tmp/pastiche/src
RUN /opt/pastiche/bin/pip install --no-deps /tmp/pastiche/src \
    && rm -rf /tmp/pastiche \
    && ln -s /opt/pastiche/bin/pastiche /usr/local/bin/pastiche \
    && pastiche engines --help > /dev/null

# trtexec of this image's TensorRT; fail the build here rather than the first GPU pod.
RUN if ! command -v trtexec > /dev/null; then \
        ln -s /usr/src/tensorrt/bin/trtexec /usr/local/bin/trtexec; \
    fi \
    && test -x "$(readlink -f "$(command -v trtexec)")"
COPY --chmod=0755 deploy/docker/pastiche-engines.sh /usr/local/bin/pastiche-engines

# triton-server, the unprivileged user NVIDIA creates in the image.
USER 1000:1000
EXPOSE 8000 8001 8002
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/v2/health/ready', timeout=2)"]
CMD ["tritonserver", "--model-repository=/models"]
