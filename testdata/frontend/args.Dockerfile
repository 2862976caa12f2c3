# test: build-arg=B=fromcli
ARG A=global
FROM empty AS other
RUN echo "$TARGETPLATFORM" > /p

FROM busybox
ARG A
ARG B=default
ARG C
ENV B=env-overrides
RUN echo $A $B $C
ARG B
RUN echo $B ${UNDEFINED}
COPY --from=other /p /p
