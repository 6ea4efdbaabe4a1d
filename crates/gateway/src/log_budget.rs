//! A budget for warning lines that attackers can trigger at will (one per denied request):
//! a flood of denials must not become a flood of log lines. The audit trail and the metrics
//! still count every denial; the log says how many lines it left out.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Allows `per_second` lines in each one-second window, then counts what it suppresses.
#[derive(Debug)]
pub(crate) struct LogBudget {
    per_second: u32,
    window: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    started: Option<Instant>,
    written: u32,
    suppressed: u64,
}

/// Whether to write a line, and how many were left out before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Permit {
    /// Write it; `suppressed` lines were left out since the last one written.
    Write { suppressed: u64 },
    /// Leave it out.
    Suppress,
}

impl LogBudget {
    pub(crate) const fn new(per_second: u32) -> Self {
        Self {
            per_second,
            window: Mutex::new(Window {
                started: None,
                written: 0,
                suppressed: 0,
            }),
        }
    }

    /// Asks for one line at `now`.
    pub(crate) fn permit(&self, now: Instant) -> Permit {
        let mut window = self
            .window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let expired = window
            .started
            .is_none_or(|started| now.saturating_duration_since(started) >= Duration::from_secs(1));
        if expired {
            window.started = Some(now);
            window.written = 0;
        }
        if window.written < self.per_second {
            window.written += 1;
            let suppressed = std::mem::take(&mut window.suppressed);
            Permit::Write { suppressed }
        } else {
            window.suppressed += 1;
            Permit::Suppress
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_cut_to_the_budget_and_the_gap_is_reported() {
        let budget = LogBudget::new(3);
        let start = Instant::now();
        let permits: Vec<Permit> = (0..10).map(|_| budget.permit(start)).collect();
        assert_eq!(
            permits
                .iter()
                .filter(|p| matches!(p, Permit::Write { .. }))
                .count(),
            3
        );
        assert_eq!(
            permits[3..]
                .iter()
                .filter(|p| **p == Permit::Suppress)
                .count(),
            7
        );
        // The next window writes again and says what was left out.
        assert_eq!(
            budget.permit(start + Duration::from_millis(1500)),
            Permit::Write { suppressed: 7 }
        );
        assert_eq!(
            budget.permit(start + Duration::from_millis(1600)),
            Permit::Write { suppressed: 0 }
        );
    }
}
