# seqdream in a container. One file, two variants:
#   CPU:  docker build -t seqdream:cpu .
#   CUDA: docker build -t seqdream:cuda --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 .
# The CUDA wheels carry their own CUDA libraries; the host needs the NVIDIA driver and the
# NVIDIA Container Toolkit (`docker run --gpus all ...`). The image runs `seqdream`; pass the command:
#   docker run -p 8000:8000 -v seqdream-data:/data seqdream:cpu serve
#   docker run --gpus all -e SEQDREAM_DATABASE_URL=... seqdream:cuda worker --metrics-port 9100
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SEQDREAM_HOST=0.0.0.0 \
    SEQDREAM_DATA_DIR=/data

RUN apt-get update \
    && apt-get install -y --no-install-recommends curl libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# torch first, from the variant's index, at the version constraints.txt pins; then the service.
COPY constraints.txt ./
RUN pip install --index-url "${TORCH_INDEX}" "$(grep -E '^torch==' constraints.txt)"
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install -c constraints.txt ".[postgres,s3]"

RUN useradd --create-home --uid 10001 seqdream && mkdir -p /data && chown seqdream /data
USER seqdream
VOLUME ["/data"]
EXPOSE 8000 9100
HEALTHCHECK --interval=15s --timeout=3s --start-period=120s \
    CMD curl -fsS "http://127.0.0.1:${SEQDREAM_PORT:-8000}/health/live" || exit 1
ENTRYPOINT ["seqdream"]
CMD ["serve"]
