//! Which container a process runs in: the 64-hex container id that every
//! common runtime puts in the process's cgroup path (`/proc/PID/cgroup`),
//! for the `container.id` resource attribute, and the pod uid the kubelet
//! puts there (`…/pod<uid>/…`, `…-pod<uid_with_underscores>.slice`), which
//! finds a container's pod before the pod's status names the container.
//! Pure parsing; the shapes covered are those of cgroup v1 and v2 under
//! Docker, containerd, CRI-O, podman and the kubelet.

/// The container id in a `/proc/PID/cgroup` text, if any: the innermost
/// path component that is, or wraps, 64 hex digits. Runtime monitors
/// (`libpod-conmon-…`, `crio-conmon-…`) are not containers and never match.
pub fn container_id(cgroup: &str) -> Option<String> {
    cgroup.lines().find_map(|line| {
        let path = line.splitn(3, ':').nth(2)?;
        path.rsplit('/').find_map(id_of_component)
    })
}

/// Runtime prefixes around a container id in a cgroup path component.
const PREFIXES: &[&str] = &["docker-", "cri-containerd-", "crio-", "libpod-", "containerd-", ""];

fn id_of_component(component: &str) -> Option<String> {
    let bare = component.strip_suffix(".scope").unwrap_or(component);
    PREFIXES.iter().find_map(|prefix| {
        let id = bare.strip_prefix(prefix)?;
        (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_ascii_lowercase())
    })
}

/// `container.id` of process `pid`, when it runs in a container.
pub fn of_process(pid: u32) -> Option<String> {
    container_id(&std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?)
}

/// The uid of the Kubernetes pod in a `/proc/PID/cgroup` text, if any.
pub fn pod_uid(cgroup: &str) -> Option<String> {
    cgroup.lines().find_map(|line| {
        let path = line.splitn(3, ':').nth(2)?;
        path.split('/').find_map(|component| {
            let bare = component.strip_suffix(".slice").unwrap_or(component);
            let uid = bare.rsplit_once("pod")?.1.replace('_', "-");
            is_uuid(&uid).then(|| uid.to_ascii_lowercase())
        })
    })
}

fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The pod uid of process `pid`, when the kubelet placed it.
pub fn pod_of_process(pid: u32) -> Option<String> {
    pod_uid(&std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "401a01887736a92e7caf60e31f62325544e21441b60cf4b76803158a29d7cb00";

    #[test]
    fn finds_the_id_in_every_runtime_s_path_shape() {
        let shapes = [
            // Docker, cgroup v1 and v2 (systemd driver).
            format!("12:memory:/docker/{ID}\n11:pids:/docker/{ID}\n"),
            format!("0::/system.slice/docker-{ID}.scope\n"),
            // containerd and the kubelet, v2 (systemd) and v1 (cgroupfs).
            format!(
                "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f2c3a1e_5b7d_4c1a_9e8f_1234567890ab.slice/cri-containerd-{ID}.scope\n"
            ),
            format!("4:pids:/kubepods/burstable/pod0f2c3a1e-5b7d-4c1a-9e8f-1234567890ab/{ID}\n"),
            format!("0::/kubepods/besteffort/pod0f2c3a1e-5b7d-4c1a-9e8f-1234567890ab/{ID}\n"),
            // CRI-O.
            format!("0::/kubepods.slice/kubepods-pod1234.slice/crio-{ID}.scope\n"),
            // podman, as measured here (v1), and v2 (systemd).
            format!("9:name=systemd:/libpod_parent/libpod-{ID}\n8:pids:/libpod_parent/libpod-{ID}\n"),
            format!("0::/machine.slice/libpod-{ID}.scope/container\n"),
            format!("0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope\n"),
        ];
        for shape in shapes {
            assert_eq!(container_id(&shape).as_deref(), Some(ID), "{shape}");
        }
    }

    #[test]
    fn finds_the_kubelet_s_pod_uid() {
        const UID: &str = "0f2c3a1e-5b7d-4c1a-9e8f-1234567890ab";
        let shapes = [
            format!("4:pids:/kubepods/burstable/pod{UID}/{ID}\n"),
            format!("0::/kubepods/besteffort/pod{UID}/{ID}\n"),
            format!(
                "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{ID}.scope\n",
                UID.replace('-', "_")
            ),
            format!("0::/kubepods.slice/kubepods-pod{}.slice/crio-{ID}.scope\n", UID.replace('-', "_")),
        ];
        for shape in shapes {
            assert_eq!(pod_uid(&shape).as_deref(), Some(UID), "{shape}");
        }
        assert_eq!(pod_uid(&format!("8:pids:/libpod_parent/libpod-{ID}\n")), None);
        assert_eq!(pod_uid("0::/kubepods.slice/kubepods-podnot-a-uid.slice/x\n"), None);
    }

    #[test]
    fn a_host_process_or_a_runtime_monitor_has_none() {
        assert_eq!(container_id("9:name=systemd:/\n8:pids:/\n0::/init.scope\n"), None);
        assert_eq!(container_id("0::/user.slice/user-0.slice/session-3.scope\n"), None);
        assert_eq!(container_id(&format!("0::/machine.slice/libpod-conmon-{ID}.scope\n")), None);
        assert_eq!(container_id(&format!("0::/system.slice/crio-conmon-{ID}.scope\n")), None);
        assert_eq!(container_id(&format!("0::/docker/{}\n", &ID[..63])), None, "63 digits");
        assert_eq!(container_id("garbage"), None);
    }
}
