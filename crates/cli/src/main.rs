//! `berth`: a Docker-compatible command line that talks to the berth daemon over the Docker
//! Engine API (v1.50). It links neither the daemon nor the runtime: `berth daemon`,
//! `berth runtime` and `berth registry` exec the `berthd`, `berth-runtime` and
//! `berth-registry` binaries installed next to it (`commands/engine.rs`).
#![forbid(unsafe_code)]

mod client;
mod commands;
mod jsonfmt;
mod stream;
mod transport;
mod tty;

use berth_format::{format, human};

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use commands::*;

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    about = "A self-sufficient runtime for containers",
    disable_version_flag = true,
    disable_help_subcommand = true,
    subcommand_required = false,
    arg_required_else_help = true
)]
struct Cli {
    /// Daemon socket to connect to
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    host: Option<String>,
    #[command(flatten)]
    tls: transport::TlsFlags,
    /// Enable debug mode
    #[arg(short = 'D', long = "debug")]
    debug: bool,
    /// Set the logging level
    #[arg(short = 'l', long = "log-level", value_name = "LEVEL")]
    log_level: Option<String>,
    /// Print version information and quit
    #[arg(short = 'v', long = "version")]
    version: bool,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create and run a new container from an image
    #[command(disable_help_flag = true)]
    Run(run::RunArgs),
    /// Create a new container
    #[command(disable_help_flag = true)]
    Create(run::CreateArgs),
    /// Start one or more stopped containers
    Start(start::StartArgs),
    /// Stop one or more running containers
    Stop(stop::StopArgs),
    /// Restart one or more containers
    Restart(stop::StopArgs),
    /// Kill one or more running containers
    Kill(stop::KillArgs),
    /// Remove one or more containers
    Rm(rm::RmArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(wait::WaitArgs),
    /// Pause all processes within one or more containers
    Pause(pause::PauseArgs),
    /// Unpause all processes within one or more containers
    Unpause(pause::PauseArgs),
    /// List containers
    Ps(ps::PsArgs),
    /// Fetch the logs of a container
    Logs(logs::LogsArgs),
    /// Execute a command in a running container
    Exec(exec::ExecArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(attach::AttachArgs),
    /// Return low-level information on Docker objects
    Inspect(inspect::InspectArgs),
    /// List images
    Images(images::ImagesArgs),
    /// Remove one or more images
    Rmi(rmi::RmiArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(tag::TagArgs),
    /// Show the history of an image
    History(history::HistoryArgs),
    /// Load an image from a tar archive or STDIN
    Load(load::LoadArgs),
    /// Download an image from a registry
    Pull(commands::pull::PullArgs),
    /// Upload an image to a registry
    Push(commands::pull::PushArgs),
    /// Authenticate to a registry
    Login(commands::login::LoginArgs),
    /// Log out from a registry
    Logout(commands::login::LogoutArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(save::SaveArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(import::ImportArgs),
    /// Show the Docker version information
    Version(version::VersionArgs),
    /// Display system-wide information
    Info(info::InfoArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCmd),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCmd),
    /// Manage networks
    #[command(subcommand)]
    Network(commands::network::NetworkCmd),
    /// Get real time events from the server
    Events(commands::events::EventsArgs),
    /// Update configuration of one or more containers
    Update(commands::update::UpdateArgs),
    /// Rename a container
    Rename(commands::update::RenameArgs),
    /// Build an image from a Dockerfile
    Build(commands::build::BuildArgs),
    /// Create a new image from a container's changes
    Commit(commands::build::CommitArgs),
    /// Manage builds
    #[command(subcommand)]
    Builder(commands::build::BuilderCmd),
    /// Manage volumes
    #[command(subcommand)]
    Volume(commands::volume::VolumeCmd),
    /// List port mappings or a specific mapping for the container
    Port(commands::port::PortArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(commands::cp::CpArgs),
    /// Export a container's filesystem as a tar archive
    Export(commands::export::ExportArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(commands::diff::DiffArgs),
    /// Display the running processes of a container
    Top(commands::top::TopArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(commands::stats::StatsArgs),
    /// Manage Docker
    #[command(subcommand)]
    System(SystemCmd),
    /// Manage image signing keys (berth only)
    #[command(subcommand)]
    Trust(commands::trust::TrustCmd),
    /// Run the berth daemon
    Daemon(engine::DaemonArgs),
    /// berth's OCI runtime, with runc's command line
    Runtime(engine::RuntimeArgs),
    /// berth's OCI distribution registry: `serve`, `gc [--dry-run]`
    Registry(engine::RegistryArgs),
}

#[derive(Subcommand, Debug)]
enum ContainerCmd {
    /// List containers
    #[command(visible_aliases = ["list", "ps"])]
    Ls(ps::PsArgs),
    #[command(disable_help_flag = true)]
    Run(run::RunArgs),
    #[command(disable_help_flag = true)]
    Create(run::CreateArgs),
    Start(start::StartArgs),
    Stop(stop::StopArgs),
    Restart(stop::StopArgs),
    Kill(stop::KillArgs),
    #[command(visible_alias = "remove")]
    Rm(rm::RmArgs),
    Wait(wait::WaitArgs),
    Pause(pause::PauseArgs),
    Unpause(pause::PauseArgs),
    Logs(logs::LogsArgs),
    Exec(exec::ExecArgs),
    Attach(attach::AttachArgs),
    Inspect(inspect::TypedInspectArgs),
    /// Remove all stopped containers
    Prune(prune::PruneArgs),
    Cp(commands::cp::CpArgs),
    Export(commands::export::ExportArgs),
    Diff(commands::diff::DiffArgs),
    Top(commands::top::TopArgs),
    Stats(commands::stats::StatsArgs),
    Commit(commands::build::CommitArgs),
}

#[derive(Subcommand, Debug)]
enum ImageCmd {
    #[command(visible_aliases = ["list"])]
    Ls(images::ImagesArgs),
    #[command(visible_alias = "remove")]
    Rm(rmi::RmiArgs),
    Inspect(inspect::TypedInspectArgs),
    Tag(tag::TagArgs),
    History(history::HistoryArgs),
    /// Remove unused images
    Prune(prune::ImagePruneArgs),
    Load(load::LoadArgs),
    Save(save::SaveArgs),
    Import(import::ImportArgs),
    Pull(commands::pull::PullArgs),
    Push(commands::pull::PushArgs),
    Build(commands::build::BuildArgs),
    /// Show the images a tag pointed to, newest first (berth only)
    Log(commands::taglog::TagLogArgs),
    /// Point a tag back at its previous image (berth only)
    Rollback(commands::taglog::RollbackArgs),
    /// Sign an image in its registry with a cosign key (berth only)
    Sign(commands::trust::SignArgs),
}

#[derive(Subcommand, Debug)]
enum SystemCmd {
    /// Display system-wide information
    Info(info::InfoArgs),
    /// Show docker disk usage
    Df(commands::system::DfArgs),
    /// Remove unused data
    Prune(commands::system::SystemPruneArgs),
}

async fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    let c = client::Client::new(cli.host.clone(), &cli.tls)?;
    let cmd = match cli.cmd {
        Some(c) => c,
        None => return Ok(0),
    };
    match cmd {
        Cmd::Run(a) => run::run(&c, a).await,
        Cmd::Create(a) => run::create(&c, a).await,
        Cmd::Start(a) => start::run(&c, a).await,
        Cmd::Stop(a) => stop::stop(&c, a, false).await,
        Cmd::Restart(a) => stop::stop(&c, a, true).await,
        Cmd::Kill(a) => stop::kill(&c, a).await,
        Cmd::Rm(a) => rm::run(&c, a).await,
        Cmd::Wait(a) => wait::run(&c, a).await,
        Cmd::Pause(a) => pause::run(&c, a, true).await,
        Cmd::Unpause(a) => pause::run(&c, a, false).await,
        Cmd::Ps(a) => ps::run(&c, a).await,
        Cmd::Logs(a) => logs::run(&c, a).await,
        Cmd::Exec(a) => exec::run(&c, a).await,
        Cmd::Attach(a) => attach::run(&c, a).await,
        Cmd::Inspect(a) => inspect::run(&c, a).await,
        Cmd::Images(a) => images::run(&c, a).await,
        Cmd::Rmi(a) => rmi::run(&c, a).await,
        Cmd::Tag(a) => tag::run(&c, a).await,
        Cmd::History(a) => history::run(&c, a).await,
        Cmd::Load(a) => load::run(&c, a).await,
        Cmd::Pull(a) => commands::pull::pull(&c, a).await,
        Cmd::Push(a) => commands::pull::push(&c, a).await,
        Cmd::Login(a) => commands::login::login(&c, a).await,
        Cmd::Logout(a) => commands::login::logout(&c, a).await,
        Cmd::Save(a) => save::run(&c, a).await,
        Cmd::Import(a) => import::run(&c, a).await,
        Cmd::Version(a) => version::run(&c, a).await,
        Cmd::Info(a) | Cmd::System(SystemCmd::Info(a)) => info::run(&c, a).await,
        Cmd::System(SystemCmd::Df(a)) => commands::system::df(&c, a).await,
        Cmd::System(SystemCmd::Prune(a)) => commands::system::prune(&c, a).await,
        Cmd::Container(cc) => match cc {
            ContainerCmd::Ls(a) => ps::run(&c, a).await,
            ContainerCmd::Run(a) => run::run(&c, a).await,
            ContainerCmd::Create(a) => run::create(&c, a).await,
            ContainerCmd::Start(a) => start::run(&c, a).await,
            ContainerCmd::Stop(a) => stop::stop(&c, a, false).await,
            ContainerCmd::Restart(a) => stop::stop(&c, a, true).await,
            ContainerCmd::Kill(a) => stop::kill(&c, a).await,
            ContainerCmd::Rm(a) => rm::run(&c, a).await,
            ContainerCmd::Wait(a) => wait::run(&c, a).await,
            ContainerCmd::Pause(a) => pause::run(&c, a, true).await,
            ContainerCmd::Unpause(a) => pause::run(&c, a, false).await,
            ContainerCmd::Logs(a) => logs::run(&c, a).await,
            ContainerCmd::Exec(a) => exec::run(&c, a).await,
            ContainerCmd::Attach(a) => attach::run(&c, a).await,
            ContainerCmd::Inspect(a) => inspect::run_typed(&c, a, inspect::Kind::Container).await,
            ContainerCmd::Prune(a) => prune::containers(&c, a).await,
            ContainerCmd::Cp(a) => commands::cp::run(&c, a).await,
            ContainerCmd::Export(a) => commands::export::run(&c, a).await,
            ContainerCmd::Diff(a) => commands::diff::run(&c, a).await,
            ContainerCmd::Top(a) => commands::top::run(&c, a).await,
            ContainerCmd::Stats(a) => commands::stats::run(&c, a).await,
            ContainerCmd::Commit(a) => commands::build::commit(&c, a).await,
        },
        Cmd::Network(nc) => commands::network::run(&c, nc).await,
        Cmd::Volume(vc) => commands::volume::run(&c, vc).await,
        Cmd::Trust(tc) => commands::trust::run(tc),
        Cmd::Events(a) => commands::events::run(&c, a).await,
        Cmd::Update(a) => commands::update::update(&c, a).await,
        Cmd::Rename(a) => commands::update::rename(&c, a).await,
        Cmd::Build(a) => commands::build::build(&c, a).await,
        Cmd::Commit(a) => commands::build::commit(&c, a).await,
        Cmd::Builder(b) => commands::build::builder(&c, b).await,
        Cmd::Port(a) => commands::port::run(&c, a).await,
        Cmd::Cp(a) => commands::cp::run(&c, a).await,
        Cmd::Export(a) => commands::export::run(&c, a).await,
        Cmd::Diff(a) => commands::diff::run(&c, a).await,
        Cmd::Top(a) => commands::top::run(&c, a).await,
        Cmd::Stats(a) => commands::stats::run(&c, a).await,
        Cmd::Image(ic) => match ic {
            ImageCmd::Ls(a) => images::run(&c, a).await,
            ImageCmd::Rm(a) => rmi::run(&c, a).await,
            ImageCmd::Inspect(a) => inspect::run_typed(&c, a, inspect::Kind::Image).await,
            ImageCmd::Tag(a) => tag::run(&c, a).await,
            ImageCmd::History(a) => history::run(&c, a).await,
            ImageCmd::Prune(a) => prune::images(&c, a).await,
            ImageCmd::Load(a) => load::run(&c, a).await,
            ImageCmd::Pull(a) => commands::pull::pull(&c, a).await,
            ImageCmd::Push(a) => commands::pull::push(&c, a).await,
            ImageCmd::Save(a) => save::run(&c, a).await,
            ImageCmd::Import(a) => import::run(&c, a).await,
            ImageCmd::Build(a) => commands::build::build(&c, a).await,
            ImageCmd::Log(a) => commands::taglog::log(&c, a).await,
            ImageCmd::Rollback(a) => commands::taglog::rollback(&c, a).await,
            ImageCmd::Sign(a) => commands::trust::sign(&c, a).await,
        },
        Cmd::Daemon(_) | Cmd::Runtime(_) | Cmd::Registry(_) => unreachable!(),
    }
}

fn main() -> ExitCode {
    if let Some(failed) = engine::exec_if_engine_command() {
        return failed;
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return berth_usage::report(&e),
    };
    if cli.version {
        println!(
            "Berth version {}, build {}",
            env!("CARGO_PKG_VERSION"),
            option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown")
        );
        return ExitCode::SUCCESS;
    }
    // after global flags (`berth -D daemon …`); the usual form execs before parsing
    match cli.cmd {
        Some(Cmd::Daemon(a)) => return engine::exec("daemon", a.args),
        Some(Cmd::Runtime(a)) => return engine::exec("runtime", a.args),
        Some(Cmd::Registry(a)) => return engine::exec("registry", a.args),
        _ => {}
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth: {e}");
            return ExitCode::from(125);
        }
    };
    let code = match rt.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            tty::restore();
            if let Some(x) = e.downcast_ref::<client::Exit>() {
                if let Some(m) = &x.msg {
                    eprintln!("{m}");
                }
                x.code
            } else {
                eprintln!("{e}");
                125
            }
        }
    };
    tty::restore();
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // exit without waiting for the runtime (a thread may still be blocked reading stdin)
    std::process::exit(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_valid() {
        Cli::command().debug_assert();
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("berth").chain(args.iter().copied()))
    }

    #[test]
    fn run_args_stop_at_image() {
        let cli = parse(&["run", "--rm", "-it", "busybox", "sh", "-c", "ls -l"]).unwrap();
        let Some(Cmd::Run(a)) = cli.cmd else {
            panic!("not run")
        };
        assert!(a.opts.rm && a.opts.interactive && a.opts.tty);
        assert_eq!(a.image.as_deref(), Some("busybox"));
        assert_eq!(a.cmd, vec!["sh", "-c", "ls -l"]);
        let cli = parse(&["run", "busybox", "ls", "-l", "--rm"]).unwrap();
        let Some(Cmd::Run(a)) = cli.cmd else {
            panic!("not run")
        };
        assert!(!a.opts.rm);
        assert_eq!(a.cmd, vec!["ls", "-l", "--rm"]);
        let cli = parse(&["-H", "unix:///x.sock", "container", "ls", "-a"]).unwrap();
        assert_eq!(cli.host.as_deref(), Some("unix:///x.sock"));
        let cli = parse(&["exec", "-it", "c1", "sh", "-c", "echo -n x"]).unwrap();
        let Some(Cmd::Exec(a)) = cli.cmd else {
            panic!("not exec")
        };
        assert_eq!(a.cmd, vec!["sh", "-c", "echo -n x"]);
    }

    #[test]
    fn docker_style_errors() {
        let e = parse(&["run"]).unwrap_err();
        let m = berth_usage::usage_error(&e).unwrap();
        assert!(
            m.contains("'berth run' requires at least 1 argument"),
            "{m}"
        );
        let e = parse(&["ps", "--nope"]).unwrap_err();
        let m = berth_usage::usage_error(&e).unwrap();
        assert!(m.starts_with("unknown flag: --nope"), "{m}");
        let e = parse(&["exec", "c1"]).unwrap_err();
        assert!(berth_usage::usage_error(&e)
            .unwrap()
            .contains("requires at least 2 arguments"));
    }

    #[test]
    fn engine_commands_pass_everything_through() {
        let cli = parse(&["-D", "daemon", "--nope", "--help"]).unwrap();
        let Some(Cmd::Daemon(a)) = cli.cmd else {
            panic!("not daemon")
        };
        assert_eq!(a.args, vec!["--nope", "--help"]);
        let cli = parse(&["runtime", "--root", "/r", "run", "--bundle", "/b", "c1"]).unwrap();
        let Some(Cmd::Runtime(a)) = cli.cmd else {
            panic!("not runtime")
        };
        assert_eq!(a.args.len(), 6);
        let cli = parse(&["registry", "gc", "--dry-run", "--root", "/r"]).unwrap();
        let Some(Cmd::Registry(a)) = cli.cmd else {
            panic!("not registry")
        };
        assert_eq!(a.args, vec!["gc", "--dry-run", "--root", "/r"]);
    }
}
