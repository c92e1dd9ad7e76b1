# trentd in a container. UNTESTED here: the machines this project is built on run no Docker
# engine, and CI never calls docker. Build: docker build -t trentd .
# Run:   docker run -p 4599:4599 -v trentd-data:/data trentd
#        (first start prints the administrator's access key and writes /data/admin-credentials)
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . \
 && rm -rf /src \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin trentd \
 && mkdir -p /data \
 && chown trentd:trentd /data

USER trentd
WORKDIR /data
VOLUME ["/data"]
EXPOSE 4599

# Every flag has an environment variable (docs/configuration.md): TRENTD_DATABASE,
# TRENTD_ROOT_KEY_FILE, TRENTD_TLS_SELF_SIGNED=1, TRENTD_WORKERS, ...
ENV TRENTD_DATA_DIR=/data \
    TRENTD_HOST=0.0.0.0 \
    TRENTD_PORT=4599

HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:4599/healthz', timeout=2).status != 200)"

ENTRYPOINT ["trentd"]
CMD ["serve", "--host", "0.0.0.0", "--data-dir", "/data"]
