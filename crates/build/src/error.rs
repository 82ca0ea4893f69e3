//! The crate's errors: Dockerfile syntax errors (with the line, in Docker's wording) and build
//! failures (a step's error, the backend's errors).

/// A Dockerfile syntax or validation error. Displayed as BuildKit does:
/// `dockerfile parse error on line 3: unknown instruction: FORM`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ParseError {
    /// 1-based line of the instruction; `None` for errors about the whole file.
    pub line: Option<usize>,
    pub message: String,
}

impl ParseError {
    pub fn at(line: usize, message: impl Into<String>) -> Self {
        ParseError {
            line: Some(line),
            message: message.into(),
        }
    }

    pub fn whole(message: impl Into<String>) -> Self {
        ParseError {
            line: None,
            message: message.into(),
        }
    }

    fn render(&self) -> String {
        match self.line {
            Some(l) => format!("dockerfile parse error on line {l}: {}", self.message),
            None => self.message.clone(),
        }
    }
}

/// An error of the backend (engine, image store), passed through by the driver.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The command of a `RUN` step exited with this code; the driver turns it into
    /// `The command '…' returned a non-zero code: N`.
    #[error("non-zero exit code {0}")]
    ExitCode(i64),
    /// A base image or `--from` image does not exist (and could not be pulled).
    #[error("{0}")]
    NotFound(String),
    /// The build was cancelled (client went away).
    #[error("build cancelled")]
    Cancelled,
    /// Anything else, with a message for the user.
    #[error("{0}")]
    Other(String),
}

/// Why a build failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// A step failed with a message for the user (Docker's wording), e.g.
    /// `The command '/bin/sh -c false' returned a non-zero code: 1`.
    #[error("{message}")]
    Step {
        message: String,
        exit_code: Option<i64>,
    },
    /// Bad build input: unknown target, bad .dockerignore, missing context file.
    #[error("{0}")]
    InvalidInput(String),
    #[error(transparent)]
    Backend(#[from] BackendError),
}
