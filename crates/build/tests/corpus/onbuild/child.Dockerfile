FROM onbuild-parent
RUN touch /child
