//! Every CLI command whose output is cut short by its reader (`hangar status |
//! head`) ends quietly with success, never with a panic; a server whose stdout
//! is closed keeps serving.

#![allow(
    clippy::disallowed_methods,
    reason = "it waits for real processes, in real time"
)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A single-node server in `dir`, its stdout a pipe whose reader is gone.
fn start_server(dir: &Path) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hangar"))
        .args(["server", "--data-dir"])
        .arg(dir)
        .args(["--s3-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"])
        .args(["--rpc-addr", "127.0.0.1:0", "--bucket", "piped"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server");
    drop(child.stdout.take());
    let ready = dir.join("ready.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "no ready.json within 60 s");
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the server exited"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

#[test]
fn cli_output_into_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = start_server(dir.path());
    let ready: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("ready.json")).expect("read"))
            .expect("ready.json");
    let admin = ready["admin_endpoint"].as_str().expect("admin endpoint");
    let token = ready["admin_token"].as_str().expect("admin token");
    let commands: [&[&str]; 6] = [
        &["status"],
        &["key", "list"],
        &["bucket", "list"],
        &["bucket", "info", "piped"],
        &["layout", "show"],
        &["worker", "list"],
    ];
    for args in commands {
        // The reader exits at once: by the time the command has its answer
        // from the admin API, nobody reads the pipe.
        let shell = format!(
            "\"$HANGAR\" {} | true; echo \"${{PIPESTATUS[0]}}\"",
            args.join(" ")
        );
        let out = Command::new("bash")
            .args(["-c", &shell])
            .env("HANGAR", env!("CARGO_BIN_EXE_hangar"))
            .env("HANGAR_ADMIN_URL", admin)
            .env("HANGAR_ADMIN_TOKEN", token)
            .output()
            .expect("run the command");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let status = String::from_utf8_lossy(&out.stdout);
        assert!(!stderr.contains("panicked"), "hangar {args:?}: {stderr}");
        assert_eq!(
            status.trim(),
            "0",
            "hangar {args:?} exit status; stderr: {stderr}"
        );
    }
    assert!(
        server.try_wait().expect("wait").is_none(),
        "the server died with its stdout closed"
    );
    server.kill().expect("kill");
    server.wait().expect("wait");
}
