use super::*;

fn parse(text: &str) -> Dockerfile {
    Dockerfile::parse("Dockerfile", text).unwrap()
}

fn error(text: &str) -> String {
    Dockerfile::parse("Dockerfile", text).unwrap_err().to_string()
}

fn kinds(text: &str) -> Vec<Kind> {
    parse(text).stages[0]
        .instructions
        .iter()
        .map(|i| i.kind.clone())
        .collect()
}

#[test]
fn stages_with_names_platform_and_meta_args() {
    let d = parse(
        "ARG BASE=busybox\nARG V\nFROM --platform=linux/amd64 $BASE AS Builder\nRUN make\nFROM scratch\nCOPY --from=builder /out /\n",
    );
    assert_eq!(d.meta_args.len(), 2);
    assert_eq!(d.meta_args[0].1.default.as_deref(), Some("busybox"));
    assert_eq!(d.stages.len(), 2);
    assert_eq!(d.stages[0].base, "$BASE");
    assert_eq!(d.stages[0].platform.as_deref(), Some("linux/amd64"));
    assert_eq!(d.stages[0].name.as_deref(), Some("builder"));
    assert_eq!(d.stages[0].line, 3);
    assert_eq!(d.stages[1].base, "scratch");
    assert_eq!(d.stage_index("builder", 1), Some(0));
    assert_eq!(d.stage_index("0", 1), Some(0));
    assert_eq!(d.stage_index("builder", 0), None);
    assert_eq!(d.target_index(Some("BUILDER")), Ok(0));
    assert_eq!(d.target_index(None), Ok(1));
    assert!(d.target_index(Some("nope")).is_err());
}

#[test]
fn needed_stages_follow_from_and_copy_from() {
    let d = parse("FROM a AS one\nFROM b AS two\nFROM one AS three\nCOPY --from=two /x /x\nFROM c AS unused\n");
    assert_eq!(d.needed_stages(2), vec![0, 1, 2]);
    assert_eq!(d.needed_stages(3), vec![3]);
    assert_eq!(d.needed_stages(1), vec![1]);
}

#[test]
fn run_shell_and_exec_forms() {
    let k = kinds("FROM a\nRUN echo hi && \\\n  echo there\nRUN [\"/bin/echo\", \"x y\"]\nRUN [not json\nRUN --network=host --mount=type=cache,target=/c true\n");
    assert_eq!(
        k[0],
        Kind::Run(RunSpec {
            command: Command::Shell("echo hi &&   echo there".into()),
            mounts: vec![],
            network: None
        })
    );
    assert!(matches!(&k[1], Kind::Run(r) if r.command == Command::Exec(vec!["/bin/echo".into(), "x y".into()])));
    assert!(matches!(&k[2], Kind::Run(r) if r.command == Command::Shell("[not json".into())));
    assert!(
        matches!(&k[3], Kind::Run(r) if r.network.as_deref() == Some("host") && r.mounts == ["type=cache,target=/c"])
    );
}

#[test]
fn copy_and_add_flags_and_forms() {
    let k = kinds(
        "FROM a\nCOPY --chown=app:app --chmod=0644 a b* /dst/\nCOPY [\"with space\", \"/d\"]\nADD --link x.tar /\nCOPY --from=build /out .\n",
    );
    let Kind::Copy(c) = &k[0] else { panic!() };
    assert_eq!(c.sources, ["a", "b*"]);
    assert_eq!(c.dest, "/dst/");
    assert_eq!(c.chown.as_deref(), Some("app:app"));
    assert_eq!(c.chmod.as_deref(), Some("0644"));
    let Kind::Copy(c) = &k[1] else { panic!() };
    assert_eq!(c.sources, ["with space"]);
    let Kind::Add(c) = &k[2] else { panic!() };
    assert!(c.link);
    let Kind::Copy(c) = &k[3] else { panic!() };
    assert_eq!(c.from.as_deref(), Some("build"));
    assert_eq!(
        error("FROM a\nCOPY onlyone\n"),
        "Dockerfile:2: COPY requires at least two arguments: SOURCE… DEST"
    );
    assert_eq!(
        error("FROM a\nCOPY --bogus=1 a b\n"),
        "Dockerfile:2: unknown flag: --bogus for COPY"
    );
}

#[test]
fn env_label_arg_forms() {
    let k = kinds("FROM a\nENV A=1 B=\"x y\"\nENV LEGACY some value\nLABEL \"com.x\"=y z=1\nARG N\nARG M=dflt O\n");
    assert_eq!(
        k[0],
        Kind::Env(vec![("A".into(), "1".into()), ("B".into(), "\"x y\"".into())])
    );
    assert_eq!(k[1], Kind::Env(vec![("LEGACY".into(), "some value".into())]));
    assert_eq!(
        k[2],
        Kind::Label(vec![("\"com.x\"".into(), "y".into()), ("z".into(), "1".into())])
    );
    assert_eq!(
        k[3],
        Kind::Arg(vec![ArgDecl {
            name: "N".into(),
            default: None
        }])
    );
    assert_eq!(
        k[4],
        Kind::Arg(vec![
            ArgDecl {
                name: "M".into(),
                default: Some("dflt".into())
            },
            ArgDecl {
                name: "O".into(),
                default: None
            }
        ])
    );
    assert_eq!(
        error("FROM a\nENV\n"),
        "Dockerfile:2: ENV requires at least one KEY=VALUE"
    );
    assert_eq!(error("FROM a\nENV =x\n"), "Dockerfile:2: \"=x\" is not KEY=VALUE");
}

#[test]
fn metadata_instructions() {
    let k = kinds(
        "FROM a\nWORKDIR /app\nUSER app:app\nEXPOSE 80 53/udp\nVOLUME [\"/data\", \"/logs\"]\nVOLUME /v1 /v2\nENTRYPOINT [\"/bin/app\"]\nCMD serve --port 80\nSTOPSIGNAL SIGINT\nSHELL [\"/bin/bash\", \"-c\"]\nMAINTAINER me\n",
    );
    assert_eq!(k[0], Kind::Workdir("/app".into()));
    assert_eq!(k[1], Kind::User("app:app".into()));
    assert_eq!(k[2], Kind::Expose(vec!["80".into(), "53/udp".into()]));
    assert_eq!(k[3], Kind::Volume(vec!["/data".into(), "/logs".into()]));
    assert_eq!(k[4], Kind::Volume(vec!["/v1".into(), "/v2".into()]));
    assert_eq!(k[5], Kind::Entrypoint(Command::Exec(vec!["/bin/app".into()])));
    assert_eq!(k[6], Kind::Cmd(Command::Shell("serve --port 80".into())));
    assert_eq!(k[7], Kind::StopSignal("SIGINT".into()));
    assert_eq!(k[8], Kind::Shell(vec!["/bin/bash".into(), "-c".into()]));
    assert_eq!(k[9], Kind::Maintainer("me".into()));
    assert!(error("FROM a\nSHELL /bin/bash\n").contains("JSON form"));
}

#[test]
fn healthcheck_and_onbuild() {
    let k = kinds(
        "FROM a\nHEALTHCHECK --interval=5s --retries=3 CMD wget -q localhost\nHEALTHCHECK NONE\nONBUILD RUN echo hi\n",
    );
    assert_eq!(
        k[0],
        Kind::Healthcheck(Healthcheck::Check {
            test: Command::Shell("wget -q localhost".into()),
            interval: Some("5s".into()),
            timeout: None,
            start_period: None,
            start_interval: None,
            retries: Some("3".into()),
        })
    );
    assert_eq!(k[1], Kind::Healthcheck(Healthcheck::None));
    assert_eq!(k[2], Kind::Onbuild("RUN echo hi".into()));
    assert_eq!(
        error("FROM a\nONBUILD FROM b\n"),
        "Dockerfile:2: FROM is not allowed as an ONBUILD trigger"
    );
    assert_eq!(
        error("FROM a\nONBUILD BOGUS x\n"),
        "Dockerfile:2: unknown instruction: BOGUS"
    );
    assert!(error("FROM a\nHEALTHCHECK\n").starts_with("Dockerfile:2:"));
}

#[test]
fn errors_name_the_line() {
    assert_eq!(
        error("\n\nRUN x\n"),
        "Dockerfile:3: RUN before the first FROM: only ARG may come first"
    );
    assert_eq!(error("# c\n"), "Dockerfile:1: the Dockerfile has no FROM instruction");
    assert_eq!(
        error("FROM a\n\nFROBNICATE x\n"),
        "Dockerfile:3: unknown instruction: FROBNICATE"
    );
    assert_eq!(
        error("FROM a AS x\nFROM b AS x\n"),
        "Dockerfile:2: duplicate stage name \"x\""
    );
    assert_eq!(
        error("FROM a b\n"),
        "Dockerfile:1: FROM requires an image (FROM IMAGE [AS NAME])"
    );
    assert_eq!(error("FROM a\nRUN\n"), "Dockerfile:2: RUN requires a command");
    assert!(error("FROM a\nRUN <<EOF\necho\nEOF\n").contains("heredocs"));
}

#[test]
fn keywords_are_case_insensitive_and_lines_kept() {
    let d = parse("from a\n# comment\nrun echo \\\n  one\nCmd [\"x\"]\n");
    let lines: Vec<usize> = d.stages[0].instructions.iter().map(|i| i.line).collect();
    assert_eq!(lines, [3, 5]);
    assert_eq!(d.stages[0].instructions[0].keyword, "RUN");
}

#[test]
fn escape_directive_changes_continuation() {
    let d = parse("# escape=`\nFROM a\nRUN dir c:\\ `\n  && echo\n");
    assert_eq!(d.escape, '`');
    assert!(
        matches!(&d.stages[0].instructions[0].kind, Kind::Run(r) if r.command == Command::Shell("dir c:\\   && echo".into()))
    );
}
