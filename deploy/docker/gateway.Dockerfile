# syntax=docker/dockerfile:1.7
# Pastiche gateway: FastAPI on uvicorn, unprivileged, settings from PASTICHE_* variables.
# Build from the repository root (the tag comes from deploy/versions/versions.env):
#   docker build -f deploy/docker/gateway.Dockerfile \
#     --build-arg PYTHON_TAG="$(sed -n 's/^PYTHON_TAG=//p' deploy/versions/versions.env)" -t pastiche/gateway .
ARG PYTHON_TAG

FROM python:${PYTHON_TAG} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/pastiche
# Only what the gateway imports, at the versions pinned in constraints.txt (the project's full
# dependency set carries the export toolchain, torch included).
COPY constraints.txt deploy/docker/gateway-requirements.txt ./
RUN /opt/pastiche/bin/pip install -c constraints.txt -r gateway-requirements.txt
COPY . .
RUN /opt/pastiche/bin/pip install --no-deps . \
    && /opt/pastiche/bin/python -c "import gateway.app"

FROM python:${PYTHON_TAG}
RUN groupadd --system --gid 10001 pastiche \
    && useradd --system --uid 10001 --gid pastiche --no-create-home --home-dir /nonexistent pastiche
COPY --from=build /opt/pastiche /opt/pastiche
ENV PATH=/opt/pastiche/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 8080
# Ready means Triton and S3 answer (the gateway's /readyz).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=2)"]
# uvicorn reads further options from UVICORN_* variables (UVICORN_WORKERS, ...).
ENTRYPOINT ["uvicorn", "gateway.app:create_app", "--factory", "--host", "0.0.0.0", "--port", "8080"]
