# expect: The command '/bin/sh -c false' returned a non-zero code: 1
FROM busybox
RUN false
