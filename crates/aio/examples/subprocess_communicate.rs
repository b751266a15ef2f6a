//! asyncio's subprocess example, twinned: run shell commands, collect
//! their output with `communicate`, and report how they exited — one
//! command, then two at once with `gather`.
//!
//!     cargo run --release -p aio --example subprocess_communicate
//!
//! The Python original (from asyncio's documentation):
//!
//! ```python
//! async def run(cmd):
//!     proc = await asyncio.create_subprocess_shell(
//!         cmd,
//!         stdout=asyncio.subprocess.PIPE,
//!         stderr=asyncio.subprocess.PIPE)
//!
//!     stdout, stderr = await proc.communicate()
//!
//!     print(f'[{cmd!r} exited with {proc.returncode}]')
//!     if stdout:
//!         print(f'[stdout]\n{stdout.decode()}')
//!     if stderr:
//!         print(f'[stderr]\n{stderr.decode()}')
//!
//! asyncio.run(run('ls /zzz'))
//!
//! async def main():
//!     await asyncio.gather(
//!         run('ls /zzz'),
//!         run('sleep 1; echo "hello"'))
//!
//! asyncio.run(main())
//! ```

use std::io;

async fn run(cmd: &str) -> io::Result<()> {
    let mut proc = aio::create_subprocess_shell(cmd)
        .stdout(aio::PIPE)
        .stderr(aio::PIPE)
        .await?;

    let (stdout, stderr) = proc.communicate(None).await?;

    println!("['{cmd}' exited with {}]", proc.returncode().unwrap_or_default());
    if let Some(out) = stdout.filter(|o| !o.is_empty()) {
        println!("[stdout]\n{}", String::from_utf8_lossy(&out));
    }
    if let Some(err) = stderr.filter(|e| !e.is_empty()) {
        println!("[stderr]\n{}", String::from_utf8_lossy(&err));
    }
    Ok(())
}

fn main() -> io::Result<()> {
    aio::run(run("ls /zzz"))?;

    // Both commands run at once: about 1 s in all.
    aio::run(async {
        aio::gather!(run("ls /zzz"), run("sleep 1; echo \"hello\"")).await?;
        Ok(())
    })
}
