from busybox as Build
ENV SECRET_TOKEN=x
WORKDIR rel
CMD one
CMD two
ENV legacy value
