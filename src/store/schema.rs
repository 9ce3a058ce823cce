// @generated automatically by Diesel CLI.

diesel::table! {
    proxies (url) {
        url -> Text,
        protocol -> Text,
        host -> Text,
        port -> Integer,
        username -> Nullable<Text>,
        password -> Nullable<Text>,
        source -> Text,
        kind -> Text,
        cost_per_gb -> Double,
        priority -> Integer,
        anonymity -> Nullable<Text>,
        country -> Nullable<Text>,
        tier -> Text,
        deaths -> Integer,
        consecutive_passes -> Integer,
        consecutive_failures -> Integer,
        checks_total -> BigInt,
        checks_ok -> BigInt,
        latency_ms -> Nullable<Integer>,
        last_checked_at -> Nullable<BigInt>,
        last_ok_at -> Nullable<BigInt>,
        dead_since -> Nullable<BigInt>,
        first_seen_at -> BigInt,
        last_status -> Nullable<Integer>,
        latency_total_ms -> BigInt,
    }
}

diesel::table! {
    managed_proxies (name) {
        name -> Text,
        url -> Text,
        username -> Nullable<Text>,
        password -> Nullable<Text>,
        kind -> Text,
        cost_per_gb -> Double,
        priority -> Integer,
        max_leases -> Nullable<Integer>,
        origin -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        daily_cost_limit -> Nullable<Double>,
        daily_cost_cap -> Nullable<Double>,
    }
}

diesel::table! {
    usage (hour, proxy, session) {
        hour -> BigInt,
        proxy -> Text,
        session -> Text,
        requests -> BigInt,
        failures -> BigInt,
        bytes_up -> BigInt,
        bytes_down -> BigInt,
        cost -> Double,
    }
}

diesel::table! {
    leases (id) {
        id -> Text,
        proxies -> Text,
        session -> Nullable<Text>,
        expires_at -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    alerts (id) {
        id -> BigInt,
        kind -> Text,
        key -> Text,
        severity -> Text,
        message -> Text,
        repeats -> Integer,
        created_at -> BigInt,
        updated_at -> BigInt,
        closed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    monitors (name) {
        name -> Text,
        definition -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    monitor_stats (name) {
        name -> Text,
        checks_total -> BigInt,
        checks_ok -> BigInt,
        latency_sum_ms -> BigInt,
        latency_count -> BigInt,
        available_ms -> BigInt,
        unavailable_ms -> BigInt,
        repairs -> BigInt,
        predictive_restarts -> BigInt,
        last_repair -> Nullable<Text>,
        updated_at -> BigInt,
    }
}

diesel::table! {
    alert_deliveries (alert_id, channel) {
        alert_id -> BigInt,
        channel -> Text,
        state -> Text,
        attempts -> Integer,
        last_error -> Nullable<Text>,
        next_attempt_at -> Nullable<BigInt>,
        sent_at -> Nullable<BigInt>,
    }
}

diesel::joinable!(alert_deliveries -> alerts (alert_id));

diesel::allow_tables_to_appear_in_same_query!(
    alert_deliveries,
    alerts,
    leases,
    managed_proxies,
    monitor_stats,
    monitors,
    proxies,
    usage
);
