//! Any config file: `Config::from_toml` then `validate` never panic, and a config that
//! validates can be used (every derived value the service computes at start).
#![no_main]

use libfuzzer_sys::fuzz_target;
use proxyvisor::config::{secs, Config};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mut config) = Config::from_toml(text) else {
        return;
    };
    if let Err(e) = config.validate() {
        if std::env::var_os("FUZZ_SHOW").is_some() {
            eprintln!("invalid: {e}");
        }
        return;
    }
    if std::env::var_os("FUZZ_SHOW").is_some() {
        eprintln!("valid");
    }
    let _ = config.bind_addr().expect("validated");
    let _ = config.rules();
    let _ = config.sources();
    let _ = config.daily_report_at().expect("validated");
    let monitors = config.monitors().expect("validated");
    for m in &monitors {
        let _ = m
            .rules
            .cooldown_ms
            .checked_add(1)
            .expect("a cooldown that can be added to");
    }
    let _ = config.managed_proxies().expect("validated");
    for d in &config.resurrection.delays_secs {
        let _ = secs(*d);
    }
    let _ = secs(config.supervision.within_secs);
    let _ = secs(config.alerts.cooldown_secs);
    let _ = secs(config.validation.revalidate_interval_secs);
    for s in config.sources() {
        let _ = secs(s.interval_secs);
    }
});
