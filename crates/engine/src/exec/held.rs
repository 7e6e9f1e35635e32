//! Files and directories held open and compared by what they are (device and inode), not by
//! name.
//!
//! A name can be swapped between a check and its use — a command that can write its workspace
//! can rename a checked directory and put a symlink in its place — an open descriptor cannot.
//! So the exec path opens each place once, without following symlinks where a symlink would
//! be a way out, and asks its questions of the descriptor: what is it, what is above it.

#[cfg(target_os = "linux")]
use std::ffi::CString;
#[cfg(target_os = "linux")]
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
#[cfg(target_os = "linux")]
use std::os::unix::ffi::OsStrExt;
#[cfg(target_os = "linux")]
use std::path::{Component, Path};

/// What a file is, whatever it is called: its device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileId {
    pub dev: u64,
    pub ino: u64,
}

/// An `O_PATH` descriptor: it names one object for as long as it is held.
#[derive(Debug)]
#[cfg(target_os = "linux")]
pub(crate) struct Held {
    fd: OwnedFd,
}

/// A directory's parents are walked at most this far (a loop in the tree would be a bug).
#[cfg(target_os = "linux")]
const MAX_DEPTH: usize = 4096;

#[cfg(target_os = "linux")]
impl Held {
    /// Open `path` following symlinks, as any program would (the one resolution that counts).
    pub(crate) fn open(path: &Path) -> std::io::Result<Held> {
        let c = cstr(path)?;
        // SAFETY: a valid C string; the fd is owned exactly once below.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
        Held::from_fd(fd)
    }

    /// Open the absolute directory `path` walking from `/` one component at a time, refusing
    /// a symlink anywhere on the way (`ELOOP`) and anything that is not a directory.
    pub(crate) fn open_dir_nofollow(path: &Path) -> std::io::Result<Held> {
        if !path.is_absolute() {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not an absolute path"));
        }
        let root = Held::open(Path::new("/"))?;
        root.open_beneath(path.strip_prefix("/").unwrap_or(path))
    }

    /// Open the directory `rel` below this one: plain names only (no `..`, no absolute path),
    /// no symlink followed. What comes back is inside this directory, whatever was renamed.
    pub(crate) fn open_beneath(&self, rel: &Path) -> std::io::Result<Held> {
        let mut here = self.dup()?;
        for part in rel.components() {
            match part {
                Component::CurDir => continue,
                Component::Normal(name) => {
                    let c = CString::new(name.as_bytes())?;
                    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
                    // SAFETY: a valid dirfd and C string; the fd is owned exactly once.
                    let fd = unsafe { libc::openat(here.fd.as_raw_fd(), c.as_ptr(), flags) };
                    here = Held::from_fd(fd)?;
                }
                _ => {
                    return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "only plain names may follow"));
                }
            }
        }
        Ok(here)
    }

    pub(crate) fn id(&self) -> std::io::Result<FileId> {
        let st = self.stat()?;
        Ok(FileId { dev: st.st_dev, ino: st.st_ino })
    }

    /// Whether `ancestor` is this directory or one above it, walking `..` from the object
    /// itself — so renaming a directory on the way changes nothing.
    pub(crate) fn is_within(&self, ancestor: FileId) -> std::io::Result<bool> {
        let mut here = self.dup()?;
        let mut id = here.id()?;
        for _ in 0..MAX_DEPTH {
            if id == ancestor {
                return Ok(true);
            }
            let up = here.open_beneath_dotdot()?;
            let up_id = up.id()?;
            if up_id == id {
                return Ok(false); // `/`
            }
            (here, id) = (up, up_id);
        }
        Ok(false)
    }

    fn open_beneath_dotdot(&self) -> std::io::Result<Held> {
        // SAFETY: a valid dirfd and a literal C string; the fd is owned exactly once.
        let fd = unsafe {
            libc::openat(self.fd.as_raw_fd(), c"..".as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        };
        Held::from_fd(fd)
    }

    fn stat(&self) -> std::io::Result<libc::stat> {
        // SAFETY: fstat fills the struct on success; zeroed is a valid bit pattern for it.
        unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            if libc::fstat(self.fd.as_raw_fd(), &mut st) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(st)
        }
    }

    fn dup(&self) -> std::io::Result<Held> {
        Ok(Held { fd: self.fd.try_clone()? })
    }

    fn from_fd(fd: libc::c_int) -> std::io::Result<Held> {
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor returned by the kernel, owned by nobody else.
        Ok(Held { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }
}

#[cfg(target_os = "linux")]
fn cstr(path: &Path) -> std::io::Result<CString> {
    Ok(CString::new(path.as_os_str().as_bytes())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_renamed_ancestor_does_not_move_a_directory_out_of_its_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        let root_id = Held::open_dir_nofollow(&root).unwrap().id().unwrap();
        let b = Held::open_dir_nofollow(&root.join("a/b")).unwrap();
        std::fs::rename(root.join("a"), root.join("renamed")).unwrap();
        assert!(b.is_within(root_id).unwrap(), "still inside, by what it is");
        let outside = Held::open_dir_nofollow(dir.path()).unwrap();
        assert!(!outside.is_within(root_id).unwrap());
    }

    #[test]
    fn a_symlink_anywhere_on_the_way_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::os::unix::fs::symlink("real", dir.path().join("link")).unwrap();
        std::os::unix::fs::symlink("..", dir.path().join("real/up")).unwrap();
        assert!(Held::open_dir_nofollow(&dir.path().join("link")).is_err());
        let real = Held::open_dir_nofollow(&dir.path().join("real")).unwrap();
        assert!(real.open_beneath(Path::new("up")).is_err());
        assert!(real.open_beneath(Path::new("..")).is_err());
    }
}
