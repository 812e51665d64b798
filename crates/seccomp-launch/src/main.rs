//! `ringline-seccomp-launch`: a test helper that runs a program with io_uring
//! refused by a seccomp filter, the way a container runtime (Docker's default
//! profile refuses io_uring with EPERM) or a kernel without io_uring (ENOSYS)
//! does.
//!
//! ```text
//! ringline-seccomp-launch --errno EPERM|ENOSYS -- <program> [args...]
//! ```
//!
//! It sets `PR_SET_NO_NEW_PRIVS`, installs a seccomp BPF filter that makes
//! `io_uring_setup`, `io_uring_enter` and `io_uring_register` fail with the
//! chosen errno and allows every other system call, checks that the filter
//! works, and then replaces itself with `<program>` (looked up in `PATH` like
//! execvp(3)). The filter is inherited across exec and by every thread and
//! child of the program, and cannot be removed.
//!
//! Linux x86_64 and aarch64 only; elsewhere it says "unsupported" and exits
//! with status 2 (it still compiles, so `cargo build --workspace` works on
//! every platform).
//!
//! Exit status: the program's own once it runs; 2 for bad usage or when the
//! filter cannot be installed; 127 when the program cannot be executed.

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
fn main() {
    imp::main()
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
fn main() {
    eprintln!(
        "ringline-seccomp-launch: unsupported on this platform (Linux x86_64 and aarch64 only)"
    );
    std::process::exit(2);
}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod imp {
    use std::ffi::OsString;
    use std::io;
    use std::mem::offset_of;
    use std::os::unix::process::CommandExt;
    use std::process::{exit, Command};

    use libc::{c_int, c_ulong, seccomp_data, sock_filter, sock_fprog};

    const USAGE: &str =
        "usage: ringline-seccomp-launch --errno EPERM|ENOSYS -- <program> [args...]";

    /// `AUDIT_ARCH_X86_64` of linux/audit.h: EM_X86_64 (62) | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE.
    #[cfg(target_arch = "x86_64")]
    const AUDIT_ARCH: u32 = 0xC000_003E;
    /// `AUDIT_ARCH_AARCH64` of linux/audit.h: EM_AARCH64 (183) | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE.
    #[cfg(target_arch = "aarch64")]
    const AUDIT_ARCH: u32 = 0xC000_00B7;

    /// `__X32_SYSCALL_BIT`: x32 system calls arrive with `AUDIT_ARCH_X86_64`
    /// too, numbered with this bit set, so the filter refuses both numbers.
    #[cfg(target_arch = "x86_64")]
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;

    struct Args {
        errno: c_int,
        errno_name: &'static str,
        program: OsString,
        args: Vec<OsString>,
    }

    fn usage_error(msg: &str) -> ! {
        eprintln!("ringline-seccomp-launch: {msg}");
        eprintln!("{USAGE}");
        exit(2)
    }

    fn parse_errno(name: &str) -> (c_int, &'static str) {
        match name {
            "EPERM" => (libc::EPERM, "EPERM"),
            "ENOSYS" => (libc::ENOSYS, "ENOSYS"),
            _ => usage_error(&format!("--errno must be EPERM or ENOSYS, not {name:?}")),
        }
    }

    fn parse_args() -> Args {
        let mut it = std::env::args_os().skip(1);
        let mut errno = None;
        loop {
            let Some(arg) = it.next() else {
                usage_error("missing `-- <program>`")
            };
            let Some(arg) = arg.to_str().map(str::to_owned) else {
                usage_error(&format!("unexpected argument {arg:?}"))
            };
            match arg.as_str() {
                "--" => break,
                "-h" | "--help" => {
                    println!("{USAGE}");
                    exit(0)
                }
                "--errno" => {
                    let Some(v) = it.next() else {
                        usage_error("--errno needs a value")
                    };
                    errno = Some(parse_errno(&v.to_string_lossy()));
                }
                _ => match arg.strip_prefix("--errno=") {
                    Some(v) => errno = Some(parse_errno(v)),
                    None => usage_error(&format!("unexpected argument {arg:?}")),
                },
            }
        }
        let Some((errno, errno_name)) = errno else {
            usage_error("missing --errno")
        };
        let Some(program) = it.next() else {
            usage_error("missing <program> after `--`")
        };
        Args {
            errno,
            errno_name,
            program,
            args: it.collect(),
        }
    }

    /// The system call numbers the filter refuses.
    pub(crate) fn refused() -> Vec<u32> {
        let nrs = [
            libc::SYS_io_uring_setup,
            libc::SYS_io_uring_enter,
            libc::SYS_io_uring_register,
        ];
        let mut out = Vec::new();
        for nr in nrs {
            let nr = u32::try_from(nr).expect("system call numbers are small and positive");
            #[cfg(target_arch = "x86_64")]
            {
                out.push(nr & !X32_SYSCALL_BIT);
                out.push(nr | X32_SYSCALL_BIT);
            }
            #[cfg(target_arch = "aarch64")]
            out.push(nr);
        }
        out
    }

    fn stmt(code: u32, k: u32) -> sock_filter {
        sock_filter {
            code: u16::try_from(code).expect("BPF opcodes fit in 16 bits"),
            jt: 0,
            jf: 0,
            k,
        }
    }

    fn jump(code: u32, k: u32, jt: u8, jf: u8) -> sock_filter {
        sock_filter {
            code: u16::try_from(code).expect("BPF opcodes fit in 16 bits"),
            jt,
            jf,
            k,
        }
    }

    fn field(offset: usize) -> u32 {
        u32::try_from(offset).expect("seccomp_data is 64 bytes")
    }

    /// The BPF program: a system call of another architecture kills the
    /// process (its numbers mean other calls); a refused number returns
    /// `errno`; everything else is allowed.
    pub(crate) fn program(errno: c_int, refused: &[u32]) -> Vec<sock_filter> {
        let errno =
            u32::try_from(errno).expect("errno values are positive") & libc::SECCOMP_RET_DATA;
        let ld_w_abs = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
        let jeq_k = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
        let ret_k = libc::BPF_RET | libc::BPF_K;
        let mut f = vec![
            stmt(ld_w_abs, field(offset_of!(seccomp_data, arch))),
            jump(jeq_k, AUDIT_ARCH, 1, 0),
            stmt(ret_k, libc::SECCOMP_RET_KILL_PROCESS),
            stmt(ld_w_abs, field(offset_of!(seccomp_data, nr))),
        ];
        let n = refused.len();
        for (i, &nr) in refused.iter().enumerate() {
            // On a match skip the n - 1 - i comparisons left and the ALLOW,
            // landing on the ERRNO return.
            let skip = u8::try_from(n - i).expect("a handful of refused calls");
            f.push(jump(jeq_k, nr, skip, 0));
        }
        f.push(stmt(ret_k, libc::SECCOMP_RET_ALLOW));
        f.push(stmt(ret_k, libc::SECCOMP_RET_ERRNO | errno));
        f
    }

    fn install(filter: &mut [sock_filter]) -> io::Result<()> {
        // SAFETY: prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) takes only integer
        // arguments (passed as the unsigned longs the kernel reads) and
        // touches no memory of this process.
        let r = unsafe {
            libc::prctl(
                libc::PR_SET_NO_NEW_PRIVS,
                1 as c_ulong,
                0 as c_ulong,
                0 as c_ulong,
                0 as c_ulong,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        let prog = sock_fprog {
            len: u16::try_from(filter.len()).expect("a short filter"),
            filter: filter.as_mut_ptr(),
        };
        // No other thread exists yet, so flags 0 (no TSYNC) covers the
        // whole process. The kernel only reads (copies) the program.
        // SAFETY: `prog` is a valid sock_fprog whose `filter` points at
        // `filter.len()` initialized entries; both outlive the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER as c_ulong,
                0 as c_ulong,
                &raw const prog,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ENOSYS) {
            return Err(e);
        }
        // Kernels before 3.17 have no seccomp(2); prctl takes the same program.
        // SAFETY: as above: `prog` and the entries it points at are valid and
        // outlive the call, which only reads them.
        let r = unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER as c_ulong,
                &raw const prog,
                0 as c_ulong,
                0 as c_ulong,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Calls io_uring_setup(0, NULL), which cannot create a ring (without the
    /// filter the kernel answers EFAULT or EINVAL), and returns its errno.
    fn probe() -> Option<c_int> {
        // The filter, or the kernel's own argument checks, refuse this
        // first; any fd it returned anyway is closed below.
        // SAFETY: 0 entries and a null params pointer: no memory the kernel
        // could write into.
        let r = unsafe {
            libc::syscall(
                libc::SYS_io_uring_setup,
                0 as c_ulong,
                std::ptr::null_mut::<libc::c_void>(),
            )
        };
        if r >= 0 {
            // Impossible for these arguments; do not leak it anyway.
            if let Ok(fd) = c_int::try_from(r) {
                // SAFETY: `fd` was just returned by the kernel and nothing
                // else in this process knows it, so closing it affects no
                // other owner.
                unsafe { libc::close(fd) };
            }
            return None;
        }
        io::Error::last_os_error().raw_os_error()
    }

    pub fn main() {
        let args = parse_args();
        let mut filter = program(args.errno, &refused());
        if let Err(e) = install(&mut filter) {
            eprintln!("ringline-seccomp-launch: cannot install the seccomp filter: {e}");
            exit(2);
        }
        match probe() {
            Some(e) if e == args.errno => {}
            other => {
                eprintln!(
                    "ringline-seccomp-launch: filter installed but io_uring_setup gave errno {other:?}, not {} ({})",
                    args.errno, args.errno_name
                );
                exit(2);
            }
        }
        // Command::exec is execvp(3) (PATH lookup) with Rust's own SIGPIPE
        // disposition (ignored) reset to the default first.
        let e = Command::new(&args.program).args(&args.args).exec();
        eprintln!(
            "ringline-seccomp-launch: cannot execute {:?}: {e}",
            args.program
        );
        exit(127);
    }
}

#[cfg(all(
    test,
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod tests {
    use super::imp::{program, refused};

    #[test]
    fn every_refused_call_jumps_to_the_errno_return() {
        let nrs = refused();
        let f = program(libc::ENOSYS, &nrs);
        let ret_k = u16::try_from(libc::BPF_RET | libc::BPF_K).unwrap();
        let jeq_k = u16::try_from(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K).unwrap();
        let last = f.len() - 1;
        assert_eq!(f[last].code, ret_k);
        assert_eq!(
            f[last].k,
            libc::SECCOMP_RET_ERRNO | u32::try_from(libc::ENOSYS).unwrap()
        );
        assert_eq!(f[last - 1].code, ret_k);
        assert_eq!(f[last - 1].k, libc::SECCOMP_RET_ALLOW);
        // The arch check: match skips the kill.
        assert_eq!(f[1].code, jeq_k);
        assert_eq!((f[1].jt, f[1].jf), (1, 0));
        assert_eq!(f[2].k, libc::SECCOMP_RET_KILL_PROCESS);
        let setup = u32::try_from(libc::SYS_io_uring_setup).unwrap();
        assert!(nrs.contains(&setup));
        let mut seen = 0;
        for (i, ins) in f.iter().enumerate().skip(4) {
            if ins.code == jeq_k {
                assert_eq!(i + 1 + usize::from(ins.jt), last, "instruction {i}");
                assert_eq!(ins.jf, 0);
                seen += 1;
            }
        }
        assert_eq!(seen, nrs.len());
    }
}
