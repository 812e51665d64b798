//! Runs the built launcher: it probes io_uring_setup itself after installing
//! the filter and exits 2 unless the probe got the chosen errno, so a zero
//! exit status of `launcher --errno X -- true` means the filter works.

#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

use std::process::Command;

const LAUNCHER: &str = env!("CARGO_BIN_EXE_ringline-seccomp-launch");

#[test]
fn refuses_io_uring_and_runs_the_program() {
    for errno in ["EPERM", "ENOSYS"] {
        let out = Command::new(LAUNCHER)
            .args([
                "--errno",
                errno,
                "--",
                "sh",
                "-c",
                "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; exit 3",
            ])
            .output()
            .expect("run the launcher");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{errno}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("NoNewPrivs:\t1"), "{errno}: {stdout}");
        assert!(stdout.contains("Seccomp:\t2"), "{errno}: {stdout}");
    }
}

#[test]
fn bad_usage_exits_2() {
    for args in [
        &["--errno", "EBADF", "--", "true"][..],
        &["--errno", "EPERM"],
        &["--", "true"],
        &[],
    ] {
        let out = Command::new(LAUNCHER)
            .args(args)
            .output()
            .expect("run the launcher");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn a_missing_program_exits_127() {
    let out = Command::new(LAUNCHER)
        .args([
            "--errno",
            "EPERM",
            "--",
            "/nonexistent/ringline-no-such-program",
        ])
        .output()
        .expect("run the launcher");
    assert_eq!(out.status.code(), Some(127));
}
