//! berth-daemon: the Docker Engine API served over HTTP on top of berth-engine.
