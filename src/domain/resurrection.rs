//! The resurrection schedule: death number n waits `delays[n-1]` (the last delay repeats for
//! later deaths) before its re-check.

/// When a proxy that died for the `deaths`-th time at `dead_since` is due for its re-check.
pub fn due_at(deaths: u32, dead_since: i64, delays_ms: &[u64]) -> i64 {
    let i = (deaths.max(1) as usize - 1).min(delays_ms.len().saturating_sub(1));
    let delay = delays_ms.get(i).copied().unwrap_or(0);
    dead_since.saturating_add(delay.min(i64::MAX as u64) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_death_waits_its_delay_and_the_last_repeats() {
        let delays = [0, 300_000, 1_800_000, 7_200_000];
        assert_eq!(due_at(1, 1000, &delays), 1000);
        assert_eq!(due_at(2, 1000, &delays), 301_000);
        assert_eq!(due_at(4, 0, &delays), 7_200_000);
        assert_eq!(due_at(9, 0, &delays), 7_200_000);
        assert_eq!(due_at(0, 5, &delays), 5);
        assert_eq!(due_at(3, 5, &[]), 5);
    }
}

#[cfg(test)]
#[path = "props/resurrection.rs"]
mod props;
