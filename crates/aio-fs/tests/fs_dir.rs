//! Paths on every backend: the free functions (read, write, copy, copy
//! onto itself, metadata, rename, remove), directories created and removed as trees,
//! and `read_dir`.

use std::collections::BTreeSet;
use std::io;

use aio_test::{Dir, backend_tests, payload};

async fn read_write_copy_rename_remove(d: Dir) -> io::Result<()> {
    let a = d.join("a.txt");
    aio_fs::write(&a, "first").await?;
    assert_eq!(aio_fs::read_to_string(&a).await?, "first");
    aio_fs::write(&a, "second, longer").await?;
    assert_eq!(aio_fs::read(&a).await?, b"second, longer");
    // Copy keeps the content and the permission bits.
    let big = d.join("big.bin");
    let data = payload(3 << 20, 9);
    aio_fs::write(&big, &data).await?;
    std::fs::set_permissions(&big, std::os::unix::fs::PermissionsExt::from_mode(0o640))?;
    let copied = d.join("copy.bin");
    assert_eq!(aio_fs::copy(&big, &copied).await?, data.len() as u64);
    assert_eq!(aio_fs::read(&copied).await?, data);
    assert_eq!(aio_fs::metadata(&copied).await?.mode(), 0o640);
    // Rename replaces the target.
    aio_fs::rename(&copied, &a).await?;
    assert_eq!(aio_fs::metadata(&a).await?.len(), data.len() as u64);
    assert_eq!(
        aio_fs::metadata(&copied).await.unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    aio_fs::remove_file(&a).await?;
    let e = aio_fs::remove_file(&a).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    assert!(e.to_string().contains("a.txt"), "{e}");
    // Copying a directory is refused with a clear error.
    assert_eq!(
        aio_fs::copy(d.path(), d.join("x")).await.unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    Ok(())
}

/// Copying a file onto itself (by its path, a hard link or a symbolic
/// link) is refused and leaves it whole: truncating the destination
/// would empty the source. Onto a longer file, the copy replaces all of it.
async fn copy_onto_the_same_file_is_refused(d: Dir) -> io::Result<()> {
    let a = d.join("a");
    aio_fs::write(&a, "keep me").await?;
    std::fs::hard_link(&a, d.join("hard"))?;
    std::os::unix::fs::symlink(&a, d.join("soft"))?;
    for to in [a.clone(), d.join("hard"), d.join("soft")] {
        let e = aio_fs::copy(&a, &to).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        assert!(
            e.to_string().contains("same") || e.to_string().contains("source"),
            "{e}"
        );
        assert_eq!(aio_fs::read_to_string(&a).await?, "keep me");
    }
    let long = d.join("long");
    aio_fs::write(&long, "a longer file than the source").await?;
    assert_eq!(aio_fs::copy(&a, &long).await?, 7);
    assert_eq!(aio_fs::read_to_string(&long).await?, "keep me");
    // std's rule: an empty path has nothing to create.
    aio_fs::create_dir_all("").await?;
    Ok(())
}

/// `copy` gives the destination the source's permission bits, also when
/// it existed, as std's `fs::copy` does (checked against std itself).
async fn copy_gives_an_existing_destination_the_source_permissions(d: Dir) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let src = d.join("src");
    aio_fs::write(&src, "data").await?;
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o751))?;
    let (ours, std_) = (d.join("ours"), d.join("std"));
    for p in [&ours, &std_] {
        std::fs::write(p, "old, longer contents")?;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600))?;
    }
    assert_eq!(aio_fs::copy(&src, &ours).await?, 4);
    assert_eq!(std::fs::copy(&src, &std_)?, 4);
    let mode = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.permissions().mode() & 0o7777);
    assert_eq!(mode(&ours)?, 0o751);
    assert_eq!(mode(&ours)?, mode(&std_)?);
    assert_eq!(std::fs::read(&ours)?, b"data");
    // A new destination gets them exactly too (not masked by the umask).
    let (new, new_std) = (d.join("new"), d.join("new_std"));
    aio_fs::copy(&src, &new).await?;
    std::fs::copy(&src, &new_std)?;
    assert_eq!(mode(&new)?, 0o751);
    assert_eq!(mode(&new)?, mode(&new_std)?);
    Ok(())
}

async fn symlinks_are_seen_or_followed(d: Dir) -> io::Result<()> {
    let target = d.join("target");
    aio_fs::write(&target, "t").await?;
    let link = d.join("link");
    std::os::unix::fs::symlink(&target, &link)?;
    assert!(aio_fs::metadata(&link).await?.is_file());
    assert!(aio_fs::symlink_metadata(&link).await?.is_symlink());
    Ok(())
}

async fn trees_and_listings(d: Dir) -> io::Result<()> {
    let root = d.join("tree");
    aio_fs::create_dir_all(root.join("x/y/z")).await?;
    aio_fs::create_dir_all(root.join("x/y/z")).await?; // exists: fine
    aio_fs::create_dir(root.join("w")).await?;
    assert_eq!(
        aio_fs::create_dir(root.join("w")).await.unwrap_err().kind(),
        io::ErrorKind::AlreadyExists
    );
    let mut names = BTreeSet::new();
    for i in 0..300 {
        let n = format!("file-{i:03}");
        aio_fs::write(root.join("x").join(&n), [i as u8]).await?;
        names.insert(n);
    }
    names.insert("y".into());
    let mut seen = BTreeSet::new();
    let mut dirs = 0;
    let mut entries = aio_fs::read_dir(root.join("x")).await?;
    while let Some(e) = entries.next_entry().await? {
        if e.file_type().await?.is_dir() {
            dirs += 1;
        }
        assert_eq!(e.path(), root.join("x").join(e.file_name()));
        seen.insert(e.file_name().into_string().unwrap());
    }
    assert_eq!(seen, names, "every entry once, no . or ..");
    assert_eq!(dirs, 1);
    // A file where a directory is expected.
    let e = aio_fs::read_dir(root.join("x/file-001")).await.unwrap_err();
    assert!(e.to_string().contains("file-001"), "{e}");
    // Non-empty: remove_dir refuses, remove_dir_all removes the tree.
    assert!(aio_fs::remove_dir(root.join("x")).await.is_err());
    // A symbolic link inside is removed, not followed.
    let outside = d.join("outside");
    aio_fs::write(&outside, "keep").await?;
    std::os::unix::fs::symlink(&outside, root.join("x/y/link"))?;
    aio_fs::remove_dir_all(&root).await?;
    assert_eq!(
        aio_fs::metadata(&root).await.unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    assert_eq!(aio_fs::read_to_string(&outside).await?, "keep");
    Ok(())
}

backend_tests!(
    dir:
    read_write_copy_rename_remove,
    copy_onto_the_same_file_is_refused,
    copy_gives_an_existing_destination_the_source_permissions,
    symlinks_are_seen_or_followed,
    trees_and_listings
);
