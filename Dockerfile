# houseprice: the FastAPI service with a model trained at build time.
#
# Two stages on the same pinned base image, so the virtualenv built in the first one runs
# unchanged in the second (same interpreter path, same glibc):
#   build    installs the project wheel (no extras) into /opt/venv and trains the default model
#            from data/ames.csv, so every image carries a known artifact and its sha256;
#   runtime  only /opt/venv and the artifact: no compiler, no pip cache, no matplotlib, no tests.
#
#   docker build -t houseprice:0.1.0 .
#   docker run --rm -p 8000:8000 --read-only --tmpfs /tmp houseprice:0.1.0
#
# BASE_IMAGE is for machines that cannot pull it: CI builds this same file on a Debian bookworm
# image made from Debian's packages (`make image`, .ci/base-image), which has the same Python
# minor version and the `python` and `pip` commands this file uses.

ARG BASE_IMAGE=python:3.11.14-slim-bookworm

FROM ${BASE_IMAGE} AS build

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src

# Sources first, data last: editing the data retrains without rebuilding the wheel.
COPY pyproject.toml README.md LICENSE ./
COPY requirements/runtime.txt requirements/runtime.txt
COPY model/ model/
COPY app/ app/

# The runtime dependencies come from the hashed lock only: --require-hashes refuses any file
# whose sha256 is not in it, --no-deps pulls in nothing outside it, and `pip check` proves the
# lock is complete for the wheel (built here from these sources, installed apart). No extras.
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --require-hashes --no-deps \
        --requirement requirements/runtime.txt \
    && /opt/venv/bin/pip install --no-deps /wheels/houseprice-0.1.0-py3-none-any.whl \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/pip uninstall --yes pip

COPY configs/ configs/
COPY data/ames.csv data/ames.csv

# Train the default model; the artifact, its .sha256 and model.json go to /artifacts.
# /models is the mount point of the compose `train` service's shared volume: created here
# owned by the service user so a fresh named volume inherits a writable owner.
RUN /opt/venv/bin/houseprice train --config configs/ames.toml \
        --out /artifacts/model.joblib --runs-dir /tmp/runs --no-plots --quiet \
    && mkdir /models \
    && chown 10001:10001 /models


FROM ${BASE_IMAGE} AS runtime

# One uvicorn worker per container: the drift window lives in process memory and counters stay
# per process, so scaling is by replicas, each scraped on its own (docs/ARCHITECTURE.md).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    MODEL_PATH=/app/artifacts/model.joblib

RUN groupadd --system --gid 10001 houseprice \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /tmp --shell /usr/sbin/nologin houseprice \
    && mkdir /models \
    && chown 10001:10001 /models

COPY --from=build /opt/venv /opt/venv
COPY --from=build /artifacts /app/artifacts

WORKDIR /app
USER 10001:10001
EXPOSE 8000

# No curl in the slim image; the interpreter is already there.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=2)"]

# Exec form: the server (app/serve.py: one uvicorn worker) is PID 1 and receives SIGTERM:
# readiness turns 503, then in-flight requests drain for up to SHUTDOWN_TIMEOUT (20 s).
ENTRYPOINT ["python", "-m", "app", "--host", "0.0.0.0", "--port", "8000"]
