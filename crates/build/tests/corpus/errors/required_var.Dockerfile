# expect: dockerfile parse error on line 3: UNSET: must be set
FROM busybox
ENV X="${UNSET:?must be set}"
