//! bollard (crates.io), a Rust client of the Docker Engine API, against berthd.

mod common;

use bollard::models::{ContainerCreateBody, ExecConfig, HostConfig, VolumeCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder,
    ListImagesOptions, LogsOptionsBuilder, RemoveContainerOptionsBuilder, StartContainerOptions,
    WaitContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;

use common::Daemon;

#[test]
fn bollard_drives_berthd() {
    let d = Daemon::start();
    d.import_busybox();
    let socket = d.socket.display().to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let docker = Docker::connect_with_unix(&socket, 60, bollard::API_DEFAULT_VERSION).unwrap();
        let version = docker.version().await.unwrap();
        assert_eq!(version.api_version.as_deref(), Some("1.45"));

        let images = docker.list_images(None::<ListImagesOptions>).await.unwrap();
        assert!(images
            .iter()
            .any(|i| i.repo_tags.contains(&"busybox:latest".to_string())));

        docker
            .create_volume(VolumeCreateRequest {
                name: Some("bvol".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        let body = ContainerCreateBody {
            image: Some("busybox".into()),
            cmd: Some(vec![
                "sh".into(),
                "-c".into(),
                "echo from-bollard; echo err >&2; sleep 30".into(),
            ]),
            labels: Some([("client".to_string(), "bollard".to_string())].into()),
            host_config: Some(HostConfig {
                binds: Some(vec!["bvol:/data".into()]),
                memory: Some(64 << 20),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = docker
            .create_container(
                Some(CreateContainerOptionsBuilder::default().name("bc").build()),
                body,
            )
            .await
            .unwrap();
        docker
            .start_container("bc", None::<StartContainerOptions>)
            .await
            .unwrap();

        let inspect = docker
            .inspect_container("bc", None::<InspectContainerOptions>)
            .await
            .unwrap();
        assert_eq!(inspect.id.as_deref(), Some(created.id.as_str()));
        assert_eq!(inspect.state.as_ref().and_then(|s| s.running), Some(true));
        assert_eq!(
            inspect.host_config.as_ref().and_then(|h| h.memory),
            Some(64 << 20)
        );
        let mounts = inspect.mounts.unwrap_or_default();
        assert_eq!(mounts[0].destination.as_deref(), Some("/data"));

        let mut seen = String::new();
        let mut logs = docker.logs(
            "bc",
            Some(
                LogsOptionsBuilder::default()
                    .stdout(true)
                    .stderr(true)
                    .follow(true)
                    .build(),
            ),
        );
        while let Some(Ok(chunk)) = logs.next().await {
            seen.push_str(&chunk.to_string());
            if seen.contains("err\n") && seen.contains("from-bollard\n") {
                break;
            }
        }
        assert!(seen.contains("from-bollard\n"), "{seen}");

        let exec = docker
            .create_exec(
                "bc",
                ExecConfig {
                    attach_stdout: Some(true),
                    cmd: Some(vec![
                        "sh".into(),
                        "-c".into(),
                        "echo in-exec; exit 3".into(),
                    ]),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        if let bollard::exec::StartExecResults::Attached { mut output, .. } =
            docker.start_exec(&exec.id, None).await.unwrap()
        {
            let mut out = String::new();
            while let Some(Ok(msg)) = output.next().await {
                out.push_str(&msg.to_string());
            }
            assert_eq!(out, "in-exec\n");
        }
        let exec_state = docker.inspect_exec(&exec.id).await.unwrap();
        assert_eq!(exec_state.exit_code, Some(3));

        let listed = docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .filters(&[("label", vec!["client=bollard"])].into())
                    .build(),
            ))
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);

        docker.kill_container("bc", None).await.unwrap();
        let mut wait = docker.wait_container(
            "bc",
            Some(
                WaitContainerOptionsBuilder::default()
                    .condition("not-running")
                    .build(),
            ),
        );
        let code = match wait.next().await {
            Some(Ok(r)) => r.status_code,
            // bollard turns a non-zero exit into an error carrying the code.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
            other => panic!("wait: {other:?}"),
        };
        assert_eq!(code, 137);

        let missing = docker
            .inspect_container("nope", None::<InspectContainerOptions>)
            .await;
        match missing {
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code,
                message,
            }) => {
                assert_eq!(status_code, 404);
                assert!(message.contains("No such container"), "{message}");
            }
            other => panic!("expected 404, got {other:?}"),
        }
        docker
            .remove_container(
                "bc",
                Some(RemoveContainerOptionsBuilder::default().force(true).build()),
            )
            .await
            .unwrap();
        docker
            .remove_volume(
                "bvol",
                None::<bollard::query_parameters::RemoveVolumeOptions>,
            )
            .await
            .unwrap();
    });
}
