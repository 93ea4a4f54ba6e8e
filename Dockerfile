# syntax=docker/dockerfile:1
# jitsynth producer image: docker build -t jitsynth:0.1.0 .
#
# Two stages: `build` installs the pinned dependencies (infra/requirements.lock) and
# jitsynth into a virtual environment and trims it; `runtime` copies only that environment
# onto a fresh Python (no compiler, pip, caches or sources), runs as an unprivileged user
# and starts `jitsynth` directly (exec form), so SIGTERM from `docker stop` / Kubernetes
# reaches the producer, which commits its open shard within the grace period (25 s by
# default) and exits 0.
# No credentials are baked in: pass AWS_* at run time (compose env, Kubernetes Secret).
# Pin the base by digest for reproducible builds: --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:...
# Both stages use the same base on purpose: the environment's interpreter is a link to the
# base's python at the same path. infra/smoke.sh builds and runs this file with podman.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# binutils for `strip` below; this stage is thrown away.
RUN apt-get update \
    && apt-get install -y --no-install-recommends binutils \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/jitsynth
WORKDIR /src
# Dependencies first: this layer is reused until the lock file changes.
COPY infra/requirements.lock ./requirements.lock
RUN /opt/jitsynth/bin/pip install --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY synth ./synth
COPY stream ./stream
COPY sinks ./sinks
RUN /opt/jitsynth/bin/pip install --no-deps . \
    && /opt/jitsynth/bin/pip check \
    && /opt/jitsynth/bin/jitsynth --help > /dev/null
# The lock holds the runtime dependencies only: not the `data` extra (datasketch, scipy,
# pyarrow, matplotlib), which only `dedup --near`, `export --format parquet` and `card` plots
# use; those say in one line to pip install 'jitsynth[data]'.
# Trim what the producer never loads (measured: README "Container image"):
# - pip and setuptools: nothing installs at run time;
# - numpy's test suites (warp.tests and warp.examples stay: `jitsynth ingest warp.examples
#   warp.tests` reads their kernels);
# - debug info in extension modules (zstandard's two: 23.7 -> 2.1 MB; aiohttp, multidict, yarl...).
#   The auditwheel-patched libraries in *.libs/ are left alone (strip can break patched
#   ELF files) and so is warp/bin (Warp's clang/LLVM and NVRTC, needed for cpu-compile and ptx);
# - botocore's models of AWS services other than S3 and the credential chain's STS / SSO.
# Byte code stays compiled: with a read-only root filesystem nothing could cache it later.
RUN /opt/jitsynth/bin/pip uninstall -y -q pip setuptools \
    && cd /opt/jitsynth/lib/python3*/site-packages \
    && rm -rf numpy/*/tests numpy/tests \
    && find . -name '*.so' -not -path './*.libs/*' -not -path './warp/*' -exec strip --strip-debug {} + \
    && find botocore/data -mindepth 1 -maxdepth 1 -type d \
         -not -name s3 -not -name sts -not -name sso -not -name sso-oidc -exec rm -rf {} + \
    && /opt/jitsynth/bin/python -c "import numpy, zstandard, aiohttp, warp, synth.gen.families, boto3; boto3.client('s3', region_name='us-east-1'); boto3.client('sts', region_name='us-east-1')" \
    && /opt/jitsynth/bin/jitsynth sample --seed 1 > /dev/null

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="jitsynth" \
      org.opencontainers.image.description="Warp kernels paired with Warp's generated C++/CUDA, streamed to S3 or a directory" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 jitsynth \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/jitsynth --create-home --shell /usr/sbin/nologin jitsynth \
    && mkdir -p /var/cache/jitsynth /data \
    && chown 10001:10001 /var/cache/jitsynth /data
COPY --from=build /opt/jitsynth /opt/jitsynth
# State (dedup index cache) and Warp's kernel cache live under /var/cache/jitsynth: mount
# an emptyDir / volume there when the root filesystem is read-only. Losing it is safe:
# a producer rebuilds its index from the bucket's commits.
ENV PATH=/opt/jitsynth/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    XDG_CACHE_HOME=/var/cache/jitsynth \
    WARP_CACHE_PATH=/var/cache/jitsynth/warp \
    JITSYNTH_LOG_FORMAT=json
USER 10001:10001
WORKDIR /data
# Prometheus metrics when JITSYNTH_METRICS_PORT=9108 and JITSYNTH_METRICS_HOST=0.0.0.0.
EXPOSE 9108
ENTRYPOINT ["jitsynth"]
CMD ["--help"]
