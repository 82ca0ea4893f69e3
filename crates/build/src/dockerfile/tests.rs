use super::*;

fn steps(src: &str) -> Vec<Instruction> {
    parse(src)
        .unwrap()
        .stages
        .remove(0)
        .steps
        .into_iter()
        .map(|s| s.instruction)
        .collect()
}

fn one(src: &str) -> Instruction {
    let mut v = steps(&format!("FROM busybox\n{src}\n"));
    assert_eq!(v.len(), 1, "{v:?}");
    v.remove(0)
}

fn err(src: &str) -> String {
    parse(src).unwrap_err().to_string()
}

#[test]
fn directives_only_at_top() {
    let df = parse("# syntax=docker/dockerfile:1\n# escape=`\nFROM busybox\nRUN echo a `\n  b\n")
        .unwrap();
    assert_eq!(df.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(df.directives.escape, '`');
    assert_eq!(
        df.stages[0].steps[0].instruction,
        Instruction::Run(Run {
            command: CommandLine::Shell("echo a   b".into()),
            mounts: vec![],
            network: None,
            security: None,
            heredocs: vec![]
        })
    );
    // After a comment or an instruction, `# escape=` is an ordinary comment.
    let df = parse("# hello\n# escape=`\nFROM busybox\n").unwrap();
    assert_eq!(df.directives.escape, '\\');
    let df = parse("FROM busybox\n# escape=`\n").unwrap();
    assert_eq!(df.directives.escape, '\\');
    assert_eq!(
        err("# escape=x\nFROM busybox\n"),
        "dockerfile parse error on line 1: invalid escape token 'x' does not match ` or \\"
    );
    assert_eq!(
        err("# escape=`\n# escape=\\\nFROM busybox\n"),
        "dockerfile parse error on line 2: only one escape parser directive can be used"
    );
}

#[test]
fn continuations_comments_and_empty_lines() {
    let src = "FROM busybox\nRUN echo a \\\n# a comment inside\n\n    b \\  \n  c\n";
    let df = parse(src).unwrap();
    let step = &df.stages[0].steps[0];
    assert_eq!(step.line, 2);
    assert_eq!(step.original, "RUN echo a     b   c");
    // A continuation at the end of the file ends the instruction.
    assert_eq!(
        one("CMD echo \\"),
        Instruction::Cmd(CommandLine::Shell("echo".into()))
    );
}

#[test]
fn instructions_are_case_insensitive() {
    let v = steps("from busybox as Base\nrUn echo hi\nworkdir /x\n");
    assert_eq!(v.len(), 2);
    let df = parse("from busybox as Base\n").unwrap();
    assert_eq!(df.stages[0].name(), Some("base"));
}

#[test]
fn errors_carry_line_numbers() {
    assert_eq!(
        err("FROM busybox\n\nFORM x\n"),
        "dockerfile parse error on line 3: unknown instruction: FORM"
    );
    assert_eq!(err(""), "Dockerfile cannot be empty");
    assert_eq!(err("# only a comment\n\n"), "Dockerfile cannot be empty");
    assert_eq!(
        err("RUN echo hi\nFROM busybox\n"),
        "dockerfile parse error on line 1: no build stage in current context"
    );
    assert_eq!(
        err("FROM busybox\nENV =x\n"),
        "dockerfile parse error on line 2: ENV names can not be blank"
    );
    assert_eq!(
        err("FROM busybox\nENV onlykey\n"),
        "dockerfile parse error on line 2: ENV must have two arguments"
    );
    assert_eq!(
        err("FROM busybox\nCOPY onlyone\n"),
        "dockerfile parse error on line 2: COPY requires at least two arguments, but only one was provided. Destination could not be determined."
    );
    assert_eq!(
        err("FROM a b\n"),
        "dockerfile parse error on line 1: FROM requires either one or three arguments"
    );
    assert_eq!(
        err("FROM a AS 1x\n"),
        "dockerfile parse error on line 1: invalid name for build stage: \"1x\", name can't start with a number or contain symbols"
    );
    assert_eq!(
        err("FROM busybox\nCOPY --frm=x a b\n"),
        "dockerfile parse error on line 2: unknown flag: frm"
    );
    assert_eq!(
        err("FROM busybox\nENV --x=1 a b\n"),
        "dockerfile parse error on line 2: unknown flag: x"
    );
    assert_eq!(
        err("FROM busybox\nRUN [\"a\", 1]\n"),
        "dockerfile parse error on line 2: when using JSON array syntax, arrays must be comprised of strings only"
    );
    assert_eq!(
        err("FROM busybox\nSHELL /bin/bash -c\n"),
        "dockerfile parse error on line 2: SHELL requires the arguments to be in JSON form"
    );
    assert_eq!(
        err("FROM busybox\nUSER\n"),
        "dockerfile parse error on line 2: USER requires exactly one argument"
    );
    assert_eq!(
        err("FROM busybox\nEXPOSE\n"),
        "dockerfile parse error on line 2: EXPOSE requires at least one argument"
    );
    assert_eq!(
        err("FROM a AS x\nFROM b AS x\n"),
        "dockerfile parse error on line 2: duplicate stage name \"x\""
    );
}

#[test]
fn json_and_shell_forms() {
    assert_eq!(
        one("CMD [\"echo\", \"hi\"]"),
        Instruction::Cmd(CommandLine::Exec(vec!["echo".into(), "hi".into()]))
    );
    // Not valid JSON: shell form, as Docker does.
    assert_eq!(
        one("CMD [echo, hi]"),
        Instruction::Cmd(CommandLine::Shell("[echo, hi]".into()))
    );
    assert_eq!(
        one("ENTRYPOINT [\"/bin/sh\", \"-c\"]"),
        Instruction::Entrypoint(CommandLine::Exec(vec!["/bin/sh".into(), "-c".into()]))
    );
    assert_eq!(
        one("SHELL [\"/bin/bash\", \"-eu\", \"-c\"]"),
        Instruction::Shell(vec!["/bin/bash".into(), "-eu".into(), "-c".into()])
    );
}

#[test]
fn env_label_arg_forms() {
    assert_eq!(
        one("ENV A b c"),
        Instruction::Env(vec![KeyValue {
            key: "A".into(),
            value: "b c".into()
        }])
    );
    assert_eq!(
        one("ENV A=1 B=\"v 2\" C=x\\ y"),
        Instruction::Env(vec![
            KeyValue {
                key: "A".into(),
                value: "1".into()
            },
            KeyValue {
                key: "B".into(),
                value: "\"v 2\"".into()
            },
            KeyValue {
                key: "C".into(),
                value: "x\\ y".into()
            },
        ])
    );
    assert_eq!(
        one("LABEL \"com.example\"=yes version=1"),
        Instruction::Label(vec![
            KeyValue {
                key: "\"com.example\"".into(),
                value: "yes".into()
            },
            KeyValue {
                key: "version".into(),
                value: "1".into()
            },
        ])
    );
    assert_eq!(
        one("ARG A B=2 C=\"x y\""),
        Instruction::Arg(vec![
            ArgDecl {
                name: "A".into(),
                default: None
            },
            ArgDecl {
                name: "B".into(),
                default: Some("2".into())
            },
            ArgDecl {
                name: "C".into(),
                default: Some("\"x y\"".into())
            },
        ])
    );
    let df = parse("ARG V=1\nARG IMG\nFROM busybox:$V\n").unwrap();
    assert_eq!(df.meta_args.len(), 2);
    assert_eq!(df.stages[0].from.image, "busybox:$V");
}

#[test]
fn from_forms() {
    let df = parse("FROM --platform=linux/amd64 busybox:1.36 AS build\nFROM scratch\n").unwrap();
    assert_eq!(df.stages[0].from.platform.as_deref(), Some("linux/amd64"));
    assert_eq!(df.stages[0].from.name.as_deref(), Some("build"));
    assert_eq!(df.stages[1].from.image, "scratch");
    assert_eq!(df.stages[1].index, 1);
    assert_eq!(df.stages[1].original, "FROM scratch");
}

#[test]
fn copy_and_add_flags() {
    let Instruction::Copy(c) =
        one("COPY --from=build --chown=app:app --chmod=0755 --link a b* /dst/")
    else {
        panic!()
    };
    assert_eq!(c.from.as_deref(), Some("build"));
    assert_eq!(c.chown.as_deref(), Some("app:app"));
    assert_eq!(c.chmod.as_deref(), Some("0755"));
    assert!(c.link);
    assert_eq!(c.sources, vec!["a", "b*"]);
    assert_eq!(c.dest, "/dst/");
    let Instruction::Copy(c) = one("COPY [\"a b\", \"/x y/\"]") else {
        panic!()
    };
    assert_eq!(c.sources, vec!["a b"]);
    assert_eq!(c.dest, "/x y/");
    let Instruction::Add(a) = one("ADD --checksum=sha256:abc https://example.com/f /f") else {
        panic!()
    };
    assert_eq!(a.checksum.as_deref(), Some("sha256:abc"));
    assert_eq!(
        err("FROM busybox\nADD --from=x a b\n"),
        "dockerfile parse error on line 2: unknown flag: from"
    );
}

#[test]
fn run_flags() {
    let Instruction::Run(r) =
        one("RUN --mount=type=cache,target=/c --mount=type=secret,id=s --network=none echo hi")
    else {
        panic!()
    };
    assert_eq!(r.mounts, vec!["type=cache,target=/c", "type=secret,id=s"]);
    assert_eq!(r.network.as_deref(), Some("none"));
    assert_eq!(r.command, CommandLine::Shell("echo hi".into()));
}

#[test]
fn heredocs() {
    let src = "FROM busybox\nRUN <<EOF\necho $HOME\necho two\nEOF\nRUN <<-\"END\" cat > /x\n\tindented $X\n\tEND\nCOPY <<A <<'B' /dst/\nfile a\nA\nfile b\nB\nRUN echo done\n";
    let df = parse(src).unwrap();
    let s = &df.stages[0].steps;
    assert_eq!(s.len(), 4);
    let Instruction::Run(r) = &s[0].instruction else {
        panic!()
    };
    assert_eq!(
        r.heredocs,
        vec![Heredoc {
            name: "EOF".into(),
            content: "echo $HOME\necho two\n".into(),
            expand: true,
            chomp: false
        }]
    );
    let Instruction::Run(r) = &s[1].instruction else {
        panic!()
    };
    assert_eq!(r.heredocs[0].content, "indented $X\n");
    assert!(!r.heredocs[0].expand);
    assert!(r.heredocs[0].chomp);
    let Instruction::Copy(c) = &s[2].instruction else {
        panic!()
    };
    assert_eq!(c.sources, vec!["<<A", "<<'B'"]);
    assert_eq!(c.heredocs.len(), 2);
    assert_eq!(c.heredocs[1].content, "file b\n");
    assert!(!c.heredocs[1].expand);
    assert_eq!(s[3].line, 14);
    assert_eq!(
        err("FROM busybox\nRUN <<EOF\necho\n"),
        "dockerfile parse error on line 2: unterminated heredoc"
    );
    // `<<` inside quotes or other instructions is not a heredoc.
    let Instruction::Run(r) = one("RUN echo '<<EOF'") else {
        panic!()
    };
    assert!(r.heredocs.is_empty());
}

#[test]
fn volumes_expose_and_single_values() {
    assert_eq!(
        one("VOLUME /a /b"),
        Instruction::Volume(vec!["/a".into(), "/b".into()])
    );
    assert_eq!(
        one("VOLUME [\"/data\"]"),
        Instruction::Volume(vec!["/data".into()])
    );
    assert_eq!(
        one("EXPOSE 80 443/udp"),
        Instruction::Expose(vec!["80".into(), "443/udp".into()])
    );
    assert_eq!(one("USER app:app"), Instruction::User("app:app".into()));
    assert_eq!(one("WORKDIR /a b"), Instruction::Workdir("/a b".into()));
    assert_eq!(
        one("STOPSIGNAL SIGINT"),
        Instruction::StopSignal("SIGINT".into())
    );
    assert_eq!(
        one("MAINTAINER Jo <jo@x>"),
        Instruction::Maintainer("Jo <jo@x>".into())
    );
    assert_eq!(
        err("FROM busybox\nVOLUME [\"\"]\n"),
        "dockerfile parse error on line 2: VOLUME specified can not be an empty string"
    );
}

#[test]
fn healthcheck() {
    let Instruction::Healthcheck(h) = one(
        "HEALTHCHECK --interval=30s --timeout=3s --start-period=1m --start-interval=500ms --retries=3 CMD curl -f http://x/",
    ) else {
        panic!()
    };
    assert_eq!(h.test, vec!["CMD-SHELL", "curl -f http://x/"]);
    assert_eq!(h.interval, 30_000_000_000);
    assert_eq!(h.timeout, 3_000_000_000);
    assert_eq!(h.start_period, 60_000_000_000);
    assert_eq!(h.start_interval, 500_000_000);
    assert_eq!(h.retries, 3);
    let Instruction::Healthcheck(h) = one("HEALTHCHECK CMD [\"true\"]") else {
        panic!()
    };
    assert_eq!(h.test, vec!["CMD", "true"]);
    let Instruction::Healthcheck(h) = one("healthcheck none") else {
        panic!()
    };
    assert_eq!(h.test, vec!["NONE"]);
    assert_eq!(
        err("FROM b\nHEALTHCHECK NONE x\n"),
        "dockerfile parse error on line 2: HEALTHCHECK NONE takes no arguments"
    );
    assert_eq!(
        err("FROM b\nHEALTHCHECK FOO x\n"),
        "dockerfile parse error on line 2: Unknown type \"FOO\" in HEALTHCHECK (try CMD)"
    );
    assert_eq!(
        err("FROM b\nHEALTHCHECK --retries=0 CMD x\n"),
        "dockerfile parse error on line 2: --retries must be at least 1 (not 0)"
    );
    assert_eq!(
        err("FROM b\nHEALTHCHECK --interval=1ns CMD x\n"),
        "dockerfile parse error on line 2: Interval \"interval\" cannot be less than 1ms"
    );
    assert_eq!(
        err("FROM b\nHEALTHCHECK CMD\n"),
        "dockerfile parse error on line 2: Missing command after HEALTHCHECK CMD"
    );
}

#[test]
fn onbuild() {
    assert_eq!(
        one("ONBUILD RUN echo hi"),
        Instruction::OnBuild("RUN echo hi".into())
    );
    assert_eq!(
        err("FROM b\nONBUILD ONBUILD RUN x\n"),
        "dockerfile parse error on line 2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
    );
    assert_eq!(
        err("FROM b\nONBUILD FROM x\n"),
        "dockerfile parse error on line 2: FROM isn't allowed as an ONBUILD trigger"
    );
    assert_eq!(
        err("FROM b\nONBUILD MAINTAINER x\n"),
        "dockerfile parse error on line 2: MAINTAINER isn't allowed as an ONBUILD trigger"
    );
    assert_eq!(
        err("FROM b\nONBUILD FORM x\n"),
        "dockerfile parse error on line 2: unknown instruction: FORM"
    );
}
