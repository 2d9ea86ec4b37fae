//! The instructions that change only the image config (ENV, LABEL, WORKDIR,
//! USER, EXPOSE, VOLUME, CMD, ENTRYPOINT, SHELL, STOPSIGNAL, MAINTAINER, ONBUILD,
//! HEALTHCHECK, ARG): no container, no layer, just a new config and the history
//! line docker writes for them. Pure, so each rule is tested without root.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use berth_dockerfile::{Command, Instruction};

use super::plan::{command_argv, healthcheck_of};
use super::StageState;

/// Applies a metadata instruction (already expanded) to the stage; returns its
/// history's `created_by`, or None for RUN, COPY and ADD, which make layers.
pub(super) fn apply(
    ins: &Instruction,
    state: &mut StageState,
    build_args: &BTreeMap<String, Option<String>>,
) -> Result<Option<String>, String> {
    let nop = |text: String| Some(format!("/bin/sh -c #(nop) {text}"));
    let original = ins.original.trim().to_string();
    let cfg = &mut state.blob.config;
    Ok(match &ins.command {
        Command::Env(kvs) => {
            for kv in kvs {
                cfg.env
                    .retain(|e| e.split('=').next() != Some(kv.key.as_str()));
                cfg.env.push(format!("{}={}", kv.key, kv.value));
            }
            nop(original)
        }
        Command::Label(kvs) => {
            for kv in kvs {
                cfg.labels.insert(kv.key.clone(), kv.value.clone());
            }
            nop(original)
        }
        Command::Workdir(dir) => {
            cfg.working_dir = if dir.starts_with('/') {
                dir.clone()
            } else {
                Path::new(if cfg.working_dir.is_empty() {
                    "/"
                } else {
                    &cfg.working_dir
                })
                .join(dir)
                .display()
                .to_string()
            };
            nop(format!("WORKDIR {}", cfg.working_dir))
        }
        Command::User(u) => {
            cfg.user = u.clone();
            nop(format!("USER {u}"))
        }
        Command::Expose(ports) => {
            let map = cfg.exposed_ports.get_or_insert_with(BTreeSet::new);
            for p in ports {
                let named = crate::port::exposed(p).map_err(|e| e.to_string())?;
                map.extend(named.iter().map(ToString::to_string));
            }
            nop(format!("EXPOSE {}", ports.join(" ")))
        }
        Command::Volume(paths) => {
            let map = cfg.volumes.get_or_insert_with(BTreeSet::new);
            for p in paths {
                map.insert(p.clone());
            }
            nop(format!("VOLUME {paths:?}"))
        }
        Command::Cmd(cl) => {
            let argv = command_argv(cl, &cfg.shell);
            let step = nop(format!("CMD {argv:?}"));
            cfg.cmd = Some(argv);
            step
        }
        Command::Entrypoint(cl) => {
            let argv = command_argv(cl, &cfg.shell);
            let step = nop(format!("ENTRYPOINT {argv:?}"));
            cfg.entrypoint = Some(argv);
            step
        }
        Command::Shell(shell) => {
            cfg.shell = shell.clone();
            nop(format!("SHELL {shell:?}"))
        }
        Command::StopSignal(sig) => {
            crate::kill::parse_signal(sig).map_err(|e| e.to_string())?;
            cfg.stop_signal = Some(sig.clone());
            nop(format!("STOPSIGNAL {sig}"))
        }
        Command::Maintainer(m) => {
            state.blob.author = m.clone();
            nop(format!("MAINTAINER {m}"))
        }
        Command::Onbuild(trigger) => {
            cfg.on_build.push(trigger.original.trim().to_string());
            nop(format!("ONBUILD {}", trigger.original.trim()))
        }
        Command::Healthcheck(h) => {
            cfg.healthcheck = Some(healthcheck_of(h));
            nop(original)
        }
        Command::Arg(defs) => {
            for d in defs {
                let value = build_args
                    .get(&d.name)
                    .cloned()
                    .flatten()
                    .or_else(|| d.default.clone());
                state.args.retain(|(k, _)| k != &d.name);
                if let Some(v) = value {
                    state.args.push((d.name.clone(), v));
                }
            }
            nop(original)
        }
        Command::Run(_) | Command::Copy(_) | Command::Add(_) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the instructions of a one-stage Dockerfile on an empty stage, each
    /// expanded as the build expands it.
    fn stage_after(
        dockerfile: &str,
        build_args: &[(&str, Option<&str>)],
    ) -> (StageState, Vec<Option<String>>) {
        let df = berth_dockerfile::parse(dockerfile).expect("parse");
        let args: BTreeMap<String, Option<String>> = build_args
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(String::from)))
            .collect();
        let mut state = StageState {
            parent: String::new(),
            blob: Default::default(),
            size: 0,
            args: Vec::new(),
        };
        let mut history = Vec::new();
        for ins in &df.stages[0].instructions {
            let ins = ins.expand(&state.env(), df.escape()).expect("expand");
            history.push(apply(&ins, &mut state, &args).expect("apply"));
        }
        (state, history)
    }

    #[test]
    fn env_replaces_a_key_and_later_steps_see_it() {
        let (s, _) = stage_after("FROM scratch\nENV A=1 B=2\nENV A=3\nLABEL v=$A\n", &[]);
        assert_eq!(s.blob.config.env, vec!["B=2", "A=3"]);
        assert_eq!(s.blob.config.labels["v"], "3");
    }

    #[test]
    fn workdir_is_relative_to_the_last_one() {
        let (s, h) = stage_after("FROM scratch\nWORKDIR app\nWORKDIR src\n", &[]);
        assert_eq!(s.blob.config.working_dir, "/app/src");
        assert_eq!(h[1].as_deref(), Some("/bin/sh -c #(nop) WORKDIR /app/src"));
        let (s, _) = stage_after("FROM scratch\nWORKDIR /a\nWORKDIR /b\n", &[]);
        assert_eq!(s.blob.config.working_dir, "/b");
    }

    #[test]
    fn expose_defaults_to_tcp_and_lowercases_the_protocol() {
        let (s, _) = stage_after("FROM scratch\nEXPOSE 80 53/UDP\n", &[]);
        let ports: Vec<&String> = s
            .blob
            .config
            .exposed_ports
            .as_ref()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(ports, ["53/udp", "80/tcp"]);
    }

    #[test]
    fn shell_form_cmd_uses_the_stages_shell() {
        let (s, _) = stage_after(
            "FROM scratch\nSHELL [\"/bin/bash\", \"-c\"]\nCMD echo hi\nENTRYPOINT [\"/x\"]\n",
            &[],
        );
        assert_eq!(s.blob.config.cmd.unwrap(), ["/bin/bash", "-c", "echo hi"]);
        assert_eq!(s.blob.config.entrypoint.unwrap(), ["/x"]);
    }

    #[test]
    fn arg_takes_the_build_arg_over_its_default() {
        let (s, _) = stage_after(
            "FROM scratch\nARG A=default\nARG B=kept\nARG C\nENV X=$A-$B-$C\n",
            &[("A", Some("given")), ("C", None)],
        );
        assert_eq!(s.blob.config.env, vec!["X=given-kept-"]);
        assert_eq!(
            s.args,
            [("A".into(), "given".into()), ("B".into(), "kept".into())]
        );
    }

    #[test]
    fn a_bad_stopsignal_is_refused() {
        let df = berth_dockerfile::parse("FROM scratch\nSTOPSIGNAL SIGNOPE\n").unwrap();
        let mut state = StageState {
            parent: String::new(),
            blob: Default::default(),
            size: 0,
            args: Vec::new(),
        };
        let e = apply(&df.stages[0].instructions[0], &mut state, &BTreeMap::new()).unwrap_err();
        assert!(e.contains("Invalid signal"), "{e}");
        let (s, _) = stage_after("FROM scratch\nSTOPSIGNAL SIGQUIT\nMAINTAINER me\n", &[]);
        assert_eq!(s.blob.config.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(s.blob.author, "me");
    }

    #[test]
    fn layer_steps_are_left_to_the_builder() {
        let (_, h) = stage_after(
            "FROM scratch\nRUN true\nCOPY a b\nADD c d\nONBUILD RUN x\n",
            &[],
        );
        assert_eq!(h[..3], [None, None, None]);
        assert_eq!(h[3].as_deref(), Some("/bin/sh -c #(nop) ONBUILD RUN x"));
    }
}
