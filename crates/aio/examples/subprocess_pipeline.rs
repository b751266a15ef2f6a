//! A shell pipeline, `ls -1 DIR | sort -r`, built from two subprocesses:
//! the loop copies the first one's stdout into the second one's stdin
//! while it reads the second one's output, all through pipes.
//!
//!     cargo run --release -p aio --example subprocess_pipeline [DIR]
//!
//! DIR defaults to `/`.

use std::io;

use aio::{PIPE, StreamReader, StreamWriter};

/// Copies `from` into `to` until EOF, then closes `to` (the reader of the
/// other end sees EOF). `drain` keeps the copy's memory bounded however
/// slow the reader is.
async fn copy(mut from: StreamReader, to: StreamWriter) -> io::Result<u64> {
    let mut total = 0;
    loop {
        let chunk = from.read(64 * 1024).await?;
        if chunk.is_empty() {
            break;
        }
        total += chunk.len() as u64;
        to.write(&chunk);
        to.drain().await?;
    }
    to.close();
    to.wait_closed().await?;
    Ok(total)
}

#[aio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "/".into());

    let mut ls = aio::create_subprocess_exec("ls", ["-1", &dir]).stdout(PIPE).await?;
    let mut sort = aio::create_subprocess_exec("sort", ["-r"])
        .stdin(PIPE)
        .stdout(PIPE)
        .await?;

    let ls_out = ls.stdout.take().expect("piped");
    let sort_in = sort.stdin.take().expect("piped");
    let mut sort_out = sort.stdout.take().expect("piped");

    // `ls | sort`: the copy and the read of sort's output run concurrently.
    let (copied, sorted) = aio::gather!(copy(ls_out, sort_in), async {
        sort_out.read(-1).await.map_err(io::Error::from)
    })
    .await?;

    print!("{}", String::from_utf8_lossy(&sorted));
    let (ls_code, sort_code) = aio::gather!(ls.wait(), sort.wait()).await?;
    eprintln!("[{copied} bytes through the pipe; ls exited with {ls_code}, sort with {sort_code}]");
    Ok(())
}
