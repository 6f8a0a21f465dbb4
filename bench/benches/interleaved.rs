//! The same three fetches as `side_by_side.rs`, measured interleaved so that a busy neighbour slows
//! all three alike: 60 rounds; in each round every contender (in a rotating order) makes 200 fetches
//! and the mean time per fetch is recorded. The report gives each contender's median round and, more
//! robust on a shared machine, the median over rounds of tokensmith's time divided by the other's time
//! *in the same round*.
//!
//! `cargo bench -p tokensmith-bench --bench interleaved` (results in docs/performance.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::time::Instant;

use common::{CONTENDERS, Clients, D, start_sandbox};

const ROUNDS: usize = 60;
const PER_ROUND: u32 = 200;
const WARM_UP: u32 = 2_000;

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn quartiles(values: &mut [f64]) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    (values[values.len() / 4], values[values.len() * 3 / 4])
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: then one short round proves
    // that the code runs.
    let measuring = std::env::args().any(|a| a == "--bench");
    let (rounds, per_round, warm_up) = if measuring { (ROUNDS, PER_ROUND, WARM_UP) } else { (1, 5, 5) };

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // One sandbox per contender, so that each meets a server that has issued as many tokens as the
    // others' have.
    let sandboxes: Vec<_> = CONTENDERS.iter().map(|_| start_sandbox()).collect();
    let clients: Vec<Clients> = sandboxes.iter().map(|(sandbox, _)| Clients::new(sandbox)).collect();
    rt.block_on(async {
        for (name, clients) in CONTENDERS.iter().zip(&clients) {
            for _ in 0..warm_up {
                clients.fetch(name).await;
            }
        }
    });

    // per_fetch[contender][round], in µs.
    let mut per_fetch = vec![Vec::with_capacity(rounds); CONTENDERS.len()];
    for round in 0..rounds {
        for k in 0..CONTENDERS.len() {
            let i = (round + k) % CONTENDERS.len();
            let elapsed = rt.block_on(async {
                let start = Instant::now();
                for _ in 0..per_round {
                    clients[i].fetch(CONTENDERS[i]).await;
                }
                start.elapsed()
            });
            per_fetch[i].push(elapsed.as_secs_f64() * 1e6 / f64::from(per_round));
        }
    }
    for (sandbox, _) in &sandboxes {
        assert!(sandbox.request_count(D, "/o/token/") >= warm_up as usize, "the benchmark reached the sandbox");
    }

    println!("{} rounds x {} fetches per contender, interleaved", rounds, per_round);
    println!("{:<12} {:>14} {:>22}", "contender", "median µs", "quartiles µs");
    for (name, times) in CONTENDERS.iter().zip(&per_fetch) {
        let mut t = times.clone();
        let (q1, q3) = quartiles(&mut t);
        println!("{:<12} {:>14.1} {:>10.1} – {:<10.1}", name, median(&mut t), q1, q3);
    }
    for other in 1..CONTENDERS.len() {
        let mut ratios: Vec<f64> = per_fetch[0].iter().zip(&per_fetch[other]).map(|(a, b)| a / b).collect();
        let (q1, q3) = quartiles(&mut ratios);
        println!(
            "tokensmith / {:<12} median of same-round ratios {:.3}x (quartiles {:.3} – {:.3})",
            CONTENDERS[other],
            median(&mut ratios),
            q1,
            q3
        );
    }
}
