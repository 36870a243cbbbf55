//! Choosing the upstream for a new connection or a retry.
//!
//! Pure: no sockets, no clocks. `pick` never returns a server already in `tried`, so a client
//! tries each server at most once; `None` means every server has been tried.

use crate::upstream::{Pool, UpstreamId};

/// Round-robin over the pool, skipping servers this client already tried.
#[derive(Debug, Default, Clone)]
pub struct RoundRobin {
    next: usize,
}

impl RoundRobin {
    /// The next server in turn that is not in `tried`, advancing the turn past it.
    pub fn pick(&mut self, pool: &Pool, tried: &[UpstreamId]) -> Option<UpstreamId> {
        let n = pool.len();
        (0..n)
            .map(|offset| (self.next + offset) % n)
            .find(|id| !tried.contains(id))
            .inspect(|id| self.next = (id + 1) % n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::Upstream;

    fn pool(n: usize) -> Pool {
        Pool {
            servers: (0..n)
                .map(|i| Upstream {
                    addr: ([127, 0, 0, 1], 1000 + i as u16).into(),
                    active: 0,
                })
                .collect(),
        }
    }

    #[test]
    fn cycles_through_servers_in_order() {
        let pool = pool(3);
        let mut rr = RoundRobin::default();
        let picks: Vec<_> = (0..7).map(|_| rr.pick(&pool, &[]).unwrap()).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn skips_tried_servers_and_gives_up_when_all_tried() {
        let pool = pool(3);
        let mut rr = RoundRobin::default();
        assert_eq!(rr.pick(&pool, &[0]), Some(1));
        assert_eq!(rr.pick(&pool, &[1, 2]), Some(0));
        assert_eq!(rr.pick(&pool, &[0, 1, 2]), None);
        assert_eq!(rr.pick(&pool, &[]), Some(1));
    }
}
