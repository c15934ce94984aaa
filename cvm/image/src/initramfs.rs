//! A reproducible initramfs: a newc cpio archive whose bytes depend only on the files put
//! in it. Every entry has owner 0:0, mtime 0, one link and an inode number given by its
//! position; entries are written in byte order of their paths, each directory before what
//! it contains; there are no device nodes (the kernel's devtmpfs provides `/dev`). The
//! archive is not compressed: the kernel reads it as it is, and no compressor's version
//! can change its bytes.
//!
//! Pure: files in, bytes out.

use std::collections::BTreeMap;
use std::io::Write;

/// Why an initramfs cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    /// A path is not absolute, not normalized, or not valid in an archive.
    #[error("invalid initramfs path {0:?}: {1}")]
    Path(String, &'static str),
    /// The same path was added twice, or as a file and as a directory.
    #[error("the initramfs path {0:?} is added twice")]
    Duplicate(String),
    /// A file does not fit the format (4 GiB per file).
    #[error("{0:?} is too large for a cpio entry ({1} bytes)")]
    TooLarge(String, usize),
    /// Writing failed.
    #[error("cannot write the initramfs: {0}")]
    Write(#[from] std::io::Error),
}

#[derive(Debug, Clone)]
enum Node {
    Dir,
    File { mode: u32, data: Vec<u8> },
}

/// The files of an initramfs, in memory.
#[derive(Debug, Clone, Default)]
pub struct Initramfs {
    nodes: BTreeMap<String, Node>,
}

/// One entry as listed in the image manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Absolute path in the image.
    pub path: String,
    /// Permission bits.
    pub mode: u32,
    /// SHA-256 of the contents (hex).
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

fn check(path: &str) -> Result<(), InitramfsError> {
    let bad = |why| Err(InitramfsError::Path(path.to_owned(), why));
    if !path.starts_with('/') || path == "/" {
        return bad("must be absolute and not the root");
    }
    if path.ends_with('/') || path.contains("//") {
        return bad("must not end in / or contain //");
    }
    if path.split('/').any(|c| c == "." || c == "..") {
        return bad("must not contain . or ..");
    }
    if path.bytes().any(|b| b == 0 || b == b'\n') {
        return bad("must not contain NUL or newline");
    }
    Ok(())
}

impl Initramfs {
    /// An empty archive.
    pub fn new() -> Initramfs {
        Initramfs::default()
    }

    /// Adds a regular file at `path` (absolute) with permission bits `mode`; its parent
    /// directories are created.
    pub fn file(&mut self, path: &str, mode: u32, data: Vec<u8>) -> Result<(), InitramfsError> {
        check(path)?;
        if u32::try_from(data.len()).is_err() {
            return Err(InitramfsError::TooLarge(path.to_owned(), data.len()));
        }
        self.parents(path)?;
        if self.nodes.contains_key(path) {
            return Err(InitramfsError::Duplicate(path.to_owned()));
        }
        self.nodes.insert(
            path.to_owned(),
            Node::File {
                mode: mode & 0o7777,
                data,
            },
        );
        Ok(())
    }

    /// Adds an empty directory (and its parents).
    pub fn dir(&mut self, path: &str) -> Result<(), InitramfsError> {
        check(path)?;
        self.parents(path)?;
        match self.nodes.get(path) {
            Some(Node::File { .. }) => Err(InitramfsError::Duplicate(path.to_owned())),
            _ => {
                self.nodes.insert(path.to_owned(), Node::Dir);
                Ok(())
            }
        }
    }

    fn parents(&mut self, path: &str) -> Result<(), InitramfsError> {
        let mut end = 0;
        while let Some(i) = path[end + 1..].find('/') {
            end += 1 + i;
            let parent = &path[..end];
            match self.nodes.get(parent) {
                Some(Node::File { .. }) => {
                    return Err(InitramfsError::Duplicate(parent.to_owned()))
                }
                Some(Node::Dir) => {}
                None => {
                    self.nodes.insert(parent.to_owned(), Node::Dir);
                }
            }
        }
        Ok(())
    }

    /// Every regular file, in archive order, for the manifest.
    pub fn listing(&self) -> Vec<Listed> {
        use sha2::{Digest, Sha256};
        self.nodes
            .iter()
            .filter_map(|(path, node)| match node {
                Node::Dir => None,
                Node::File { mode, data } => Some(Listed {
                    path: path.clone(),
                    mode: *mode,
                    sha256: hex::encode(Sha256::digest(data)),
                    size: data.len() as u64,
                }),
            })
            .collect()
    }

    /// Total size of the files' contents.
    pub fn content_bytes(&self) -> u64 {
        self.nodes
            .values()
            .map(|n| match n {
                Node::Dir => 0,
                Node::File { data, .. } => data.len() as u64,
            })
            .sum()
    }

    /// The archive. `progress` is called with the number of content bytes written so far.
    pub fn write<W: std::io::Write>(
        &self,
        mut out: W,
        progress: &mut dyn FnMut(u64),
    ) -> Result<W, InitramfsError> {
        let mut written = 0u64;
        // A BTreeMap iterates in byte order of the paths; a directory's path is a prefix
        // of its children's, so it comes first.
        for (ino, (path, node)) in self.nodes.iter().enumerate() {
            let name = &path[1..];
            let builder = cpio::newc::Builder::new(name)
                .ino(ino as u32 + 1)
                .uid(0)
                .gid(0)
                .mtime(0)
                .dev_major(0)
                .dev_minor(0)
                .rdev_major(0)
                .rdev_minor(0);
            out = match node {
                Node::Dir => builder.mode(0o040755).nlink(2).write(out, 0).finish()?,
                Node::File { mode, data } => {
                    // Sizes were checked when the file was added.
                    let size = u32::try_from(data.len())
                        .map_err(|_| InitramfsError::TooLarge(path.clone(), data.len()))?;
                    let mut w = builder.mode(0o100000 | mode).nlink(1).write(out, size);
                    w.write_all(data)?;
                    written += data.len() as u64;
                    progress(written);
                    w.finish()?
                }
            };
        }
        Ok(cpio::newc::trailer(out)?)
    }

    /// The archive's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, InitramfsError> {
        self.write(Vec::new(), &mut |_| {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(order: &[usize]) -> Initramfs {
        let files: [(&str, u32, &[u8]); 4] = [
            ("/init", 0o755, b"#init"),
            ("/etc/cloister/host.toml", 0o644, b"[server]"),
            ("/usr/bin/cloister-host", 0o755, b"\x7fELF"),
            ("/lib/modules/virtio_net.ko", 0o644, b"ko"),
        ];
        let mut i = Initramfs::new();
        for &k in order {
            let (p, m, d) = files[k];
            i.file(p, m, d.to_vec()).unwrap();
        }
        i.dir("/proc").unwrap();
        i
    }

    #[test]
    fn the_bytes_do_not_depend_on_the_order_files_were_added() {
        let a = sample(&[0, 1, 2, 3]).to_bytes().unwrap();
        let b = sample(&[3, 2, 1, 0]).to_bytes().unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn the_archive_reads_back_with_fixed_metadata_and_parents_first() {
        let bytes = sample(&[0, 1, 2, 3]).to_bytes().unwrap();
        let mut rest: &[u8] = &bytes;
        let mut names = Vec::new();
        loop {
            let mut r = cpio::newc::Reader::new(rest).unwrap();
            let e = r.entry();
            if e.is_trailer() {
                break;
            }
            assert_eq!((e.uid(), e.gid(), e.mtime()), (0, 0, 0), "{}", e.name());
            names.push((e.name().to_owned(), e.mode(), e.file_size()));
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut r, &mut data).unwrap();
            rest = r.finish().unwrap();
        }
        let order: Vec<&str> = names.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(
            order,
            [
                "etc",
                "etc/cloister",
                "etc/cloister/host.toml",
                "init",
                "lib",
                "lib/modules",
                "lib/modules/virtio_net.ko",
                "proc",
                "usr",
                "usr/bin",
                "usr/bin/cloister-host"
            ]
        );
        assert_eq!(names[3].1, 0o100755);
        assert_eq!(names[0].1, 0o040755);
        assert_eq!(names[2].2, 8);
    }

    #[test]
    fn one_changed_byte_changes_the_archive() {
        let a = sample(&[0, 1, 2, 3]);
        let mut b = sample(&[0, 1, 3]);
        b.file("/usr/bin/cloister-host", 0o755, b"\x7fELG".to_vec())
            .unwrap();
        assert_ne!(a.to_bytes().unwrap(), b.to_bytes().unwrap());
    }

    #[test]
    fn bad_paths_and_duplicates_are_refused() {
        let mut i = Initramfs::new();
        for p in ["init", "/", "/a/../b", "/a//b", "/a/", "/a\nb", "/./a"] {
            assert!(
                matches!(i.file(p, 0o644, vec![]), Err(InitramfsError::Path(..))),
                "{p:?}"
            );
        }
        i.file("/a/b", 0o644, vec![]).unwrap();
        assert!(matches!(
            i.file("/a/b", 0o644, vec![]),
            Err(InitramfsError::Duplicate(_))
        ));
        assert!(matches!(
            i.file("/a/b/c", 0o644, vec![]),
            Err(InitramfsError::Duplicate(_))
        ));
        assert!(matches!(i.dir("/a/b"), Err(InitramfsError::Duplicate(_))));
    }
}
