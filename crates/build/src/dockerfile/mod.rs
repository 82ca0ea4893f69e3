//! The Dockerfile parser: text → [`Dockerfile`] (parser directives, the ARGs before the first
//! FROM, and the build stages with their instructions), following BuildKit's dockerfile
//! frontend. Nothing is expanded here: values keep their quotes and `$` references, and the
//! driver expands them with [`crate::shell`] when it runs the step.

pub mod flags;
mod instructions;
pub mod lines;

pub use instructions::{parse_instruction, Parsed};

use crate::error::ParseError;

/// Parser directives from the top of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// `# syntax=…` (recorded; berth has one frontend).
    pub syntax: Option<String>,
    /// `# escape=` the escape character: `\` (default) or `` ` ``.
    pub escape: char,
    /// `# check=…` (recorded, unused).
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            syntax: None,
            escape: '\\',
            check: None,
        }
    }
}

/// A heredoc body attached to a RUN, COPY or ADD line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter, quotes removed (`EOF`).
    pub name: String,
    /// The body, each line ending in `\n`; with `<<-` leading tabs are already removed.
    pub content: String,
    /// False when the delimiter was quoted (`<<"EOF"`): no variable expansion of the body.
    pub expand: bool,
    /// `<<-EOF`.
    pub chomp: bool,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub directives: Directives,
    /// ARGs before the first FROM: usable in FROM lines (and by stages that re-declare them).
    pub meta_args: Vec<ArgDecl>,
    pub stages: Vec<Stage>,
}

/// `FROM [--platform=P] IMAGE [AS NAME]` and the instructions up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// 0-based position among the stages (what `COPY --from=0` names).
    pub index: usize,
    pub from: From,
    pub line: usize,
    /// The FROM line as written (for `Step 1/5 : FROM …`).
    pub original: String,
    pub steps: Vec<Step>,
}

impl Stage {
    /// The stage's name (lowercased), if it has one.
    pub fn name(&self) -> Option<&str> {
        self.from.name.as_deref()
    }
}

/// The FROM instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    /// The image (or stage name) as written, unexpanded; `scratch` for an empty base.
    pub image: String,
    /// `--platform=`, unexpanded.
    pub platform: Option<String>,
    /// `AS name`, lowercased.
    pub name: Option<String>,
}

/// One instruction of a stage with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// 1-based line of the instruction's first line.
    pub line: usize,
    /// The instruction as written (continuations joined), as `Step N/M : …` prints it.
    pub original: String,
    pub instruction: Instruction,
}

/// Shell form (`RUN echo hi`) or exec form (`RUN ["echo", "hi"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    Exec(Vec<String>),
    Shell(String),
}

/// `RUN [--mount=…] [--network=…] [--security=…] command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub command: CommandLine,
    /// The `--mount=` values, unparsed (see [`crate::mounts::parse_mount`]).
    pub mounts: Vec<String>,
    /// `--network=default|none|host`.
    pub network: Option<String>,
    /// `--security=sandbox|insecure`.
    pub security: Option<String>,
    pub heredocs: Vec<Heredoc>,
}

/// The arguments of COPY and ADD.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopyArgs {
    /// Sources as written (unexpanded). A source that opens a heredoc (`<<EOF`) names the
    /// heredoc with the same position in `heredocs`.
    pub sources: Vec<String>,
    pub dest: String,
    /// `--from=stage|index|image` (COPY only).
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    /// `--checksum=` (ADD of a URL only).
    pub checksum: Option<String>,
    /// `--keep-git-dir` (ADD only).
    pub keep_git_dir: bool,
    /// `--parents` (COPY only).
    pub parents: bool,
    /// `--exclude=` patterns.
    pub excludes: Vec<String>,
    pub heredocs: Vec<Heredoc>,
}

/// `KEY=value` of ENV and LABEL; the value is raw (quotes and `$` references kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

/// One name of an ARG line, with its raw default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    pub default: Option<String>,
}

/// `HEALTHCHECK NONE` or `HEALTHCHECK [options] CMD …`. Durations in nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    /// `["NONE"]`, `["CMD", args…]` or `["CMD-SHELL", "command"]`.
    pub test: Vec<String>,
    pub interval: i64,
    pub timeout: i64,
    pub start_period: i64,
    pub start_interval: i64,
    pub retries: i64,
}

/// Every instruction but FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    Run(Run),
    Cmd(CommandLine),
    Entrypoint(CommandLine),
    Copy(CopyArgs),
    Add(CopyArgs),
    Env(Vec<KeyValue>),
    Arg(Vec<ArgDecl>),
    Label(Vec<KeyValue>),
    Expose(Vec<String>),
    User(String),
    Workdir(String),
    Volume(Vec<String>),
    Healthcheck(Healthcheck),
    Shell(Vec<String>),
    StopSignal(String),
    /// The trigger text (the instruction after `ONBUILD`), validated.
    OnBuild(String),
    Maintainer(String),
}

impl Instruction {
    /// The instruction's keyword, upper case.
    pub fn keyword(&self) -> &'static str {
        match self {
            Instruction::Run(_) => "RUN",
            Instruction::Cmd(_) => "CMD",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Copy(_) => "COPY",
            Instruction::Add(_) => "ADD",
            Instruction::Env(_) => "ENV",
            Instruction::Arg(_) => "ARG",
            Instruction::Label(_) => "LABEL",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::User(_) => "USER",
            Instruction::Workdir(_) => "WORKDIR",
            Instruction::Volume(_) => "VOLUME",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::Shell(_) => "SHELL",
            Instruction::StopSignal(_) => "STOPSIGNAL",
            Instruction::OnBuild(_) => "ONBUILD",
            Instruction::Maintainer(_) => "MAINTAINER",
        }
    }
}

/// Parses a whole Dockerfile.
pub fn parse(source: &str) -> Result<Dockerfile, ParseError> {
    let (directives, logical) = lines::split(source)?;
    if logical.is_empty() {
        return Err(ParseError::whole("Dockerfile cannot be empty"));
    }
    let mut meta_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for line in logical {
        let parsed = parse_instruction(&line.text, line.start_line, &directives, line.heredocs)?;
        match parsed {
            Parsed::From(from) => {
                if let Some(name) = &from.name {
                    if stages.iter().any(|s| s.name() == Some(name)) {
                        return Err(ParseError::at(
                            line.start_line,
                            format!("duplicate stage name {}", crate::gofmt::quote(name)),
                        ));
                    }
                }
                stages.push(Stage {
                    index: stages.len(),
                    from,
                    line: line.start_line,
                    original: line.text.trim().to_string(),
                    steps: Vec::new(),
                });
            }
            Parsed::Instruction(instruction) => match stages.last_mut() {
                Some(stage) => stage.steps.push(Step {
                    line: line.start_line,
                    original: line.text.trim().to_string(),
                    instruction,
                }),
                None => match instruction {
                    Instruction::Arg(args) => meta_args.extend(args),
                    _ => {
                        return Err(ParseError::at(
                            line.start_line,
                            "no build stage in current context",
                        ))
                    }
                },
            },
        }
    }
    if stages.is_empty() {
        return Err(ParseError::whole("no build stage in current context"));
    }
    Ok(Dockerfile {
        directives,
        meta_args,
        stages,
    })
}

#[cfg(test)]
mod tests;
