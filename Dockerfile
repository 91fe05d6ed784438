# One image for every app of the shop: `python -m orchestrator` (order-api), `python -m payment`, `python -m inventory`,
# `python -m shipping`, `python -m notification`, and `python -m common.migrate PACKAGE`, which each Deployment's init
# container runs before its app (deploy/). Build it at the repository's root:
#   docker build -t dapr-saga-fulfillment:0.1.0 .
# The base is pinned by its version tag; pin its digest too where your registry policy asks for one.
FROM python:3.11.7-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY common common
COPY orchestrator orchestrator
COPY inventory inventory
COPY payment payment
COPY shipping shipping
COPY notification notification
COPY sidecar sidecar
COPY realdapr realdapr
COPY devtools devtools
COPY shop shop
COPY chaos chaos
# The project and every dependency as wheels, from the project's own metadata (pyproject.toml).
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11.7-slim-bookworm
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels dapr-saga-fulfillment \
    && rm -rf /wheels \
    && useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin shop
# Not root; no shell login; nothing written outside /tmp.
USER 10001:10001
WORKDIR /tmp
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    APP_HOST=0.0.0.0
# Each Deployment says which app this container is (deploy/base/apps/*.yaml `command:`); alone, the image is the
# order-api.
CMD ["python", "-m", "orchestrator"]
