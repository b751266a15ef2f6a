//! `#[aio_core::main]` / `#[aio_core::test]` in a crate that depends on
//! aio-core (and aio-macros) only, with and without arguments, and the
//! `crate = "..."` argument of aio-macros' own attributes.

use std::time::Duration;

use aio_core::{Cancelled, sleep, time};

#[aio_core::test]
async fn the_core_test_attribute_runs_on_aio_core() {
    assert_eq!(aio_core::get_running_loop().backend(), "park");
    sleep(Duration::from_millis(1)).await.unwrap();
}

#[aio_core::test]
async fn a_test_may_return_a_result() -> Result<(), Cancelled> {
    sleep(0).await?;
    Ok(())
}

#[aio_core::test(start_paused = true)]
async fn start_paused_through_aio_core() {
    assert!(time::is_paused());
    let t0 = aio_core::monotonic();
    sleep(3600).await.unwrap();
    assert!(aio_core::monotonic() - t0 >= 3600.0);
}

#[aio_macros::test(crate = "aio_core", start_paused = false)]
async fn aio_macros_with_an_explicit_crate() {
    assert!(!time::is_paused());
}

mod renamed {
    // A dependency renamed in Cargo.toml works the same way.
    extern crate aio_core as my_aio;

    #[aio_macros::test(crate = "my_aio")]
    async fn a_renamed_crate() {
        my_aio::sleep(0).await.unwrap();
    }
}

#[test]
fn the_core_main_attribute_makes_a_plain_fn() {
    #[aio_core::main]
    async fn main() -> u32 {
        sleep(0).await.unwrap();
        7
    }
    assert_eq!(main(), 7);
}
