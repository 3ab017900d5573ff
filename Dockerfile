# seqdream in a container. One file, two variants:
#   CPU:  docker build -t seqdream:cpu .
#   CUDA: docker build -t seqdream:cuda --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 .
# The CUDA wheels carry their own CUDA libraries; the host needs the NVIDIA driver and the
# NVIDIA Container Toolkit (`docker run --gpus all ...`). The image runs `seqdream`; pass the command:
#   docker run -p 8000:8000 -v seqdream-data:/data seqdream:cpu serve
#   docker run --gpus all -e SEQDREAM_DATABASE_URL=... seqdream:cuda worker --metrics-port 9100 --metrics-host 0.0.0.0
# Stopping: a running task gets SEQDREAM_SHUTDOWN_GRACE_S (7 s here, inside `docker stop`'s default
# 10 s) to finish, then goes back to the queue. For longer grace, raise both together:
#   docker run --stop-timeout 35 -e SEQDREAM_SHUTDOWN_GRACE_S=30 ...

# ---- build stage: everything installed into /opt/venv; build args stay in this stage -------------
FROM python:3.11-slim AS build
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
# torch first, from the variant's index, at the version constraints.txt pins; then the service.
COPY constraints.txt ./
RUN /opt/venv/bin/pip install --index-url "${TORCH_INDEX}" "$(grep -E '^torch==' constraints.txt)"
# The dependencies from pyproject.toml alone (a stub package), so a change to the source does not
# reinstall them; then the package itself.
COPY pyproject.toml README.md ./
RUN mkdir -p src/seqdream src/seqdream_devkit \
    && echo '__version__ = "0"' > src/seqdream/__init__.py && touch src/seqdream_devkit/__init__.py \
    && /opt/venv/bin/pip install -c constraints.txt ".[postgres,s3]" && rm -rf src
COPY src ./src
RUN /opt/venv/bin/pip install --no-deps --force-reinstall .

# ---- runtime stage: the virtual environment and nothing of the build ------------------------------
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    SEQDREAM_HOST=0.0.0.0 \
    SEQDREAM_DATA_DIR=/data \
    SEQDREAM_SHUTDOWN_GRACE_S=7
RUN apt-get update \
    && apt-get install -y --no-install-recommends libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/venv /opt/venv
RUN useradd --create-home --uid 10001 seqdream && mkdir -p /data && chown seqdream /data
USER seqdream
WORKDIR /home/seqdream
VOLUME ["/data"]
EXPOSE 8000 9100
# `seqdream health` asks whichever process runs here (serve on its port, a worker on its
# --metrics-port or by its heartbeat), so one check fits every command.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s CMD ["seqdream", "health"]
ENTRYPOINT ["seqdream"]
CMD ["serve"]
