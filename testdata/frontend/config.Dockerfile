# test: platform=linux/arm64 epoch=1
FROM nopath
MAINTAINER someone@example.com
SHELL ["/bin/bash", "-eo", "pipefail", "-c"]
RUN echo with bash
ENV PATH=/custom/bin:$PATH HOME=/home/app
USER app
WORKDIR /home/app
VOLUME /data /cache
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=3s --retries=2 CMD wget -q localhost
ONBUILD RUN echo child
ENTRYPOINT exec /app
ARG TARGETARCH
RUN echo $TARGETARCH $BUILDPLATFORM
