# expect: dockerfile parse error on line 4: unknown instruction: FORM
FROM busybox
RUN true
FORM x
