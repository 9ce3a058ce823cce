-- Alerts and their stored outbox: an alert is stored with one pending delivery per configured
-- channel before it counts as queued, so a restart loses nothing.
CREATE TABLE alerts (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    severity TEXT NOT NULL,
    message TEXT NOT NULL,
    repeats INTEGER NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    closed_at BIGINT
);
CREATE INDEX alerts_open ON alerts (closed_at, key);
CREATE INDEX alerts_created ON alerts (created_at);

CREATE TABLE alert_deliveries (
    alert_id BIGINT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    -- pending | sent | failed
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_attempt_at BIGINT,
    sent_at BIGINT,
    PRIMARY KEY (alert_id, channel)
);
CREATE INDEX alert_deliveries_state ON alert_deliveries (state, next_attempt_at);
