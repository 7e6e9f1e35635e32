//! The system calls a sandboxed command may not make, as seccomp filters for bubblewrap
//! (`--add-seccomp-fd`), built with `seccompiler` (no libseccomp needed at run time).
//!
//! Refused with `EPERM`: the kernel keyrings (`keyctl`, `add_key`, `request_key`: without this
//! a command reads and writes the caller's session keyring, and root's user keyring), loading
//! BPF programs, performance counters, `userfaultfd` (a favourite of kernel exploits), kernel
//! modules, `kexec`, reboot, swap, mounting of any kind, entering or making user namespaces
//! (`setns`, `unshare`/`clone` with `CLONE_NEWUSER`: a new user namespace hands the command
//! capabilities over a fresh set of kernel code), clock setting, `syslog`, quotas, file
//! handles (`open_by_handle_at` walks past mounts), io_uring (its calls bypass this filter),
//! fanotify, and terminal input injection (`TIOCSTI`, `TIOCLINUX`).
//! `clone3` gets `ENOSYS`: its flags sit behind a pointer a filter cannot read, and `ENOSYS`
//! makes the C library fall back to `clone`, whose flags are checked.
//!
//! A system call of another architecture (32-bit calls on a 64-bit kernel) kills the command:
//! `seccompiler` checks the architecture first.

use std::collections::BTreeMap;
use std::io::{Seek, Write};
use std::os::fd::{FromRawFd, OwnedFd};

use seccompiler::{BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule};

/// Refused outright, whatever the arguments.
fn refused() -> Vec<i64> {
    let mut calls = vec![
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_userfaultfd,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_reboot,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_fsopen,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fspick,
        libc::SYS_mount_setattr,
        libc::SYS_setns,
        libc::SYS_acct,
        libc::SYS_settimeofday,
        libc::SYS_clock_settime,
        libc::SYS_clock_adjtime,
        libc::SYS_adjtimex,
        libc::SYS_syslog,
        libc::SYS_quotactl,
        libc::SYS_open_by_handle_at,
        libc::SYS_name_to_handle_at,
        libc::SYS_vhangup,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_fanotify_init,
    ];
    #[cfg(target_arch = "x86_64")]
    calls.extend([libc::SYS_ioperm, libc::SYS_iopl, libc::SYS_uselib, libc::SYS_lookup_dcookie]);
    calls
}

/// The filters to load, each as the bytes of a compiled BPF program in a memory file that
/// bubblewrap reads (`--add-seccomp-fd FD`). Compiled once per process.
pub(crate) fn filters() -> std::io::Result<Vec<OwnedFd>> {
    static COMPILED: std::sync::OnceLock<Result<Vec<Vec<u8>>, String>> = std::sync::OnceLock::new();
    let compiled = COMPILED.get_or_init(|| compile().map_err(|e| e.to_string()));
    match compiled {
        Ok(programs) => programs.iter().map(|p| memory_file(p)).collect(),
        Err(e) => Err(std::io::Error::other(e.clone())),
    }
}

fn compile() -> std::io::Result<Vec<Vec<u8>>> {
    let arch = std::env::consts::ARCH
        .try_into()
        .map_err(|_| std::io::Error::other(format!("no seccomp filter for {}", std::env::consts::ARCH)))?;
    let bad = |e: seccompiler::BackendError| std::io::Error::other(e.to_string());
    let flag = |arg: u8, bits: u64| -> std::io::Result<SeccompRule> {
        let c = SeccompCondition::new(arg, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(bits), bits).map_err(bad)?;
        SeccompRule::new(vec![c]).map_err(bad)
    };
    let equals = |arg: u8, value: u64| -> std::io::Result<SeccompRule> {
        let c = SeccompCondition::new(arg, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, value).map_err(bad)?;
        SeccompRule::new(vec![c]).map_err(bad)
    };
    let mut eperm: BTreeMap<i64, Vec<SeccompRule>> = refused().into_iter().map(|n| (n, vec![])).collect();
    let newuser = libc::CLONE_NEWUSER as u64;
    eperm.insert(libc::SYS_clone, vec![flag(0, newuser)?]);
    eperm.insert(libc::SYS_unshare, vec![flag(0, newuser)?]);
    eperm.insert(libc::SYS_ioctl, vec![equals(1, libc::TIOCSTI as u64)?, equals(1, libc::TIOCLINUX as u64)?]);
    let enosys: BTreeMap<i64, Vec<SeccompRule>> = [(libc::SYS_clone3, vec![])].into_iter().collect();

    let mut out = Vec::new();
    for (rules, errno) in [(eperm, libc::EPERM), (enosys, libc::ENOSYS)] {
        let filter =
            SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(errno as u32), arch).map_err(bad)?;
        let program: BpfProgram = filter.try_into().map_err(bad)?;
        out.push(bytes(&program));
    }
    Ok(out)
}

/// The program's instructions as the kernel's `struct sock_filter` array.
fn bytes(program: &BpfProgram) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(program.len() * 8);
    for insn in program {
        bytes.extend_from_slice(&insn.code.to_ne_bytes());
        bytes.push(insn.jt);
        bytes.push(insn.jf);
        bytes.extend_from_slice(&insn.k.to_ne_bytes());
    }
    bytes
}

/// `bytes` in a memory file rewound to its start.
fn memory_file(bytes: &[u8]) -> std::io::Result<OwnedFd> {
    // SAFETY: a literal C string; the fd is owned exactly once below.
    let fd = unsafe { libc::memfd_create(c"gatehouse-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor owned by nobody else.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    file.write_all(bytes)?;
    file.rewind()?;
    Ok(file.into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_filters_compile_for_this_machine() {
        let filters = super::filters().unwrap();
        assert_eq!(filters.len(), 2);
    }
}
