# expect: COPY failed: file not found in build context or excluded by .dockerignore: stat missing.txt: file does not exist
FROM busybox
COPY missing.txt /
