# One image per service, from the locked workspace: docker build --build-arg SERVICE=queen .
# SERVICE is the service's directory name under services/ (e.g. mcp-gateway).
FROM python:3.11-slim AS build
COPY --from=ghcr.io/astral-sh/uv:0.13 /uv /usr/local/bin/uv
ARG SERVICE
WORKDIR /app
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
# VERSION: every package reads the project's version from it at build time.
COPY pyproject.toml uv.lock VERSION ./
COPY libs ./libs
COPY services ./services
RUN test -n "$SERVICE" && uv sync --frozen --no-dev --no-editable --package "vsm-${SERVICE}"

FROM python:3.11-slim
ARG SERVICE
RUN groupadd --gid 10001 vsm \
    && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin vsm
COPY --from=build /app/.venv /app/.venv
COPY LICENSE /usr/share/doc/vsm/LICENSE
ENV PATH=/app/.venv/bin:$PATH \
    VSM_SERVICE=${SERVICE} \
    HTTP_HOST=0.0.0.0 \
    HTTP_PORT=8080 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["/bin/sh", "-c", "exec vsm-${VSM_SERVICE}"]
