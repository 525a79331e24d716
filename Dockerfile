# One image for every service, the retry worker and the operator:
#   docker run IMAGE <service>    runs `python -m ticketing <service>`.
#
# The base is pinned to an exact release, the interpreter the test suite runs on (3.11.7), so
# the image runs what tests/charts replays; docs/deploy.md says how to add its digest. Where no
# registry can be reached, `./dev cluster up` passes BASE_IMAGE: Debian bookworm's own Python
# 3.11, made from Debian packages by scripts/cluster/images.sh.
ARG BASE_IMAGE=python:3.11.7-slim-bookworm

FROM ${BASE_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/ticketing \
    WHEEL_DIR=/tmp/wheels
WORKDIR /src
RUN python3 -m venv "$VIRTUAL_ENV"
# The dependencies first, from pyproject.toml alone: this layer is rebuilt only when they change.
# pip takes them from PyPI. A build that cannot reach PyPI (`./dev cluster up` here) puts their
# wheels in .wheels/ and passes PIP_NO_INDEX=1: the optional `.wheel[s]` source copies them
# beside pyproject.toml, where pip finds them; without .wheels/ it copies nothing.
ARG PIP_NO_INDEX
ENV PIP_FIND_LINKS=/src
COPY pyproject.toml .wheel[s] ./
RUN python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' > requirements.txt \
    && "$VIRTUAL_ENV/bin/pip" install -r requirements.txt
# Then the code, as a wheel installed without touching the dependencies again.
COPY README.md ./
COPY services ./services
COPY operator ./operator
RUN "$VIRTUAL_ENV/bin/pip" wheel --no-deps --wheel-dir "$WHEEL_DIR" . \
    && "$VIRTUAL_ENV/bin/pip" install --no-deps "$WHEEL_DIR"/ticketing-*.whl

FROM ${BASE_IMAGE}
RUN groupadd --system --gid 10001 ticketing \
    && useradd --system --uid 10001 --gid ticketing --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin ticketing
ENV VIRTUAL_ENV=/opt/ticketing \
    PATH=/opt/ticketing/bin:/usr/local/bin:/usr/bin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TICKETING_HTTP_HOST=0.0.0.0
COPY --from=builder /opt/ticketing /opt/ticketing
# Numeric, so Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["python", "-m", "ticketing"]
CMD ["--help"]
