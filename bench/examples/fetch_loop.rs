//! One contender of the side-by-side benchmark alone, fetching N tokens in a loop: for counting
//! instructions with callgrind, which (unlike wall-clock time) does not depend on what else the
//! machine is doing. Sandbox and client run in this one process, so the count covers both ends.
//!
//! ```sh
//! cargo build --release -p tokensmith-bench --example fetch_loop
//! for n in 200 1200; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/fetch_loop tokensmith $n 2>&1 | grep refs
//! done
//! ```
//!
//! The difference between the two totals divided by 1,000 is the instructions of one fetch, start-up
//! excluded. Contenders: `tokensmith`, `raw_reqwest`, `oauth2`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../benches/common/mod.rs"]
mod common;

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "tokensmith".to_owned());
    assert!(common::CONTENDERS.contains(&name.as_str()), "the contender is one of {:?}", common::CONTENDERS);
    let fetches: u32 = args.next().map_or(1_000, |n| n.parse().expect("the number of fetches"));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (sandbox, _server) = common::start_sandbox();
    let clients = common::Clients::new(&sandbox);
    rt.block_on(async {
        for _ in 0..fetches {
            clients.fetch(&name).await;
        }
    });
    assert_eq!(sandbox.request_count(common::D, "/o/token/"), fetches as usize);
}
