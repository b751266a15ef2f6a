//! An error in a gathered future propagates out of `gather`.

use std::fmt;

#[derive(Debug)]
enum Error {
    ValueError(&'static str),
    Cancelled(aio::Cancelled),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ValueError(msg) => f.write_str(msg),
            Error::Cancelled(c) => c.fmt(f),
        }
    }
}

impl From<aio::Cancelled> for Error {
    fn from(c: aio::Cancelled) -> Self {
        Error::Cancelled(c)
    }
}

async fn faulty_task() -> Result<(), Error> {
    Err(Error::ValueError("Something went wrong"))
}

#[aio::main]
async fn main() {
    if let Err(e) = aio::gather!(faulty_task()).await {
        println!("Caught exception: {e}");
    }
}
