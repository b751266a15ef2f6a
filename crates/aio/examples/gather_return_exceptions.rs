//! `gather(..., return_exceptions=True)`: errors come back as values.

#[derive(Debug)]
#[allow(dead_code)] // the fields are shown through Debug
enum Error {
    ValueError(&'static str),
    Cancelled(aio::Cancelled),
}

impl From<aio::Cancelled> for Error {
    fn from(c: aio::Cancelled) -> Self {
        Error::Cancelled(c)
    }
}

async fn ok() -> Result<&'static str, Error> {
    aio::sleep(0.1).await?;
    Ok("ok")
}

async fn bad() -> Result<&'static str, Error> {
    aio::sleep(0.1).await?;
    Err(Error::ValueError("boom"))
}

#[aio::main]
async fn main() -> aio::Result<()> {
    let results = aio::gather_settled!(ok(), bad()).await?;
    println!("{results:?}");
    Ok(())
}
