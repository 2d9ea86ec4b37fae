//! `berth`: the command-line client. Every command is a call to the Docker Engine
//! API that berthd serves; flags and exit codes follow the docker CLI.

mod build;
mod client;
mod compose;
mod containers;
mod context;
mod copy;
mod format;
mod images;
mod networks;
mod registry;
mod run;
mod term;
mod transport;
mod volumes;

use clap::{Args, Parser, Subcommand};

use crate::client::{Client, ClientError};

#[derive(Parser)]
#[command(
    name = "berth",
    version,
    about = "A container engine that speaks the Docker Engine API"
)]
struct Cli {
    /// Daemon socket to connect to: unix:///path or tcp://HOST:PORT (default
    /// BERTH_HOST, else unix:///run/berth/berth.sock)
    #[arg(short = 'H', long = "host", global = true)]
    host: Option<String>,
    /// Name of the context to use to connect to the daemon (overrides
    /// BERTH_HOST and the default context set with "berth context use")
    #[arg(short = 'c', long = "context")]
    context: Option<String>,
    /// Use TLS; implied by --tlsverify
    #[arg(long, global = true)]
    tls: bool,
    /// Use TLS and verify the remote (also BERTH_TLS_VERIFY)
    #[arg(long, global = true)]
    tlsverify: bool,
    /// Trust certs signed only by this CA (default BERTH_CERT_PATH or ~/.docker, ca.pem)
    #[arg(long, global = true)]
    tlscacert: Option<std::path::PathBuf>,
    /// Path to TLS certificate file (default cert.pem there)
    #[arg(long, global = true)]
    tlscert: Option<std::path::PathBuf>,
    /// Path to TLS key file (default key.pem there)
    #[arg(long, global = true)]
    tlskey: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// What the global flags say about which daemon to reach.
    fn connection(&self) -> context::Connection {
        context::Connection {
            host: self.host.clone(),
            context: self.context.clone(),
            tls: self.tls,
            tlsverify: self.tlsverify,
            tlscacert: self.tlscacert.clone(),
            tlscert: self.tlscert.clone(),
            tlskey: self.tlskey.clone(),
        }
    }
}

/// Options of `run` and `create`, with docker's names.
#[derive(Args, Clone, Default)]
#[command(disable_help_flag = true)]
pub struct ContainerOpts {
    #[arg(long, action = clap::ArgAction::Help, help = "Print help")]
    help: Option<bool>,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    pub restart: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<f64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Command to run to check health
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h)
    #[arg(long = "health-interval")]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h)
    #[arg(long = "health-timeout")]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries")]
    pub health_retries: Option<i64>,
    /// Start period for the container to initialize before starting health-retries countdown (ms|s|m|h)
    #[arg(long = "health-start-period")]
    pub health_start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h) (default 0s)
    #[arg(long = "health-start-interval")]
    pub health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Ulimit options
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Sysctl options
    #[arg(long)]
    pub sysctl: Vec<String>,
    /// Size of /dev/shm
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// Add additional groups to join
    #[arg(long = "group-add")]
    pub group_add: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Add Linux capabilities
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Security Options
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Connect a container to a network
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label")]
    pub label: Vec<String>,
    /// Logging driver for the container
    #[arg(long = "log-driver")]
    pub log_driver: Option<String>,
    /// Log driver options
    #[arg(long = "log-opt")]
    pub log_opt: Vec<String>,
    /// Signal to stop a container
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout")]
    pub stop_timeout: Option<i64>,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long = "attach")]
    pub attach: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Optional parent cgroup for the container
    #[arg(long = "cgroup-parent")]
    pub cgroup_parent: Option<String>,
    /// Runtime to use for this container
    #[arg(long)]
    pub runtime: Option<String>,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long)]
    pub ip: Option<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long = "mac-address")]
    pub mac_address: Option<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", alias = "net-alias")]
    pub network_alias: Vec<String>,
    /// Set custom DNS servers
    #[arg(long)]
    pub dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", alias = "dns-opt")]
    pub dns_option: Vec<String>,
    /// Expose a port or a range of ports
    #[arg(long)]
    pub expose: Vec<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container
    #[arg(long)]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from")]
    pub volumes_from: Vec<String>,
    /// IMAGE [COMMAND] [ARG...]: everything after the image belongs to the command,
    /// even if it looks like a flag.
    #[arg(value_name = "IMAGE [COMMAND] [ARG...]", required = true, num_args = 1.., trailing_var_arg = true)]
    pub image_and_command: Vec<String>,
}

impl ContainerOpts {
    pub fn image(&self) -> &str {
        self.image_and_command
            .first()
            .map(String::as_str)
            .unwrap_or_default()
    }

    pub fn command(&self) -> &[String] {
        self.image_and_command.get(1..).unwrap_or_default()
    }
}

#[derive(Subcommand)]
enum Command {
    /// Create and run a new container from an image
    Run {
        /// Run container in background and print container ID
        #[arg(short = 'd', long)]
        detach: bool,
        #[command(flatten)]
        opts: ContainerOpts,
    },
    /// Create a new container
    Create {
        #[command(flatten)]
        opts: ContainerOpts,
    },
    /// Execute a command in a running container
    #[command(disable_help_flag = true)]
    Exec {
        #[arg(long, action = clap::ArgAction::Help, help = "Print help")]
        help: Option<bool>,
        /// Detached mode: run command in the background
        #[arg(short = 'd', long)]
        detach: bool,
        /// Keep STDIN open even if not attached
        #[arg(short = 'i', long)]
        interactive: bool,
        /// Allocate a pseudo-TTY
        #[arg(short = 't', long)]
        tty: bool,
        /// Set environment variables
        #[arg(short = 'e', long = "env")]
        env: Vec<String>,
        /// Working directory inside the container
        #[arg(short = 'w', long = "workdir")]
        workdir: Option<String>,
        /// Username or UID (format: <name|uid>[:<group|gid>])
        #[arg(short = 'u', long)]
        user: Option<String>,
        /// Give extended privileges to the command
        #[arg(long)]
        privileged: bool,
        /// CONTAINER COMMAND [ARG...]
        #[arg(value_name = "CONTAINER COMMAND [ARG...]", required = true, num_args = 2.., trailing_var_arg = true)]
        container_and_command: Vec<String>,
    },
    /// Start one or more stopped containers
    Start {
        /// Attach STDOUT/STDERR and forward signals
        #[arg(short = 'a', long)]
        attach: bool,
        /// Attach container's STDIN
        #[arg(short = 'i', long)]
        interactive: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Stop one or more running containers
    Stop {
        /// Seconds to wait for stop before killing it
        #[arg(
            short = 't',
            long = "time",
            alias = "timeout",
            allow_hyphen_values = true
        )]
        time: Option<i64>,
        /// Signal to send to the container
        #[arg(short = 's', long)]
        signal: Option<String>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Restart one or more containers
    Restart {
        /// Seconds to wait for stop before killing the container
        #[arg(
            short = 't',
            long = "time",
            alias = "timeout",
            allow_hyphen_values = true
        )]
        time: Option<i64>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Kill one or more running containers
    Kill {
        /// Signal to send to the container
        #[arg(short = 's', long, default_value = "KILL")]
        signal: String,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove one or more containers
    Rm {
        /// Force the removal of a running container (uses SIGKILL)
        #[arg(short = 'f', long)]
        force: bool,
        /// Remove anonymous volumes associated with the container
        #[arg(short = 'v', long)]
        volumes: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// List containers
    Ps {
        /// Show all containers (default shows just running)
        #[arg(short = 'a', long)]
        all: bool,
        /// Only display container IDs
        #[arg(short = 'q', long)]
        quiet: bool,
        /// Filter output based on conditions provided
        #[arg(short = 'f', long = "filter")]
        filter: Vec<String>,
        /// Don't truncate output
        #[arg(long = "no-trunc")]
        no_trunc: bool,
        /// Show n last created containers (includes all states)
        #[arg(short = 'n', long = "last")]
        last: Option<i64>,
        /// Show the latest created container (includes all states)
        #[arg(short = 'l', long)]
        latest: bool,
        /// Pretty-print containers using a Go template
        #[arg(long)]
        format: Option<String>,
    },
    /// Fetch the logs of a container
    Logs {
        /// Follow log output
        #[arg(short = 'f', long)]
        follow: bool,
        /// Number of lines to show from the end of the logs
        #[arg(short = 'n', long, default_value = "all")]
        tail: String,
        /// Show timestamps
        #[arg(short = 't', long)]
        timestamps: bool,
        /// Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)
        #[arg(long)]
        since: Option<String>,
        /// Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)
        #[arg(long)]
        until: Option<String>,
        container: String,
    },
    /// Return low-level information on berth objects
    Inspect {
        /// Format the output using the given Go template
        #[arg(short = 'f', long)]
        format: Option<String>,
        /// Return JSON for specified type
        #[arg(long = "type")]
        kind: Option<String>,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Block until one or more containers stop, then print their exit codes
    Wait {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Import the contents from a tarball to create a filesystem image
    Import {
        /// Apply Dockerfile instruction to the created image
        #[arg(short = 'c', long = "change")]
        change: Vec<String>,
        /// Set commit message for imported image
        #[arg(short = 'm', long)]
        message: Option<String>,
        /// File (or - for stdin)
        file: String,
        /// REPOSITORY[:TAG]
        reference: Option<String>,
    },
    /// List images
    Images {
        /// Only show image IDs
        #[arg(short = 'q', long)]
        quiet: bool,
        /// Show all images (default hides intermediate images)
        #[arg(short = 'a', long)]
        all: bool,
        /// Don't truncate output
        #[arg(long = "no-trunc")]
        no_trunc: bool,
    },
    /// Manage containers
    Container {
        #[command(subcommand)]
        command: ContainerCommand,
    },
    /// Download an image from a registry
    Pull {
        /// Suppress verbose output
        #[arg(short = 'q', long)]
        quiet: bool,
        /// Download all tagged images in the repository
        #[arg(short = 'a', long = "all-tags")]
        all_tags: bool,
        /// Set platform if server is multi-platform capable
        #[arg(long)]
        platform: Option<String>,
        name: String,
    },
    /// Upload an image to a registry
    Push {
        /// Suppress verbose output
        #[arg(short = 'q', long)]
        quiet: bool,
        name: String,
    },
    /// Log in to a registry
    Login {
        /// Username
        #[arg(short = 'u', long)]
        username: Option<String>,
        /// Password
        #[arg(short = 'p', long)]
        password: Option<String>,
        /// Take the password from stdin
        #[arg(long = "password-stdin")]
        password_stdin: bool,
        server: String,
    },
    /// Log out from a registry
    Logout { server: String },
    /// Search a registry for images (not supported by OCI registries)
    Search { term: String },
    /// Run berth's own registry server: serve --addr ADDR --root DIR [--htpasswd FILE], or gc --root DIR
    #[command(disable_help_flag = true)]
    Registry {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build an image from a Dockerfile
    Build {
        /// Name and optionally a tag in the 'name:tag' format
        #[arg(short = 't', long = "tag")]
        tag: Vec<String>,
        /// Name of the Dockerfile (Default is 'PATH/Dockerfile')
        #[arg(short = 'f', long = "file")]
        file: Option<String>,
        /// Set build-time variables
        #[arg(long = "build-arg")]
        build_arg: Vec<String>,
        #[arg(help = "Set the target build stage to build.")]
        #[arg(long)]
        target: Option<String>,
        /// Do not use cache when building the image
        #[arg(long = "no-cache")]
        no_cache: bool,
        /// Set metadata for an image
        #[arg(long)]
        label: Vec<String>,
        /// Set the networking mode for the RUN instructions during build
        #[arg(long, default_value = "default")]
        network: String,
        /// Suppress the build output and print image ID on success
        #[arg(short = 'q', long)]
        quiet: bool,
        /// Memory limit
        #[arg(short = 'm', long)]
        memory: Option<String>,
        /// Always attempt to pull a newer version of the image
        #[arg(long)]
        pull: bool,
        /// Remove intermediate containers after a successful build
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
        rm: bool,
        /// Accepted for compatibility
        #[arg(long)]
        platform: Option<String>,
        /// PATH | - (a tar context on stdin)
        context: String,
    },
    /// Manage builds
    Builder {
        #[command(subcommand)]
        command: BuilderCommand,
    },
    /// Attach local standard input, output, and error streams to a running container
    Attach {
        /// Do not attach STDIN
        #[arg(long = "no-stdin")]
        no_stdin: bool,
        /// Proxy all received signals to the process
        #[arg(long = "sig-proxy", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
        sig_proxy: bool,
        container: String,
    },
    /// Create a new image from a container's changes
    Commit {
        /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
        #[arg(short = 'a', long)]
        author: Option<String>,
        /// Apply Dockerfile instruction to the created image
        #[arg(short = 'c', long = "change")]
        change: Vec<String>,
        /// Commit message
        #[arg(short = 'm', long)]
        message: Option<String>,
        /// Pause container during commit
        #[arg(short = 'p', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
        pause: bool,
        container: String,
        /// REPOSITORY[:TAG]
        reference: Option<String>,
    },
    /// Copy files/folders between a container and the local filesystem
    Cp {
        /// SRC: CONTAINER:PATH, a local path, or - (a tar on stdin)
        src: String,
        /// DEST: CONTAINER:PATH, a local path, or - (a tar on stdout)
        dest: String,
    },
    /// Define and run multi-container applications
    Compose {
        #[command(flatten)]
        project: ComposeProject,
        #[command(subcommand)]
        command: ComposeCommand,
    },
    /// Manage networks
    Network {
        #[command(subcommand)]
        command: NetworkCommand,
    },
    /// List port mappings or a specific mapping for the container
    Port {
        container: String,
        /// PRIVATE_PORT[/PROTO]
        private_port: Option<String>,
    },
    /// Manage volumes
    Volume {
        #[command(subcommand)]
        command: VolumeCommand,
    },
    /// Manage images
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag { source: String, target: String },
    /// Remove one or more images
    Rmi {
        /// Force removal of the image
        #[arg(short = 'f', long)]
        force: bool,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Pause all processes within one or more containers
    Pause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Unpause all processes within one or more containers
    Unpause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Rename a container
    Rename { container: String, new_name: String },
    /// Display the running processes of a container
    Top { container: String },
    /// Update configuration of one or more containers
    Update {
        /// Memory limit
        #[arg(short = 'm', long)]
        memory: Option<String>,
        /// Number of CPUs
        #[arg(long)]
        cpus: Option<f64>,
        /// CPU shares (relative weight)
        #[arg(short = 'c', long = "cpu-shares")]
        cpu_shares: Option<i64>,
        /// Tune container pids limit (set -1 for unlimited)
        #[arg(long = "pids-limit", allow_hyphen_values = true)]
        pids_limit: Option<i64>,
        /// Restart policy to apply when a container exits
        #[arg(long)]
        restart: Option<String>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Inspect changes to files or directories on a container's filesystem
    Diff { container: String },
    /// Display a live stream of container resource usage statistics
    Stats {
        /// Disable streaming stats and only pull the first result
        #[arg(long = "no-stream")]
        no_stream: bool,
        containers: Vec<String>,
    },
    /// Show the history of an image
    History { image: String },
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save {
        /// Write to a file, instead of STDOUT
        #[arg(short = 'o', long)]
        output: Option<String>,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Load an image from a tar archive or STDIN
    Load {
        /// Read from tar archive file, instead of STDIN
        #[arg(short = 'i', long)]
        input: Option<String>,
        /// Suppress the load output
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Get real time events from the server
    Events {
        /// Show all events created since timestamp
        #[arg(long)]
        since: Option<String>,
        /// Stream events until this timestamp
        #[arg(long)]
        until: Option<String>,
        /// Filter output based on conditions provided
        #[arg(short = 'f', long = "filter")]
        filter: Vec<String>,
    },
    /// Manage berth
    System {
        #[command(subcommand)]
        command: SystemCommand,
    },
    /// Export a container's filesystem as a tar archive
    Export {
        /// Write to a file, instead of STDOUT
        #[arg(short = 'o', long)]
        output: Option<String>,
        container: String,
    },
    /// Show the berth version information
    Version {
        /// Format the output using the given Go template
        #[arg(short = 'f', long)]
        format: Option<String>,
    },
    /// Display system-wide information
    Info {
        /// Format the output using the given Go template
        #[arg(short = 'f', long)]
        format: Option<String>,
    },
    /// Manage contexts (daemon endpoints; shared with the docker CLI)
    Context {
        #[command(subcommand)]
        command: context::ContextCommand,
    },
    /// Generate the autocompletion script for the specified shell
    Completion {
        /// bash, zsh or fish
        shell: clap_complete::Shell,
    },
    /// Write man pages for berth and each of its commands into DIR
    #[command(hide = true)]
    ManPages { dir: std::path::PathBuf },
}

#[derive(clap::Args)]
struct ComposeProject {
    /// Compose configuration files
    #[arg(short = 'f', long = "file")]
    file: Vec<std::path::PathBuf>,
    /// Project name
    #[arg(short = 'p', long = "project-name")]
    project_name: Option<String>,
    /// Specify an alternate working directory (default: the path of the first specified Compose file)
    #[arg(long = "project-directory")]
    project_directory: Option<std::path::PathBuf>,
    /// Specify an alternate environment file
    #[arg(long = "env-file")]
    env_file: Vec<std::path::PathBuf>,
    /// Specify a profile to enable
    #[arg(long = "profile")]
    profile: Vec<String>,
}

#[derive(Subcommand)]
enum ComposeCommand {
    /// Create and start containers
    Up {
        /// Detached mode: Run containers in the background
        #[arg(short = 'd', long)]
        detach: bool,
        /// Build images before starting containers
        #[arg(long)]
        build: bool,
        /// Don't build an image, even if it's policy
        #[arg(long = "no-build")]
        no_build: bool,
        /// Recreate containers even if their configuration and image haven't changed
        #[arg(long = "force-recreate")]
        force_recreate: bool,
        /// If containers already exist, don't recreate them
        #[arg(long = "no-recreate")]
        no_recreate: bool,
        /// Remove containers for services not defined in the Compose file
        #[arg(long = "remove-orphans")]
        remove_orphans: bool,
        /// Wait for services to be running|healthy. Implies detached mode
        #[arg(long)]
        wait: bool,
        /// Maximum duration in seconds to wait for the project to be running|healthy
        #[arg(long = "wait-timeout")]
        wait_timeout: Option<u64>,
        /// Use this timeout in seconds for container shutdown
        #[arg(short = 't', long = "timeout")]
        timeout: Option<i64>,
        /// Scale SERVICE to NUM instances (SERVICE=NUM)
        #[arg(long)]
        scale: Vec<String>,
        /// Stops all containers if any container was stopped. Incompatible with -d
        #[arg(long = "abort-on-container-exit", conflicts_with = "detach")]
        abort_on_container_exit: bool,
        /// Return the exit code of the selected service container. Implies --abort-on-container-exit
        #[arg(long = "exit-code-from", conflicts_with = "detach")]
        exit_code_from: Option<String>,
        /// Don't start linked services
        #[arg(long = "no-deps")]
        no_deps: bool,
        /// Don't start the services after creating them
        #[arg(long = "no-start")]
        no_start: bool,
        services: Vec<String>,
    },
    /// Creates containers for a service
    Create {
        /// Build images before starting containers
        #[arg(long)]
        build: bool,
        /// Don't build an image, even if it's policy
        #[arg(long = "no-build")]
        no_build: bool,
        /// Recreate containers even if their configuration and image haven't changed
        #[arg(long = "force-recreate")]
        force_recreate: bool,
        /// If containers already exist, don't recreate them
        #[arg(long = "no-recreate")]
        no_recreate: bool,
        /// Remove containers for services not defined in the Compose file
        #[arg(long = "remove-orphans")]
        remove_orphans: bool,
        /// Scale SERVICE to NUM instances (SERVICE=NUM)
        #[arg(long)]
        scale: Vec<String>,
        services: Vec<String>,
    },
    /// Scale services
    Scale {
        /// Don't start linked services
        #[arg(long = "no-deps")]
        no_deps: bool,
        /// SERVICE=REPLICAS
        #[arg(required = true)]
        scale: Vec<String>,
    },
    /// Pull service images
    Pull {
        /// Ignore images that can be built
        #[arg(long = "ignore-buildable")]
        ignore_buildable: bool,
        /// Pull what it can and ignores images with pull failures
        #[arg(long = "ignore-pull-failures")]
        ignore_pull_failures: bool,
        /// Pull without printing progress information
        #[arg(short = 'q', long)]
        quiet: bool,
        services: Vec<String>,
    },
    /// Push service images
    Push {
        /// Push what it can and ignores images with push failures
        #[arg(long = "ignore-push-failures")]
        ignore_push_failures: bool,
        /// Push without printing progress information
        #[arg(short = 'q', long)]
        quiet: bool,
        services: Vec<String>,
    },
    /// Receive real time events from containers
    Events {
        /// Output events as a stream of json objects
        #[arg(long)]
        json: bool,
        services: Vec<String>,
    },
    /// Copy files/folders between a service container and the local filesystem
    Cp {
        /// Index of the container if service has multiple replicas
        #[arg(long, default_value_t = 0)]
        index: u32,
        src: String,
        dest: String,
    },
    /// Block until the first service container stops
    Wait {
        /// Drops project when the first container stops
        #[arg(long = "down-project")]
        down_project: bool,
        #[arg(required = true)]
        services: Vec<String>,
    },
    /// Stop and remove containers, networks
    Down {
        /// Remove named volumes declared in the "volumes" section of the Compose file and anonymous volumes attached to containers
        #[arg(short = 'v', long)]
        volumes: bool,
        /// Remove containers for services not defined in the Compose file
        #[arg(long = "remove-orphans")]
        remove_orphans: bool,
        /// Specify a shutdown timeout in seconds
        #[arg(short = 't', long = "timeout")]
        timeout: Option<i64>,
        /// Remove images used by services. "local" remove only images that don't have a custom tag ("local"|"all")
        #[arg(long)]
        rmi: Option<compose::RemoveImages>,
    },
    /// List containers
    Ps {
        /// Show all stopped containers (including those created by the run command)
        #[arg(short = 'a', long)]
        all: bool,
        /// Only display IDs
        #[arg(short = 'q', long)]
        quiet: bool,
        /// Display services
        #[arg(long)]
        services: bool,
        /// Format the output: table or json
        #[arg(long)]
        format: Option<String>,
    },
    /// View output from containers
    Logs {
        /// Follow log output
        #[arg(short = 'f', long)]
        follow: bool,
        /// Number of lines to show from the end of the logs for each container
        #[arg(short = 'n', long)]
        tail: Option<String>,
        /// Show timestamps
        #[arg(short = 't', long)]
        timestamps: bool,
        /// Don't print prefix in logs
        #[arg(long = "no-log-prefix")]
        no_log_prefix: bool,
        /// Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)
        #[arg(long)]
        since: Option<String>,
        /// Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)
        #[arg(long)]
        until: Option<String>,
        services: Vec<String>,
    },
    /// Execute a command in a running container
    Exec {
        /// Detached mode: Run command in the background
        #[arg(short = 'd', long)]
        detach: bool,
        /// Disable pseudo-TTY allocation. By default `compose exec` allocates a TTY
        #[arg(short = 'T', long = "no-TTY")]
        no_tty: bool,
        /// Set environment variables
        #[arg(short = 'e', long = "env")]
        env: Vec<String>,
        /// Path to workdir directory for this command
        #[arg(short = 'w', long)]
        workdir: Option<String>,
        /// Run the command as this user
        #[arg(short = 'u', long)]
        user: Option<String>,
        /// Give extended privileges to the process
        #[arg(long)]
        privileged: bool,
        /// Index of the container if service has multiple replicas
        #[arg(long, default_value_t = 1)]
        index: u32,
        service: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
    /// Run a one-off command on a service
    Run {
        /// Run container in background and print container ID
        #[arg(short = 'd', long)]
        detach: bool,
        /// Automatically remove the container when it exits
        #[arg(long)]
        rm: bool,
        /// Don't start linked services
        #[arg(long = "no-deps")]
        no_deps: bool,
        /// Run command with all service's ports enabled and mapped to the host
        #[arg(long = "service-ports")]
        service_ports: bool,
        /// Disable pseudo-TTY allocation (default: auto-detected)
        #[arg(short = 'T', long = "no-TTY")]
        no_tty: bool,
        /// Set environment variables
        #[arg(short = 'e', long = "env")]
        env: Vec<String>,
        /// Override the entrypoint of the image
        #[arg(long)]
        entrypoint: Option<String>,
        /// Run as specified username or uid
        #[arg(short = 'u', long)]
        user: Option<String>,
        /// Working directory inside the container
        #[arg(short = 'w', long)]
        workdir: Option<String>,
        /// Assign a name to the container
        #[arg(long)]
        name: Option<String>,
        /// Bind mount a volume
        #[arg(short = 'v', long = "volume")]
        volume: Vec<String>,
        /// Publish a container's port(s) to the host
        #[arg(short = 'p', long = "publish")]
        publish: Vec<String>,
        service: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Build or rebuild services
    Build { services: Vec<String> },
    /// Print the public port for a port binding
    Port {
        /// tcp or udp
        #[arg(long, default_value = "tcp")]
        protocol: String,
        /// Index of the container if service has multiple replicas
        #[arg(long, default_value_t = 1)]
        index: u32,
        service: String,
        private_port: String,
    },
    /// Display the running processes
    Top { services: Vec<String> },
    /// List images used by the created containers
    Images { services: Vec<String> },
    /// Show the Docker Compose version information
    Version,
    /// Stop services
    Stop {
        /// Specify a shutdown timeout in seconds
        #[arg(short = 't', long = "timeout")]
        timeout: Option<i64>,
        services: Vec<String>,
    },
    /// Start services
    Start { services: Vec<String> },
    /// Restart service containers
    Restart {
        /// Specify a shutdown timeout in seconds
        #[arg(short = 't', long = "timeout")]
        timeout: Option<i64>,
        services: Vec<String>,
    },
    /// Force stop service containers
    Kill {
        /// SIGNAL to send to the container
        #[arg(short = 's', long, default_value = "SIGKILL")]
        signal: String,
        services: Vec<String>,
    },
    /// Removes stopped service containers
    Rm {
        /// Don't ask to confirm removal
        #[arg(short = 'f', long)]
        force: bool,
        /// Stop the containers, if required, before removing
        #[arg(short = 's', long)]
        stop: bool,
        /// Remove any anonymous volumes attached to containers
        #[arg(short = 'v', long)]
        volumes: bool,
        services: Vec<String>,
    },
    /// Pause services
    Pause { services: Vec<String> },
    /// Unpause services
    Unpause { services: Vec<String> },
    /// List running compose projects
    Ls {
        /// Show all stopped Compose projects
        #[arg(short = 'a', long)]
        all: bool,
    },
    /// Parse, resolve and render compose file in canonical format
    Config {
        /// Only validate the configuration, don't print anything
        #[arg(short = 'q', long)]
        quiet: bool,
        /// Print the service names, one per line
        #[arg(long)]
        services: bool,
    },
}

#[derive(Subcommand)]
enum NetworkCommand {
    /// Create a network
    Create {
        /// Driver to manage the Network
        #[arg(short = 'd', long, default_value = "bridge")]
        driver: String,
        /// Subnet in CIDR format that represents a network segment
        #[arg(long)]
        subnet: Option<String>,
        /// IPv4 or IPv6 Gateway for the master subnet
        #[arg(long)]
        gateway: Option<String>,
        /// Restrict external access to the network
        #[arg(long)]
        internal: bool,
        /// Set metadata on a network
        #[arg(long)]
        label: Vec<String>,
        /// Set driver specific options
        #[arg(short = 'o', long = "opt")]
        opt: Vec<String>,
        /// Enable manual container attachment
        #[arg(long)]
        attachable: bool,
        name: String,
    },
    /// List networks
    #[command(alias = "list")]
    Ls {
        /// Only display network IDs
        #[arg(short = 'q', long)]
        quiet: bool,
        /// Provide filter values (e.g. 'driver=bridge')
        #[arg(short = 'f', long)]
        filter: Vec<String>,
        /// Pretty-print networks using a Go template
        #[arg(long)]
        format: Option<String>,
        /// Do not truncate the output
        #[arg(long = "no-trunc")]
        no_trunc: bool,
    },
    /// Display detailed information on one or more networks
    Inspect {
        /// Format the output using the given Go template
        #[arg(short = 'f', long)]
        format: Option<String>,
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove all unused networks
    Prune {
        /// Do not prompt for confirmation
        #[arg(short = 'f', long)]
        force: bool,
    },
    /// Connect a container to a network
    Connect {
        /// Add network-scoped alias for the container
        #[arg(long)]
        alias: Vec<String>,
        /// IPv4 address (e.g., 172.30.100.104)
        #[arg(long)]
        ip: Option<String>,
        network: String,
        container: String,
    },
    /// Disconnect a container from a network
    Disconnect {
        /// Force the container to disconnect from a network
        #[arg(short = 'f', long)]
        force: bool,
        network: String,
        container: String,
    },
}

#[derive(Subcommand)]
enum BuilderCommand {
    /// Remove build cache
    Prune {
        /// Remove all build cache, not just what no image needs
        #[arg(short = 'a', long)]
        all: bool,
        #[arg(short = 'f', long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum VolumeCommand {
    /// Create a volume
    Create {
        /// Specify volume driver name
        #[arg(short = 'd', long, default_value = "local")]
        driver: String,
        /// Set driver specific options
        #[arg(short = 'o', long = "opt")]
        opt: Vec<String>,
        /// Set metadata for a volume
        #[arg(long)]
        label: Vec<String>,
        name: Option<String>,
    },
    /// List volumes
    #[command(alias = "list")]
    Ls {
        /// Only display volume names
        #[arg(short = 'q', long)]
        quiet: bool,
        /// Provide filter values (e.g. 'dangling=true')
        #[arg(short = 'f', long)]
        filter: Vec<String>,
        /// Pretty-print volumes using a Go template
        #[arg(long)]
        format: Option<String>,
    },
    /// Display detailed information on one or more volumes
    Inspect {
        /// Format the output using the given Go template
        #[arg(short = 'f', long)]
        format: Option<String>,
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Remove one or more volumes
    #[command(alias = "remove")]
    Rm {
        /// Force the removal of one or more volumes
        #[arg(short = 'f', long)]
        force: bool,
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Remove unused local volumes
    Prune {
        /// Remove all unused volumes, not just anonymous ones
        #[arg(short = 'a', long)]
        all: bool,
        /// Do not prompt for confirmation
        #[arg(short = 'f', long)]
        force: bool,
        /// Provide filter values (e.g. 'label=<label>')
        #[arg(long)]
        filter: Vec<String>,
    },
}

#[derive(Subcommand)]
enum ContainerCommand {
    /// Remove all stopped containers
    Prune {
        /// Do not prompt for confirmation
        #[arg(short = 'f', long)]
        force: bool,
        /// Provide filter values (e.g. 'until=<timestamp>')
        #[arg(long = "filter")]
        filter: Vec<String>,
    },
    /// List containers
    Ls {
        /// Show all containers (default shows just running)
        #[arg(short = 'a', long)]
        all: bool,
        /// Only display container IDs
        #[arg(short = 'q', long)]
        quiet: bool,
    },
}

#[derive(Subcommand)]
enum SystemCommand {
    /// Show berth disk usage
    Df,
    /// Remove unused data: stopped containers, unused networks, dangling images,
    /// build cache (and with --volumes, unused anonymous volumes)
    Prune {
        /// Remove all unused images not just dangling ones
        #[arg(short = 'a', long)]
        all: bool,
        /// Prune volumes
        #[arg(long)]
        volumes: bool,
        /// Do not prompt for confirmation
        #[arg(short = 'f', long)]
        force: bool,
    },
    /// Display system-wide information
    Info {
        /// Format the output using the given Go template
        #[arg(short = 'f', long)]
        format: Option<String>,
    },
}

#[derive(Subcommand)]
enum ImageCommand {
    /// List images
    Ls {
        /// Only show image IDs
        #[arg(short = 'q', long)]
        quiet: bool,
        /// Don't truncate output
        #[arg(long = "no-trunc")]
        no_trunc: bool,
    },
    /// Display detailed information on one or more images
    Inspect {
        /// Format the output using the given Go template
        #[arg(short = 'f', long)]
        format: Option<String>,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Remove one or more images
    Rm {
        #[arg(short = 'f', long)]
        force: bool,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Import the contents from a tarball to create a filesystem image
    Import {
        #[arg(short = 'c', long = "change")]
        change: Vec<String>,
        #[arg(short = 'm', long)]
        message: Option<String>,
        file: String,
        reference: Option<String>,
    },
    /// Remove unused images
    Prune {
        /// Remove all unused images, not just dangling ones
        #[arg(short = 'a', long)]
        all: bool,
        /// Do not prompt for confirmation
        #[arg(short = 'f', long)]
        force: bool,
    },
}

/// Errors print like docker's and exit 1; `run` maps daemon errors to 125.
fn main() {
    let cli = parse_command_line();
    let connection = cli.connection();
    let result = match cli.command {
        // Contexts are managed without a daemon (and must work when the
        // current one is unusable).
        Command::Context { command } => context::run(command),
        command => match context::connect(&connection) {
            Ok(client) => dispatch(&client, command),
            Err(message) => Err(fail(message)),
        },
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("{}", e.message);
            std::process::exit(e.code);
        }
    }
}

/// The command line, or docker's answer to a bad one: `unknown flag: --x`
/// and where help is, exit 125 (clap's own wording and exit 2 otherwise).
fn parse_command_line() -> Cli {
    use clap::error::{ContextKind, ErrorKind};
    let e = match Cli::try_parse() {
        Ok(cli) => return cli,
        Err(e) => e,
    };
    match e.kind() {
        ErrorKind::UnknownArgument => {
            let flag = e
                .get(ContextKind::InvalidArg)
                .map(|v| v.to_string())
                .unwrap_or_default();
            match flag.strip_prefix('-').filter(|f| !f.starts_with('-')) {
                Some(short) => eprintln!(
                    "unknown shorthand flag: '{}' in {flag}",
                    short.chars().next().unwrap_or('?')
                ),
                None => eprintln!("unknown flag: {flag}"),
            }
            eprintln!("See '{} --help'.", command_path());
            std::process::exit(125);
        }
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
        _ => {
            let _ = e.print();
            std::process::exit(125);
        }
    }
}

/// One page per command, named as git and docker name theirs: `berth.1`,
/// `berth-run.1`, `berth-compose-up.1`, ...
fn man_pages(dir: &std::path::Path) -> CmdResult {
    use clap::CommandFactory;
    std::fs::create_dir_all(dir)?;
    let mut pending = vec![(String::from("berth"), Cli::command())];
    while let Some((name, cmd)) = pending.pop() {
        if cmd.is_hide_set() {
            continue;
        }
        for sub in cmd.get_subcommands() {
            pending.push((format!("{name}-{}", sub.get_name()), sub.clone()));
        }
        // The synopsis shows the command as typed: `berth compose up`.
        let page = cmd.name(name.clone()).bin_name(name.replace('-', " "));
        let mut out = Vec::new();
        clap_mangen::Man::new(page).render(&mut out)?;
        std::fs::write(dir.join(format!("{name}.1")), out)?;
    }
    Ok(0)
}

/// `berth run`, `berth compose up`, ...: the subcommands named on the command
/// line, for the "See '... --help'" hint.
fn command_path() -> String {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let mut path = vec!["berth".to_string()];
    for arg in std::env::args().skip(1) {
        if !cmd.has_subcommands() {
            break;
        }
        // Flags and global option values are skipped.
        if let Some(sub) = cmd.find_subcommand(&arg).cloned() {
            path.push(sub.get_name().to_string());
            cmd = sub;
        }
    }
    path.join(" ")
}

#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: i32,
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Failure {
            message: e.to_string(),
            code: 1,
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure {
            message: e.to_string(),
            code: 1,
        }
    }
}

pub fn fail(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        code: 1,
    }
}

pub type CmdResult = Result<i32, Failure>;

fn dispatch(client: &Client, command: Command) -> CmdResult {
    match command {
        Command::Run { detach, opts } => run::run(client, &opts, detach),
        Command::Create { opts } => {
            let id = run::create(client, &opts)?;
            println!("{id}");
            Ok(0)
        }
        Command::Exec {
            detach,
            interactive,
            tty,
            env,
            workdir,
            user,
            privileged,
            container_and_command,
            ..
        } => {
            let opts = run::ExecOpts {
                detach,
                interactive,
                tty,
                env: &env,
                workdir: workdir.as_deref(),
                user: user.as_deref(),
                privileged,
            };
            run::exec(
                client,
                &container_and_command[0],
                &container_and_command[1..],
                opts,
            )
        }
        Command::Start {
            attach,
            interactive,
            containers,
        } => containers::start(client, &containers, attach, interactive),
        Command::Stop {
            time,
            signal,
            containers,
        } => containers::stop(client, &containers, time, signal),
        Command::Restart { time, containers } => containers::restart(client, &containers, time),
        Command::Kill { signal, containers } => containers::kill(client, &containers, &signal),
        Command::Rm {
            force,
            volumes,
            containers,
        } => containers::remove(client, &containers, force, volumes),
        Command::Ps {
            all,
            quiet,
            filter,
            no_trunc,
            last,
            latest,
            format,
        } => containers::ps(
            client,
            all,
            quiet,
            &filter,
            no_trunc,
            if latest { Some(1) } else { last },
            format.as_deref(),
        ),
        Command::Logs {
            follow,
            tail,
            timestamps,
            since,
            until,
            container,
        } => containers::logs(client, &container, follow, &tail, timestamps, since, until),
        Command::Inspect {
            format,
            kind,
            names,
        } => containers::inspect(client, &names, format.as_deref(), kind.as_deref()),
        Command::Wait { containers } => containers::wait(client, &containers),
        Command::Import {
            change,
            message,
            file,
            reference,
        } => images::import(client, &file, reference, &change, message),
        Command::Images {
            quiet,
            no_trunc,
            all,
        } => images::list(client, quiet, no_trunc, all),
        Command::Image { command } => match command {
            ImageCommand::Ls { quiet, no_trunc } => images::list(client, quiet, no_trunc, false),
            ImageCommand::Inspect { format, images } => {
                images::inspect(client, &images, format.as_deref())
            }
            ImageCommand::Rm { force, images } => images::remove(client, &images, force),
            ImageCommand::Import {
                change,
                message,
                file,
                reference,
            } => images::import(client, &file, reference, &change, message),
            ImageCommand::Prune { all, force } => images::prune(client, all, force),
        },
        Command::Build {
            tag,
            file,
            build_arg,
            target,
            no_cache,
            label,
            network,
            quiet,
            memory,
            context,
            ..
        } => build::build(
            client,
            &build::BuildArgs {
                tags: tag,
                file,
                build_args: build_arg,
                target,
                no_cache,
                labels: label,
                network,
                quiet,
                memory,
                context,
            },
        ),
        Command::Pull { quiet, name, .. } => registry::pull(client, &name, quiet),
        Command::Push { quiet, name } => registry::push(client, &name, quiet),
        Command::Login {
            username,
            password,
            password_stdin,
            server,
        } => registry::login(
            client,
            &server,
            username.as_deref(),
            password.as_deref(),
            password_stdin,
        ),
        Command::Logout { server } => registry::logout(&server),
        Command::Search { term } => registry::search(&term),
        Command::Registry { args } => registry::registry(&args),
        Command::Builder { command } => match command {
            BuilderCommand::Prune { all, force } => build::prune(client, all, force),
        },
        Command::Attach {
            no_stdin,
            sig_proxy,
            container,
        } => run::attach(client, &container, no_stdin, sig_proxy),
        Command::Cp { src, dest } => copy::cp(client, &src, &dest),
        Command::Commit {
            author,
            change,
            message,
            pause,
            container,
            reference,
        } => images::commit(
            client,
            &container,
            reference.as_deref(),
            author.as_deref(),
            message.as_deref(),
            &change,
            pause,
        ),
        Command::Compose { project, command } => {
            let popts = compose::ProjectOptions {
                files: project.file,
                project_name: project.project_name,
                project_directory: project.project_directory,
                env_files: project.env_file,
                profiles: project.profile,
            };
            match command {
                ComposeCommand::Up {
                    detach,
                    build,
                    no_build,
                    force_recreate,
                    no_recreate,
                    remove_orphans,
                    wait,
                    wait_timeout,
                    timeout,
                    scale,
                    abort_on_container_exit,
                    exit_code_from,
                    no_deps,
                    no_start,
                    services,
                } => compose::up(
                    client,
                    &popts,
                    &compose::UpOptions {
                        detach: detach || wait,
                        build,
                        no_build,
                        force_recreate,
                        no_recreate,
                        remove_orphans,
                        wait,
                        wait_timeout,
                        timeout,
                        scale,
                        services,
                        abort_on_container_exit,
                        exit_code_from,
                        no_deps,
                        no_start,
                    },
                ),
                ComposeCommand::Create {
                    build,
                    no_build,
                    force_recreate,
                    no_recreate,
                    remove_orphans,
                    scale,
                    services,
                } => compose::up(
                    client,
                    &popts,
                    &compose::UpOptions {
                        detach: true,
                        build,
                        no_build,
                        force_recreate,
                        no_recreate,
                        remove_orphans,
                        scale,
                        services,
                        no_start: true,
                        ..Default::default()
                    },
                ),
                ComposeCommand::Scale { no_deps, scale } => compose::up(
                    client,
                    &popts,
                    &compose::UpOptions {
                        detach: true,
                        services: scale
                            .iter()
                            .map(|s| s.split_once('=').map_or(s.as_str(), |(n, _)| n).to_string())
                            .collect(),
                        scale,
                        no_deps,
                        ..Default::default()
                    },
                ),
                ComposeCommand::Pull {
                    ignore_buildable,
                    ignore_pull_failures,
                    quiet,
                    services,
                } => compose::pull(
                    client,
                    &popts,
                    &compose::PullOptions {
                        services,
                        quiet,
                        ignore_pull_failures,
                        ignore_buildable,
                    },
                ),
                ComposeCommand::Push {
                    ignore_push_failures,
                    quiet,
                    services,
                } => compose::push(client, &popts, &services, ignore_push_failures, quiet),
                ComposeCommand::Events { json, services } => {
                    compose::events(client, &popts, &services, json)
                }
                ComposeCommand::Cp { index, src, dest } => {
                    compose::cp(client, &popts, &src, &dest, index)
                }
                ComposeCommand::Wait {
                    down_project,
                    services,
                } => compose::wait(client, &popts, &services, down_project),
                ComposeCommand::Down {
                    volumes,
                    remove_orphans,
                    timeout,
                    rmi,
                } => compose::down(
                    client,
                    &popts,
                    &compose::DownOptions {
                        volumes,
                        remove_orphans,
                        timeout,
                        rmi,
                    },
                ),
                ComposeCommand::Ps {
                    all,
                    quiet,
                    services,
                    format,
                } => compose::ps(
                    client,
                    &popts,
                    &compose::PsOptions {
                        all,
                        quiet,
                        services,
                        format,
                    },
                ),
                ComposeCommand::Logs {
                    follow,
                    tail,
                    timestamps,
                    no_log_prefix,
                    since,
                    until,
                    services,
                } => compose::logs(
                    client,
                    &popts,
                    &compose::LogsOptions {
                        follow,
                        tail,
                        timestamps,
                        no_log_prefix,
                        since,
                        until,
                        services,
                    },
                ),
                ComposeCommand::Config { quiet, services } => {
                    compose::config(&popts, quiet, services)
                }
                ComposeCommand::Exec {
                    detach,
                    no_tty,
                    env,
                    workdir,
                    user,
                    privileged,
                    index,
                    service,
                    command,
                } => compose::exec(
                    client,
                    &popts,
                    &service,
                    index,
                    &command,
                    run::ExecOpts {
                        detach,
                        interactive: !detach,
                        tty: !no_tty && !detach && term::is_terminal(0),
                        env: &env,
                        workdir: workdir.as_deref(),
                        user: user.as_deref(),
                        privileged,
                    },
                ),
                ComposeCommand::Run {
                    detach,
                    rm,
                    no_deps,
                    service_ports,
                    no_tty,
                    env,
                    entrypoint,
                    user,
                    workdir,
                    name,
                    volume,
                    publish,
                    service,
                    command,
                } => compose::run(
                    client,
                    &popts,
                    &compose::RunOptions {
                        detach,
                        rm,
                        no_deps,
                        service_ports,
                        no_tty,
                        env,
                        entrypoint,
                        user,
                        workdir,
                        name,
                        volumes: volume,
                        publish,
                        service,
                        command,
                    },
                ),
                ComposeCommand::Stop { timeout, services } => {
                    let q: Vec<(&str, String)> =
                        timeout.map(|t| ("t", t.to_string())).into_iter().collect();
                    compose::lifecycle(client, &popts, "stop", &services, &q)
                }
                ComposeCommand::Start { services } => {
                    compose::lifecycle(client, &popts, "start", &services, &[])
                }
                ComposeCommand::Restart { timeout, services } => {
                    let q: Vec<(&str, String)> =
                        timeout.map(|t| ("t", t.to_string())).into_iter().collect();
                    compose::lifecycle(client, &popts, "restart", &services, &q)
                }
                ComposeCommand::Kill { signal, services } => {
                    compose::lifecycle(client, &popts, "kill", &services, &[("signal", signal)])
                }
                ComposeCommand::Rm {
                    force: _,
                    stop,
                    volumes,
                    services,
                } => {
                    if stop {
                        compose::lifecycle(client, &popts, "stop", &services, &[])?;
                    }
                    let mut q = vec![];
                    if volumes {
                        q.push(("v", "1".to_string()));
                    }
                    compose::lifecycle(client, &popts, "rm", &services, &q)
                }
                ComposeCommand::Pause { services } => {
                    compose::lifecycle(client, &popts, "pause", &services, &[])
                }
                ComposeCommand::Unpause { services } => {
                    compose::lifecycle(client, &popts, "unpause", &services, &[])
                }
                ComposeCommand::Ls { all } => compose::ls(client, all),
                ComposeCommand::Build { services } => compose::build(client, &popts, &services),
                ComposeCommand::Port {
                    protocol,
                    index,
                    service,
                    private_port,
                } => compose::port(client, &popts, &service, &private_port, &protocol, index),
                ComposeCommand::Top { services } => compose::top(client, &popts, &services),
                ComposeCommand::Images { services } => compose::images(client, &popts, &services),
                ComposeCommand::Version => {
                    println!("berth compose version v{}", env!("CARGO_PKG_VERSION"));
                    Ok(0)
                }
            }
        }
        Command::Network { command } => match command {
            NetworkCommand::Create {
                driver,
                subnet,
                gateway,
                internal,
                label,
                opt,
                name,
                ..
            } => networks::create(
                client,
                &networks::CreateArgs {
                    name: &name,
                    driver: &driver,
                    subnet: subnet.as_deref(),
                    gateway: gateway.as_deref(),
                    internal,
                    labels: &label,
                    options: &opt,
                },
            ),
            NetworkCommand::Ls {
                quiet,
                filter,
                format,
                no_trunc,
            } => networks::list(client, quiet, &filter, format.as_deref(), no_trunc),
            NetworkCommand::Inspect { format, networks } => {
                networks::inspect(client, &networks, format.as_deref())
            }
            NetworkCommand::Rm { networks } => networks::remove(client, &networks),
            NetworkCommand::Prune { force } => networks::prune(client, force),
            NetworkCommand::Connect {
                alias,
                ip,
                network,
                container,
            } => networks::connect(client, &network, &container, &alias, ip.as_deref()),
            NetworkCommand::Disconnect {
                force,
                network,
                container,
            } => networks::disconnect(client, &network, &container, force),
        },
        Command::Port {
            container,
            private_port,
        } => networks::port(client, &container, private_port.as_deref()),
        Command::Volume { command } => match command {
            VolumeCommand::Create {
                driver,
                opt,
                label,
                name,
            } => volumes::create(client, name.as_deref(), Some(&driver), &opt, &label),
            VolumeCommand::Ls {
                quiet,
                filter,
                format,
            } => volumes::list(client, quiet, &filter, format.as_deref()),
            VolumeCommand::Inspect { format, volumes } => {
                volumes::inspect(client, &volumes, format.as_deref())
            }
            VolumeCommand::Rm { force, volumes } => volumes::remove(client, &volumes, force),
            VolumeCommand::Prune { all, force, filter } => {
                volumes::prune(client, force, all, &filter)
            }
        },
        Command::Container { command } => match command {
            ContainerCommand::Prune { force, filter } => containers::prune(client, force, &filter),
            ContainerCommand::Ls { all, quiet } => {
                containers::ps(client, all, quiet, &[], false, None, None)
            }
        },
        Command::Tag { source, target } => images::tag(client, &source, &target),
        Command::Rmi { force, images } => images::remove(client, &images, force),
        Command::Export { output, container } => {
            containers::export(client, &container, output.as_deref())
        }
        Command::Pause { containers } => containers::simple_post(client, &containers, "pause"),
        Command::Unpause { containers } => containers::simple_post(client, &containers, "unpause"),
        Command::Rename {
            container,
            new_name,
        } => containers::rename(client, &container, &new_name),
        Command::Top { container } => containers::top(client, &container),
        Command::Diff { container } => containers::diff(client, &container),
        Command::Stats {
            no_stream,
            containers,
        } => containers::stats(client, &containers, no_stream),
        Command::History { image } => images::history(client, &image),
        Command::System { command } => match command {
            SystemCommand::Df => images::disk_usage(client),
            SystemCommand::Prune {
                all,
                volumes,
                force,
            } => system_prune(client, all, volumes, force),
            SystemCommand::Info { format } => containers::info(client, format.as_deref()),
        },
        Command::Events {
            since,
            until,
            filter,
        } => containers::events(client, since, until, &filter),
        Command::Save { output, images } => images::save(client, &images, output.as_deref()),
        Command::Load { input, quiet } => images::load(client, input.as_deref(), quiet),
        Command::Update {
            memory,
            cpus,
            cpu_shares,
            pids_limit,
            restart,
            containers,
        } => run::update(
            client,
            &containers,
            memory.as_deref(),
            cpus,
            cpu_shares,
            pids_limit,
            restart.as_deref(),
        ),
        Command::Version { format } => containers::version(client, format.as_deref()),
        Command::Completion { shell } => {
            use clap::CommandFactory;
            // Into memory first: clap_complete panics on a failed write
            // (`berth completion bash | head`).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "berth", &mut script);
            match std::io::Write::write_all(&mut std::io::stdout(), &script) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(0),
            }
        }
        Command::ManPages { dir } => man_pages(&dir),
        Command::Context { command } => context::run(command),
        Command::Info { format } => containers::info(client, format.as_deref()),
    }
}

/// `system prune`: docker's sequence of prunes, each through its own endpoint.
fn system_prune(client: &Client, all: bool, volumes: bool, force: bool) -> CmdResult {
    let mut what = vec![
        "all stopped containers",
        "all networks not used by at least one container",
    ];
    if volumes {
        what.push("all anonymous volumes not used by at least one container");
    }
    what.push(if all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    });
    what.push("all build cache");
    if !containers::confirm(force, &format!("\n  - {}\n", what.join("\n  - ")))? {
        return Ok(0);
    }
    let c = client.post("/containers/prune")?;
    let n = client.post("/networks/prune")?;
    let v = if volumes {
        Some(client.post("/volumes/prune")?)
    } else {
        None
    };
    let image_query = if all {
        client::encode_query(&[("filters", r#"{"dangling":{"false":true}}"#.to_string())])
    } else {
        String::new()
    };
    let i = client.post(&format!("/images/prune{image_query}"))?;
    let b = client.post("/build/prune")?;
    let list = |v: &serde_json::Value, key: &str, title: &str| {
        let items = v[key].as_array().cloned().unwrap_or_default();
        if !items.is_empty() {
            println!("{title}:");
            for item in items {
                match item.as_str() {
                    Some(s) => println!("{s}"),
                    None => {
                        if let Some(d) = item["Deleted"].as_str() {
                            println!("deleted: {d}");
                        } else if let Some(u) = item["Untagged"].as_str() {
                            println!("untagged: {u}");
                        }
                    }
                }
            }
            println!();
        }
    };
    list(&c, "ContainersDeleted", "Deleted Containers");
    list(&n, "NetworksDeleted", "Deleted Networks");
    if let Some(v) = &v {
        list(v, "VolumesDeleted", "Deleted Volumes");
    }
    list(&i, "ImagesDeleted", "Deleted Images");
    list(&b, "CachesDeleted", "Deleted build cache objects");
    let reclaimed = [&c, &i, &b]
        .into_iter()
        .chain(v.as_ref())
        .map(|x| x["SpaceReclaimed"].as_f64().unwrap_or(0.0))
        .sum::<f64>();
    println!("Total reclaimed space: {}", format::human_size(reclaimed));
    Ok(0)
}
