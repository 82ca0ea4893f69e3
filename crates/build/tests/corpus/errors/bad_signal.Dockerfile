# expect: dockerfile parse error on line 3: Invalid signal: SIGNOPE
FROM busybox
STOPSIGNAL SIGNOPE
