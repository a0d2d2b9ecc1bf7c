//! Work spread over threads that share one oracle pool, on a rayon pool of its own, results
//! kept in input order so that a run's output does not depend on scheduling.

use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

/// `work` applied to every item on `threads` threads. `None` when `cancel` was set before every
/// item was done; the first error stops the run (items in flight finish).
pub fn map_in_order<T: Sync, R: Send, E: Send>(
    items: &[T],
    threads: usize,
    cancel: &AtomicBool,
    work: &(dyn Fn(usize, &T) -> Result<R, E> + Sync),
) -> Result<Option<Vec<R>>, E> {
    map_in_order_with(items, threads, cancel, &|| (), &|_, index, item| work(index, item))
}

/// [`map_in_order`] with a state per worker, made by `init` on the thread that uses it (a
/// verifier with its own DuckDB fixtures, which cannot be shared between threads).
pub fn map_in_order_with<T: Sync, S, R: Send, E: Send>(
    items: &[T],
    threads: usize,
    cancel: &AtomicBool,
    init: &(dyn Fn() -> S + Sync),
    work: &(dyn Fn(&mut S, usize, &T) -> Result<R, E> + Sync),
) -> Result<Option<Vec<R>>, E> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads.max(1)).build().expect("a thread pool starts");
    let results: Result<Vec<Option<R>>, E> = pool.install(|| {
        items
            .par_iter()
            .enumerate()
            // Larger pieces keep a worker's state (and its caches) over many items.
            .with_min_len((items.len() / (threads.max(1) * 8)).max(1))
            .map_init(init, |state, (index, item)| if cancel.load(Ordering::Relaxed) { Ok(None) } else { work(state, index, item).map(Some) })
            .collect()
    });
    let results = results?;
    Ok(results.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_follow_the_input_order() {
        let items: Vec<u64> = (0..200).collect();
        let out: Option<Vec<u64>> = map_in_order(&items, 4, &AtomicBool::new(false), &|_, n| Ok::<_, ()>(n * 2)).unwrap();
        assert_eq!(out.unwrap(), items.iter().map(|n| n * 2).collect::<Vec<_>>());
    }

    #[test]
    fn an_error_is_returned_and_a_cancelled_run_gives_none() {
        let items = [1, 2, 3];
        assert_eq!(map_in_order(&items, 2, &AtomicBool::new(false), &|_, n| if *n == 2 { Err("two") } else { Ok(*n) }), Err("two"));
        assert_eq!(map_in_order(&items, 2, &AtomicBool::new(true), &|_, n| Ok::<_, ()>(*n)), Ok(None));
    }

    #[test]
    fn each_worker_keeps_its_state_over_many_items() {
        let items: Vec<u32> = (0..1000).collect();
        let inits = std::sync::atomic::AtomicUsize::new(0);
        let init = || {
            inits.fetch_add(1, Ordering::Relaxed);
            0u32
        };
        let out = map_in_order_with(&items, 2, &AtomicBool::new(false), &init, &|seen: &mut u32, _, n| {
            *seen += 1;
            Ok::<_, ()>(*n)
        });
        assert_eq!(out.unwrap().unwrap(), items);
        assert!(inits.load(Ordering::Relaxed) <= 64, "{} states for 1000 items", inits.load(Ordering::Relaxed));
    }
}
