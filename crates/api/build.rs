// Build facts the version endpoint reports (`GitCommit`, `BuildTime`, the
// compiler): the commit and its time rather than the wall clock, so that two
// builds of one commit are alike. Shared with the CLI (`include!`).

fn main() {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!(
        "cargo:rustc-env=BERTH_GIT_COMMIT={}",
        git(&["rev-parse", "--short=7", "HEAD"])
    );
    println!(
        "cargo:rustc-env=BERTH_BUILD_TIME={}",
        git(&["log", "-1", "--format=%cI"])
    );
    println!("cargo:rustc-env=BERTH_RUSTC_VERSION={rustc_version}");
    let top = git(&["rev-parse", "--show-toplevel"]);
    if !top.is_empty() {
        println!("cargo:rerun-if-changed={top}/.git/HEAD");
        println!("cargo:rerun-if-changed={top}/.git/refs/heads");
    }
}
