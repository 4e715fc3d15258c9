# watcher: one image for `watcher run`, `watcher simulate` and the other commands.
# Built by docker-compose.yml (`build: .`); rules and config are mounted, not baked in.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY watcher ./watcher
RUN pip install . && rm -rf /src

# Rule paths in the config are relative (rules/default.yaml), so they resolve against this
# working directory; compose mounts ./rules here. Faust keeps its local state here too.
RUN useradd --create-home --uid 10001 watcher && mkdir -p /srv/watcher && chown watcher /srv/watcher
WORKDIR /srv/watcher
COPY --chown=watcher rules ./rules
USER watcher

ENTRYPOINT ["watcher"]
CMD ["--help"]
