//! Work spread over threads that share one oracle pool, results kept in input order so that a
//! run's output does not depend on scheduling.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// `work` applied to every item on `threads` threads. `None` when `cancel` was set before every
/// item was done; the first error stops the other threads after their current item.
pub fn map_in_order<T: Sync, R: Send, E: Send>(
    items: &[T],
    threads: usize,
    cancel: &AtomicBool,
    work: &(dyn Fn(usize, &T) -> Result<R, E> + Sync),
) -> Result<Option<Vec<R>>, E> {
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let failure: Mutex<Option<E>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                loop {
                    if cancel.load(Ordering::Relaxed) || failure.lock().unwrap().is_some() {
                        return;
                    }
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(index) else { return };
                    match work(index, item) {
                        Ok(result) => *slots[index].lock().unwrap() = Some(result),
                        Err(error) => {
                            failure.lock().unwrap().get_or_insert(error);
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(error) = failure.into_inner().unwrap() {
        return Err(error);
    }
    Ok(slots.into_iter().map(|slot| slot.into_inner().unwrap()).collect())
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
}
