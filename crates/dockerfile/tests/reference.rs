//! Cases from Docker's Dockerfile reference (docs.docker.com/reference/dockerfile)
//! and from the behaviour of Docker's parser.

use std::collections::HashMap;
use std::time::Duration;

use berth_dockerfile::{
    parse, ArgDef, Command, CommandLine, CopyFiles, Dockerfile, Healthcheck, Heredoc, Instruction,
    KeyValue, ParseError, ParseErrorKind, Run,
};

fn ok(text: &str) -> Dockerfile {
    match parse(text) {
        Ok(df) => df,
        Err(e) => panic!("unexpected error: {e}\n---\n{text}"),
    }
}

fn err(text: &str) -> ParseError {
    match parse(text) {
        Ok(df) => panic!("expected an error, got {df:#?}"),
        Err(e) => e,
    }
}

/// The instructions of the only (or first) stage.
fn instrs(df: &Dockerfile) -> &[Instruction] {
    &df.stages[0].instructions
}

fn commands(text: &str) -> Vec<Command> {
    ok(text).stages[0]
        .instructions
        .iter()
        .map(|i| i.command.clone())
        .collect()
}

fn single(text: &str) -> Command {
    let mut cmds = commands(text);
    assert_eq!(cmds.len(), 1, "{cmds:#?}");
    cmds.remove(0)
}

fn shell(s: &str) -> CommandLine {
    CommandLine::Shell(s.to_string())
}

fn exec(v: &[&str]) -> CommandLine {
    CommandLine::Exec(v.iter().map(|s| s.to_string()).collect())
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: v.into(),
    }
}

fn run(cmd: Command) -> Run {
    match cmd {
        Command::Run(r) => r,
        other => panic!("not RUN: {other:?}"),
    }
}

fn copy(cmd: Command) -> CopyFiles {
    match cmd {
        Command::Copy(c) | Command::Add(c) => c,
        other => panic!("not COPY/ADD: {other:?}"),
    }
}

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn expanded(cmd: &Command, vars: &[(&str, &str)]) -> Command {
    match cmd.expand(&env(vars), '\\') {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

// ---------------------------------------------------------------- directives

#[test]
fn escape_directive_windows_backtick_example() {
    let df = ok("# escape=`\n\nFROM microsoft/nanoserver\nCOPY testfile.txt c:\\\nRUN dir c:\\\n");
    assert_eq!(df.escape(), '`');
    assert_eq!(df.stages[0].base, "microsoft/nanoserver");
    let cmds = &df.stages[0].instructions;
    let c = copy(cmds[0].command.clone());
    assert_eq!(c.sources, ["testfile.txt"]);
    assert_eq!(c.dest, "c:\\");
    assert_eq!(run(cmds[1].command.clone()).command, shell("dir c:\\"));
    // With ` as escape, the backslash survives expansion too.
    let e = copy(cmds[0].command.expand(&env(&[]), df.escape()).unwrap());
    assert_eq!(e.dest, "c:\\");
    assert_eq!((cmds[0].line, cmds[1].line), (4, 5));
}

#[test]
fn default_escape_windows_pitfall_example() {
    // Without the directive, the last `\` continues the line: RUN becomes `dir c:`.
    let df = ok("FROM microsoft/nanoserver\nCOPY testfile.txt c:\\\\\nRUN dir c:\\\n");
    let cmds = instrs(&df);
    let c = copy(cmds[0].command.clone());
    assert_eq!(c.dest, "c:\\\\");
    assert_eq!(copy(expanded(&cmds[0].command, &[])).dest, "c:\\");
    assert_eq!(run(cmds[1].command.clone()).command, shell("dir c:"));
}

#[test]
fn directive_whitespace_variants() {
    for line in [
        "#escape=`",
        "# escape =`",
        "#\tescape= `",
        "# escape = `",
        "#\t  eScApE=`",
    ] {
        let df = ok(&format!("{line}\nFROM image\nENV GOPATH `\n\\go\n"));
        assert_eq!(df.escape(), '`', "{line:?}");
        assert_eq!(
            instrs(&df)[0].command,
            Command::Env(vec![kv("GOPATH", "\\go")]),
            "{line:?}"
        );
    }
}

#[test]
fn directive_after_comment_is_a_comment() {
    let text = "# Comment here. Should not be looking for the following parser directive.\n\
                # escape = `\n\nFROM image\nLABEL maintainer foo@bar.com\nENV GOPATH \\\n\\go";
    let df = ok(text);
    assert_eq!(df.escape(), '\\');
    assert_eq!(
        instrs(&df)[1].command,
        Command::Env(vec![kv("GOPATH", "\\go")])
    );
}

#[test]
fn directive_after_instruction_or_blank_line_is_a_comment() {
    assert_eq!(ok("FROM ImageName\n# escape=`\n").escape(), '\\');
    assert_eq!(ok("\n# escape=`\nFROM ImageName\n").escape(), '\\');
}

#[test]
fn unknown_directive_ends_the_directive_section() {
    let df = ok("# unknowndirective=value\n# escape=`\n\nFROM ImageName\n");
    assert_eq!(df.escape(), '\\');
}

#[test]
fn directive_cannot_span_lines() {
    // `# direc \` is a comment; the next line is then an unknown instruction.
    let e = err("# direc \\\ntive=value\n\nFROM ImageName\n");
    assert_eq!(e.line, 2);
    assert_eq!(
        e.kind,
        ParseErrorKind::UnknownInstruction("tive=value".into())
    );
}

#[test]
fn directive_twice_is_an_error() {
    let e = err("# escape=\\\n# escape=`\n\nFROM ImageName\n");
    assert_eq!(e.line, 2);
    assert_eq!(
        e.to_string(),
        "dockerfile parse error on line 2: only one escape parser directive can be used"
    );
}

#[test]
fn invalid_escape_token() {
    let e = err("# escape=x\nFROM a\n");
    assert_eq!(e.kind, ParseErrorKind::InvalidEscapeToken("x".into()));
    assert_eq!(e.line, 1);
}

#[test]
fn syntax_and_check_directives_are_recorded() {
    let df = ok(
        "# syntax=docker/dockerfile:1\n# check=skip=JSONArgsRecommended;error=true\n# escape=`\nFROM a\n",
    );
    assert_eq!(df.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(
        df.directives.check.as_deref(),
        Some("skip=JSONArgsRecommended;error=true")
    );
    assert_eq!(df.escape(), '`');
}

#[test]
fn byte_order_mark_is_ignored() {
    let df = ok("\u{feff}# escape=`\nFROM a\n");
    assert_eq!(df.escape(), '`');
}

// ------------------------------------------------- comments and continuations

#[test]
fn comments_and_leading_whitespace() {
    let df = ok("FROM a\n        # this is a comment-line\n    RUN echo hello\nRUN echo world\n");
    let cmds = instrs(&df);
    assert_eq!(run(cmds[0].command.clone()).command, shell("echo hello"));
    assert_eq!(cmds[0].line, 3);
    assert_eq!(run(cmds[1].command.clone()).command, shell("echo world"));
}

#[test]
fn comment_inside_continuation_is_removed() {
    let cmd = single("FROM a\nRUN echo hello \\\n# comment\nworld\n");
    assert_eq!(run(cmd).command, shell("echo hello world"));
}

#[test]
fn trailing_hash_is_not_a_comment() {
    let cmd = single("FROM a\nRUN echo hello # not a comment\n");
    assert_eq!(run(cmd).command, shell("echo hello # not a comment"));
}

#[test]
fn continuation_indentation_is_kept() {
    let text = "FROM ubuntu:14.04\n\nRUN echo hello\\\n  world\\\n  goodnight  \\\n  moon\\\n  light\\\nning\n\
RUN echo hello  \\\n  world\nRUN echo hello  \\\nworld\nRUN echo hello \\\ngoodbye\\\nfrog\nRUN echo hello  \\  \nworld\n\
RUN echo hi \\\n \\\n world \\\n\\\n good\\\n\\\nnight\nRUN echo goodbye\\\nfrog\nRUN echo good\\\nbye\\\nfrog\n\n\
RUN echo hello \\\n# this is a comment\n\n# this is a comment with a blank line surrounding it\n\nthis is some more useful stuff\n";
    let df = ok(text);
    let got: Vec<CommandLine> = instrs(&df)
        .iter()
        .map(|i| run(i.command.clone()).command)
        .collect();
    let want = [
        "echo hello  world  goodnight    moon  lightning",
        "echo hello    world",
        "echo hello  world",
        "echo hello goodbyefrog",
        "echo hello  world",
        "echo hi   world  goodnight",
        "echo goodbyefrog",
        "echo goodbyefrog",
        "echo hello this is some more useful stuff",
    ];
    assert_eq!(got, want.map(shell));
    // The last RUN spans the blank and comment lines, and they are reported.
    assert!(!df.warnings.is_empty());
    let last = instrs(&df).last().unwrap();
    assert_eq!((last.line, last.end_line), (31, 36));
}

#[test]
fn continuation_at_end_of_file() {
    let cmd = single("FROM alpine:3.5\n\nRUN something \\");
    assert_eq!(run(cmd).command, shell("something"));
}

#[test]
fn trailing_backslashes() {
    let text = "FROM hello-world\n\nENV A path\nENV B another\\\\path\nENV C trailing\\\\backslash\\\\\n\
ENV D This should not be appended to C\nENV E hello\\\n\\\nworld\nENV F hello\\\n \\\nworld\nENV G hello \\\n\\\nworld\n";
    let got: Vec<Command> = commands(text);
    let want = [
        ("A", "path"),
        ("B", "another\\\\path"),
        ("C", "trailing\\\\backslash\\\\"),
        ("D", "This should not be appended to C"),
        ("E", "helloworld"),
        ("F", "hello world"),
        ("G", "hello world"),
    ];
    assert_eq!(got, want.map(|(k, v)| Command::Env(vec![kv(k, v)])));
}

#[test]
fn empty_continuation_lines_warn() {
    let df = ok("FROM a\nRUN echo a \\\n\n  b\n");
    assert_eq!(
        run(instrs(&df)[0].command.clone()).command,
        shell("echo a   b")
    );
    assert_eq!(df.warnings.len(), 1);
    assert!(df.warnings[0].message.contains("Empty continuation line"));
}

#[test]
fn instruction_names_are_case_insensitive() {
    let df = ok("from alpine AS Base\nrun echo hi\nCoPy a b\nworkdir /x\n");
    assert_eq!(df.stages[0].name.as_deref(), Some("base"));
    let names: Vec<&str> = instrs(&df).iter().map(|i| i.command.name()).collect();
    assert_eq!(names, ["RUN", "COPY", "WORKDIR"]);
}

#[test]
fn crlf_line_endings() {
    let df = ok("FROM a\r\nRUN echo a \\\r\n  b\r\nENV X=1\r\n");
    assert_eq!(
        run(instrs(&df)[0].command.clone()).command,
        shell("echo a   b")
    );
    assert_eq!(instrs(&df)[1].command, Command::Env(vec![kv("X", "1")]));
}

// --------------------------------------------------------- exec / shell form

#[test]
fn json_arrays_are_exec_form() {
    let text = "FROM a\nCMD []\nCMD [\"\"]\nCMD [\"a\"]\nCMD [\"a\",\"b\"]\nCMD [ \"a\", \"b\" ]\nCMD [\t\"a\",\t\"b\"\t]\n\
CMD\t[\t\"a\",\t\"b\"\t]\t\nCMD [\"abc 123\", \"♥\", \"☃\", \"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u0000\"]\n";
    let got: Vec<Command> = commands(text);
    let want = vec![
        exec(&[]),
        exec(&[""]),
        exec(&["a"]),
        exec(&["a", "b"]),
        exec(&["a", "b"]),
        exec(&["a", "b"]),
        exec(&["a", "b"]),
        exec(&["abc 123", "♥", "☃", "\" \\ / \u{8} \u{c} \n \r \t \u{0}"]),
    ];
    assert_eq!(got, want.into_iter().map(Command::Cmd).collect::<Vec<_>>());
}

#[test]
fn invalid_json_falls_back_to_shell_form() {
    for text in [
        "CMD ['echo','single quotes are invalid JSON']",
        "CMD [\"echo\", \"unterminated]",
        "CMD [\"echo\", \"unterminated bracket\"",
        "CMD [\"echo\", \"x\"] && true",
    ] {
        let cmd = single(&format!("FROM a\n{text}\n"));
        assert_eq!(cmd, Command::Cmd(shell(&text[4..])), "{text}");
    }
}

#[test]
fn nested_json_is_an_error() {
    let e = err("FROM a\nCMD [ \"echo\", [ \"nested json\" ] ]\n");
    assert_eq!(e.line, 2);
    assert!(
        e.to_string()
            .contains("arrays must be comprised of strings only"),
        "{e}"
    );
}

#[test]
fn reference_cmd_entrypoint_run_forms() {
    let cmds = commands(
        "FROM ubuntu\nCMD [\"/usr/bin/wc\",\"--help\"]\nCMD echo \"This is a test.\" | wc -\n\
ENTRYPOINT [\"top\", \"-b\"]\nENTRYPOINT exec top -b\nRUN [\"/bin/bash\", \"-c\", \"echo hello\"]\n\
RUN [\"c:\\\\windows\\\\system32\\\\tasklist.exe\"]\nRUN /bin/bash -c 'source $HOME/.bashrc && \\\necho $HOME'\nCMD\nENTRYPOINT []\n",
    );
    assert_eq!(cmds[0], Command::Cmd(exec(&["/usr/bin/wc", "--help"])));
    assert_eq!(
        cmds[1],
        Command::Cmd(shell("echo \"This is a test.\" | wc -"))
    );
    assert_eq!(cmds[2], Command::Entrypoint(exec(&["top", "-b"])));
    assert_eq!(cmds[3], Command::Entrypoint(shell("exec top -b")));
    assert_eq!(
        run(cmds[4].clone()).command,
        exec(&["/bin/bash", "-c", "echo hello"])
    );
    assert_eq!(
        run(cmds[5].clone()).command,
        exec(&["c:\\windows\\system32\\tasklist.exe"])
    );
    assert_eq!(
        run(cmds[6].clone()).command,
        shell("/bin/bash -c 'source $HOME/.bashrc && echo $HOME'")
    );
    assert_eq!(cmds[7], Command::Cmd(shell("")));
    assert_eq!(cmds[8], Command::Entrypoint(exec(&[])));
}

#[test]
fn shell_instruction_requires_json() {
    assert_eq!(
        single("FROM a\nSHELL [\"powershell\", \"-command\"]\n"),
        Command::Shell(vec!["powershell".into(), "-command".into()])
    );
    let e = err("FROM a\nSHELL powershell -command\n");
    assert_eq!(
        e.to_string(),
        "dockerfile parse error on line 2: SHELL requires the arguments to be in JSON form"
    );
    assert!(err("FROM a\nSHELL []\n")
        .to_string()
        .contains("at least one argument"));
}

#[test]
fn empty_run_is_an_error() {
    let e = err("FROM a\nRUN\n");
    assert_eq!(e.line, 2);
    assert!(e.to_string().contains("RUN requires at least one argument"));
}

// ----------------------------------------------------------------- heredocs

#[test]
fn heredoc_run_with_interpreter() {
    let text = "# syntax=docker/dockerfile:1\nFROM debian\nRUN <<EOT bash\n  set -ex\n  apt-get update\n  apt-get install -y vim\nEOT\nRUN echo after\n";
    let df = ok(text);
    let r = run(instrs(&df)[0].command.clone());
    assert_eq!(r.command, shell("<<EOT bash"));
    assert_eq!(
        r.heredocs,
        [Heredoc {
            name: "EOT".into(),
            fd: 0,
            expand: true,
            chomp: false,
            content: "  set -ex\n  apt-get update\n  apt-get install -y vim\n".into(),
        }]
    );
    assert_eq!(
        r.script().unwrap(),
        "<<EOT bash\n  set -ex\n  apt-get update\n  apt-get install -y vim\nEOT"
    );
    assert_eq!((instrs(&df)[0].line, instrs(&df)[0].end_line), (3, 7));
    assert_eq!(instrs(&df)[1].line, 8);
}

#[test]
fn heredoc_lone_body_is_the_script() {
    let r = run(single("FROM debian\nRUN <<EOT\n  mkdir -p foo/bar\nEOT\n"));
    assert_eq!(r.script().unwrap(), "  mkdir -p foo/bar\n");
    let r = run(single(
        "FROM python:3.6\nRUN <<EOT\n#!/usr/bin/env python\nprint(\"hello world\")\nEOT\n",
    ));
    assert_eq!(
        r.heredocs[0].content,
        "#!/usr/bin/env python\nprint(\"hello world\")\n"
    );
}

#[test]
fn heredoc_copy_expands_unless_quoted() {
    let df = ok("FROM alpine\nARG FOO=bar\nCOPY <<-EOT /script.sh\n  echo \"hello ${FOO}\"\nEOT\nENTRYPOINT ash /script.sh\n");
    let c = copy(instrs(&df)[1].command.clone());
    assert!(c.sources.is_empty());
    assert_eq!(c.dest, "/script.sh");
    assert_eq!(c.heredocs[0].name, "EOT");
    assert!(c.heredocs[0].expand && c.heredocs[0].chomp);
    let e = copy(expanded(&instrs(&df)[1].command, &[("FOO", "bar")]));
    assert_eq!(e.heredocs[0].content, "  echo \"hello bar\"\n");

    let df =
        ok("FROM alpine\nARG FOO=bar\nCOPY <<-\"EOT\" /script.sh\n  echo \"hello ${FOO}\"\nEOT\n");
    let cmd = &instrs(&df)[1].command;
    assert!(!copy(cmd.clone()).heredocs[0].expand);
    let e = copy(expanded(cmd, &[("FOO", "bar")]));
    assert_eq!(e.heredocs[0].content, "  echo \"hello ${FOO}\"\n");
}

#[test]
fn heredoc_multiple_on_one_line() {
    let c = copy(single("FROM a\nCOPY <<robots.txt <<humans.txt /usr/share/nginx/html/\n(robots content)\nrobots.txt\n(humans content)\nhumans.txt\n"));
    assert_eq!(c.heredocs.len(), 2);
    assert_eq!(c.heredocs[0].name, "robots.txt");
    assert_eq!(c.heredocs[0].content, "(robots content)\n");
    assert_eq!(c.heredocs[1].name, "humans.txt");
    assert_eq!(c.heredocs[1].content, "(humans content)\n");
    assert_eq!(c.dest, "/usr/share/nginx/html/");

    let r = run(single("FROM a\nRUN <<FILE1 cat > file1 && <<FILE2 cat > file2\nI am\nfirst\nFILE1\nI am\nsecond\nFILE2\n"));
    let names: Vec<&str> = r.heredocs.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["FILE1", "FILE2"]);
    assert_eq!(r.heredocs[0].content, "I am\nfirst\n");
    assert_eq!(r.heredocs[1].content, "I am\nsecond\n");
    assert_eq!(
        r.script().unwrap(),
        "<<FILE1 cat > file1 && <<FILE2 cat > file2\nI am\nfirst\nFILE1\nI am\nsecond\nFILE2"
    );
}

#[test]
fn heredoc_chomp_strips_tabs() {
    let r = run(single("FROM a\nRUN <<-EOT\n\techo a\n\t\techo b\n\tEOT\n"));
    let doc = &r.heredocs[0];
    assert!(doc.chomp);
    assert_eq!(doc.content, "\techo a\n\t\techo b\n");
    assert_eq!(doc.data(), "echo a\necho b\n");
    assert_eq!(r.script().unwrap(), "echo a\necho b\n");
}

#[test]
fn heredoc_delimiter_forms() {
    let text = "FROM a\nRUN 3<<EMPTY2\nEMPTY2\nRUN <<eo'f'\necho foo\neof\nRUN <<eo\\'f\necho foo\neo'f\nRUN <<'one two'\necho bar\none two\nRUN <<  EOF  > foo\nEOF\nRUN \"<<NOHEREDOC\"\n";
    let df = ok(text);
    let docs: Vec<Vec<Heredoc>> = instrs(&df)
        .iter()
        .map(|i| run(i.command.clone()).heredocs)
        .collect();
    let h = |name: &str, fd, expand, content: &str| Heredoc {
        name: name.into(),
        fd,
        expand,
        chomp: false,
        content: content.into(),
    };
    assert_eq!(docs[0], [h("EMPTY2", 3, true, "")]);
    assert_eq!(docs[1], [h("eof", 0, false, "echo foo\n")]);
    assert_eq!(docs[2], [h("eo'f", 0, true, "echo foo\n")]);
    assert_eq!(docs[3], [h("one two", 0, false, "echo bar\n")]);
    assert_eq!(docs[4], [h("EOF", 0, true, "")]);
    assert!(docs[5].is_empty());
}

#[test]
fn heredoc_keeps_comments_and_quotes() {
    let c = copy(single(
        "FROM a\nCOPY <<EOF /quotes\n\"foo\"\n# not a comment\n'bar'\nEOF\n",
    ));
    assert_eq!(c.heredocs[0].content, "\"foo\"\n# not a comment\n'bar'\n");
}

#[test]
fn heredoc_not_in_json_or_other_instructions() {
    // USER does not take heredocs, so the next line is an (unknown) instruction.
    let e = err("FROM a\nRUN [\"<<EOF\"]\nUSER <<INVALID\nINVALID x\n");
    assert_eq!(e.line, 4);
    assert_eq!(e.kind, ParseErrorKind::UnknownInstruction("INVALID".into()));
    let df = ok("FROM a\nRUN [\"<<EOF\"]\nENV A=1\n");
    assert_eq!(
        run(instrs(&df)[0].command.clone()).command,
        exec(&["<<EOF"])
    );
    assert_eq!(instrs(&df)[1].command, Command::Env(vec![kv("A", "1")]));
}

#[test]
fn heredoc_unterminated_is_an_error() {
    let e = err("FROM a\nRUN echo ok\nRUN <<EOF\necho never ends\n");
    assert_eq!(e.line, 3);
    assert_eq!(e.kind, ParseErrorKind::UnterminatedHeredoc);
    assert_eq!(
        e.to_string(),
        "dockerfile parse error on line 3: unterminated heredoc"
    );
}

#[test]
fn heredoc_as_copy_destination_is_an_error() {
    let e = err("FROM a\nCOPY foo <<EOF\nx\nEOF\n");
    assert!(
        e.to_string()
            .contains("COPY cannot accept a heredoc as a destination"),
        "{e}"
    );
}

#[test]
fn heredoc_with_mount_flag() {
    let r = run(single(
        "FROM a\nRUN --mount=type=cache,target=/foo <<MOUNT\necho hello\nMOUNT\n",
    ));
    assert_eq!(r.mounts, ["type=cache,target=/foo"]);
    assert_eq!(r.heredocs[0].content, "echo hello\n");
}

// ------------------------------------------------------------------- flags

#[test]
fn from_platform_and_stage_names() {
    let df = ok("FROM --platform=$BUILDPLATFORM golang:1.22 AS Build\nRUN go build\nFROM alpine\nCOPY --from=build /out /usr/bin/\n");
    let st = &df.stages[0];
    assert_eq!(st.platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(st.base, "golang:1.22");
    assert_eq!(st.name.as_deref(), Some("build"));
    assert_eq!(st.line, 1);
    assert_eq!(df.stages[1].name, None);
    assert_eq!(df.stages[1].line, 3);
    assert_eq!(df.stage("BUILD").map(|s| s.line), Some(1));
    assert_eq!(df.stage("1").map(|s| s.line), Some(3));
    assert!(df.stage("nope").is_none());
    let (base, platform) = st
        .expand_from(&env(&[("BUILDPLATFORM", "linux/amd64")]), '\\')
        .unwrap();
    assert_eq!(base, "golang:1.22");
    assert_eq!(platform.as_deref(), Some("linux/amd64"));
}

#[test]
fn from_errors() {
    assert!(err("FROM\n")
        .to_string()
        .contains("FROM requires either one or three arguments"));
    assert!(err("FROM a b\n")
        .to_string()
        .contains("FROM requires either one or three arguments"));
    let e = err("FROM a AS 1bad\n");
    assert!(
        e.to_string()
            .contains("invalid name for build stage: \"1bad\""),
        "{e}"
    );
    let e = err("FROM --plaform=linux a\n");
    assert_eq!(e.kind, ParseErrorKind::UnknownFlag("--plaform".into()));
}

#[test]
fn copy_flags_from_reference() {
    let cmds = commands(
        "FROM a\nCOPY --chown=55:mygroup files* /somedir/\nCOPY --chmod=644 files* /somedir/\n\
COPY --from=build /myapp /usr/bin/\nCOPY --link /foo /bar\nCOPY --exclude=*.txt --exclude=*.md hom* /mydir/\n\
COPY --parents ./x/a.txt ./y/a.txt /no_parents/\nCOPY arr[[]0].txt /mydir/\nCOPY [\"my file.txt\", \"/dest dir/\"]\n",
    );
    let c: Vec<CopyFiles> = cmds.into_iter().map(copy).collect();
    assert_eq!(c[0].chown.as_deref(), Some("55:mygroup"));
    assert_eq!(c[0].sources, ["files*"]);
    assert_eq!(c[1].chmod.as_deref(), Some("644"));
    assert_eq!(c[2].from.as_deref(), Some("build"));
    assert_eq!(
        (c[2].sources.as_slice(), c[2].dest.as_str()),
        (&["/myapp".to_string()][..], "/usr/bin/")
    );
    assert!(c[3].link && !c[0].link);
    assert_eq!(c[4].exclude, ["*.txt", "*.md"]);
    assert!(c[5].parents);
    assert_eq!(c[5].sources, ["./x/a.txt", "./y/a.txt"]);
    assert_eq!(c[6].sources, ["arr[[]0].txt"]);
    assert_eq!(c[7].sources, ["my file.txt"]);
    assert_eq!(c[7].dest, "/dest dir/");
}

#[test]
fn add_flags_from_reference() {
    let cmds = commands(
        "FROM a\nADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://mirrors.edge.kernel.org/pub/linux/kernel/Historic/linux-0.01.tar.gz /\n\
ADD --keep-git-dir=true https://github.com/moby/buildkit.git#v0.10.1 /buildkit\nADD --unpack=false a.tar.gz /x/\nADD --link --chown=1:1 src /dst\n",
    );
    let c: Vec<CopyFiles> = cmds.into_iter().map(copy).collect();
    assert!(c[0].checksum.as_deref().unwrap().starts_with("sha256:2445"));
    assert_eq!(c[1].keep_git_dir, Some(true));
    assert_eq!(c[0].keep_git_dir, None);
    assert_eq!(c[2].unpack, Some(false));
    assert!(c[3].link);
    assert_eq!(c[3].chown.as_deref(), Some("1:1"));
}

#[test]
fn flags_are_checked_per_instruction() {
    let e = err("FROM a\nCOPY --checksum=sha256:x a b\n");
    assert_eq!(e.kind, ParseErrorKind::UnknownFlag("--checksum".into()));
    let e = err("FROM a\nADD --from=x a b\n");
    assert_eq!(e.kind, ParseErrorKind::UnknownFlag("--from".into()));
    let e = err("FROM a\n\nRUN --foo echo\n");
    assert_eq!(
        e.to_string(),
        "dockerfile parse error on line 3: unknown flag: --foo"
    );
    let e = err("FROM a\nENV --x=1 A=b\n");
    assert_eq!(e.kind, ParseErrorKind::UnknownFlag("--x".into()));
    let e = err("FROM a\nCOPY --chown a b\n");
    assert!(
        e.to_string().contains("missing a value on flag: --chown"),
        "{e}"
    );
    let e = err("FROM a\nCOPY --link=yes a b\n");
    assert!(e.to_string().contains("expecting boolean value"), "{e}");
    let e = err("FROM a\nCOPY --from=a --from=b x y\n");
    assert!(
        e.to_string().contains("duplicate flag specified: --from"),
        "{e}"
    );
    // A lone `--` ends the flags.
    let c = copy(single("FROM a\nCOPY --link -- --weird-name /dst\n"));
    assert_eq!(c.sources, ["--weird-name"]);
}

#[test]
fn run_flags_from_reference() {
    let cmds = commands(
        "FROM golang\nRUN --mount=type=cache,target=/root/.cache/go-build go build ...\n\
RUN --mount=type=secret,id=aws,target=/root/.aws/credentials --mount=type=ssh aws s3 cp s3://... ...\n\
RUN --network=none pip install --find-links wheels mypackage\nRUN --security=insecure cat /proc/self/status | grep CapEff\n",
    );
    let r: Vec<Run> = cmds.into_iter().map(run).collect();
    assert_eq!(r[0].mounts, ["type=cache,target=/root/.cache/go-build"]);
    assert_eq!(r[0].command, shell("go build ..."));
    assert_eq!(r[1].mounts.len(), 2);
    assert_eq!(r[2].network.as_deref(), Some("none"));
    assert_eq!(
        r[2].command,
        shell("pip install --find-links wheels mypackage")
    );
    assert_eq!(r[3].security.as_deref(), Some("insecure"));
}

#[test]
fn healthcheck_forms() {
    let cmds = commands(
        "FROM a\nHEALTHCHECK --interval=5m --timeout=3s \\\n  CMD curl -f http://localhost/ || exit 1\nHEALTHCHECK NONE\n\
HEALTHCHECK --timeout=3s CMD [\"foo\"]\nHEALTHCHECK --start-period=0s --start-interval=0s --interval=5s --timeout=0s --retries=0 CMD [\"foo\"]\n\
HEALTHCHECK   cmd   a b\nHEALTHCHECK --start-interval=1.5s --retries=3 CMD true\n",
    );
    let hc: Vec<Healthcheck> = cmds
        .into_iter()
        .map(|c| match c {
            Command::Healthcheck(h) => h,
            other => panic!("{other:?}"),
        })
        .collect();
    let Healthcheck::Cmd(h0) = &hc[0] else {
        panic!()
    };
    assert_eq!(h0.test, shell("curl -f http://localhost/ || exit 1"));
    assert_eq!(h0.interval, Some(Duration::from_secs(300)));
    assert_eq!(h0.timeout, Some(Duration::from_secs(3)));
    assert_eq!(h0.retries, None);
    assert_eq!(hc[1], Healthcheck::None);
    let Healthcheck::Cmd(h2) = &hc[2] else {
        panic!()
    };
    assert_eq!(h2.test, exec(&["foo"]));
    let Healthcheck::Cmd(h3) = &hc[3] else {
        panic!()
    };
    assert_eq!(h3.start_period, Some(Duration::ZERO));
    assert_eq!(h3.retries, Some(0));
    let Healthcheck::Cmd(h4) = &hc[4] else {
        panic!()
    };
    assert_eq!(h4.test, shell("a b"));
    let Healthcheck::Cmd(h5) = &hc[5] else {
        panic!()
    };
    assert_eq!(h5.start_interval, Some(Duration::from_millis(1500)));
    assert_eq!(h5.retries, Some(3));
}

#[test]
fn healthcheck_errors() {
    for (text, needle) in [
        ("HEALTHCHECK", "HEALTHCHECK requires at least one argument"),
        ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
        ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
        (
            "HEALTHCHECK CONNECT TCP 7000",
            "Unknown type \"CONNECT\" in HEALTHCHECK (try CMD)",
        ),
        (
            "HEALTHCHECK --retries=-1 CMD x",
            "--retries cannot be negative (-1)",
        ),
        (
            "HEALTHCHECK --interval=10us CMD x",
            "Interval \"interval\" cannot be less than 1ms",
        ),
        (
            "HEALTHCHECK --timeout=soon CMD x",
            "time: invalid duration \"soon\"",
        ),
        ("HEALTHCHECK --every=1s CMD x", "unknown flag: --every"),
    ] {
        let e = err(&format!("FROM a\n{text}\n"));
        assert_eq!(e.line, 2, "{text}");
        assert!(e.to_string().contains(needle), "{text}: {e}");
    }
}

// ------------------------------------------------------------------ ONBUILD

#[test]
fn onbuild_from_reference() {
    let df = ok("FROM a\nONBUILD ADD . /app/src\nONBUILD RUN /usr/local/bin/python-build --dir /app/src\nonbuild run [\"echo\", \"test\"]\n");
    let cmds = instrs(&df);
    let Command::Onbuild(inner) = &cmds[0].command else {
        panic!()
    };
    assert_eq!(inner.original, "ADD . /app/src");
    assert_eq!(inner.line, 2);
    let c = copy(inner.command.clone());
    assert_eq!(
        (c.sources.as_slice(), c.dest.as_str()),
        (&[".".to_string()][..], "/app/src")
    );
    let Command::Onbuild(inner) = &cmds[1].command else {
        panic!()
    };
    assert_eq!(
        run(inner.command.clone()).command,
        shell("/usr/local/bin/python-build --dir /app/src")
    );
    let Command::Onbuild(inner) = &cmds[2].command else {
        panic!()
    };
    assert_eq!(run(inner.command.clone()).command, exec(&["echo", "test"]));
    assert_eq!(inner.original, "run [\"echo\", \"test\"]");
}

#[test]
fn onbuild_heredoc() {
    let df = ok("FROM a\nONBUILD RUN <<EOF\necho hi\nEOF\nUSER x\n");
    let Command::Onbuild(inner) = &instrs(&df)[0].command else {
        panic!()
    };
    assert_eq!(run(inner.command.clone()).heredocs[0].content, "echo hi\n");
    assert_eq!(inner.original, "RUN <<EOF\necho hi\nEOF");
    assert_eq!(instrs(&df)[1].line, 5);
}

#[test]
fn onbuild_errors() {
    let e = err("FROM a\nONBUILD ONBUILD RUN x\n");
    assert!(
        e.to_string()
            .contains("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
        "{e}"
    );
    let e = err("FROM a\nONBUILD FROM b\n");
    assert!(
        e.to_string()
            .contains("FROM isn't allowed as an ONBUILD trigger"),
        "{e}"
    );
    let e = err("FROM a\nONBUILD maintainer me\n");
    assert!(
        e.to_string()
            .contains("MAINTAINER isn't allowed as an ONBUILD trigger"),
        "{e}"
    );
    let e = err("FROM a\nONBUILD FOO bar\n");
    assert_eq!(e.kind, ParseErrorKind::UnknownInstruction("FOO".into()));
    let e = err("FROM a\nONBUILD\n");
    assert!(
        e.to_string()
            .contains("ONBUILD requires at least one argument"),
        "{e}"
    );
}

#[test]
fn onbuild_is_not_expanded() {
    let cmd = single("FROM a\nONBUILD WORKDIR $DIR\n");
    assert_eq!(expanded(&cmd, &[("DIR", "/x")]), cmd);
}

// -------------------------------------------------------------- ENV / LABEL

#[test]
fn env_examples_from_reference() {
    let cmds = commands(
        "FROM a\nENV MY_NAME=\"John Doe\"\nENV MY_DOG=Rex\\ The\\ Dog\nENV MY_CAT=fluffy\n\
ENV MY_NAME=\"John Doe\" MY_DOG=Rex\\ The\\ Dog \\\n    MY_CAT=fluffy\nENV MY_VAR my-value\n",
    );
    assert_eq!(cmds[0], Command::Env(vec![kv("MY_NAME", "\"John Doe\"")]));
    assert_eq!(cmds[1], Command::Env(vec![kv("MY_DOG", "Rex\\ The\\ Dog")]));
    assert_eq!(
        cmds[3],
        Command::Env(vec![
            kv("MY_NAME", "\"John Doe\""),
            kv("MY_DOG", "Rex\\ The\\ Dog"),
            kv("MY_CAT", "fluffy"),
        ])
    );
    assert_eq!(cmds[4], Command::Env(vec![kv("MY_VAR", "my-value")]));
    assert_eq!(
        expanded(&cmds[3], &[]),
        Command::Env(vec![
            kv("MY_NAME", "John Doe"),
            kv("MY_DOG", "Rex The Dog"),
            kv("MY_CAT", "fluffy"),
        ])
    );
}

#[test]
fn env_quoting_rules() {
    let text = "FROM ubuntu\nENV name value\nENV name=value name2=value2\nENV name=\"value value1\"\nENV name=value\\ value2\n\
ENV name=\"value'quote space'value2\"\nENV name='value\"double quote\"value2'\nENV name=\"a\\\"b\"\nENV name=\"a\\'b\"\n\
ENV name='a\\'b''\nENV name='a\\\"b'\nENV name=\"''\"\nENV SCUBA 1 DUBA 3\nENV SCUBA \"1 DUBA 3\"\n";
    let cmds = commands(text);
    let values: Vec<Vec<(String, String)>> = cmds
        .iter()
        .map(|c| match expanded(c, &[]) {
            Command::Env(kvs) => kvs.into_iter().map(|kv| (kv.key, kv.value)).collect(),
            other => panic!("{other:?}"),
        })
        .collect();
    let one = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
    assert_eq!(values[0], one("name", "value"));
    assert_eq!(
        values[1],
        vec![
            ("name".into(), "value".into()),
            ("name2".into(), "value2".into())
        ]
    );
    assert_eq!(values[2], one("name", "value value1"));
    assert_eq!(values[3], one("name", "value value2"));
    assert_eq!(values[4], one("name", "value'quote space'value2"));
    assert_eq!(values[5], one("name", "value\"double quote\"value2"));
    assert_eq!(values[6], one("name", "a\"b"));
    assert_eq!(values[7], one("name", "a\\'b"));
    assert_eq!(values[8], one("name", "a\\b"));
    assert_eq!(values[9], one("name", "a\\\"b"));
    assert_eq!(values[10], one("name", "''"));
    assert_eq!(values[11], one("SCUBA", "1 DUBA 3"));
    assert_eq!(values[12], one("SCUBA", "1 DUBA 3"));
    // The raw legacy value keeps its quotes until expansion.
    assert_eq!(cmds[12], Command::Env(vec![kv("SCUBA", "\"1 DUBA 3\"")]));
}

#[test]
fn env_multiline_quoted_value() {
    let cmd = single("FROM a\nENV name=value \\\n    name1=value1 \\\n    name2=\"value2a \\\n           value2b\" \\\n    name3=\"value3a\\n\\\"value3b\\\"\" \\\n\tname4=\"value4a\\\\nvalue4b\" \\\n");
    assert_eq!(
        cmd,
        Command::Env(vec![
            kv("name", "value"),
            kv("name1", "value1"),
            kv("name2", "\"value2a            value2b\""),
            kv("name3", "\"value3a\\n\\\"value3b\\\"\""),
            kv("name4", "\"value4a\\\\nvalue4b\""),
        ])
    );
    let Command::Env(kvs) = expanded(&cmd, &[]) else {
        panic!()
    };
    assert_eq!(kvs[3].value, "value3a\\n\"value3b\"");
    assert_eq!(kvs[4].value, "value4a\\nvalue4b");
}

#[test]
fn env_uses_values_from_before_the_instruction() {
    // ENV abc=hello / ENV abc=bye def=$abc / ENV ghi=$abc
    let cmds = commands("FROM a\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n");
    let mut vars: Vec<(String, String)> = Vec::new();
    for cmd in &cmds {
        let Command::Env(kvs) = cmd.expand(&vars, '\\').unwrap() else {
            panic!()
        };
        vars.extend(kvs.into_iter().map(|kv| (kv.key, kv.value)));
    }
    let get = |k: &str| {
        vars.iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("abc"), Some("bye"));
    assert_eq!(get("def"), Some("hello"));
    assert_eq!(get("ghi"), Some("bye"));
}

#[test]
fn env_errors() {
    assert!(err("FROM a\nENV\n")
        .to_string()
        .contains("ENV requires at least one argument"));
    let e = err("FROM a\nENV PATH\n");
    assert_eq!(
        e.to_string(),
        "dockerfile parse error on line 2: ENV must have two arguments"
    );
    let e = err("FROM a\nENV a=1 b\n");
    assert!(e.to_string().contains("can't find = in \"b\""), "{e}");
    let e = err("FROM a\nENV =x\n");
    assert!(e.to_string().contains("ENV names can not be blank"), "{e}");
}

#[test]
fn label_examples_from_reference() {
    let cmds = commands(
        "FROM a\nLABEL \"com.example.vendor\"=\"ACME Incorporated\"\nLABEL com.example.label-with-value=\"foo\"\nLABEL version=\"1.0\"\n\
LABEL description=\"This text illustrates \\\nthat label-values can span multiple lines.\"\n\
LABEL multi.label1=\"value1\" multi.label2=\"value2\" other=\"value3\"\nLABEL multi.label1=\"value1\" \\\n      multi.label2=\"value2\" \\\n      other=\"value3\"\n\
LABEL maintainer James Turnbull \"james@example.com\"\n",
    );
    let exp: Vec<Vec<KeyValue>> = cmds
        .iter()
        .map(|c| match expanded(c, &[]) {
            Command::Label(kvs) => kvs,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(exp[0], [kv("com.example.vendor", "ACME Incorporated")]);
    assert_eq!(exp[1], [kv("com.example.label-with-value", "foo")]);
    assert_eq!(
        exp[3],
        [kv(
            "description",
            "This text illustrates that label-values can span multiple lines."
        )]
    );
    let three = [
        kv("multi.label1", "value1"),
        kv("multi.label2", "value2"),
        kv("other", "value3"),
    ];
    assert_eq!(exp[4], three);
    assert_eq!(exp[5], three);
    assert_eq!(
        exp[6],
        [kv("maintainer", "James Turnbull james@example.com")]
    );
}

// --------------------------------------------------------------------- ARG

#[test]
fn global_args_before_from() {
    let df = ok("ARG  CODE_VERSION=latest\nFROM base:${CODE_VERSION}\nCMD  /code/run-app\n\nFROM extras:${CODE_VERSION}\nCMD  /code/run-extras\n");
    assert_eq!(df.global_args.len(), 1);
    assert_eq!(
        df.global_args[0].command,
        Command::Arg(vec![ArgDef {
            name: "CODE_VERSION".into(),
            default: Some("latest".into())
        }])
    );
    assert_eq!(df.stages.len(), 2);
    let vars = env(&[("CODE_VERSION", "latest")]);
    assert_eq!(
        df.stages[0].expand_from(&vars, '\\').unwrap().0,
        "base:latest"
    );
    assert_eq!(
        df.stages[1].expand_from(&vars, '\\').unwrap().0,
        "extras:latest"
    );
    assert_eq!(df.stages[1].line, 5);
}

#[test]
fn arg_forms() {
    let cmd = single("FROM busybox\nARG user1 buildno=1 empty= \"quoted\"=\"x y\"\n");
    assert_eq!(
        cmd,
        Command::Arg(vec![
            ArgDef {
                name: "user1".into(),
                default: None
            },
            ArgDef {
                name: "buildno".into(),
                default: Some("1".into())
            },
            ArgDef {
                name: "empty".into(),
                default: Some(String::new())
            },
            ArgDef {
                name: "\"quoted\"".into(),
                default: Some("\"x y\"".into())
            },
        ])
    );
    let Command::Arg(defs) = expanded(&cmd, &[]) else {
        panic!()
    };
    assert_eq!(defs[3].name, "quoted");
    assert_eq!(defs[3].default.as_deref(), Some("x y"));
    assert!(err("FROM a\nARG\n")
        .to_string()
        .contains("ARG requires at least one argument"));
    assert!(err("FROM a\nARG =x\n")
        .to_string()
        .contains("ARG names can not be blank"));
}

#[test]
fn default_value_examples_from_reference() {
    // USER ${username:-some_user}
    let cmd = single("FROM busybox\nUSER ${username:-some_user}\n");
    assert_eq!(expanded(&cmd, &[]), Command::User("some_user".into()));
    assert_eq!(
        expanded(&cmd, &[("username", "what_user")]),
        Command::User("what_user".into())
    );
    // ENV CONT_IMG_VER=${CONT_IMG_VER:-v1.0.0}
    let cmd = single("FROM ubuntu\nENV CONT_IMG_VER=${CONT_IMG_VER:-v1.0.0}\n");
    assert_eq!(
        expanded(&cmd, &[]),
        Command::Env(vec![kv("CONT_IMG_VER", "v1.0.0")])
    );
    assert_eq!(
        expanded(&cmd, &[("CONT_IMG_VER", "v2.0.1")]),
        Command::Env(vec![kv("CONT_IMG_VER", "v2.0.1")])
    );
    // ${variable:+word}
    let cmd = single("FROM a\nWORKDIR /app${DEBUG:+/debug}\n");
    assert_eq!(expanded(&cmd, &[]), Command::Workdir("/app".into()));
    assert_eq!(
        expanded(&cmd, &[("DEBUG", "1")]),
        Command::Workdir("/app/debug".into())
    );
}

// ----------------------------------------------------- environment replacement

#[test]
fn environment_replacement_example() {
    let cmds =
        commands("FROM busybox\nENV FOO=/bar\nWORKDIR ${FOO}\nADD . $FOO\nCOPY \\$FOO /quux\n");
    let vars = [("FOO", "/bar")];
    assert_eq!(expanded(&cmds[1], &vars), Command::Workdir("/bar".into()));
    let add = copy(expanded(&cmds[2], &vars));
    assert_eq!(
        (add.sources.as_slice(), add.dest.as_str()),
        (&[".".to_string()][..], "/bar")
    );
    let c = copy(expanded(&cmds[3], &vars));
    assert_eq!(
        (c.sources.as_slice(), c.dest.as_str()),
        (&["$FOO".to_string()][..], "/quux")
    );
}

#[test]
fn which_instructions_expand() {
    let text = "FROM a\nRUN echo $HOME\nCMD echo $HOME\nENTRYPOINT [\"echo\", \"$HOME\"]\nHEALTHCHECK CMD test -d $HOME\n\
MAINTAINER $HOME\nSHELL [\"/bin/$HOME\"]\nUSER $HOME\nWORKDIR $HOME\nSTOPSIGNAL $SIG\nVOLUME $HOME /data\nEXPOSE $PORTS 22\n";
    let cmds = commands(text);
    let vars = [
        ("HOME", "/root"),
        ("SIG", "SIGTERM"),
        ("PORTS", "80/tcp 443"),
    ];
    for cmd in &cmds[..6] {
        assert!(!cmd.expands_variables(), "{cmd:?}");
        assert_eq!(&expanded(cmd, &vars), cmd);
    }
    assert_eq!(expanded(&cmds[6], &vars), Command::User("/root".into()));
    assert_eq!(expanded(&cmds[7], &vars), Command::Workdir("/root".into()));
    assert_eq!(
        expanded(&cmds[8], &vars),
        Command::StopSignal("SIGTERM".into())
    );
    assert_eq!(
        expanded(&cmds[9], &vars),
        Command::Volume(vec!["/root".into(), "/data".into()])
    );
    assert_eq!(
        expanded(&cmds[10], &vars),
        Command::Expose(vec!["80/tcp".into(), "443".into(), "22".into()])
    );
}

#[test]
fn copy_sources_are_expanded_one_by_one() {
    let cmd = single("FROM a\nCOPY --chown=$UID:$GID --from=$STAGE $SRC ${DEST:-/opt}/\n");
    let c = copy(expanded(
        &cmd,
        &[
            ("SRC", "a b"),
            ("UID", "1000"),
            ("GID", "1000"),
            ("STAGE", "x"),
        ],
    ));
    assert_eq!(c.sources, ["a b"]);
    assert_eq!(c.dest, "/opt/");
    assert_eq!(c.chown.as_deref(), Some("1000:1000"));
    assert_eq!(c.from.as_deref(), Some("$STAGE"));
}

#[test]
fn required_variable_error_names_the_line() {
    // Quoted: unquoted spaces would split the ENV words, as in Docker.
    let df = ok("FROM a\n\nENV X=\"${REQUIRED:?must be set}\"\n");
    let e = instrs(&df)[0].expand(&env(&[]), df.escape()).unwrap_err();
    assert_eq!(e.line, 3);
    assert_eq!(
        e.to_string(),
        "Dockerfile line 3: failed to process \"\\\"${REQUIRED:?must be set}\\\"\": REQUIRED: must be set"
    );
    let e = instrs(&df)[0]
        .expand(&env(&[("REQUIRED", "")]), '\\')
        .unwrap_err();
    assert!(e.to_string().ends_with("REQUIRED: must be set"));
    let df = ok("FROM a\nWORKDIR ${DIR:?}\n");
    let e = instrs(&df)[0].expand(&env(&[]), '\\').unwrap_err();
    assert!(
        e.to_string().ends_with("DIR: is not allowed to be unset"),
        "{e}"
    );
}

#[test]
fn from_expansion_error_names_the_line() {
    let df = ok("ARG V\nFROM img:${V:?need-a-version}\n");
    let e = df.stages[0].expand_from(&env(&[]), '\\').unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.to_string().contains("V: need-a-version"), "{e}");
}

// ------------------------------------------------------- other instructions

#[test]
fn expose_volume_user_workdir_stopsignal() {
    let cmds = commands(
        "FROM a\nEXPOSE 80/udp\nEXPOSE 80/tcp 80/udp\nVOLUME [\"/data\"]\nVOLUME /var/log /var/db\nUSER patrick\nUSER 1000:1000\n\
WORKDIR /a\nWORKDIR b\nWORKDIR /path with space\nSTOPSIGNAL SIGKILL\nMAINTAINER SvenDowideit\n",
    );
    assert_eq!(cmds[0], Command::Expose(vec!["80/udp".into()]));
    assert_eq!(
        cmds[1],
        Command::Expose(vec!["80/tcp".into(), "80/udp".into()])
    );
    assert_eq!(cmds[2], Command::Volume(vec!["/data".into()]));
    assert_eq!(
        cmds[3],
        Command::Volume(vec!["/var/log".into(), "/var/db".into()])
    );
    assert_eq!(cmds[4], Command::User("patrick".into()));
    assert_eq!(cmds[5], Command::User("1000:1000".into()));
    assert_eq!(cmds[6], Command::Workdir("/a".into()));
    assert_eq!(cmds[7], Command::Workdir("b".into()));
    assert_eq!(cmds[8], Command::Workdir("/path with space".into()));
    assert_eq!(cmds[9], Command::StopSignal("SIGKILL".into()));
    assert_eq!(cmds[10], Command::Maintainer("SvenDowideit".into()));
}

#[test]
fn workdir_with_env_example() {
    let cmds = commands("FROM a\nENV DIRPATH=/path\nWORKDIR $DIRPATH/$DIRNAME\n");
    assert_eq!(
        expanded(&cmds[1], &[("DIRPATH", "/path")]),
        Command::Workdir("/path/".into())
    );
}

#[test]
fn argument_count_errors() {
    for (text, needle) in [
        ("EXPOSE", "EXPOSE requires at least one argument"),
        ("VOLUME []", "VOLUME requires at least one argument"),
        (
            "VOLUME [\"/a\", \" \"]",
            "VOLUME specified can not be an empty string",
        ),
        ("USER", "USER requires exactly one argument"),
        ("WORKDIR", "WORKDIR requires exactly one argument"),
        ("STOPSIGNAL", "STOPSIGNAL requires exactly one argument"),
        ("COPY onlyone", "COPY requires at least two arguments"),
        ("ADD", "ADD requires at least two arguments"),
    ] {
        let e = err(&format!("FROM a\n{text}\n"));
        assert_eq!(e.line, 2, "{text}");
        assert!(e.to_string().contains(needle), "{text}: {e}");
    }
}

// -------------------------------------------------------- structural errors

#[test]
fn unknown_instruction_names_its_line() {
    let e = err("FROM alpine\n\n# comment\nFOO bar\nRUN x\n");
    assert_eq!(e.line, 4);
    assert_eq!(e.kind, ParseErrorKind::UnknownInstruction("FOO".into()));
    assert_eq!(
        e.to_string(),
        "dockerfile parse error on line 4: unknown instruction: FOO"
    );
    // After a multi-line instruction, the count still follows physical lines.
    let e = err("FROM alpine\nRUN a \\\n  b \\\n  c\nCOPPY x y\n");
    assert_eq!(e.line, 5);
}

#[test]
fn missing_from() {
    let e = err("# comment\nRUN echo hi\n");
    assert_eq!(e.line, 2);
    assert_eq!(e.kind, ParseErrorKind::MissingFrom("RUN".into()));
    assert!(e
        .to_string()
        .starts_with("dockerfile parse error on line 2: no build stage"));
    let e = err("ARG A=1\nARG B\n");
    assert_eq!(e.kind, ParseErrorKind::NoStages);
    let e = err("ARG A=1\nENV B=2\nFROM a\n");
    assert_eq!(
        (e.line, e.kind),
        (2, ParseErrorKind::MissingFrom("ENV".into()))
    );
}

#[test]
fn empty_files() {
    assert_eq!(err("").kind, ParseErrorKind::Empty);
    assert_eq!(err("# only a comment\n\n   \n").kind, ParseErrorKind::Empty);
    assert_eq!(err("# escape=`\n").kind, ParseErrorKind::Empty);
}

#[test]
fn line_numbers_span_continuations_and_heredocs() {
    let df = ok("FROM a\nRUN a \\\n  b\n\nCOPY <<EOF /x\n1\n2\nEOF\nENV A=1\n");
    let lines: Vec<(usize, usize)> = instrs(&df).iter().map(|i| (i.line, i.end_line)).collect();
    assert_eq!(lines, [(2, 3), (5, 8), (9, 9)]);
    assert_eq!(instrs(&df)[0].original, "RUN a   b");
}

#[test]
fn full_multistage_example() {
    let text = r#"# syntax=docker/dockerfile:1
ARG GO_VERSION=1.22

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN CGO_ENABLED=0 go build -o /out/app ./cmd/app

FROM gcr.io/distroless/static AS runtime
LABEL org.opencontainers.image.title="app"
COPY --from=build --chown=nonroot:nonroot /out/app /app
USER nonroot
EXPOSE 8080
HEALTHCHECK --interval=30s CMD ["/app", "health"]
ENTRYPOINT ["/app"]
"#;
    let df = ok(text);
    assert_eq!(df.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(df.global_args.len(), 1);
    assert_eq!(df.stages.len(), 2);
    assert_eq!(df.stages[0].instructions.len(), 5);
    assert_eq!(df.stages[1].instructions.len(), 6);
    let r = run(df.stages[0].instructions[2].command.clone());
    assert_eq!(r.command, shell("go mod download"));
    assert_eq!(r.mounts, ["type=cache,target=/go/pkg/mod"]);
    assert_eq!(df.stages[1].instructions[5].line, 18);
    let (base, platform) = df.stages[0]
        .expand_from(
            &env(&[("GO_VERSION", "1.22"), ("BUILDPLATFORM", "linux/arm64")]),
            '\\',
        )
        .unwrap();
    assert_eq!(base, "golang:1.22");
    assert_eq!(platform.as_deref(), Some("linux/arm64"));
}

// ------------------------------------------------------------- robustness

#[test]
fn no_panics_on_truncated_input() {
    let text = "# syntax=x\n# escape=`\nARG A=\"1\"\nFROM --platform=$P img:${A:-x} AS b\nRUN --mount=\"type=cache,x=1\" <<-EOF `\n  cat\n\tx\n\tEOF\n\
COPY --chown=1:1 [\"a b\", \"c\"]\nONBUILD COPY <<X <<'Y' /d\nx\nX\ny\nY\nENV a=\"b c\" d='e' f=g` h\nHEALTHCHECK --interval=1.5s CMD [\"a\"]\n\
LABEL \"k\"=\"v\" \nEXPOSE 80/tcp ${P:-1}\nCMD [ \"a\", [\"b\"] ]\n";
    for end in 0..=text.len() {
        if text.is_char_boundary(end) {
            let _ = parse(&text[..end]);
        }
    }
    let words = "a${b:-'c d'}\"e\\\"f\"${g#h*}${i%%j?}${k//l/m}${n:?o}`$p'\\";
    let vars = env(&[("g", "hxhy"), ("i", "ajbj"), ("k", "lll"), ("n", "")]);
    for end in 0..=words.len() {
        if words.is_char_boundary(end) {
            let _ = berth_dockerfile::expand(&words[..end], &vars, '\\');
            let _ = berth_dockerfile::expand_words(&words[..end], &vars, '`');
        }
    }
    let ignore = "*\n!a/**/b?\n[a-z]*.md\n\\#x\n**\n!**/c[!d]\n/\n..\n";
    for end in 0..=ignore.len() {
        if let Ok(m) = berth_dockerfile::IgnoreMatcher::new(&ignore[..end]) {
            for p in ["a", "a/x/b1", "z.md", "#x", "c", "q/ce", "", ".", "..", "/"] {
                let _ = m.is_excluded(p);
                let _ = m.can_skip_dir(p);
            }
        }
    }
}

#[test]
fn run_script_is_none_for_exec_form() {
    let r = run(single("FROM a\nRUN [\"echo\", \"hi\"]\n"));
    assert_eq!(r.script(), None);
    let r = run(single("FROM a\nRUN echo hi\n"));
    assert_eq!(r.script().as_deref(), Some("echo hi"));
}
