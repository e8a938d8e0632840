# Pointsman controller image: follows a git branch and keeps AWS matching its spec.
FROM python:3.12-slim

# git for the spec repository, ssh for ssh:// remotes.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends git openssh-client ca-certificates \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/pointsman
COPY pyproject.toml README.md ./
COPY controller ./controller
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --create-home --home-dir /home/pointsman pointsman \
    && mkdir -p /var/lib/pointsman \
    && chown pointsman /var/lib/pointsman

ENV POINTSMAN_STATE_DIR=/var/lib/pointsman \
    POINTSMAN_LISTEN=0.0.0.0:8080 \
    PYTHONUNBUFFERED=1
VOLUME ["/var/lib/pointsman"]
EXPOSE 8080
USER 10001

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["pointsman"]
CMD ["run"]
