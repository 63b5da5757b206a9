//! The crate graph must match the layers of ARCHITECTURE.md: each crate may
//! depend only on the Hangar crates listed for it here.

use std::collections::BTreeMap;
use std::process::Command;

/// Allowed Hangar dependencies (normal and build) of each Hangar crate.
fn allowed() -> BTreeMap<&'static str, &'static [&'static str]> {
    BTreeMap::from([
        ("hangar-util", &[][..]),
        ("hangar-db", &[][..]),
        ("hangar-net", &["hangar-util"][..]),
        ("hangar-cluster", &["hangar-util", "hangar-net"][..]),
        (
            "hangar-table",
            &["hangar-util", "hangar-db", "hangar-net", "hangar-cluster"][..],
        ),
        (
            "hangar-block",
            &["hangar-util", "hangar-db", "hangar-net", "hangar-cluster"][..],
        ),
        (
            "hangar-model",
            &[
                "hangar-util",
                "hangar-db",
                "hangar-cluster",
                "hangar-table",
                "hangar-block",
            ][..],
        ),
        ("hangar-api-s3", &["hangar-util", "hangar-model"][..]),
        (
            "hangar-api-admin",
            &["hangar-util", "hangar-cluster", "hangar-model"][..],
        ),
        (
            "hangar",
            &[
                "hangar-util",
                "hangar-db",
                "hangar-net",
                "hangar-cluster",
                "hangar-table",
                "hangar-block",
                "hangar-model",
                "hangar-api-s3",
                "hangar-api-admin",
            ][..],
        ),
        (
            "hangar-testkit",
            &[
                "hangar-util",
                "hangar-db",
                "hangar-net",
                "hangar-cluster",
                "hangar-table",
                "hangar-block",
                "hangar-model",
                "hangar-api-s3",
                "hangar-api-admin",
            ][..],
        ),
        (
            "hangar-bench",
            &["hangar-util", "hangar-net", "hangar-cluster"][..],
        ),
    ])
}

#[test]
fn crates_depend_only_on_the_layers_below_them() {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let allowed = allowed();
    let mut violations = Vec::new();
    let packages = meta["packages"].as_array().expect("packages");
    for p in packages {
        let name = p["name"].as_str().expect("name");
        let Some(ok) = allowed.get(name) else {
            violations.push(format!("{name} is not placed in a layer"));
            continue;
        };
        for d in p["dependencies"].as_array().expect("dependencies") {
            let dep = d["name"].as_str().expect("dependency name");
            let is_dev = d["kind"].as_str() == Some("dev");
            if dep.starts_with("hangar") && !is_dev && !ok.contains(&dep) {
                violations.push(format!("{name} must not depend on {dep}"));
            }
            if dep == "hangar-testkit" && !is_dev {
                violations.push(format!(
                    "{name} may use hangar-testkit only as a dev-dependency"
                ));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "layer violations:\n{}",
        violations.join("\n")
    );
    assert_eq!(packages.len(), allowed.len(), "every crate has a layer");
}
