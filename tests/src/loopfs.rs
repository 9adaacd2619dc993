//! A RAM-backed ext4 file system for one test: an image in /dev/shm on a
//! loop device, mounted in a directory of the test's own. ext4 takes
//! O_DIRECT, so direct I/O is really direct; everything is removed on drop,
//! and nothing touches the machine's own disks or mounts. Needs root.

use std::path::{Path, PathBuf};
use std::process::Command;

/// See the module docs.
pub struct LoopFs {
    image: PathBuf,
    device: String,
    mount: PathBuf,
}

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (the storage tests need root and util-linux)"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed (the storage tests need root and loop devices): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl LoopFs {
    /// An ext4 file system of `mb` MiB, named after `test`.
    pub fn new(test: &str, mb: u64) -> Self {
        let name = format!("zcap-test-{test}-{}", std::process::id());
        let image = PathBuf::from(format!("/dev/shm/{name}.img"));
        let mount = std::env::temp_dir().join(format!("{name}-mnt"));
        let file = std::fs::File::create(&image).expect("an image file in /dev/shm");
        file.set_len(mb << 20).unwrap();
        drop(file);
        let device = run("losetup", &["-f", "--show", image.to_str().unwrap()]);
        let fs = LoopFs {
            image,
            device,
            mount,
        };
        run("mkfs.ext4", &["-q", "-F", &fs.device]);
        std::fs::create_dir_all(&fs.mount).unwrap();
        run("mount", &[&fs.device, fs.mount.to_str().unwrap()]);
        fs
    }

    /// The mounted directory.
    pub fn dir(&self) -> &Path {
        &self.mount
    }

    /// A path in it.
    pub fn path(&self, name: &str) -> PathBuf {
        self.mount.join(name)
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let mount = self.mount.to_str().unwrap();
        let _ = Command::new("umount").arg(mount).status();
        let _ = Command::new("losetup").args(["-d", &self.device]).status();
        let _ = std::fs::remove_file(&self.image);
        let _ = std::fs::remove_dir(&self.mount);
    }
}
