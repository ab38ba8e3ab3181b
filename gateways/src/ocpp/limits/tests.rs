use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use chrono::Utc;

use super::*;

#[test]
fn a_full_failure_map_still_counts_a_new_key() {
    let (mut c, now, window) = (Counters::<u32>::default(), Instant::now(), Duration::from_secs(60));
    for k in 0..MAX_KEYS as u32 {
        c.count(k, window, now);
    }
    let key = MAX_KEYS as u32 + 1;
    for _ in 0..3 {
        c.count(key, window, now);
    }
    assert!(c.blocked(&key, 3, window, now).is_some(), "the new key is tracked and limited");
    assert_eq!(c.windows.len(), MAX_KEYS, "the map stays bounded");
}

fn limits() -> OcppLimits {
    OcppLimits {
        frames_per_sec: 1,
        frame_burst: 3,
        flood_close_after: 2,
        rejections_logged: 2,
        rejection_interval: Duration::from_secs(3600),
        failures_per_address: 2,
        failures_per_id: 1,
        ..OcppLimits::default()
    }
}

#[test]
fn a_burst_is_admitted_then_refused_then_closed() {
    let mut f = FrameLimiter::new(&limits());
    let got: Vec<Admission> = (0..6).map(|_| f.admit()).collect();
    assert_eq!(got[..3], [Admission::Admit; 3]);
    assert_eq!(got[3..5], [Admission::OverRate; 2]);
    assert_eq!(got[5], Admission::Close);
}

#[test]
fn rejections_beyond_the_logged_number_are_summarized_once() {
    let mut f = FrameLimiter::new(&limits());
    let at = Utc::now();
    let logged = (0..10)
        .filter(|i| {
            f.last_over_rate = i % 2 == 0;
            f.record_rejection("GenericError", 10, at)
        })
        .count();
    assert_eq!(logged, 2);
    assert!(f.due(false).is_none(), "not before the interval ends");
    let p = f.due(true).unwrap();
    assert_eq!((p.count, p.over_rate, p.bytes, p.by_code["GenericError"]), (8, 4, 80, 8));
    assert!(f.due(true).is_none());
}

#[test]
fn failures_block_the_address_and_the_id() {
    let (l, h) = (limits(), FailedHandshakes::default());
    let ip: IpAddr = "2001:db8::1".parse().unwrap();
    let neighbour: IpAddr = "2001:db8::2".parse().unwrap();
    h.failed(&l, ip, Some("A"));
    assert!(h.blocked(&l, ip, "A").is_some(), "id A is over its limit of 1");
    assert!(h.blocked(&l, ip, "B").is_none(), "the address is not yet");
    h.failed(&l, ip, None);
    assert!(h.blocked(&l, neighbour, "B").is_some(), "the /64 is over its limit of 2");
    assert!(h.blocked(&l, "192.0.2.1".parse().unwrap(), "B").is_none());
}
