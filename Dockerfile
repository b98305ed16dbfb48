# syntax=docker/dockerfile:1
# Sentiment inference service.
#
#   docker build -t sentiment .                                  # CPU image, trains the default model
#   docker build --build-arg ARTIFACT_FROM=prebuilt -t sentiment .   # uses ./artifacts/default instead
#   docker build --target runtime-gpu -t sentiment:gpu .         # CUDA image (onnxruntime-gpu)
#
# The runtime stages hold the serving dependencies (requirements/serve*.txt, fully pinned, the same
# list the tests install), the artifact and service/_fastpath*.c compiled in a builder stage for the
# runtime's own Python: no torch, no compilers. Size target: < 500 MB for the
# CPU image (python:3.11-slim ≈ 130 MB + serving wheels ≈ 150 MB + model ≈ 50 MB).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04
# trained: build the default artifact with our own training command; prebuilt: copy ./artifacts/default
ARG ARTIFACT_FROM=trained

# ---- train: the training extra (CPU torch) and the project's own training command -------------
FROM ${PYTHON_IMAGE} AS train
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# torch from PyTorch's CPU index: the default index would resolve a multi-GB CUDA build.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY pyproject.toml README.md ./
COPY model ./model
COPY service ./service
# The project itself; every dependency of its `train` extra is pinned in pyproject.toml.
# hadolint ignore=DL3013
RUN pip install ".[train]" \
    && python -m model train --name default --out /artifact --no-progress

# ---- prebuilt: an artifact from the build context (make artifact, or your own) ---------------
FROM ${PYTHON_IMAGE} AS prebuilt
COPY artifacts/default /artifact

FROM ${ARTIFACT_FROM} AS artifact

# ---- native, native-gpu: service/_fastpath*.c (the per-text work of /predict in C) built for ----
# each runtime's Python. Without it the service runs the same code in Python, with a warning.
FROM ${PYTHON_IMAGE} AS native
# The compiler only lives in this throw-away stage; its version follows the base image.
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY service/_fastpath.h service/_fastpath.c service/_fastpath_json.c service/_fastpath_batch.c deploy/build-native.sh ./
RUN sh build-native.sh

FROM ${CUDA_IMAGE} AS native-gpu
# As above, for the CUDA image's Ubuntu python3.
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev python3-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY service/_fastpath.h service/_fastpath.c service/_fastpath_json.c service/_fastpath_batch.c deploy/build-native.sh ./
RUN sh build-native.sh

# ---- runtime (CPU) ----------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG SOURCE=unset
LABEL org.opencontainers.image.title="sentiment-service" \
      org.opencontainers.image.description="Attention sentiment classifier on onnxruntime, served by FastAPI" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE}"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SENTIMENT_HOST=0.0.0.0 \
    SENTIMENT_PORT=8000 \
    SENTIMENT_ARTIFACT=/app/artifacts/default \
    SENTIMENT_WORKERS=2 \
    SENTIMENT_SHUTDOWN_DELAY_S=5 \
    SENTIMENT_DRAIN_TIMEOUT_S=30
WORKDIR /app
COPY requirements/serve.txt /tmp/requirements.txt
RUN pip install --no-deps -r /tmp/requirements.txt && rm /tmp/requirements.txt \
    && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin app
COPY service ./service
COPY --from=native /src/_fastpath*.so ./service/
COPY --from=artifact /artifact ./artifacts/default
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
# Exec form: SIGTERM reaches the server, which stops being ready and drains (docs/SERVING.md).
ENTRYPOINT ["python", "-m", "service", "serve"]

# ---- runtime-gpu: same code on a CUDA runtime base with onnxruntime-gpu ------------------------
FROM ${CUDA_IMAGE} AS runtime-gpu
ARG VERSION=0.1.0
ARG SOURCE=unset
LABEL org.opencontainers.image.title="sentiment-service-gpu" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE}"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SENTIMENT_HOST=0.0.0.0 \
    SENTIMENT_PORT=8000 \
    SENTIMENT_ARTIFACT=/app/artifacts/default \
    SENTIMENT_WORKERS=1 \
    SENTIMENT_DEVICE=auto \
    SENTIMENT_SHUTDOWN_DELAY_S=5 \
    SENTIMENT_DRAIN_TIMEOUT_S=30 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
# Ubuntu's python3 packages follow the base image's release; pinning their exact versions would
# break the build at every patch release of the base image.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv \
    && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin app
WORKDIR /app
COPY requirements/serve-gpu.txt /tmp/requirements.txt
RUN pip install --no-deps -r /tmp/requirements.txt && rm /tmp/requirements.txt
COPY service ./service
COPY --from=native-gpu /src/_fastpath*.so ./service/
COPY --from=artifact /artifact ./artifacts/default
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
ENTRYPOINT ["python", "-m", "service", "serve"]

# The default target is the CPU runtime.
FROM runtime
