# test: target=test label=team=core
FROM busybox AS base
RUN echo base > /base

FROM base AS test
RUN echo test

FROM base AS release
RUN echo release
