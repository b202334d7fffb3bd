//! The services as containers, the way they run in a cluster: images with no registry.
//!
//! The suite needs no registry: every image is `FROM scratch` with one static binary, built by
//! cargo on the host ([`crate::process::release_binaries`]; the frontend's binary carries its
//! UI). [`images`] builds the binaries once per test run (cargo skips the work when nothing
//! changed) and the images through testcontainers' `GenericBuildableImage` (Docker's layer cache
//! makes an unchanged image a no-op). [`docker`] says whether a Docker daemon answers, and why
//! not when it does not.

use std::process::Command;

use testcontainers::core::{IntoContainerPort as _, WaitFor};
use testcontainers::runners::AsyncBuilder as _;
use testcontainers::{GenericBuildableImage, GenericImage};

use parts::Part;

/// Set to `1` (as CI does) to make a missing Docker fail the container suite instead of skipping it.
pub const REQUIRE_DOCKER: &str = "LAB_REQUIRE_DOCKER";

/// `Ok` when a Docker daemon answers; otherwise why not.
pub fn docker() -> Result<(), String> {
    if !(cfg!(target_os = "linux") && cfg!(target_arch = "x86_64")) {
        return Err(
            "the images hold Linux x86_64 binaries built on this host, which is not one".into(),
        );
    }
    let out = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .map_err(|e| format!("no docker command ({e})"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "no Docker daemon answers: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The image of each service, built once per test run: `(service, image)` in start order.
pub async fn images() -> Vec<(Part, GenericImage)> {
    static IMAGES: tokio::sync::OnceCell<Vec<(Part, GenericImage)>> =
        tokio::sync::OnceCell::const_new();
    IMAGES.get_or_init(build_images).await.clone()
}

async fn build_images() -> Vec<(Part, GenericImage)> {
    let dir = tokio::task::spawn_blocking(crate::process::release_binaries)
        .await
        .expect("the static build does not panic");
    let mut images = Vec::new();
    for part in Part::SERVICES {
        let service = part.name();
        let dockerfile = format!(
            "FROM scratch\nCOPY {service} /{service}\nEXPOSE {port}\nENTRYPOINT [\"/{service}\"]\n",
            port = part.port()
        );
        let image = GenericBuildableImage::new(format!("dice-lab/{service}"), "test".to_owned())
            .with_dockerfile_string(dockerfile)
            .with_file(dir.join(service), service)
            .build_image()
            .await
            .unwrap_or_else(|e| panic!("building the {service} image failed: {e}"))
            .with_exposed_port(part.port().tcp())
            .with_wait_for(WaitFor::message_on_stdout(format!("{service} listening")));
        images.push((part, image));
    }
    images
}
