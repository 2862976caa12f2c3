FROM busybox
ENV A=b
WORKDIR /x
RUN make
COPY . /src
CMD echo hi
