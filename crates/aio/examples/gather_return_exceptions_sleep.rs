//! `return_exceptions=True` with a failing future and a bare sleep.

#[derive(Debug)]
#[allow(dead_code)] // the field is shown through Debug
enum Error {
    ValueError(&'static str),
}

async fn faulty_task() -> Result<(), Error> {
    Err(Error::ValueError("Something went wrong"))
}

#[aio::main]
async fn main() -> aio::Result<()> {
    let results = aio::gather_settled!(faulty_task(), aio::sleep(1)).await?;
    println!("{results:?}"); // (Err(ValueError("Something went wrong")), Ok(()))
    Ok(())
}
