//! A listening Unix domain socket and its file: binding it (a stale file left by a process
//! that died is replaced; a live listener or a file that is not a socket stops the start),
//! its mode and owner, and removing the file when the socket closes.
//!
//! Invariant: the file is removed only while it is still the one this socket created (same
//! device and inode), so a socket that another process bound at the path since is left
//! alone. Dropping a [`SocketFile`] closes the socket and removes its file: a drain, a stop,
//! a reload that removes the listener and the end of the process all go through `Drop`.

use crate::error::StartError;
use mio::net::UnixListener;
use socket2::{Domain, SockAddr, Socket, Type};
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A listening Unix socket whose file this proxy created.
#[derive(Debug)]
pub(super) struct SocketFile {
    pub socket: UnixListener,
    path: PathBuf,
    /// Device and inode of the file, to remove it only while it is ours.
    id: (u64, u64),
}

/// Mode and owner for a socket file (`unix_mode`, `unix_owner`).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Access<'a> {
    pub mode: Option<u32>,
    pub owner: Option<&'a str>,
}

impl SocketFile {
    /// Binds and listens at `path` with `access` applied before `listen`, so no client can
    /// connect while the file has other permissions.
    pub fn bind(path: &Path, backlog: u32, access: Access<'_>) -> Result<SocketFile, StartError> {
        let fail = |source| StartError::BindUnix {
            path: path.to_path_buf(),
            source,
        };
        clear_stale(path).map_err(fail)?;
        let socket = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(fail)?;
        socket
            .bind(&SockAddr::unix(path).map_err(fail)?)
            .map_err(fail)?;
        let meta = fs::symlink_metadata(path).map_err(fail)?;
        // From here on `file` removes the path if anything below fails.
        let file = SocketFile {
            socket: UnixListener::from_std(socket.into()),
            path: path.to_path_buf(),
            id: (meta.dev(), meta.ino()),
        };
        file.set_access(access).map_err(fail)?;
        let raw = socket2::SockRef::from(&file.socket);
        raw.listen(backlog.min(i32::MAX as u32) as i32)
            .map_err(fail)?;
        raw.set_nonblocking(true).map_err(fail)?;
        Ok(file)
    }

    /// The socket file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sets the file's mode and owner (also on a reload that keeps the socket).
    pub fn set_access(&self, access: Access<'_>) -> io::Result<()> {
        if let Some(mode) = access.mode {
            fs::set_permissions(&self.path, fs::Permissions::from_mode(mode))?;
        }
        if let Some(owner) = access.owner {
            let (uid, gid) = lookup_owner(owner)?;
            std::os::unix::fs::chown(&self.path, uid, gid)?;
        }
        Ok(())
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours = fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.id);
        if ours {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Makes `path` free for a new socket: nothing there is fine; a socket nobody accepts on
/// (connect refused: its process is gone) is removed; a live listener or any other file is
/// an error that names what is there.
fn clear_stale(path: &Path) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "the path exists and is not a socket (not replaced)",
        ));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => fs::remove_file(path),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "another process accepts connections on this socket",
        )),
        // A full backlog (EAGAIN) is a live listener too.
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "another process listens on this socket",
        )),
        Err(e) => Err(e),
    }
}

/// The uid and gid of `user:group`, `user` or `:group` (names or numeric ids); a part left
/// out is `None` (unchanged).
fn lookup_owner(owner: &str) -> io::Result<(Option<u32>, Option<u32>)> {
    use nix::unistd::{Group, User};
    let unknown = |what: &str, name: &str| {
        io::Error::new(io::ErrorKind::NotFound, format!("no {what} named {name:?}"))
    };
    let (user, group) = match owner.split_once(':') {
        Some((user, group)) => (Some(user).filter(|u| !u.is_empty()), Some(group)),
        None => (Some(owner), None),
    };
    // A number is an id; anything else a name to look up.
    let uid = user
        .map(|u| match u.parse() {
            Ok(id) => Ok(id),
            Err(_) => (User::from_name(u)?.map(|user| user.uid.as_raw()))
                .ok_or_else(|| unknown("user", u)),
        })
        .transpose()?;
    let gid = group
        .map(|g| match g.parse() {
            Ok(id) => Ok(id),
            Err(_) => (Group::from_name(g)?.map(|group| group.gid.as_raw()))
                .ok_or_else(|| unknown("group", g)),
        })
        .transpose()?;
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::lookup_owner;

    #[test]
    fn owners_are_names_or_ids_and_a_part_may_be_left_out() {
        assert_eq!(lookup_owner("root").unwrap(), (Some(0), None));
        assert_eq!(lookup_owner("root:root").unwrap(), (Some(0), Some(0)));
        assert_eq!(lookup_owner(":root").unwrap(), (None, Some(0)));
        assert_eq!(lookup_owner("1234:5678").unwrap(), (Some(1234), Some(5678)));
        for unknown in ["no-such-user-here", "root:no-such-group-here"] {
            let e = lookup_owner(unknown).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{unknown}: {e}");
        }
    }
}
