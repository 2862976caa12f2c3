FROM onbuild AS parent
ONBUILD COPY --from=busybox /bin/sh /bin/sh

FROM parent
RUN echo child
