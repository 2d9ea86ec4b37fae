//! Dockerfile builds through the berth CLI, the docker CLI and docker-py.

mod common;

use std::path::Path;

use common::Daemon;

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn context(d: &Daemon, name: &str) -> std::path::PathBuf {
    let dir = d.root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const APP: &str = r#"# syntax=docker/dockerfile:1
ARG BASE=busybox
FROM ${BASE}:latest AS base
ARG GREETING=hello
ENV APP_HOME=/opt/app \
    MODE="prod mode"
WORKDIR $APP_HOME
COPY conf/ ./conf/
COPY --chmod=755 run.sh /usr/local/bin/
COPY *.txt notes/
ADD bundle.tar /opt/bundle/
RUN echo "$GREETING from $MODE" > greeting && \
    mkdir -p data
RUN ["sh", "-c", "echo exec-form > exec.out"]
LABEL org.example.team="core" version=1
EXPOSE 8080 53/udp
VOLUME /opt/app/data
USER nobody
STOPSIGNAL SIGQUIT
ENTRYPOINT ["/usr/local/bin/run.sh"]
CMD ["default-arg"]
"#;

fn app_context(d: &Daemon) -> std::path::PathBuf {
    let dir = context(d, "app");
    write(&dir, "Dockerfile", APP);
    write(&dir, "conf/a.conf", "a=1\n");
    write(&dir, "conf/sub/b.conf", "b=2\n");
    write(
        &dir,
        "run.sh",
        "#!/bin/sh\necho \"run: $* $(cat /opt/app/greeting) $(id -u)\"\n",
    );
    write(&dir, "one.txt", "1\n");
    write(&dir, "two.txt", "2\n");
    write(&dir, "secret.txt", "do not ship\n");
    write(
        &dir,
        ".dockerignore",
        "# comments are fine\nsecret.txt\n*.tmp\n",
    );
    write(&dir, "junk.tmp", "x");
    // A tar that ADD unpacks.
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(7);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, "inner/file", &b"bundled"[..])
        .unwrap();
    std::fs::write(dir.join("bundle.tar"), tar.into_inner().unwrap()).unwrap();
    dir
}

#[test]
fn builds_run_and_rebuild_from_cache() {
    let d = Daemon::start();
    d.import_busybox();
    let dir = app_context(&d);
    let ctx = dir.to_str().unwrap();
    let r = d
        .berth(&["build", "-t", "app:1", "--build-arg", "GREETING=hi", ctx])
        .ok();
    assert!(
        r.stdout.contains("Step 1/17 : FROM ${BASE}:latest AS base"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("Successfully tagged app:1"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("Using cache"), "{}", r.stdout);

    let out = d.berth(&["run", "--rm", "app:1"]).ok();
    assert_eq!(out.stdout, "run: default-arg hi from prod mode 65534\n");
    let out = d
        .berth(&[
            "run", "--rm", "--entrypoint", "sh", "-u", "0", "app:1", "-c",
            "pwd; cat conf/a.conf conf/sub/b.conf notes/one.txt notes/two.txt exec.out /opt/bundle/inner/file; echo; \
             ls notes; stat -c %a /usr/local/bin/run.sh; ls /opt/app",
        ])
        .ok();
    assert_eq!(
        out.stdout,
        "/opt/app\na=1\nb=2\n1\n2\nexec-form\nbundled\none.txt\ntwo.txt\n755\nconf\ndata\nexec.out\ngreeting\nnotes\n"
    );
    let cfg = d
        .berth(&[
            "image", "inspect", "-f",
            "{{.Config.User}}|{{.Config.WorkingDir}}|{{json .Config.Entrypoint}}|{{json .Config.Cmd}}|{{.Config.StopSignal}}|{{index .Config.Labels \"org.example.team\"}}|{{json .Config.ExposedPorts}}|{{json .Config.Volumes}}",
            "app:1",
        ])
        .ok();
    assert_eq!(
        cfg.out(),
        r#"nobody|/opt/app|["/usr/local/bin/run.sh"]|["default-arg"]|SIGQUIT|core|{"53/udp":{},"8080/tcp":{}}|{"/opt/app/data":{}}"#
    );

    // Nothing changed: every step from cache.
    let r = d
        .berth(&["build", "-t", "app:1", "--build-arg", "GREETING=hi", ctx])
        .ok();
    assert_eq!(r.stdout.matches("Using cache").count(), 16, "{}", r.stdout);
    assert!(!r.stdout.contains("Running in"), "{}", r.stdout);
    // A touched (not changed) file still hits the cache; a changed one rebuilds
    // from its step on.
    let now = std::time::SystemTime::now();
    std::fs::File::options()
        .write(true)
        .open(dir.join("one.txt"))
        .unwrap()
        .set_modified(now)
        .unwrap();
    let r = d
        .berth(&["build", "-t", "app:1", "--build-arg", "GREETING=hi", ctx])
        .ok();
    assert_eq!(r.stdout.matches("Using cache").count(), 16, "{}", r.stdout);
    write(&dir, "two.txt", "changed\n");
    let r = d
        .berth(&["build", "-t", "app:2", "--build-arg", "GREETING=hi", ctx])
        .ok();
    assert_eq!(r.stdout.matches("Using cache").count(), 5, "{}", r.stdout);
    assert_eq!(r.stdout.matches("Running in").count(), 2, "{}", r.stdout);
    // A different build arg invalidates the RUN steps that see it.
    let r = d
        .berth(&["build", "-t", "app:3", "--build-arg", "GREETING=yo", ctx])
        .ok();
    assert_eq!(r.stdout.matches("Running in").count(), 2, "{}", r.stdout);
    let r = d
        .berth(&[
            "build",
            "-q",
            "--no-cache",
            "--build-arg",
            "GREETING=yo",
            ctx,
        ])
        .ok();
    assert!(r.stdout.starts_with("sha256:"), "{}", r.stdout);

    // Intermediate images are hidden; rmi of the image takes its steps along.
    let shown = d.berth(&["images", "-q"]).ok().stdout.lines().count();
    let all = d.berth(&["images", "-qa"]).ok().stdout.lines().count();
    assert!(all > shown + 10, "{shown} vs {all}");
    let pruned = d.berth(&["builder", "prune", "-f"]).ok();
    assert!(
        pruned.stdout.contains("Total reclaimed space"),
        "{}",
        pruned.stdout
    );
    let r = d
        .berth(&["build", "-t", "app:1", "--build-arg", "GREETING=hi", ctx])
        .ok();
    assert!(
        r.stdout.contains("Using cache"),
        "tagged images keep their cache: {}",
        r.stdout
    );
    d.berth(&["builder", "prune", "-af"]).ok();
    let r = d
        .berth(&["build", "-t", "app:1", "--build-arg", "GREETING=hi", ctx])
        .ok();
    assert!(!r.stdout.contains("Using cache"), "{}", r.stdout);
}

#[test]
fn multi_stage_builds_only_what_the_target_needs() {
    let d = Daemon::start();
    d.import_busybox();
    let dir = context(&d, "ms");
    write(
        &dir,
        "Dockerfile",
        "FROM busybox AS compile\nRUN echo artifact > /out\n\nFROM busybox AS never\nRUN exit 1\n\nFROM scratch AS final\nCOPY --from=compile /out /result\nCOPY --from=busybox /bin/busybox /bin/busybox\nCMD [\"/bin/busybox\", \"cat\", \"/result\"]\n",
    );
    let ctx = dir.to_str().unwrap();
    let r = d.berth(&["build", "-t", "ms", ctx]).ok();
    assert!(
        !r.stdout.contains("exit 1"),
        "unneeded stage built: {}",
        r.stdout
    );
    assert_eq!(d.berth(&["run", "--rm", "ms"]).ok().stdout, "artifact\n");
    let layers = d
        .berth(&["image", "inspect", "-f", "{{len .RootFS.Layers}}", "ms"])
        .ok();
    assert_eq!(layers.out(), "2");
    let r = d
        .berth(&["build", "-t", "first", "--target", "compile", ctx])
        .ok();
    assert!(
        r.stdout.contains("Successfully tagged first:latest"),
        "{}",
        r.stdout
    );
    let r = d.berth(&["build", "--target", "never", ctx]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains(
            "Dockerfile line 5: The command '/bin/sh -c exit 1' returned a non-zero code: 1"
        ),
        "{}",
        r.stderr
    );
}

#[test]
fn build_errors_name_the_line() {
    let d = Daemon::start();
    d.import_busybox();
    let cases = [
        ("FROM busybox\nRUN true\nBOGUS x\n", "line 3"),
        (
            "FROM busybox\nCOPY missing.txt /\n",
            "file not found in build context",
        ),
        ("FROM nosuchimage\n", "no registry is configured"),
        (
            "FROM busybox\nRUN echo before-fail; exit 3\n",
            "returned a non-zero code: 3",
        ),
        ("RUN true\n", "FROM"),
        ("FROM busybox\nADD http://example.com/x /x\n", "no network"),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let dir = context(&d, &format!("bad{i}"));
        write(&dir, "Dockerfile", text);
        let r = d.berth(&["build", dir.to_str().unwrap()]);
        assert_eq!(r.code, 1, "{text}");
        assert!(r.stderr.contains(expected), "{text}: {}", r.stderr);
    }
    let dir = context(&d, "bad3");
    let r = d.berth(&["build", dir.to_str().unwrap()]);
    assert!(
        r.stderr.contains("before-fail"),
        "last output lines: {}",
        r.stderr
    );
    // Nothing of the failed builds is left running.
    assert_eq!(d.berth(&["ps", "-aq"]).ok().stdout, "");
}

#[test]
fn docker_cli_and_sdk_build_against_berthd() {
    let d = Daemon::start();
    d.import_busybox();
    let dir = context(&d, "dk");
    write(
        &dir,
        "Dockerfile",
        "FROM busybox\nCOPY hello.txt /\nRUN cat /hello.txt > /copy\nCMD [\"cat\", \"/copy\"]\n",
    );
    write(&dir, "hello.txt", "hello from docker build\n");
    let out = std::process::Command::new("/usr/local/bin/docker")
        .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-t", "dk:1", dir.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Successfully tagged dk:1"), "{stdout}");
    assert_eq!(
        d.berth(&["run", "--rm", "dk:1"]).ok().stdout,
        "hello from docker build\n"
    );
    let venv_python = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/sdk-venv/bin/python");
    assert!(
        venv_python.exists(),
        "run scripts/test.sh, which creates the venv"
    );
    {
        let script = format!(
            "import docker\nc = docker.DockerClient(base_url='unix://{}')\nimg, logs = c.images.build(path='{}', tag='py:1')\nassert 'py:1' in img.tags, img.tags\nprint(c.containers.run('py:1', remove=True).decode(), end='')\n",
            d.socket.display(),
            dir.display()
        );
        let out = std::process::Command::new(&venv_python)
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "hello from docker build\n"
        );
    }
}

/// A minimal Debian bookworm root filesystem (debootstrap, cached in target/).
fn debian_rootfs_tar() -> std::path::PathBuf {
    let tar = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/debian-bookworm.tar");
    if tar.exists() {
        return tar;
    }
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../target/debootstrap-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let status = std::process::Command::new("debootstrap")
        .args(["--variant=minbase", "bookworm"])
        .arg(&dir)
        .arg("http://deb.debian.org/debian")
        .stdout(std::process::Stdio::null())
        .status()
        .expect("debootstrap is installed by .ci/run");
    assert!(status.success(), "debootstrap failed");
    let partial = tar.with_extension("partial");
    assert!(std::process::Command::new("tar")
        .arg("--numeric-owner")
        .arg("-C")
        .arg(&dir)
        .arg("-cf")
        .arg(&partial)
        .arg(".")
        .status()
        .unwrap()
        .success());
    std::fs::rename(&partial, &tar).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    tar
}

#[test]
fn debian_base_with_apt_get_in_run() {
    let d = Daemon::start();
    let tar = debian_rootfs_tar();
    d.berth(&[
        "import",
        "-c",
        "CMD [\"bash\"]",
        tar.to_str().unwrap(),
        "debian:bookworm",
    ])
    .ok();
    let dir = context(&d, "deb");
    write(
        &dir,
        "Dockerfile",
        "FROM debian:bookworm\nRUN apt-get update -qq && apt-get install -y -qq --no-install-recommends hello >/dev/null && rm -rf /var/lib/apt/lists/*\nCMD [\"hello\"]\n",
    );
    let r = d
        .berth(&["build", "-t", "hello:1", dir.to_str().unwrap()])
        .ok();
    assert!(
        r.stdout.contains("Successfully tagged hello:1"),
        "{}",
        r.stdout
    );
    assert_eq!(
        d.berth(&["run", "--rm", "hello:1"]).ok().stdout,
        "Hello, world!\n"
    );
    let r = d
        .berth(&["build", "-t", "hello:1", dir.to_str().unwrap()])
        .ok();
    assert_eq!(r.stdout.matches("Using cache").count(), 2, "{}", r.stdout);
}

#[test]
fn context_on_stdin_and_heredocs() {
    let d = Daemon::start();
    d.import_busybox();
    let dir = context(&d, "stdin");
    write(
        &dir,
        "Dockerfile",
        "FROM busybox\nCOPY msg /msg\nRUN <<EOF\nset -e\necho from-heredoc > /h\ncat /msg >> /h\nEOF\nCOPY <<EOT /etc/motd\nhello motd\nEOT\nCMD [\"cat\", \"/h\", \"/etc/motd\"]\n",
    );
    write(&dir, "msg", "from-context\n");
    let tar = std::process::Command::new("tar")
        .arg("-C")
        .arg(&dir)
        .args(["-cf", "-", "."])
        .output()
        .unwrap()
        .stdout;
    let r = d.berth_stdin(&["build", "-t", "piped:1", "-"], &tar).ok();
    assert!(
        r.stdout.contains("Successfully tagged piped:1"),
        "{}",
        r.stdout
    );
    assert_eq!(
        d.berth(&["run", "--rm", "piped:1"]).ok().stdout,
        "from-heredoc\nfrom-context\nhello motd\n"
    );
}
