# One image for every Secure Email process: `securemail web` (the default), `securemail
# worker` and `securemail migrate`; docker-compose.yml runs each from it.

FROM python:3.11-slim AS build
# The production set from uv.lock, the lock `make run` and `make test` install from: the
# same versions and hashes, without the dev and test extras. uv stays in this stage.
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_PROJECT_ENVIRONMENT=/opt/securemail UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_NO_CACHE=1
RUN pip install uv==0.13.8 && python -m venv /opt/securemail
WORKDIR /src
# The dependencies first: this layer changes only with the lock.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-install-project --no-editable
# Only what the package is built from (see .dockerignore): tests and tools stay out.
COPY domain ./domain
COPY infra ./infra
COPY activities ./activities
COPY workflows ./workflows
COPY workers ./workers
COPY web ./web
# The patient's languages, compiled as `make run` does (the .mo files are not committed).
RUN /opt/securemail/bin/pybabel compile -d infra/i18n/locales \
    && uv sync --locked --no-editable

FROM python:3.11-slim
# A fixed uid, so volumes and a read-only root file system can be granted to it.
RUN useradd --system --uid 10001 --create-home --home-dir /home/securemail securemail
COPY --from=build /opt/securemail /opt/securemail
ENV PATH=/opt/securemail/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SECURE_EMAIL_ENVIRONMENT=production \
    SECURE_EMAIL_DATA_DIR=/home/securemail/data \
    SECURE_EMAIL_WEB_HOST=0.0.0.0
USER securemail
WORKDIR /home/securemail
EXPOSE 8000
# Exec form: the process is PID 1 and gets SIGTERM itself, which lets the web app
# finish open requests and the worker finish its activities before stopping.
CMD ["securemail", "web"]
