//! `berth-runtime`: berth's OCI runtime as one executable with runc's command line, for
//! daemon.json `runtimes` and the shim.
#![forbid(unsafe_code)]

fn main() {
    berth_runtime::cli::main()
}
